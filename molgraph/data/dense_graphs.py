"""Molecules as padded dense graphs: atom types and a symmetric typed adjacency, for graph generators.

A molecule becomes ``(types, adj)``: ``types`` ``(n,)`` int64 indices into an
:class:`AtomVocabulary` of ``(element, formal charge)`` pairs, and ``adj`` ``(n, n)`` int8 with
``0`` = no bond and ``1 / 2 / 3`` = single / double / triple bond of the **Kekulé** form, without
hydrogens (implicit hydrogens come back from the valences when the graph is decoded). A set of
molecules is stored padded to its largest one (:class:`DenseMolGraphs`); batches are cut to the
largest molecule of the batch (:class:`DenseGraphBatcher`) and grouped by size
(:class:`LengthBucketSampler`), so a batch of small molecules costs what small molecules cost.

Decoding (:func:`check_graph`) turns a graph back into an RDKit molecule and judges it: **valid**
when it sanitizes, survives a SMILES round trip and is connected; for an invalid graph it gives
the reason and whether its largest connected fragment alone is valid (generators report that
separately). Not every molecule has such a graph: stereochemistry, isotopes, radicals and
hydrogens that valence rules do not imply are lost, so :meth:`DenseMolGraphs.from_smiles`
checks every molecule's round trip and rejects, with the reason, those it cannot represent
(the *representation ceiling* of a data set is the share it keeps).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from rdkit import Chem, RDLogger
from torch.utils.data import Sampler

__all__ = [
    "BOND_TYPES",
    "AtomVocabulary",
    "GraphCheck",
    "DenseMolGraphs",
    "DenseGraphBatcher",
    "LengthBucketSampler",
    "mol_to_graph",
    "graph_to_mol",
    "check_graph",
    "canonical_round_trip",
    "smiles_heavy_atoms",
]

# adjacency value -> RDKit bond type (0 = no bond)
BOND_TYPES = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
_ORDER = {v: k for k, v in BOND_TYPES.items()}


@dataclass(frozen=True)
class AtomVocabulary:
    """The atom types of a model: ``(element symbol, formal charge)`` pairs, in index order."""

    atoms: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        if len(set(self.atoms)) != len(self.atoms):
            raise ValueError(f"atom vocabulary has duplicates: {self.atoms}")
        for sym, charge in self.atoms:
            if Chem.GetPeriodicTable().GetAtomicNumber(sym) <= 0:
                raise ValueError(f"atom vocabulary: unknown element {sym!r}")
            if not isinstance(charge, int):
                raise ValueError(f"atom vocabulary: charge of {sym!r} must be an int, got {charge!r}")

    def __len__(self) -> int:
        return len(self.atoms)

    def index(self, symbol: str, charge: int) -> int | None:
        """Index of ``(symbol, charge)``, or ``None`` when the vocabulary lacks it."""
        try:
            return self.atoms.index((symbol, int(charge)))
        except ValueError:
            return None

    def label(self, i: int) -> str:
        sym, charge = self.atoms[i]
        return sym if charge == 0 else f"{sym}{charge:+d}"

    def to_list(self) -> list[list]:
        return [[s, c] for s, c in self.atoms]

    @classmethod
    def from_list(cls, items: Iterable[Sequence]) -> "AtomVocabulary":
        return cls(tuple((str(s), int(c)) for s, c in items))

    @classmethod
    def from_counts(cls, counts: Counter, *, min_count: int = 1) -> "AtomVocabulary":
        """The pairs seen in at least ``min_count`` molecules, most frequent first (ties by name)."""
        kept = [k for k, n in counts.items() if n >= min_count]
        kept.sort(key=lambda k: (-counts[k], k[0], k[1]))
        return cls(tuple(kept))


# atoms as written in SMILES: bracket atoms, two-letter organic-subset atoms, one-letter ones
_ATOM_TOKEN = re.compile(r"\[[^\]]*\]|Br|Cl|[BCNOSPFI]|[bcnops]|\*")
_BRACKET_H = re.compile(r"^\[(?:\d+)?H[^a-z]")


def smiles_heavy_atoms(smiles: str) -> int:
    """Heavy atoms written in a SMILES string, without parsing it: organic-subset atoms plus
    bracket atoms other than hydrogen (``[H]``, ``[2H+]``) and the wildcard ``*``. Equals RDKit's
    ``GetNumHeavyAtoms`` for any SMILES that parses (a fast size filter before parsing)."""
    n = 0
    for tok in _ATOM_TOKEN.findall(smiles):
        if tok == "*" or (tok.startswith("[") and (_BRACKET_H.match(tok) or tok[1:2] == "*")):
            continue
        n += 1
    return n


def canonical_round_trip(mol: Chem.Mol) -> str | None:
    """Canonical SMILES (no stereo) of ``mol`` after a SMILES round trip, or ``None`` when it fails."""
    try:
        smi = Chem.MolToSmiles(mol, isomericSmiles=False)
        back = Chem.MolFromSmiles(smi)
    except Exception:  # noqa: BLE001  RDKit raises several types on broken molecules
        return None
    if back is None:
        return None
    return Chem.MolToSmiles(back, isomericSmiles=False)


def mol_to_graph(mol: Chem.Mol) -> tuple[list[tuple[str, int]], list[tuple[int, int, int]]]:
    """Atoms ``[(symbol, charge)]`` and bonds ``[(i, j, order)]`` (``i < j``, order 1-3) of the
    Kekulé, hydrogen-free form of ``mol``.

    Raises:
        ValueError: the molecule cannot be kekulized, or has a bond that is not single, double,
            triple or aromatic (dative, quadruple, ...), or has no heavy atom.
    """
    mol = Chem.RemoveHs(mol, sanitize=False)
    mol = Chem.RWMol(mol)
    try:
        Chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"cannot be kekulized ({exc})") from None
    if mol.GetNumAtoms() == 0:
        raise ValueError("no heavy atom")
    atoms = [(a.GetSymbol(), int(a.GetFormalCharge())) for a in mol.GetAtoms()]
    bonds = []
    for b in mol.GetBonds():
        order = _ORDER.get(b.GetBondType())
        if order is None:
            raise ValueError(f"bond type {b.GetBondType()} between atoms {b.GetBeginAtomIdx()} and "
                             f"{b.GetEndAtomIdx()} is not single, double or triple")
        i, j = sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))
        bonds.append((i, j, order))
    return atoms, bonds


def graph_to_mol(types: np.ndarray, adj: np.ndarray, vocab: AtomVocabulary) -> Chem.RWMol:
    """The (unsanitized) RDKit molecule of a graph: ``types`` ``(n,)``, ``adj`` ``(n, n)`` (upper
    triangle read; values 0-3)."""
    mol = Chem.RWMol()
    for t in np.asarray(types).tolist():
        sym, charge = vocab.atoms[int(t)]
        atom = Chem.Atom(sym)
        atom.SetFormalCharge(charge)
        mol.AddAtom(atom)
    adj = np.asarray(adj)
    ii, jj = np.nonzero(np.triu(adj, 1))
    for i, j in zip(ii.tolist(), jj.tolist()):
        order = int(adj[i, j])
        if order not in BOND_TYPES:
            raise ValueError(f"adjacency value {order} at ({i}, {j}) is not a bond type (0-3)")
        mol.AddBond(i, j, BOND_TYPES[order])
    return mol


@dataclass
class GraphCheck:
    """The verdict on one generated graph.

    Attributes:
        valid: sanitizes, survives a SMILES round trip, and is one connected molecule.
        smiles: canonical SMILES (no stereo) when valid, else ``""``.
        reason: why it is invalid (``""`` when valid): ``empty``, ``valence <element>``,
            ``kekulize``, ``sanitize``, ``round trip`` or ``disconnected (k fragments)``.
        fragment_valid: its largest connected fragment alone is valid (true for valid graphs).
        fragment_smiles: that fragment's canonical SMILES, else ``""``.
        num_atoms: heavy atoms of the graph.
    """

    valid: bool
    smiles: str
    reason: str
    fragment_valid: bool
    fragment_smiles: str
    num_atoms: int


def _sanitize_reason(mol: Chem.RWMol) -> str:
    """``""`` when ``mol`` sanitizes (in place), else a short reason."""
    try:
        Chem.SanitizeMol(mol)
        return ""
    except Chem.AtomValenceException as exc:
        msg = str(exc)
        # RDKit: "Explicit valence for atom # 3 N, 4, is greater than permitted"
        for sym in sorted({a.GetSymbol() for a in mol.GetAtoms()}, key=len, reverse=True):
            if f" {sym}," in msg or f" {sym} " in msg:
                return f"valence {sym}"
        return "valence"
    except Chem.KekulizeException:
        return "kekulize"
    except Exception:  # noqa: BLE001
        return "sanitize"


def _components(adj: np.ndarray) -> list[np.ndarray]:
    """Connected components of a graph (``adj`` ``(n, n)``, nonzero = edge), largest first."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = adj.shape[0]
    sym = (adj != 0) | (adj.T != 0)
    k, labels = connected_components(csr_matrix(sym), directed=False)
    comps = [np.flatnonzero(labels == c) for c in range(k)]
    comps.sort(key=lambda c: (-c.size, int(c[0]) if c.size else n))
    return comps


