"""A graph transformer over the atoms of each molecule: Pre-LN blocks, untied positional attention.

Papers:

* Xiong et al., "On Layer Normalization in the Transformer Architecture", ICML 2020: with the
  norm inside the residual branch (Pre-LN, ``h + F(LN(h))``, plus a final LN) the gradients at
  initialization are well-scaled across layers and training needs no learning-rate warm-up;
  Post-LN (``LN(h + F(h))``, the original transformer) is kept as an option.
* Ke, He, Liu, "Rethinking Positional Encoding in Language Pre-training" (TUPE), ICLR 2021: the
  attention logit is a content term plus a *separately projected* position term,
  ``(x_i W_q)(x_j W_k)^T / sqrt(2d) + (p_i U_q)(p_j U_k)^T / sqrt(2d)``, instead of adding
  positions to the input; the [CLS] token is *untied* from positions: its positional logits are
  learned scalars rather than products of a position vector.

For graphs the "positions" are structural encodings (:mod:`molgraph.nn.positional`) computed per
batch inside the encoder, and relative structure enters as attention biases (Graphormer's
shortest-path-distance bias, Ying et al. NeurIPS 2021; bond features as a bias on bonded pairs).

Per layer ``l`` and head ``h`` the logit between tokens ``i`` and ``j`` of one graph is::

    a_ij = c * q_i . k_j                                  content (c = 1/sqrt(2 d_h) with tupe, else 1/sqrt(d_h))
         + c * (p_i U_q^h) . (p_j U_k^h)                  tupe only: position . position
         + b_spd^h[spd(i, j)]                             tupe (default) only: hop-distance bias
         + w^h . e_ij + b^h    if i, j bonded            bond bias (every mode, unless disabled)

Token 0 of each graph is a learned graph token with no position: under ``tupe`` its row and
column of the position terms are replaced by learned per-head scalars ``theta_out^h`` (the
token attending to atoms, and to itself) and ``theta_in^h`` (atoms attending to the token); it
gets no SPD or bond bias. Its final state is :attr:`GraphTransformerEncoder.graph_state`.
Padding (graphs of different size in one batch) is masked out of every key.

Positional encodings (``pe_kind``):

* ``"rw"`` (default): random-walk landing probabilities, exactly permutation-equivariant and
  free of sign ambiguity.
* ``"lap"``: Laplacian eigenvectors, whose signs are arbitrary. ``lap_sign="flip"``: multiplied
  by independent random signs per graph and eigenvector while training (Dwivedi & Bresson 2021),
  used as they come from ``eigh`` in eval: the model is *not* invariant to the sign (eval output
  depends on eigh's choice). ``lap_sign="invariant"``: each eigenvector entry ``v`` is encoded as
  ``phi(v) + phi(-v)`` (a small per-entry MLP ``phi``; the sign-invariant part of SignNet, Lim et
  al. 2023): then the output is exactly invariant to each eigenvector's sign, in training and
  eval. Neither handles the rotation freedom of repeated eigenvalues (symmetric molecules such as
  benzene have them): the ``lap`` path is permutation-equivariant only for graphs whose used
  eigenvalues are simple.

``pe="add"`` adds a linear embedding of the encoding to the atom inputs (standard absolute
positions) and uses no SPD bias; ``pe="none"`` uses no encoding (and no SPD bias).

Using the graph token as the readout: after ``h = encoder(x, edge_index, edge_attr, batch, B)``,
``encoder.graph_state`` holds the ``(B, hidden_dim)`` token states of that call (also returned by
:meth:`GraphTransformerEncoder.encode`); a model reads it in place of pooling ``h``, e.g.
``g = encoder.graph_state if readout == "token" else Readout(...)(h, batch, B)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molgraph.nn.ffn import get_activation
from molgraph.nn.positional import UNREACHABLE, dense_adjacency, laplacian_pe, random_walk_pe, shortest_path_distances

__all__ = ["GraphTransformerEncoder", "GraphTransformerBlock", "build_graph_transformer", "build_graph_transformer_defaults", "PE_MODES", "PE_KINDS", "LAP_SIGNS"]

PE_MODES = ("tupe", "add", "none")
PE_KINDS = ("rw", "lap")
LAP_SIGNS = ("flip", "invariant")


def _xavier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            m.reset_parameters()


class GraphTransformerBlock(nn.Module):
    """One transformer block on padded token states ``(B, T, d)``.

    ``norm_first=True`` (Pre-LN): ``h = h + drop(attn(LN1(h)))``, ``h = h + drop(ffn(LN2(h)))``;
    ``False`` (Post-LN): ``h = LN1(h + drop(attn(h)))``, ``h = LN2(h + drop(ffn(h)))``.

    Args:
        hidden_dim: ``d``; heads: divides ``d``; dropout: on both residual branches;
        attn_dropout: on the attention weights; activation: the FFN's; ffn_mult: FFN width
        ``ffn_mult * d``; norm_first: Pre-LN; tupe: add the position . position term with this
        block's ``U_q``/``U_k`` and untied token scalars; bond_dim: raw bond feature width for the
        bond bias (0: none).
    """

    def __init__(
        self,
        hidden_dim: int,
        heads: int,
        dropout: float,
        attn_dropout: float,
        activation: str,
        ffn_mult: int,
        norm_first: bool,
        tupe: bool,
        bond_dim: int,
    ):
        super().__init__()
        self.heads, self.head_dim = heads, hidden_dim // heads
        self.norm_first, self.tupe = norm_first, tupe
        self.attn_dropout = attn_dropout
        self.qkv = nn.Linear(hidden_dim, 3 * hidden_dim)
        self.out = nn.Linear(hidden_dim, hidden_dim)
        self.ffn = nn.Sequential(
            nn.Linear(hidden_dim, ffn_mult * hidden_dim), get_activation(activation),
            nn.Dropout(dropout), nn.Linear(ffn_mult * hidden_dim, hidden_dim),
        )
        self.norm1, self.norm2 = nn.LayerNorm(hidden_dim), nn.LayerNorm(hidden_dim)
        self.drop = nn.Dropout(dropout)
        self.bond = nn.Linear(bond_dim, heads) if bond_dim > 0 else None
        if tupe:
            self.pos_q = nn.Linear(hidden_dim, hidden_dim, bias=False)
            self.pos_k = nn.Linear(hidden_dim, hidden_dim, bias=False)
            self.theta_out = nn.Parameter(torch.zeros(heads))  # token (query) -> anything
            self.theta_in = nn.Parameter(torch.zeros(heads))  # atom (query) -> token
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _xavier(self)
        if self.tupe:
            nn.init.zeros_(self.theta_out)
            nn.init.zeros_(self.theta_in)

    def _split(self, t: Tensor) -> Tensor:  # (B, T, d) -> (B, H, T, d_h)
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def position_logits(self, pos: Tensor) -> Tensor:
        """TUPE's position . position term, token row/column untied: ``(B, H, T, T)``.

        Args:
            pos: ``(B, T - 1, d)`` atom position embeddings (the graph token has none).
        """
        scale = 1.0 / math.sqrt(2 * self.head_dim)
        pq, pk = self._split(self.pos_q(pos)), self._split(self.pos_k(pos))
        atoms = torch.matmul(pq, pk.transpose(-1, -2)) * scale  # (B, H, L, L)
        b, h, n, _ = atoms.shape
        out = atoms.new_empty(b, h, n + 1, n + 1)
        out[:, :, 1:, 1:] = atoms
        out[:, :, 0, :] = self.theta_out.view(1, h, 1)
        out[:, :, 1:, 0] = self.theta_in.view(1, h, 1)
        return out

    def attention(self, h: Tensor, bias: Tensor) -> Tensor:
        """Multi-head attention of ``h`` ``(B, T, d)`` with additive logits ``bias`` ``(B, H, T, T)``."""
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        scale = 1.0 / math.sqrt((2 if self.tupe else 1) * self.head_dim)
        out = F.scaled_dot_product_attention(
            self._split(q), self._split(k), self._split(v), attn_mask=bias,
            dropout_p=self.attn_dropout if self.training else 0.0, scale=scale,
        )
        b, _, n, _ = out.shape
        return self.out(out.transpose(1, 2).reshape(b, n, -1))

    def forward(self, h: Tensor, bias: Tensor) -> Tensor:
        """``h`` ``(B, T, d)``, ``bias`` ``(B, H, T, T)`` (every additive logit, -inf on padded keys)."""
        if self.norm_first:
            h = h + self.drop(self.attention(self.norm1(h), bias))
            return h + self.drop(self.ffn(self.norm2(h)))
        h = self.norm1(h + self.drop(self.attention(h, bias)))
        return self.norm2(h + self.drop(self.ffn(h)))


class GraphTransformerEncoder(nn.Module):
    """Graph transformer: atom and bond features -> ``(N, hidden_dim)`` atom states (+ a graph token).

    See the module docstring for the attention logit, the positional encodings and what is and
    is not invariant.

    Args:
        atom_in: atom feature columns (float; index-encoded features must be embedded first).
        bond_in: bond feature columns (float), used by the bond bias.
        hidden_dim: width ``d``; depth: number of blocks; dropout: residual, FFN and (unless
            ``attn_dropout`` is given) attention dropout; activation: the FFN's activation.
        heads: attention heads (must divide ``hidden_dim``).
        norm_first: Pre-LN (default; a final LayerNorm follows the last block) or Post-LN.
        pe: ``"tupe"`` (untied position attention + SPD bias), ``"add"`` (encoding added to the
            inputs) or ``"none"``.
        pe_kind: ``"rw"`` (random-walk) or ``"lap"`` (Laplacian eigenvectors).
        pe_dim: number of random-walk steps or eigenvectors.
        lap_sign: ``"flip"`` (random sign flips while training) or ``"invariant"``
            (``phi(v) + phi(-v)``); only for ``pe_kind="lap"``.
        spd_bias: learned per-head bias by hop distance; ``None``: on exactly for ``pe="tupe"``.
        max_spd: distances above it share one bucket (unreachable pairs have their own).
        bond_bias: per-layer linear map of the bond features to a per-head bias on bonded pairs.
        ffn_mult: FFN width as a multiple of ``hidden_dim``.
        attn_dropout: dropout on attention weights (``None``: ``dropout``).
    """

    def __init__(
        self,
        atom_in: int,
        bond_in: int,
        hidden_dim: int = 128,
        depth: int = 4,
        dropout: float = 0.0,
        activation: str = "relu",
        *,
        heads: int = 4,
        norm_first: bool = True,
        pe: str = "tupe",
        pe_kind: str = "rw",
        pe_dim: int = 16,
        lap_sign: str = "flip",
        spd_bias: bool | None = None,
        max_spd: int = 8,
        bond_bias: bool = True,
        ffn_mult: int = 2,
        attn_dropout: float | None = None,
    ):
        super().__init__()
        if pe not in PE_MODES:
            raise ValueError(f"pe must be one of {PE_MODES}, got {pe!r}")
        if pe_kind not in PE_KINDS:
            raise ValueError(f"pe_kind must be one of {PE_KINDS}, got {pe_kind!r}")
        if lap_sign not in LAP_SIGNS:
            raise ValueError(f"lap_sign must be one of {LAP_SIGNS}, got {lap_sign!r}")
        if hidden_dim < 1 or heads < 1 or hidden_dim % heads:
            raise ValueError(f"heads ({heads}) must divide hidden_dim ({hidden_dim})")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if pe_dim < 1 or max_spd < 1 or ffn_mult < 1:
            raise ValueError(f"pe_dim, max_spd and ffn_mult must be >= 1, got {pe_dim}, {max_spd}, {ffn_mult}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.hidden_dim, self.heads = hidden_dim, heads
        self.norm_first, self.pe, self.pe_kind, self.pe_dim, self.lap_sign = norm_first, pe, pe_kind, pe_dim, lap_sign
        self.use_spd = (pe == "tupe") if spd_bias is None else bool(spd_bias)
        self.max_spd = max_spd
        self.atom_lin = nn.Linear(atom_in, hidden_dim)
        self.graph_token = nn.Parameter(torch.zeros(hidden_dim))
        if pe != "none":
            if pe_kind == "lap" and lap_sign == "invariant":
                width = 8  # per-entry embedding of one eigenvector value
                self.sign_phi = nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, width))
                self.pe_lin = nn.Linear(pe_dim * width, hidden_dim)
            else:
                self.sign_phi = None
                self.pe_lin = nn.Linear(pe_dim, hidden_dim)
            self.pe_norm = nn.LayerNorm(hidden_dim) if pe == "tupe" else None
        # buckets: 0..max_spd, "farther", "unreachable"
        self.spd_table = nn.Embedding(max_spd + 2 + 1, heads) if self.use_spd else None
        self.blocks = nn.ModuleList(
            GraphTransformerBlock(
                hidden_dim, heads, dropout, dropout if attn_dropout is None else attn_dropout, activation,
                ffn_mult, norm_first, pe == "tupe", bond_in if bond_bias else 0,
            )
            for _ in range(depth)
        )
        self.final_norm = nn.LayerNorm(hidden_dim) if norm_first else None
        self.graph_state: Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform linear weights, zero biases, zero SPD table and TUPE token scalars."""
        _xavier(self)
        nn.init.normal_(self.graph_token, std=0.02)
        if self.spd_table is not None:
            nn.init.zeros_(self.spd_table.weight)
        for block in self.blocks:
            block.reset_parameters()

    # ------------------------------------------------------------------------------------------
    # structure

    def structure(self, edge_index: Tensor, batch: Tensor, batch_size: int) -> dict[str, Tensor]:
        """Dense structure of a batch: ``adj`` ``(B, L, L)``, ``mask`` ``(B, L)``, ``pos`` ``(N,)``,
        ``spd`` ``(B, L, L)`` (when the SPD bias is used) and ``pe`` ``(B, L, pe_dim)`` (raw
        encoding, before any sign flip; when ``pe != "none"``)."""
        adj, mask, pos = dense_adjacency(edge_index, batch, batch_size)
        out = {"adj": adj, "mask": mask, "pos": pos}
        if self.use_spd:
            out["spd"] = shortest_path_distances(adj, mask)
        if self.pe != "none":
            if self.pe_kind == "rw":
                out["pe"] = random_walk_pe(adj, mask, self.pe_dim)
            else:
                out["pe"] = laplacian_pe(adj, mask, self.pe_dim)[0]
        return out

    def _embed_pe(self, pe: Tensor) -> Tensor:
        if self.pe_kind == "lap" and self.lap_sign == "flip" and self.training:
            signs = torch.randint(0, 2, (pe.shape[0], 1, pe.shape[2]), device=pe.device) * 2 - 1
            pe = pe * signs
        if self.sign_phi is not None:
            v = pe.unsqueeze(-1)  # (B, L, K, 1)
            feats = self.sign_phi(v) + self.sign_phi(-v)  # even in v: the sign cannot matter
            pe = feats.flatten(2)
        return self.pe_lin(pe)

    def _bias(self, st: dict[str, Tensor], dtype: torch.dtype) -> Tensor:
        """Logit biases shared by every layer: SPD bias and padding mask, ``(B, H, T, T)``."""
        mask = st["mask"]
        b, n = mask.shape
        bias = torch.zeros(b, self.heads, n + 1, n + 1, dtype=dtype, device=mask.device)
        if self.spd_table is not None:
            spd = st["spd"]
            bucket = spd.clamp(max=self.max_spd + 1)
            bucket = torch.where(spd == UNREACHABLE, torch.full_like(spd, self.max_spd + 2), bucket)
            bias[:, :, 1:, 1:] = self.spd_table(bucket).permute(0, 3, 1, 2)
        keys = torch.cat((torch.ones(b, 1, dtype=torch.bool, device=mask.device), mask), 1)
        return bias.masked_fill(~keys[:, None, None, :], float("-inf"))

    # ------------------------------------------------------------------------------------------

    def encode(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor,
        batch: Tensor,
        batch_size: int,
        pe: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Atom states ``(N, hidden_dim)`` and graph-token states ``(B, hidden_dim)``.

        Args:
            x: ``(N, atom_in)`` float atom features; edge_index: ``(2, E)``; edge_attr:
                ``(E, bond_in)`` float bond features; batch: ``(N,)`` sorted graph index;
                batch_size: ``B``.
            pe: optional ``(B, L, pe_dim)`` encoding to use instead of the computed one (tests
                and analyses, e.g. with eigenvector signs flipped).
        """
        if not x.is_floating_point() or not edge_attr.is_floating_point():
            raise TypeError("GraphTransformerEncoder takes float atom and bond features; embed index-encoded ones first")
        st = self.structure(edge_index, batch, batch_size)
        mask, pos = st["mask"], st["pos"]
        b, n = mask.shape
        atoms = x.new_zeros(b, n, self.hidden_dim)
        atoms[batch, pos] = self.atom_lin(x)
        pos_emb = None
        if self.pe != "none":
            raw = st["pe"] if pe is None else pe
            if tuple(raw.shape) != (b, n, self.pe_dim):
                raise ValueError(f"pe must have shape (B, L, pe_dim) = {(b, n, self.pe_dim)}, got {tuple(raw.shape)}")
            emb = self._embed_pe(raw.to(x.dtype)) * mask[..., None]
            if self.pe == "add":
                atoms = atoms + emb
            else:
                pos_emb = self.pe_norm(emb)
        h = torch.cat((self.graph_token.expand(b, 1, -1), atoms), 1)  # (B, T = L + 1, d)
        shared = self._bias(st, h.dtype)
        src, dst = edge_index
        for block in self.blocks:
            bias = shared
            if pos_emb is not None:
                bias = bias + block.position_logits(pos_emb)
            if block.bond is not None and edge_index.numel():
                # accumulate: parallel edges of a multigraph add up
                pair = h.new_zeros(b, n + 1, n + 1, self.heads).index_put(
                    (batch[src], pos[src] + 1, pos[dst] + 1), block.bond(edge_attr).to(h.dtype), accumulate=True,
                )
                bias = bias + pair.permute(0, 3, 1, 2)
            h = block(h, bias)
        if self.final_norm is not None:
            h = self.final_norm(h)
        return h[:, 1:][mask], h[:, 0]

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, batch_size: int) -> Tensor:
        """``(N, hidden_dim)`` atom states; the graph token's ``(B, hidden_dim)`` goes to :attr:`graph_state`."""
        nodes, graph = self.encode(x, edge_index, edge_attr, batch, batch_size)
        self.graph_state = graph
        return nodes

    def extra_repr(self) -> str:
        return (
            f"hidden_dim={self.hidden_dim}, heads={self.heads}, norm_first={self.norm_first}, pe={self.pe!r}, "
            f"pe_kind={self.pe_kind!r}, pe_dim={self.pe_dim}, spd_bias={self.use_spd}"
        )


def build_graph_transformer_defaults() -> dict[str, Any]:
    """The options :func:`build_graph_transformer` fills in when the config leaves them out."""
    return {
        "heads": 4, "norm_first": True, "pe": "tupe", "pe_kind": "rw", "pe_dim": 16, "lap_sign": "flip",
        "spd_bias": None, "max_spd": 8, "bond_bias": True, "ffn_mult": 2, "attn_dropout": None,
    }


def build_graph_transformer(c: dict[str, Any], atom_in: int, bond_in: int) -> GraphTransformerEncoder:
    """Encoder builder for :data:`molgraph.registry.ENCODERS` (``builder(config, atom_in, bond_in)``).

    Reads ``hidden_dim``, ``depth``, ``dropout``, ``activation`` from ``c`` and the options
    ``heads``, ``norm_first``, ``pe``, ``pe_kind``, ``pe_dim``, ``lap_sign``, ``spd_bias``,
    ``max_spd``, ``bond_bias``, ``ffn_mult``, ``attn_dropout`` when present (absent or ``None``:
    :class:`GraphTransformerEncoder`'s defaults).
    """
    options = {k: (c.get(k) if c.get(k) is not None else v) for k, v in build_graph_transformer_defaults().items()}
    return GraphTransformerEncoder(
        atom_in, bond_in, c["hidden_dim"], c["depth"], c["dropout"], c["activation"], **options,
    )
