"""GraphCNF (Lippe & Gavves, ICLR 2021): a categorical normalizing flow over molecular graphs.

Encoding direction (data -> latent), for padded graphs ``types`` ``(B, N)``, ``adj`` ``(B, N, N)``:

1. **Nodes.** Atom types -> node latents (:class:`~.encoding.MixtureEncoding`, ``Dn`` = 6), then
   blocks of [ActNorm, 1x1 conv, mixture-CDF coupling] whose conditioner is a relational GCN
   (:class:`RGCN`) on the *typed* graph, with degree and bond-order-sum embeddings.
2. **Bonds.** Bond types of the existing bonds -> bond latents (``De`` = 2); node and bond latents
   go through blocks of node-edge couplings whose conditioner is an edge GNN (:class:`EdgeGNN`)
   on the bonds.
3. **All pairs.** Every other pair of atoms gets a "virtual edge" latent
   (:class:`~.encoding.VirtualEdgeEncoding`); the learned :class:`~.encoding.EdgeDecoder` scores
   bond / no bond from each pair latent; node and all-pair latents go through node-edge couplings
   whose edge GNN runs over every pair.

The log-likelihood of a graph given its size is ``log p(z) + sum(log-det) + encoding terms``
(logistic(0, 1) prior on every node and pair latent); with ``beta = 1`` it is a lower bound on
``log p(graph | N)``. Generation runs the steps backwards: latents from the prior, invert step 3
and take the decoder's argmax (the bonds), invert step 2 on the bonds and decode bond types,
invert step 1 on the typed graph and decode atom types.

Pair latents are packed: one row per unordered pair ``i < j`` of the step (bonds in step 2, all
pairs of real atoms in step 3), so the edge networks cost what the pairs cost. Every network is
permutation equivariant (mean aggregation over neighbours, features symmetric in ``i, j``), so
the log-likelihood does not depend on the order of the atoms.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from molgraph.methods.graphcnf.encoding import EdgeDecoder, MixtureEncoding, VirtualEdgeEncoding, logistic_noise
from molgraph.methods.graphcnf.flows import ActNorm, InvConv1x1, Latents, MixtureCDF, logistic_logpdf

__all__ = ["GraphCNF", "RGCN", "EdgeGNN", "symmetric", "upper_pairs", "per_graph", "MAX_DEGREE", "MAX_VALENCE"]

MAX_DEGREE = 6     # degree embedding: 0..6 (more are clipped)
MAX_VALENCE = 8    # bond-order-sum embedding: 0..8


def symmetric(x: torch.Tensor) -> torch.Tensor:
    """Mirror the strict upper triangle of ``x`` ``(B, N, N, ...)`` onto the lower; diagonal zero."""
    n = x.shape[1]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=x.device), diagonal=1)
    shape = (1, n, n) + (1,) * (x.dim() - 3)
    up = upper.view(shape)
    return torch.where(up, x, torch.zeros((), dtype=x.dtype, device=x.device)) + \
        torch.where(up, x, torch.zeros((), dtype=x.dtype, device=x.device)).transpose(1, 2)


class RGCN(nn.Module):
    """Relational GCN on a typed graph: per-relation linear maps, mean over neighbours, LayerNorm,
    GELU and a highway gate ``h <- (1 - g) h + g v``.

    Args:
        in_dim: node input width; hidden: width; out_dim: output width; layers: message passing
        rounds; relations: bond types.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int, relations: int = 3):
        super().__init__()
        self.R = relations
        self.deg_emb = nn.Embedding(MAX_DEGREE + 1, hidden)
        self.val_emb = nn.Embedding(MAX_VALENCE + 1, hidden)
        self.inp = nn.Linear(in_dim, hidden)
        self.rel = nn.ModuleList([nn.Linear(hidden, relations * hidden, bias=False) for _ in range(layers)])
        self.self_ = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(layers)])
        self.norm = nn.ModuleList([nn.LayerNorm(hidden) for _ in range(layers)])
        self.gate = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(layers)])
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor, adj: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, N, in)``, ``adj`` ``(B, N, N)`` int 0-3, ``node_mask`` ``(B, N)`` -> ``(B, N, out)``."""
        B, N = adj.shape[:2]
        rel = torch.stack([(adj == r + 1) for r in range(self.R)], dim=1).to(x.dtype)  # (B, R, N, N)
        deg = (adj > 0).sum(-1)
        valence = adj.sum(-1)
        inv_deg = 1.0 / deg.clamp_min(1).to(x.dtype)[..., None]
        m = node_mask.to(x.dtype)[..., None]
        h = (self.inp(x) + self.deg_emb(deg.clamp_max(MAX_DEGREE)) + self.val_emb(valence.clamp_max(MAX_VALENCE))) * m
        for rel_lin, self_lin, norm, gate in zip(self.rel, self.self_, self.norm, self.gate):
            hr = rel_lin(h).view(B, N, self.R, -1).transpose(1, 2)         # (B, R, N, H)
            msg = torch.einsum("brij,brjh->bih", rel, hr) * inv_deg
            v = nn.functional.gelu(norm(self_lin(h) + msg))
            g = torch.sigmoid(gate(h))
            h = ((1 - g) * h + g * v) * m
        return self.out(h)


class EdgeGNN(nn.Module):
    """Node and edge features updated in turn over a list of undirected edges.

    Node -> edge: ``e_ij <- LN(e_ij + MLP(q_i + q_j + W e_ij))`` (``q`` a projection of the node
    features; symmetric in ``i, j``). Edge -> node: ``h_i <- LN(h_i + MLP([h_i, P mean_j
    GELU(U h_j + V e_ij)]))`` over the edges of ``i``.

    Args:
        node_in, edge_in: input widths; hidden: node width; edge_hidden: edge width;
        node_out, edge_out: output widths; layers: rounds.
    """

    def __init__(self, node_in: int, edge_in: int, hidden: int, edge_hidden: int, node_out: int, edge_out: int,
                 layers: int):
        super().__init__()
        H, E = hidden, edge_hidden
        self.node_inp = nn.Linear(node_in, H)
        self.edge_inp = nn.Linear(edge_in, E)
        self.q = nn.ModuleList([nn.Linear(H, E) for _ in range(layers)])
        self.w = nn.ModuleList([nn.Linear(E, E, bias=False) for _ in range(layers)])
        self.edge_mlp = nn.ModuleList([nn.Sequential(nn.GELU(), nn.Linear(E, E)) for _ in range(layers)])
        self.u = nn.ModuleList([nn.Linear(H, E) for _ in range(layers)])
        self.v = nn.ModuleList([nn.Linear(E, E, bias=False) for _ in range(layers)])
        self.node_mlp = nn.ModuleList([nn.Sequential(nn.Linear(H + E, H), nn.GELU(), nn.Linear(H, H))
                                       for _ in range(layers)])
        self.node_norm = nn.ModuleList([nn.LayerNorm(H) for _ in range(layers)])
        self.edge_norm = nn.ModuleList([nn.LayerNorm(E) for _ in range(layers)])
        self.node_out = nn.Sequential(nn.Linear(H, H), nn.GELU(), nn.Linear(H, node_out))
        self.edge_out = nn.Sequential(nn.Linear(E, E), nn.GELU(), nn.Linear(E, edge_out))

    def forward(self, x: torch.Tensor, e: torch.Tensor, node_mask: torch.Tensor, edges: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(B, N, node_in)``, ``e`` ``(M, edge_in)``, ``node_mask`` ``(B, N)``, ``edges``
        ``(M, 3)`` ``(graph, i, j)`` -> ``(B, N, node_out)``, ``(M, edge_out)``."""
        B, N = node_mask.shape
        m = node_mask.to(x.dtype)[..., None]
        gi = edges[:, 0] * N + edges[:, 1]
        gj = edges[:, 0] * N + edges[:, 2]
        ones = torch.ones(gi.shape[0], dtype=x.dtype, device=x.device)
        deg = torch.zeros(B * N, dtype=x.dtype, device=x.device).index_add(0, gi, ones).index_add(0, gj, ones)
        inv_deg = (1.0 / deg.clamp_min(1.0))[:, None]
        h = self.node_inp(x) * m
        f = self.edge_inp(e)
        for q, w, edge_mlp, u, v, node_mlp, nn_, en in zip(self.q, self.w, self.edge_mlp, self.u, self.v,
                                                           self.node_mlp, self.node_norm, self.edge_norm):
            qf = q(h).reshape(B * N, -1)
            f = en(f + edge_mlp(qf[gi] + qf[gj] + w(f)))
            uf = u(h).reshape(B * N, -1)
            vf = v(f)
            agg = torch.zeros(B * N, vf.shape[-1], dtype=x.dtype, device=x.device)
            agg = agg.index_add(0, gi, nn.functional.gelu(uf[gj] + vf)).index_add(0, gj, nn.functional.gelu(uf[gi] + vf))
            agg = (agg * inv_deg).reshape(B, N, -1)
            h = nn_(h + node_mlp(torch.cat([h, agg], -1))) * m
        return self.node_out(h), self.edge_out(f)


