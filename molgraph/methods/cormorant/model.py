"""Cormorant (Anderson, Hy & Kondor, NeurIPS 2019) on e3nn's real-basis tensor products.

The network maps a molecule (atomic numbers ``z``, positions ``pos`` in angstrom, a radius
graph) to one invariant number per molecule. Its parts follow the reference implementation
(risilab/cormorant, read at commit 6a4b637; see ``docs/cormorant.md`` for what differs):

* **Atom inputs** (:class:`AtomInputs`): one-hot over the model's species times
  ``(Z / Z_max)^p`` for ``p = 0..charge_power``: ``n_species * (charge_power + 1)`` scalars.
* **Input block** (:class:`InputMPNN`): one radial message-passing step
  ``m_i = sum_j mask(r_ij) rad(r_ij) * x_j``, then an MLP on ``[x_i, m_i]`` to ``channels``
  scalars (``0e``). ``input_block="linear"`` is the reference's MD17 input (a linear map).
* **Levels** (:class:`CormorantLevel`), each with
  - edge scalars ``e_ij = mask(r_ij) * Linear([e_ij^prev, <F_i, F_j>, rad(r_ij)])`` indexed by
    (channel, l of the spherical harmonic); ``mask`` is a soft sigmoid cutoff whose centre and
    width are learned per edge channel (:class:`SoftCutoff`); ``<F_i, F_j>`` are per-channel,
    per-irrep dot products; ``rad`` is the reference's ``r^-p sin(2 pi s r + phi)`` basis with
    learned frequencies and phases (:class:`RadialPolyTrig`);
  - messages ``sum_j CG(e_ij[c, l2] * Y_l2(r_ij / |r_ij|), F_j[c])``: the channel-wise tensor
    product (e3nn ``uvu``) of each neighbour's features with the edge's spherical harmonics,
    its path weights gathered from the edge scalars;
  - the CG nonlinearity ``CG(F_i[c], F_i[c])``: the channel-wise tensor square (``uuu``);
  - the update ``F_i = Linear_l([messages, F_i^prev, CG square])`` (one linear map per irrep).
  ``modern=True`` adds a gate (SiLU on the scalars, sigmoid gates on ``l > 0``) after the
  update and a residual connection: the NequIP-style ablation.
* **Readout** (:class:`ScalarReadout`): from every level (the input one included), the scalars
  plus invariants per (irrep, channel pair): the squared norms of both real channels and their
  dot product (a complex Cormorant channel is a pair of real ones; its two invariants
  ``sum_m |F_m|^2`` and ``sum_m (-1)^m F_m F_-m`` are, in the real basis, ``|A|^2 + |B|^2`` and
  ``|A|^2 - |B|^2 + 2i A.B``); then a per-atom MLP, a sum over atoms and an MLP to one number.

Parity: e3nn irreps carry a parity and the reference is SO(3) only. ``parity="e3"`` (default)
keeps the natural-parity irreps ``0e, 1o, 2e, 3o, ...`` (an O(3)-invariant model: right for
energies and the other QM9 scalars; paths that produce the wrong parity, such as the cross
product ``1o x 1o -> 1e``, are dropped); ``parity="so3"`` keeps both parities of every ``l``
(all CG paths of the reference, twice the features).

Units: positions in angstrom; the output is the standardized target (the task converts).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from e3nn import o3
from torch import nn

__all__ = [
    "AtomInputs",
    "RadialPolyTrig",
    "SoftCutoff",
    "InputMPNN",
    "CormorantLevel",
    "ScalarReadout",
    "CormorantNet",
    "edge_geometry",
    "feature_irreps",
]

# Two atoms closer than this (angstrom) are a data error: the spherical harmonics of a zero
# vector have gradients of about 1e12, so forces would be garbage rather than NaN.
COINCIDENT = 1e-6
# added to the mean square before the per-atom normalization of a level (keeps it smooth at 0)
_NORM_EPS = 1e-6


def feature_irreps(channels: int, lmax: int, parity: str) -> o3.Irreps:
    """Irreps of the atom features: ``channels`` copies of each ``l <= lmax`` (see the module doc)."""
    if parity == "e3":
        return o3.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])
    if parity == "so3":
        return o3.Irreps([(channels, (l, p)) for l in range(lmax + 1) for p in (1, -1)])
    raise ValueError(f"parity must be 'e3' or 'so3', got {parity!r}")


def _act(name: str) -> nn.Module:
    if name == "leakyrelu":
        return nn.LeakyReLU(0.01)
    if name == "silu":
        return nn.SiLU()
    raise ValueError(f"activation must be 'leakyrelu' or 'silu', got {name!r}")


def _mlp(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(_act(activation))
    return nn.Sequential(*layers)


def edge_geometry(pos: torch.Tensor, edge_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge vectors ``r_j - r_i`` ``(E, 3)`` and lengths ``(E,)`` for edges ``(i, j)`` = ``edge_index[:, e]``.

    Raises:
        ValueError: an edge shorter than :data:`COINCIDENT` angstrom (coincident atoms or a self pair).
    """
    src, dst = edge_index
    vec = pos.index_select(0, dst) - pos.index_select(0, src)
    length = vec.norm(dim=-1)
    if length.numel() and bool((length < COINCIDENT).any()):
        e = int(torch.nonzero(length < COINCIDENT)[0, 0])
        raise ValueError(f"atoms {int(src[e])} and {int(dst[e])} of the batch coincide or form a self pair "
                         f"(distance {float(length[e]):.2e} angstrom); the model needs distinct positions")
    return vec, length


