"""N-gram graph as a registered method: its own commands (``molgraph ngram embed|evaluate``) and a
learned molecule featurizer of the property method (``--molecule-featurizers ngram``)."""

from __future__ import annotations

from molgraph.train.method import Method

__all__ = ["NGramMethod"]


class NGramMethod(Method):
    """Liu et al. 2019: unsupervised walk embeddings, then random forest / gradient boosting.

    It fits no network by gradient steps through the shared trainer, so ``config_class`` is
    ``None``: ``molgraph ngram embed`` fits and applies the embedding, ``molgraph ngram
    evaluate`` runs the paper's protocol, and property models use it as a molecule featurizer.
    """

    name = "ngram"
    help = "N-gram graph embeddings with RF/GBM (`molgraph ngram embed|evaluate`; not trained by `molgraph train`)"
    commands = ("molgraph.methods.ngram.cli",)
