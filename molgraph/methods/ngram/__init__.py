"""N-gram graph (Liu et al., NeurIPS 2019): unsupervised molecule embeddings from walks of vertex embeddings.

Rooms: ``walks`` (the walk sums and the CBoW vertex embedding), ``embedding`` (``NGramGraph``:
fit, embed, save), ``features`` (N-gram as a learned molecule featurizer of the property
method), ``predictors`` (random forest / gradient boosting on the embeddings), ``evaluate`` (the
paper's protocol), ``cli`` (``molgraph ngram ...``).
"""

from molgraph.methods.ngram.embedding import NGramEmbedding, NGramGraph, NGramGraphConfig, ngram_graph_featurizer

__all__ = ["NGramEmbedding", "NGramGraph", "NGramGraphConfig", "ngram_graph_featurizer"]