class AtomInputs(nn.Module):
    """One-hot species times ``(Z / Z_max)^p``, ``p = 0..charge_power``: ``(N, S * (P + 1))``.

    Args:
        species: the atomic numbers the model knows, ascending (``Z_max = max(species)``).
        charge_power: highest power ``P``.
    """

    def __init__(self, species: list[int], charge_power: int):
        super().__init__()
        species = sorted(int(z) for z in species)
        self.species = species
        self.charge_power = int(charge_power)
        table = torch.full((max(species) + 1,), -1, dtype=torch.long)
        table[torch.tensor(species)] = torch.arange(len(species))
        self.register_buffer("index_of", table, persistent=False)
        self.dim = len(species) * (self.charge_power + 1)

    def species_index(self, z: torch.Tensor) -> torch.Tensor:
        """Position of each atomic number in :attr:`species`; ValueError naming an unknown one."""
        bad = (z < 0) | (z >= self.index_of.numel())
        idx = self.index_of[z.clamp(0, self.index_of.numel() - 1)]
        bad = bad | (idx < 0)
        if bool(bad.any()):
            unknown = sorted({int(v) for v in z[bad].tolist()})
            raise ValueError(f"atomic number(s) {unknown} are not among this model's species {self.species}")
        return idx

    def forward(self, z: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        idx = self.species_index(z)
        onehot = torch.nn.functional.one_hot(idx, len(self.species)).to(dtype)
        charge = (z.to(dtype) / max(self.species)).unsqueeze(-1)
        powers = torch.cat([charge ** p for p in range(self.charge_power + 1)], dim=-1)  # (N, P + 1)
        return (onehot.unsqueeze(-1) * powers.unsqueeze(-2)).reshape(z.shape[0], -1)


class RadialPolyTrig(nn.Module):
    """The reference's radial basis ``r^-p sin(2 pi s_k r + phi_k)``: ``(E,)`` angstrom -> ``(E, n)``.

    ``p = 0..max_power``; ``(s_k, phi_k)`` for ``k = 0..max_freq`` and both phases ``0`` and
    ``pi / 2`` (sine and cosine: the real and imaginary parts of the reference's complex
    functions), learned. ``n = (max_power + 1) * (max_freq + 1) * 2``. Frequencies in 1/angstrom.
    """

    def __init__(self, max_power: int = 3, max_freq: int = 3):
        super().__init__()
        self.max_power, self.max_freq = int(max_power), int(max_freq)
        k = torch.arange(self.max_freq + 1, dtype=torch.float32)
        self.freq = nn.Parameter(torch.cat([k, k]))
        self.phase = nn.Parameter(torch.cat([torch.zeros_like(k), torch.full_like(k, math.pi / 2)]))
        self.dim = (self.max_power + 1) * self.freq.numel()

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        trig = torch.sin(2 * math.pi * self.freq * r.unsqueeze(-1) + self.phase)  # (E, F)
        powers = torch.stack([r ** (-p) for p in range(self.max_power + 1)], dim=-1)  # (E, P)
        return (powers.unsqueeze(-1) * trig.unsqueeze(-2)).reshape(r.shape[0], -1)


class SoftCutoff(nn.Module):
    """``sigmoid((r_c - r) / w)`` per channel, ``r_c`` and ``w > 0`` learned: ``(E,)`` -> ``(E, C)``.

    Args:
        channels: number of mask channels.
        cutoff: initial ``r_c`` (angstrom; the reference's 1.73).
        width: initial ``w`` (angstrom; the reference's 0.2).
    """

    def __init__(self, channels: int, cutoff: float = 1.73, width: float = 0.2):
        super().__init__()
        self.center = nn.Parameter(torch.full((channels,), float(cutoff)))
        # w = softplus(raw) keeps the width positive while it learns
        self.raw_width = nn.Parameter(torch.full((channels,), math.log(math.expm1(float(width)))))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        width = torch.nn.functional.softplus(self.raw_width)
        return torch.sigmoid((self.center - r.unsqueeze(-1)) / width)


class InputMPNN(nn.Module):
    """The input block: ``F^0_i = MLP([x_i, sum_j mask(r_ij) rad(r_ij) * x_j])`` -> ``(N, channels)``.

    The radial functions are a linear map of :class:`RadialPolyTrig` to one weight per input
    feature; the mask is a learned :class:`SoftCutoff` per input feature; the MLP has one hidden
    layer of ``hidden`` units.
    """

    def __init__(self, in_dim: int, channels: int, *, hidden: int, max_power: int, max_freq: int, cutoff: float,
                 width: float, activation: str, avg_neighbors: float):
        super().__init__()
        self.radial = RadialPolyTrig(max_power, max_freq)
        self.rad_mix = nn.Linear(self.radial.dim, in_dim)
        self.mask = SoftCutoff(in_dim, cutoff, width)
        self.mlp = _mlp([2 * in_dim, hidden, channels], activation)
        self.norm = 1.0 / math.sqrt(avg_neighbors)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        src, dst = edge_index
        w = self.mask(length) * self.rad_mix(self.radial(length))  # (E, in_dim)
        msg = torch.zeros_like(x).index_add_(0, src, w * x.index_select(0, dst)) * self.norm
        return self.mlp(torch.cat([x, msg], dim=-1))


def _irrep_dots(irreps: o3.Irreps, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-channel dot products of two feature tensors: ``(E, sum of muls)``, averaged over ``m``."""
    out = []
    for (mul, ir), sl in zip(irreps, irreps.slices()):
        x = a[:, sl].reshape(-1, mul, ir.dim)
        y = b[:, sl].reshape(-1, mul, ir.dim)
        out.append((x * y).mean(-1))
    return torch.cat(out, dim=-1)


class CormorantLevel(nn.Module):
    """One CG level: edge scalars, tensor-product messages, CG square, linear update.

    Args:
        irreps_in: irreps of ``F^(s-1)`` (level 1: ``channels x 0e``).
        irreps_out: irreps of ``F^s``.
        lmax_sh: highest degree of the edge spherical harmonics.
        edge_in: width of the previous level's edge scalars (0 at level 1).
        radial: ``(max_power, max_freq)`` of this level's :class:`RadialPolyTrig`.
        cutoff, width: initial soft cutoff (angstrom).
        avg_neighbors: messages are divided by its square root (a constant of the model).
        modern: add a gate after the update and a residual (when ``irreps_in == irreps_out``).
        level_norm: divide each atom's output by its root-mean-square component (an invariant, so
            the layer stays equivariant). The CG square is quadratic: over 4 levels the features
            grow or vanish like ``x^16`` (the reference tunes initial gains instead, ``level_gain``).

    Shapes: ``forward(F (N, irreps_in.dim), e_prev (E, edge_in), sh (E, sh_dim), length (E,),
    edge_index (2, E))`` -> ``(F^s (N, irreps_out.dim), e (E, channels * (lmax_sh + 1)))``.
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, *, lmax_sh: int, edge_in: int,
                 radial: tuple[int, int], cutoff: float, width: float, avg_neighbors: float, modern: bool = False,
                 level_norm: bool = True):
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax_sh)
        muls = {mul for mul, _ in self.irreps_in}
        if len(muls) != 1:
            raise ValueError(f"every irrep of a level's input needs the same multiplicity, got {self.irreps_in}")
        self.channels = muls.pop()
        self.lmax_sh = lmax_sh
        self.edge_dim = self.channels * (lmax_sh + 1)
        self.modern = bool(modern)
        out_irs = {ir for _, ir in self.irreps_out}
        lmax_out = max(ir.l for ir in out_irs)

        # edge scalars: [previous edge scalars, per-channel dots, radial basis] -> (channel, l_sh)
        self.radial = RadialPolyTrig(*radial)
        n_dots = sum(mul for mul, _ in self.irreps_in)
        self.edge_mix = nn.Linear(edge_in + n_dots + self.radial.dim, self.edge_dim)
        self.mask = SoftCutoff(self.edge_dim, cutoff, width)

        # messages: channel-wise (uvu) CG product of F_j with Y(r_ij); weight of path (i, j, k),
        # channel u = edge scalar (u, l of Y_j)
        mid, instr, gather = [], [], []
        for i, (mul, ir1) in enumerate(self.irreps_in):
            for j, (_, ir2) in enumerate(self.irreps_sh):
                for ir in ir1 * ir2:
                    if ir in out_irs:
                        instr.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir))
                        gather.append(torch.arange(mul) * (lmax_sh + 1) + ir2.l)
        self.irreps_msg = o3.Irreps(mid)
        self.msg_tp = o3.TensorProduct(self.irreps_in, self.irreps_sh, self.irreps_msg, instr,
                                       shared_weights=False, internal_weights=False)
        self.register_buffer("weight_index", torch.cat(gather), persistent=False)

        # CG nonlinearity: channel-wise (uuu) square, one path per unordered pair (l1 <= l2)
        sq, sq_instr = [], []
        for i, (mul, ir1) in enumerate(self.irreps_in):
            for j, (_, ir2) in enumerate(self.irreps_in):
                if j < i:
                    continue
                for ir in ir1 * ir2:
                    if ir in out_irs and ir.l <= lmax_out:
                        sq_instr.append((i, j, len(sq), "uuu", False))
                        sq.append((mul, ir))
        self.irreps_sq = o3.Irreps(sq)
        self.square = o3.TensorProduct(self.irreps_in, self.irreps_in, self.irreps_sq, sq_instr)

        cat = self.irreps_msg + self.irreps_in + self.irreps_sq
        if self.modern:
            from e3nn.nn import Gate

            scalars = o3.Irreps([(m, ir) for m, ir in self.irreps_out if ir.l == 0])
            gated = o3.Irreps([(m, ir) for m, ir in self.irreps_out if ir.l > 0])
            gates = o3.Irreps([(m, "0e") for m, _ in gated])
            acts = [torch.nn.functional.silu if ir.p == 1 else torch.tanh for _, ir in scalars]
            self.gate = Gate(scalars, acts, gates, [torch.sigmoid] * len(gates), gated)
            self.update = o3.Linear(cat, self.gate.irreps_in)
            self.residual = self.irreps_in == self.irreps_out
        else:
            self.update = o3.Linear(cat, self.irreps_out)
            self.residual = False
        self.norm = 1.0 / math.sqrt(avg_neighbors)
        self.level_norm = bool(level_norm)

    def edge_scalars(self, f: torch.Tensor, e_prev: torch.Tensor, length: torch.Tensor,
                     edge_index: torch.Tensor) -> torch.Tensor:
        """``(E, channels * (lmax_sh + 1))`` masked edge scalars, layout (channel, l)."""
        src, dst = edge_index
        dots = _irrep_dots(self.irreps_in, f.index_select(0, src), f.index_select(0, dst))
        x = torch.cat([e_prev, dots, self.radial(length)], dim=-1)
        return self.mask(length) * self.edge_mix(x)

    def forward(self, f: torch.Tensor, e_prev: torch.Tensor, sh: torch.Tensor, length: torch.Tensor,
                edge_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        src, dst = edge_index
        e = self.edge_scalars(f, e_prev, length, edge_index)
        weights = e.index_select(1, self.weight_index)
        per_edge = self.msg_tp(f.index_select(0, dst), sh, weights)
        msg = torch.zeros(f.shape[0], self.irreps_msg.dim, dtype=f.dtype, device=f.device)
        msg = msg.index_add_(0, src, per_edge) * self.norm
        out = self.update(torch.cat([msg, f, self.square(f, f)], dim=-1))
        if self.modern:
            out = self.gate(out)
            if self.residual:
                out = out + f
        if self.level_norm:
            out = out * torch.rsqrt(out.pow(2).mean(-1, keepdim=True) + _NORM_EPS)
        return out, e


class ScalarReadout(nn.Module):
    """Invariants of one level's features: ``(N, irreps.dim)`` -> ``(N, dim)``.

    Scalars (``l = 0``) as they are, then per irrep block and per pair of real channels
    ``(2c, 2c + 1)``: both squared norms and their dot product (``m``-averaged); an odd last
    channel gives its squared norm only.
    """

    def __init__(self, irreps: o3.Irreps):
        super().__init__()
        self.irreps = o3.Irreps(irreps)
        dim = 0
        for mul, ir in self.irreps:
            dim += (mul if ir.l == 0 else 0) + mul + mul // 2
        self.dim = dim

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        out = []
        for (mul, ir), sl in zip(self.irreps, self.irreps.slices()):
            x = f[:, sl].reshape(-1, mul, ir.dim)
            if ir.l == 0:
                out.append(x[:, :, 0])
            out.append((x * x).mean(-1))
            pairs = mul // 2
            if pairs:
                out.append((x[:, 0:2 * pairs:2] * x[:, 1:2 * pairs:2]).mean(-1))
        return torch.cat(out, dim=-1)


class CormorantNet(nn.Module):
    """Cormorant: molecule -> one invariant number (see the module doc for the parts).

    Args:
        species: atomic numbers the model knows (QM9: 1, 6, 7, 8, 9).
        charge_power: highest power of ``Z / Z_max`` in the inputs (reference: 2).
        levels: number of CG levels (reference: 4).
        lmax: highest degree of the features and of the edge harmonics (reference: 3).
        channels: real channels per irrep (the reference's 10 complex channels are 20 real).
        parity: ``"e3"`` or ``"so3"`` (module doc).
        max_power, max_freq: radial basis (reference ``basis_set=(3, 3)``).
        soft_cutoff, soft_width: initial soft cutoff (angstrom; reference 1.73 and 0.2).
        input_block: ``"mpnn"`` (reference's QM9 input) or ``"linear"`` (its MD17 input).
        input_hidden: hidden width of the input MLP (reference 256).
        readout_hidden: ``(h1, h2)``: per-atom MLP ``S -> h1 -> h2``, then ``h2 -> h1 -> 1`` after
            the sum (reference ``(256, 64)``).
        activation: of the MLPs, ``"leakyrelu"`` (reference) or ``"silu"`` (smooth: forces).
        modern: gates and residuals (module doc).
        level_norm: per-atom RMS normalization of each level's output (see :class:`CormorantLevel`).
        avg_neighbors: messages are divided by its square root (set from the training graphs).

    ``forward(z (N,), pos (N, 3) angstrom, edge_index (2, E), batch (N,), num_graphs)`` ->
    ``(num_graphs,)``; ``edge_index`` holds both directions of every pair and no self pair.
    """

    def __init__(self, species: list[int], *, charge_power: int = 2, levels: int = 4, lmax: int = 3,
                 channels: int = 16, parity: str = "e3", max_power: int = 3, max_freq: int = 3,
                 soft_cutoff: float = 1.73, soft_width: float = 0.2, input_block: str = "mpnn",
                 input_hidden: int = 256, readout_hidden: tuple[int, int] | list[int] = (256, 64),
                 activation: str = "leakyrelu", modern: bool = False, level_norm: bool = True,
                 avg_neighbors: float = 1.0):
        super().__init__()
        self.config: dict[str, Any] = dict(
            species=sorted(int(z) for z in species), charge_power=int(charge_power), levels=int(levels),
            lmax=int(lmax), channels=int(channels), parity=parity, max_power=int(max_power), max_freq=int(max_freq),
            soft_cutoff=float(soft_cutoff), soft_width=float(soft_width), input_block=input_block,
            input_hidden=int(input_hidden), readout_hidden=[int(h) for h in readout_hidden],
            activation=activation, modern=bool(modern), level_norm=bool(level_norm),
            avg_neighbors=float(avg_neighbors))
        if levels < 1 or lmax < 0 or channels < 1:
            raise ValueError(f"levels >= 1, lmax >= 0 and channels >= 1 are needed, got {levels}, {lmax}, {channels}")
        if input_block not in ("mpnn", "linear"):
            raise ValueError(f"input_block must be 'mpnn' or 'linear', got {input_block!r}")
        _act(activation)
        self.inputs = AtomInputs(species, charge_power)
        if input_block == "mpnn":
            self.input = InputMPNN(self.inputs.dim, channels, hidden=input_hidden, max_power=max_power,
                                   max_freq=max_freq, cutoff=soft_cutoff, width=soft_width, activation=activation,
                                   avg_neighbors=avg_neighbors)
        else:
            self.input = nn.Linear(self.inputs.dim, channels)
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        irreps0 = o3.Irreps(f"{channels}x0e")
        irreps = feature_irreps(channels, lmax, parity)
        self.levels = nn.ModuleList()
        readouts = [ScalarReadout(irreps0)]
        edge_in, prev = 0, irreps0
        for _ in range(levels):
            level = CormorantLevel(prev, irreps, lmax_sh=lmax, edge_in=edge_in, radial=(max_power, max_freq),
                                   cutoff=soft_cutoff, width=soft_width, avg_neighbors=avg_neighbors, modern=modern,
                                   level_norm=level_norm)
            self.levels.append(level)
            readouts.append(ScalarReadout(irreps))
            edge_in, prev = level.edge_dim, irreps
        self.readouts = nn.ModuleList(readouts)
        n_scalars = sum(r.dim for r in readouts)
        h1, h2 = self.config["readout_hidden"]
        self.atom_mlp = _mlp([n_scalars, h1, h2], activation)
        self.mol_mlp = _mlp([h2, h1, 1], activation)

    def features(self, z: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor) -> list[torch.Tensor]:
        """Atom features of every level: ``[F^0 (N, channels), F^1, ..., F^S (N, irreps.dim)]``."""
        vec, length = edge_geometry(pos, edge_index)
        x = self.inputs(z, pos.dtype)
        f = self.input(x, edge_index, length) if isinstance(self.input, InputMPNN) else self.input(x)
        sh = o3.spherical_harmonics(self.irreps_sh, vec, normalize=True, normalization="component")
        out = [f]
        e = vec.new_zeros(vec.shape[0], 0)
        for level in self.levels:
            f, e = level(f, e, sh, length, edge_index)
            out.append(f)
        return out

    def atom_scalars(self, z: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``(N, S)``: the invariants of every level, concatenated."""
        feats = self.features(z, pos, edge_index)
        return torch.cat([r(f) for r, f in zip(self.readouts, feats)], dim=-1)

    def forward(self, z: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor,
                num_graphs: int) -> torch.Tensor:
        h = self.atom_mlp(self.atom_scalars(z, pos, edge_index))
        pooled = h.new_zeros(num_graphs, h.shape[1]).index_add_(0, batch, h)
        return self.mol_mlp(pooled).squeeze(-1)
