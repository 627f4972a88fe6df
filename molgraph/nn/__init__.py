"""Neural-network layers for molecular graphs.

* :class:`InputEncoder`: raw atom/bond features (index-encoded or float) -> dense vectors.
* :class:`BondMessagePassing`: directed message passing (D-MPNN, chemprop v2).
* :class:`GINEEncoder`: GIN with edge features (Hu et al. 2020).
* :class:`GINEncoder`: GIN without edge features, with a choice of norm (the GraphNorm paper's TU layout).
* :class:`GCNEncoder`: GCN with bond features in the messages (the OGB molecule baseline).
* :class:`GraphNorm` (Cai et al. 2021) and :func:`make_norm` (``graph|batch|layer|instance|none``).
* :class:`Readout`: node embeddings -> graph embeddings (sum, mean, max, attention, norm).
* :class:`FFN`: feed-forward prediction head.

Layers take plain tensors (``x``, ``edge_index``, ``edge_attr``, ``batch``) so they can be used
outside :mod:`molgraph.methods`.
"""

import warnings

with warnings.catch_warnings():
    # importing torch_geometric.nn runs torch.jit.script, which torch 2.13 deprecates: a warning
    # about PyG's code, not ours or the user's
    warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=DeprecationWarning)
    from molgraph.nn.dmpnn import BondMessagePassing, reverse_edges
    from molgraph.nn.encoders import InputEncoder
    from molgraph.nn.ffn import ACTIVATIONS, FFN, get_activation
    from molgraph.nn.gcn import PROPAGATIONS, BondGCNConv, GCNEncoder, MeanBondConv
    from molgraph.nn.gin import GINEncoder
    from molgraph.nn.gine import GINEEncoder
    from molgraph.nn.norm import NORMS, GraphNorm, NodeNorm, make_norm
    from molgraph.nn.readout import READOUTS, Readout

__all__ = [
    "ACTIVATIONS",
    "FFN",
    "READOUTS",
    "BondMessagePassing",
    "GINEEncoder",
    "GINEncoder",
    "BondGCNConv",
    "GCNEncoder",
    "MeanBondConv",
    "PROPAGATIONS",
    "GraphNorm",
    "NORMS",
    "NodeNorm",
    "make_norm",
    "InputEncoder",
    "Readout",
    "get_activation",
    "reverse_edges",
]
