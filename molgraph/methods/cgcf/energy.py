"""The energy network E(R, G) of the tilt, and its noise-contrastive training against the frozen flow.

E is a SchNet-style invariant network: atom embeddings; ``layers`` continuous-filter
interaction blocks over all atom pairs of a molecule, the filter an MLP of Gaussian radial
features of the distance (0-8 angstrom) gated by an embedding of the pair's topological distance
(1-4 bonds, 5 = farther), so E sees the graph as well as the geometry; a per-atom readout summed
per molecule.

Noise-contrastive estimation (paper section 3.3): the tilted model is p(R) ~ p_flow(R) exp(-E(R)),
the noise distribution is the frozen flow, so the log-ratio of model to noise is -E(R) and NCE
is logistic regression of data (DFT geometries, label 1) against flow samples (label 0) with logit
-E. Held-out accuracy above 0.5 says E has learned something the flow misses.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from molgraph.methods.cgcf.graph import GraphBatch

__all__ = ["EnergyNet", "nce_loss", "nce_accuracy"]


class EnergyNet(nn.Module):
    """E(R, G): (B,) energies (dimensionless, a log-density tilt) from positions (N, 3) in angstrom."""

    def __init__(self, hidden: int = 64, layers: int = 3, n_rbf: int = 32, cutoff: float = 8.0) -> None:
        super().__init__()
        self.emb = nn.Embedding(100, hidden)
        self.topo_emb = nn.Embedding(6, hidden)
        self.register_buffer("centers", torch.linspace(0.0, cutoff, n_rbf))
        self.gamma = (n_rbf / cutoff) ** 2 / 2.0
        self.filters = nn.ModuleList(nn.Sequential(nn.Linear(n_rbf, hidden), nn.Softplus(), nn.Linear(hidden, hidden))
                                     for _ in range(layers))
        self.updates = nn.ModuleList(nn.Sequential(nn.Linear(hidden, hidden), nn.Softplus(), nn.Linear(hidden, hidden))
                                     for _ in range(layers))
        self.out = nn.Sequential(nn.Linear(hidden, hidden // 2), nn.Softplus(), nn.Linear(hidden // 2, 1))

    def forward(self, pos: torch.Tensor, g: GraphBatch) -> torch.Tensor:
        i, j = g.pair_index
        diff = pos[i] - pos[j]
        dist = torch.sqrt((diff * diff).sum(-1) + 1e-12)
        rbf = torch.exp(-self.gamma * (dist.unsqueeze(-1) - self.centers) ** 2)
        gate = self.topo_emb(g.pair_topo)
        h = self.emb(g.z)
        for filt, upd in zip(self.filters, self.updates):
            msg = h[j] * filt(rbf) * gate
            h = h + upd(torch.zeros_like(h).index_add(0, i, msg))
        atom_e = self.out(h).squeeze(-1)
        return torch.zeros(g.n_graphs, dtype=pos.dtype, device=pos.device).index_add(0, g.node_batch, atom_e)


def nce_loss(e_data: torch.Tensor, e_noise: torch.Tensor) -> torch.Tensor:
    """Logistic loss with logit -E: data should get low energy, flow samples high."""
    return F.softplus(e_data).mean() + F.softplus(-e_noise).mean()


def nce_accuracy(e_data: torch.Tensor, e_noise: torch.Tensor) -> float:
    """Fraction classified right (data: -E > 0, noise: -E < 0) over both classes together."""
    right = (e_data < 0).sum() + (e_noise > 0).sum()
    return float(right) / float(len(e_data) + len(e_noise))