def _judge(types: np.ndarray, adj: np.ndarray, vocab: AtomVocabulary) -> tuple[str, str]:
    """``(canonical SMILES, "")`` for a sanitizable connected graph, else ``("", reason)``."""
    if len(types) == 0:
        return "", "empty"
    mol = graph_to_mol(types, adj, vocab)
    reason = _sanitize_reason(mol)
    if reason:
        return "", reason
    smi = canonical_round_trip(mol)
    if smi is None:
        return "", "round trip"
    if "." in smi:
        return "", f"disconnected ({smi.count('.') + 1} fragments)"
    return smi, ""


def check_graph(types: np.ndarray, adj: np.ndarray, vocab: AtomVocabulary) -> GraphCheck:
    """Validity of one graph (``types`` ``(n,)``, ``adj`` ``(n, n)``), its reason and its largest fragment."""
    types = np.asarray(types)
    adj = np.asarray(adj)
    with _quiet_rdkit():
        smi, reason = _judge(types, adj, vocab)
        if not reason:
            return GraphCheck(True, smi, "", True, smi, len(types))
        if len(types) == 0:
            return GraphCheck(False, "", reason, False, "", 0)
        comps = _components(adj)
        if len(comps) > 1 and not reason.startswith("disconnected"):
            reason = f"{reason}; disconnected ({len(comps)} fragments)"
        keep = comps[0]
        frag, frag_reason = _judge(types[keep], adj[np.ix_(keep, keep)], vocab)
    return GraphCheck(False, "", reason, not frag_reason, frag, len(types))