def per_graph(values: torch.Tensor, graph: torch.Tensor, batch: int) -> torch.Tensor:
    """``(B,)`` sums of per-entry ``values`` ``(M,)`` by their graph index ``graph`` ``(M,)``."""
    return torch.zeros(batch, dtype=values.dtype, device=values.device).index_add(0, graph, values)


def upper_pairs(mask: torch.Tensor) -> torch.Tensor:
    """``(M, 3)`` ``(graph, i, j)`` of the entries ``i < j`` of a ``(B, N, N)`` mask, row-major."""
    return torch.nonzero(torch.triu(mask, diagonal=1))


def _halves(dim: int, parity: int) -> tuple[slice, slice]:
    """``(conditioning, transformed)`` channel slices of a coupling (alternating with ``parity``)."""
    h = dim // 2
    first, second = slice(0, h), slice(h, dim)
    return (first, second) if parity % 2 == 0 else (second, first)


def _put(x: torch.Tensor, sl: slice, value: torch.Tensor) -> torch.Tensor:
    parts = [x[..., : sl.start], value, x[..., sl.stop:]]
    return torch.cat(parts, dim=-1)


class NodeBlock(nn.Module):
    """Step 1 block: ActNorm, 1x1 conv, and a mixture-CDF coupling conditioned by an R-GCN."""

    def __init__(self, dim: int, hidden: int, layers: int, mixtures: int, parity: int):
        super().__init__()
        self.cond, self.trans = _halves(dim, parity)
        t = self.trans.stop - self.trans.start
        self.act = ActNorm(dim)
        self.conv = InvConv1x1(dim)
        self.cdf = MixtureCDF(t, mixtures)
        self.net = RGCN(self.cond.stop - self.cond.start, hidden, t * self.cdf.raw_dim, layers)
        nn.init.zeros_(self.net.out[-1].weight)
        self.cdf.init_bias(self.net.out[-1].bias, t)

    def forward(self, s: Latents, reverse: bool = False) -> tuple[Latents, torch.Tensor]:
        mask, w = s.node_mask, s.node_w
        if not reverse:
            z, l1 = self.act(s.zn, mask, w)
            z, l2 = self.conv(z, mask, w)
            z, l3 = self._couple(z, s, reverse=False)
        else:
            z, l3 = self._couple(s.zn, s, reverse=True)
            z, l2 = self.conv(z, mask, w, reverse=True)
            z, l1 = self.act(z, mask, w, reverse=True)
        return s.with_(zn=z), (l1 + l2 + l3).sum(1)

    def reg(self, batch: int, graph: torch.Tensor) -> torch.Tensor:
        """``(B,)`` the CDF penalty of the last forward pass."""
        return self.cdf.reg.sum(1)

    def _couple(self, z: torch.Tensor, s: Latents, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.net(z[..., self.cond].float(), s.adj, s.node_mask)
        raw = raw.view(*raw.shape[:-1], -1, self.cdf.raw_dim)
        y, ldj = self.cdf(z[..., self.trans], raw, s.node_w, reverse=reverse)
        y = torch.where(s.node_mask[..., None], y, z[..., self.trans])
        return _put(z, self.trans, y), ldj


class NodeEdgeBlock(nn.Module):
    """Step 2/3 block: ActNorm and 1x1 conv on nodes and pairs, then one coupling transforming half
    of the node channels and half of the pair channels given the other halves (an edge GNN over
    the step's pairs)."""

    def __init__(self, node_dim: int, edge_dim: int, hidden: int, edge_hidden: int, layers: int,
                 node_mixtures: int, edge_mixtures: int, parity: int):
        super().__init__()
        self.ncond, self.ntrans = _halves(node_dim, parity)
        self.econd, self.etrans = _halves(edge_dim, parity)
        nt = self.ntrans.stop - self.ntrans.start
        et = self.etrans.stop - self.etrans.start
        self.act_n, self.act_e = ActNorm(node_dim), ActNorm(edge_dim)
        self.conv_n, self.conv_e = InvConv1x1(node_dim), InvConv1x1(edge_dim)
        self.cdf_n, self.cdf_e = MixtureCDF(nt, node_mixtures), MixtureCDF(et, edge_mixtures)
        self.net = EdgeGNN(self.ncond.stop - self.ncond.start, self.econd.stop - self.econd.start, hidden, edge_hidden,
                           nt * self.cdf_n.raw_dim, et * self.cdf_e.raw_dim, layers)
        nn.init.zeros_(self.net.node_out[-1].weight)
        nn.init.zeros_(self.net.edge_out[-1].weight)
        self.cdf_n.init_bias(self.net.node_out[-1].bias, nt)
        self.cdf_e.init_bias(self.net.edge_out[-1].bias, et)

    def forward(self, s: Latents, reverse: bool = False) -> tuple[Latents, torch.Tensor]:
        nm, nw = s.node_mask, s.node_w
        em = torch.ones(s.ze.shape[0], dtype=torch.bool, device=s.ze.device)
        ew = em.to(s.ze.dtype)
        B = nm.shape[0]
        g = s.edges[:, 0]
        if not reverse:
            zn, a1 = self.act_n(s.zn, nm, nw)
            ze, a2 = self.act_e(s.ze, em, ew)
            zn, b1 = self.conv_n(zn, nm, nw)
            ze, b2 = self.conv_e(ze, em, ew)
            zn, ze, cn, ce = self._couple(zn, ze, s, reverse=False)
        else:
            zn, ze, cn, ce = self._couple(s.zn, s.ze, s, reverse=True)
            zn, b1 = self.conv_n(zn, nm, nw, reverse=True)
            ze, b2 = self.conv_e(ze, em, ew, reverse=True)
            zn, a1 = self.act_n(zn, nm, nw, reverse=True)
            ze, a2 = self.act_e(ze, em, ew, reverse=True)
        ldj = (a1 + b1 + cn).sum(1) + per_graph(a2 + b2 + ce, g, B)
        return s.with_(zn=zn, ze=ze), ldj

    def _couple(self, zn: torch.Tensor, ze: torch.Tensor, s: Latents, reverse: bool
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rn, re = self.net(zn[..., self.ncond].float(), ze[..., self.econd].float(), s.node_mask, s.edges)
        rn = rn.view(*rn.shape[:-1], self.ntrans.stop - self.ntrans.start, self.cdf_n.raw_dim)
        re = re.view(re.shape[0], self.etrans.stop - self.etrans.start, self.cdf_e.raw_dim)
        ew = torch.ones(ze.shape[0], dtype=ze.dtype, device=ze.device)
        yn, ln = self.cdf_n(zn[..., self.ntrans], rn, s.node_w, reverse=reverse)
        ye, le = self.cdf_e(ze[..., self.etrans], re, ew, reverse=reverse)
        yn = torch.where(s.node_mask[..., None], yn, zn[..., self.ntrans])
        return _put(zn, self.ntrans, yn), _put(ze, self.etrans, ye), ln, le

    def reg(self, batch: int, graph: torch.Tensor) -> torch.Tensor:
        """``(B,)`` the CDF penalty of the last forward pass."""
        return self.cdf_n.reg.sum(1) + per_graph(self.cdf_e.reg, graph, batch)


class GraphCNF(nn.Module):
    """The three-step categorical normalizing flow over molecular graphs (see the module doc).

    Args:
        num_atom_types: size of the atom vocabulary.
        atom_freq: ``(num_atom_types,)`` atom-type frequencies (the encoder's prior).
        bond_freq: ``(3,)`` frequencies of single / double / triple among bonds.
        bond_share: share of bonded pairs among all pairs (the edge decoder's initial bias).
        node_dim, edge_dim: latent widths (paper: 6 and 2).
        hidden, edge_hidden: network widths (nodes, pairs).
        gnn_layers: message-passing rounds of every conditioner.
        node_flows, bond_flows, pair_flows: blocks of steps 1, 2, 3.
        node_mixtures, edge_mixtures: logistic components of the couplings (paper: 16 and 8).
        encoder_separation: bound on the atom and bond encoders' scales, the least L1 distance to
            another category's mean in units of a scale (see
            :class:`~.encoding.MixtureEncoding`); ``None``: free scales, as in the paper.
    """

    def __init__(self, num_atom_types: int, atom_freq: Any, bond_freq: Any, bond_share: float, *,
                 node_dim: int = 6, edge_dim: int = 2, hidden: int = 64, edge_hidden: int = 32, gnn_layers: int = 2,
                 node_flows: int = 2, bond_flows: int = 3, pair_flows: int = 3, node_mixtures: int = 16,
                 edge_mixtures: int = 8, encoder_separation: float | None = None):
        super().__init__()
        self.config = dict(num_atom_types=int(num_atom_types), atom_freq=[float(v) for v in np.asarray(atom_freq)],
                           bond_freq=[float(v) for v in np.asarray(bond_freq)], bond_share=float(bond_share),
                           node_dim=node_dim, edge_dim=edge_dim, hidden=hidden, edge_hidden=edge_hidden,
                           gnn_layers=gnn_layers, node_flows=node_flows, bond_flows=bond_flows,
                           pair_flows=pair_flows, node_mixtures=node_mixtures, edge_mixtures=edge_mixtures,
                           encoder_separation=None if encoder_separation is None else float(encoder_separation))
        if node_dim < 2 or edge_dim < 2:
            raise ValueError(f"node_dim and edge_dim must be >= 2 (a coupling splits the channels), got "
                             f"{node_dim} and {edge_dim}")
        self.node_dim, self.edge_dim = node_dim, edge_dim
        self.atom_enc = MixtureEncoding(num_atom_types, node_dim, atom_freq, encoder_separation)
        self.bond_enc = MixtureEncoding(3, edge_dim, bond_freq, encoder_separation)
        self.virtual_enc = VirtualEdgeEncoding(edge_dim)
        self.edge_dec = EdgeDecoder(edge_dim, edge_hidden, bond_share)
        self.step1 = nn.ModuleList([NodeBlock(node_dim, hidden, gnn_layers, node_mixtures, k) for k in range(node_flows)])
        self.step2 = nn.ModuleList([NodeEdgeBlock(node_dim, edge_dim, hidden, edge_hidden, gnn_layers, node_mixtures,
                                                  edge_mixtures, k) for k in range(bond_flows)])
        self.step3 = nn.ModuleList([NodeEdgeBlock(node_dim, edge_dim, hidden, edge_hidden, gnn_layers, node_mixtures,
                                                  edge_mixtures, k) for k in range(pair_flows)])

    # -- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def masks(node_mask: torch.Tensor) -> torch.Tensor:
        """``(B, N, N)`` symmetric mask of all pairs ``i != j`` of real atoms."""
        n = node_mask.shape[1]
        off = ~torch.eye(n, dtype=torch.bool, device=node_mask.device)
        return node_mask[:, :, None] & node_mask[:, None, :] & off

    def noise(self, node_mask: torch.Tensor, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder noise: ``(B, N, Dn)`` and symmetric ``(B, N, N, De)`` logistic samples."""
        B, N = node_mask.shape
        en = logistic_noise((B, N, self.node_dim), generator)
        ee = symmetric(logistic_noise((B, N, N, self.edge_dim), generator))
        return en.to(node_mask.device), ee.to(node_mask.device)

    # -- encoding direction ----------------------------------------------------------------------------
    def encode(self, types: torch.Tensor, adj: torch.Tensor, node_mask: torch.Tensor, *, beta: float = 1.0,
               noise: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Latents and log-likelihood terms of a batch of graphs.

        Args:
            types: ``(B, N)`` atom types; adj: ``(B, N, N)`` bond orders 0-3 (symmetric);
            node_mask: ``(B, N)`` real atoms; beta: weight of the decoders' log-likelihoods;
            noise: encoder noise (see :meth:`noise`); drawn from torch's RNG when ``None``.

        Returns:
            dict with ``zn`` ``(B, N, Dn)``, ``ze`` ``(M, De)`` (final latents of the pairs
            ``upper_pairs(masks(node_mask))``), ``ll`` ``(B,)`` the log-likelihood bound in nats,
            ``reg`` ``(B,)`` the CDF penalty, the parts ``prior``, ``ldj``, ``enc_atoms``,
            ``enc_bonds``, ``enc_virtual``, ``dec_edges``, and the encoders' own samples before
            any flow: ``zn_enc`` ``(B, N, Dn)`` atoms, ``zb_enc`` ``(bonds, De)`` bond types (the
            bonded pairs of ``upper_pairs`` in order), ``zp_enc`` ``(M, De)`` the step-3 input
            of every pair (what the edge decoder scores in training).
        """
        B = types.shape[0]
        types = torch.where(node_mask, types, torch.zeros_like(types))
        eps_n, eps_e = self.noise(node_mask) if noise is None else noise
        eps_e = symmetric(eps_e)
        pairs = upper_pairs(self.masks(node_mask))                      # (M, 3)
        g = pairs[:, 0]
        pair_type = adj[g, pairs[:, 1], pairs[:, 2]]
        is_bond = pair_type > 0
        eps_p = eps_e[g, pairs[:, 1], pairs[:, 2]]
        nw = node_mask.to(eps_n.dtype)
        zn, enc_atoms = self.atom_enc.encode(types, eps_n, nw, beta)
        zn_enc = zn
        zn, enc_atoms = zn.double(), enc_atoms.double().sum(1)   # latents travel in float64 (see flows)
        s = Latents(zn=zn, node_mask=node_mask, adj=torch.where(self.masks(node_mask), adj, torch.zeros_like(adj)))
        ldj = torch.zeros(B, dtype=zn.dtype, device=zn.device)
        reg = torch.zeros(B, dtype=zn.dtype, device=zn.device)
        for block in self.step1:
            s, l = block(s)
            ldj = ldj + l
            reg = reg + block.reg(B, g)
        bonds = pairs[is_bond]
        zb, enc_b = self.bond_enc.encode(pair_type[is_bond] - 1, eps_p[is_bond],
                                         torch.ones(bonds.shape[0], dtype=zn.dtype, device=zn.device), beta)
        zb_enc = zb
        zb, enc_bonds = zb.double(), per_graph(enc_b.double(), bonds[:, 0], B)
        s = Latents(zn=s.zn, node_mask=node_mask, ze=zb, edges=bonds)
        for block in self.step2:
            s, l = block(s)
            ldj = ldj + l
            reg = reg + block.reg(B, bonds[:, 0])
        zv, enc_v = self.virtual_enc.encode(eps_p[~is_bond], torch.ones(int((~is_bond).sum()), dtype=zn.dtype,
                                                                         device=zn.device))
        zv, enc_virtual = zv.double(), per_graph(enc_v.double(), g[~is_bond], B)
        zp = torch.zeros_like(eps_p, dtype=torch.float64)
        zp = zp.index_put((is_bond.nonzero()[:, 0],), s.ze).index_put(((~is_bond).nonzero()[:, 0],), zv)
        dec = self.edge_dec(zp.float()).gather(-1, is_bond.long()[:, None])[:, 0].double()
        dec_edges = beta * per_graph(dec, g, B)
        s = Latents(zn=s.zn, node_mask=node_mask, ze=zp, edges=pairs)
        for block in self.step3:
            s, l = block(s)
            ldj = ldj + l
            reg = reg + block.reg(B, g)
        prior = (logistic_logpdf(s.zn).sum(-1) * nw).sum(1) + per_graph(logistic_logpdf(s.ze).sum(-1), g, B)
        ll = prior + ldj + enc_atoms + enc_bonds + enc_virtual + dec_edges
        return {"zn": s.zn, "ze": s.ze, "ll": ll, "reg": reg, "prior": prior, "ldj": ldj, "enc_atoms": enc_atoms,
                "enc_bonds": enc_bonds, "enc_virtual": enc_virtual, "dec_edges": dec_edges,
                "zn_enc": zn_enc, "zb_enc": zb_enc, "zp_enc": zp}

    def forward(self, batch: dict[str, torch.Tensor], beta: float = 1.0) -> dict[str, torch.Tensor]:
        return self.encode(batch["types"], batch["adj"], batch["mask"], beta=beta)

    # -- decoding direction ----------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, zn: torch.Tensor, ze: torch.Tensor, node_mask: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Invert the three steps from final latents ``zn`` ``(B, N, Dn)`` and ``ze`` ``(M, De)`` (the
        pairs ``upper_pairs(masks(node_mask))``); returns ``types`` ``(B, N)`` (0 on padding) and
        ``adj`` ``(B, N, N)`` (symmetric, 0-3)."""
        B, N = node_mask.shape
        pairs = upper_pairs(self.masks(node_mask))
        s = Latents(zn=zn.double(), node_mask=node_mask, ze=ze.double(), edges=pairs)
        for block in reversed(self.step3):
            s, _ = block(s, reverse=True)
        is_bond = self.edge_dec(s.ze.float()).argmax(-1) == 1
        bonds = pairs[is_bond]
        s = Latents(zn=s.zn, node_mask=node_mask, ze=s.ze[is_bond], edges=bonds)
        for block in reversed(self.step2):
            s, _ = block(s, reverse=True)
        bond_type = self.bond_enc.decode(s.ze.float()) + 1
        adj = torch.zeros(B, N, N, dtype=torch.long, device=zn.device)
        adj[bonds[:, 0], bonds[:, 1], bonds[:, 2]] = bond_type
        adj[bonds[:, 0], bonds[:, 2], bonds[:, 1]] = bond_type
        s = Latents(zn=s.zn, node_mask=node_mask, adj=adj)
        for block in reversed(self.step1):
            s, _ = block(s, reverse=True)
        types = torch.where(node_mask, self.atom_enc.decode(s.zn.float()),
                            torch.zeros_like(node_mask, dtype=torch.long))
        return types, adj

    @torch.no_grad()
    def sample(self, lengths: torch.Tensor, *, generator: torch.Generator | None = None, temperature: float = 1.0
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Graphs with the given numbers of atoms ``(B,)``: ``types`` ``(B, N)``, ``adj`` ``(B, N, N)``
        with ``N = max(lengths)``. Latents are drawn from the prior (scaled by ``temperature``)
        with ``generator``."""
        n = int(lengths.max())
        node_mask = torch.arange(n)[None, :] < lengths[:, None]
        zn, ze = self.noise(node_mask, generator)
        pairs = upper_pairs(self.masks(node_mask))
        return self.decode(zn * temperature, ze[pairs[:, 0], pairs[:, 1], pairs[:, 2]] * temperature, node_mask)

    def bits_per_node(self, ll: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
        """``(B,)`` negative log-likelihood in bits per atom."""
        return -ll / (node_mask.sum(1).to(ll.dtype) * math.log(2.0))