class _quiet_rdkit:
    """Silence RDKit's error log (invalid generated graphs are expected and counted, not printed)."""

    def __enter__(self) -> None:
        RDLogger.DisableLog("rdApp.*")

    def __exit__(self, *exc: object) -> None:
        RDLogger.EnableLog("rdApp.*")


@dataclass
class DenseMolGraphs:
    """A set of molecules as padded dense graphs.

    Attributes:
        types: ``(M, N)`` int64 atom-type indices (padding: 0; read ``lengths``).
        adj: ``(M, N, N)`` int8 symmetric bond orders (0 none, 1-3).
        lengths: ``(M,)`` int64 heavy atoms of each molecule.
        smiles: canonical SMILES (no stereo) of each molecule.
        vocab: the atom vocabulary.
        source_index: ``(M,)`` position of each molecule in the input sequence.
    """

    types: np.ndarray
    adj: np.ndarray
    lengths: np.ndarray
    smiles: list[str] = field(repr=False)
    vocab: AtomVocabulary
    source_index: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def max_atoms(self) -> int:
        return int(self.types.shape[1])

    def graph(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(types (n,), adj (n, n))`` of molecule ``i``."""
        n = int(self.lengths[i])
        return self.types[i, :n], self.adj[i, :n, :n]

    def subset(self, idx: Sequence[int] | np.ndarray) -> "DenseMolGraphs":
        idx = np.asarray(idx, dtype=np.int64)
        n = int(self.lengths[idx].max()) if idx.size else 1
        return DenseMolGraphs(self.types[idx, :n].copy(), self.adj[idx, :n, :n].copy(), self.lengths[idx].copy(),
                              [self.smiles[i] for i in idx.tolist()], self.vocab, self.source_index[idx].copy())

    @classmethod
    def from_smiles(
        cls,
        smiles: Iterable[str],
        *,
        vocab: AtomVocabulary | None = None,
        max_atoms: int | None = None,
        limit: int | None = None,
    ) -> tuple["DenseMolGraphs", list[tuple[int, str, str]]]:
        """Parse, kekulize and check every SMILES; returns the graphs and the rejects.

        Args:
            smiles: the input SMILES.
            vocab: a fixed vocabulary (molecules with other atoms are rejected); ``None``: every
                ``(element, charge)`` pair of the kept molecules, most frequent first.
            max_atoms: reject molecules with more heavy atoms (the generator's size limit).
            limit: stop after this many kept molecules.

        Returns:
            ``(graphs, rejects)``; ``rejects`` holds ``(input position, SMILES, reason)``, with
            reasons ``parse``, ``more than K heavy atoms`` (counted from the SMILES text before
            parsing, see :func:`smiles_heavy_atoms`), ``atom X not in the vocabulary``,
            ``cannot be kekulized``, ``bond type ...`` or ``not representable (round trip gives ...)``.
        """
        kept: list[tuple[int, str, list, list]] = []
        rejects: list[tuple[int, str, str]] = []
        counts: Counter = Counter()
        with _quiet_rdkit():
            for pos, smi in enumerate(smiles):
                if limit is not None and len(kept) >= limit:
                    break
                if not isinstance(smi, str) or not smi.strip():
                    rejects.append((pos, str(smi), "parse"))
                    continue
                # the size from the text first: parsing is most of the cost, most inputs are too large
                if max_atoms is not None and smiles_heavy_atoms(smi) > max_atoms:
                    rejects.append((pos, smi, f"more than {max_atoms} heavy atoms"))
                    continue
                mol = Chem.MolFromSmiles(smi)
                if mol is None:
                    rejects.append((pos, str(smi), "parse"))
                    continue
                if max_atoms is not None and mol.GetNumHeavyAtoms() > max_atoms:
                    rejects.append((pos, smi, f"more than {max_atoms} heavy atoms"))
                    continue
                try:
                    atoms, bonds = mol_to_graph(mol)
                except ValueError as exc:
                    rejects.append((pos, smi, str(exc)))
                    continue
                if vocab is not None:
                    missing = [a for a in atoms if vocab.index(*a) is None]
                    if missing:
                        sym, c = missing[0]
                        rejects.append((pos, smi, f"atom {sym}{'' if c == 0 else f'{c:+d}'} not in the vocabulary"))
                        continue
                # the representation's ceiling: the graph alone must give the molecule back
                want = Chem.MolToSmiles(mol, isomericSmiles=False)
                local = AtomVocabulary(tuple(dict.fromkeys(atoms)))
                t = np.array([local.index(*a) for a in atoms], dtype=np.int64)
                a = np.zeros((len(atoms), len(atoms)), dtype=np.int8)
                for i, j, o in bonds:
                    a[i, j] = a[j, i] = o
                mol2 = graph_to_mol(t, a, local)
                got = canonical_round_trip(mol2) if not _sanitize_reason(mol2) else None
                if got != want:
                    rejects.append((pos, smi, f"not representable (round trip gives {got or 'an invalid molecule'})"))
                    continue
                kept.append((pos, want, atoms, bonds))
                counts.update(set(atoms))
        if vocab is None:
            vocab = AtomVocabulary.from_counts(counts)
        m = len(kept)
        n = max((len(k[2]) for k in kept), default=1)
        types = np.zeros((m, n), dtype=np.int64)
        adj = np.zeros((m, n, n), dtype=np.int8)
        lengths = np.zeros(m, dtype=np.int64)
        for r, (_, _, atoms, bonds) in enumerate(kept):
            lengths[r] = len(atoms)
            types[r, :len(atoms)] = [vocab.index(*a) for a in atoms]
            for i, j, o in bonds:
                adj[r, i, j] = adj[r, j, i] = o
        graphs = cls(types, adj, lengths, [k[1] for k in kept], vocab, np.array([k[0] for k in kept], dtype=np.int64))
        return graphs, rejects

    # -- statistics of the data (priors of a generator, baselines) -----------------------------------
    def atom_frequencies(self) -> np.ndarray:
        """``(K,)`` share of each atom type among all atoms."""
        mask = np.arange(self.max_atoms)[None, :] < self.lengths[:, None]
        counts = np.bincount(self.types[mask], minlength=len(self.vocab)).astype(np.float64)
        return counts / counts.sum()

    def pair_frequencies(self) -> np.ndarray:
        """``(4,)`` share of no bond / single / double / triple among all atom pairs ``i < j``."""
        counts = np.zeros(4, dtype=np.float64)
        for i in range(len(self)):
            n = int(self.lengths[i])
            iu = np.triu_indices(n, 1)
            counts += np.bincount(self.adj[i, :n, :n][iu], minlength=4)[:4]
        return counts / max(counts.sum(), 1.0)

    def length_histogram(self) -> np.ndarray:
        """``(max_atoms + 1,)`` counts of molecules by heavy atoms."""
        return np.bincount(self.lengths, minlength=self.max_atoms + 1)


class DenseGraphBatcher:
    """:class:`~molgraph.data.loader.Collate` of dense graphs, cut to the batch's largest one.

    A batch is a dict: ``types`` ``(B, L)`` int64, ``adj`` ``(B, L, L)`` int64, ``mask`` ``(B, L)``
    bool (real atoms), ``lengths`` ``(B,)`` and ``index`` ``(B,)`` (positions in the set), with
    ``L`` the largest length among the batch.
    """

    def __init__(self, graphs: DenseMolGraphs):
        self.graphs = graphs

    def __len__(self) -> int:
        return len(self.graphs)

    def __call__(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        g = self.graphs
        idx = np.asarray(indices, dtype=np.int64)
        lengths = g.lengths[idx]
        n = int(lengths.max()) if idx.size else 1
        types = torch.from_numpy(g.types[idx, :n].copy())
        adj = torch.from_numpy(g.adj[idx, :n, :n].astype(np.int64))
        lens = torch.from_numpy(lengths.copy())
        return {"types": types, "adj": adj, "mask": torch.arange(n)[None, :] < lens[:, None], "lengths": lens,
                "index": torch.from_numpy(idx.copy())}


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of positions whose molecules have similar sizes, reshuffled every epoch.

    Positions are sorted by length after a seeded shuffle (so equal lengths come in random
    order), cut into batches of ``batch_size`` consecutive positions, and the batches are
    shuffled; the order depends only on ``(seed, epoch)`` (:meth:`set_epoch`), so a resumed run
    sees the same batches.

    Args:
        lengths: ``(P,)`` length of each position's molecule.
        batch_size: positions per batch (the last batch of the sorted order may be smaller).
        seed: seed of the order.
        num_batches: batches per epoch (``None``: all); an epoch then takes the first
            ``num_batches`` of this epoch's shuffled batches.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, *, seed: int = 0, num_batches: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.size == 0:
            raise ValueError("LengthBucketSampler needs at least one position")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.num_batches = num_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _all(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        perm = rng.permutation(self.lengths.size)
        order = perm[np.argsort(self.lengths[perm], kind="stable")]
        batches = [order[i:i + self.batch_size] for i in range(0, order.size, self.batch_size)]
        return [batches[k] for k in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all()
        if self.num_batches is not None:
            batches = batches[: self.num_batches] if self.num_batches <= len(batches) else \
                (batches * (self.num_batches // len(batches) + 1))[: self.num_batches]
        for b in batches:
            yield b.tolist()

    def __len__(self) -> int:
        full = (self.lengths.size + self.batch_size - 1) // self.batch_size
        return full if self.num_batches is None else int(self.num_batches)
