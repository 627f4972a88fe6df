"""Molecule -> graph: :class:`MolGraphFeaturizer`.

Output: ``torch_geometric.data.Data`` with

* ``x``: ``(num_atoms, atom_dim)`` (int64 for index presets, float32 for one-hot presets),
* ``edge_index``: ``(2, 2 * num_bonds)`` int64, both directions of every bond; bond ``k`` gives
  edges ``2k`` (begin -> end) and ``2k + 1`` (end -> begin), so the reverse of edge ``e`` is
  ``e ^ 1`` (what directed message passing such as D-MPNN needs),
* ``edge_attr``: ``(2 * num_bonds, bond_dim)``, the same row for both directions,
* ``smiles``: the input SMILES (or the canonical SMILES for molecule inputs),
* ``pos`` (float32, angstrom, ``(num_atoms, 3)``) and ``z`` (int64 atomic numbers) when the
  molecule carries a 3D conformer and ``positions=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdchem

from molgraph.chem import MoleculeError, ParseOptions, mol_from_smiles
from molgraph.featurizers.atom import AtomFeaturizer
from molgraph.featurizers.bond import BondFeaturizer
from molgraph.featurizers.categorical import CheapGetter

if TYPE_CHECKING:
    from torch_geometric.data import Data

# torch and PyG are imported on the first ``to_data`` call, not with this module: producing numpy
# arrays (``arrays``, the batch featurizer, ``molgraph featurize``) needs neither, and importing
# torch_geometric costs seconds (it pulls in torch._dynamo).

__all__ = ["GraphArrays", "MolGraphFeaturizer"]

_ATOMIC_NUM = Chem.Atom.GetAtomicNum
_BEGIN = Chem.Bond.GetBeginAtomIdx
_END = Chem.Bond.GetEndAtomIdx


class GraphArrays(NamedTuple):
    """A featurized molecule as numpy arrays (cheap to pickle between processes)."""

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray
    smiles: str
    pos: np.ndarray | None = None
    z: np.ndarray | None = None

    def to_data(self) -> Data:
        """The graph as a PyG ``Data`` whose tensors share memory with these arrays."""
        from_numpy = _torch_from_numpy or _import_torch()
        fields = {
            "x": from_numpy(self.x),
            "edge_index": from_numpy(self.edge_index),
            "edge_attr": from_numpy(self.edge_attr),
            "smiles": self.smiles,
        }
        if self.pos is not None:
            fields["pos"] = from_numpy(self.pos)
            fields["z"] = from_numpy(self.z)
        return (_new_data or _set_data_constructor())(fields)


# Filled on first use (module globals: a per-molecule ``import`` statement would cost more).
_torch_from_numpy: Callable[[np.ndarray], Any] | None = None
_Data: type | None = None


def _import_torch() -> Callable[[np.ndarray], Any]:
    global _torch_from_numpy
    import torch

    _torch_from_numpy = torch.from_numpy
    return _torch_from_numpy


def _data_class() -> type:
    global _Data
    if _Data is None:
        from torch_geometric.data import Data

        _Data = Data
    return _Data


def _new_data_public(fields: dict[str, Any]) -> Data:
    return (_Data or _data_class())(**fields)


def _new_data_direct(fields: dict[str, Any]) -> Data:
    # Filling a fresh Data's storage mapping directly is what Data(**fields) ends up doing for
    # new keys, at a third of the cost (attribute setters, cache invalidation); it matters when
    # the featurizer itself takes ~100 us per molecule.
    data = (_Data or _data_class())()
    data._store._mapping.update(fields)
    return data


def _pick_data_constructor() -> Callable[[dict[str, Any]], Data]:
    """Use the direct constructor only if it gives the same object as the public one here."""
    import torch

    probe = {
        "x": torch.zeros(2, 1, dtype=torch.long),
        "edge_index": torch.tensor([[0, 1], [1, 0]]),
        "edge_attr": torch.zeros(2, 1, dtype=torch.long),
        "smiles": "CC",
    }
    try:
        fast, slow = _new_data_direct(dict(probe)), _new_data_public(dict(probe))
        same = (
            fast.keys() == slow.keys() and fast.num_nodes == slow.num_nodes == 2
            and fast.num_edges == slow.num_edges and fast.smiles == slow.smiles
            and all(torch.equal(fast[k], slow[k]) for k in ("x", "edge_index", "edge_attr"))
        )
    except Exception:
        same = False
    return _new_data_direct if same else _new_data_public


_new_data: Callable[[dict[str, Any]], Data] | None = None  # picked on first use


def _set_data_constructor() -> Callable[[dict[str, Any]], Data]:
    global _new_data
    _new_data = _pick_data_constructor()
    return _new_data


# Bond orders as RDKit reports them as floats -> BondType values. Exact for molecules read from
# SMILES without dative arrows or CXSMILES extensions (the only other SMILES bond that reads as
# 1.0 is dative; 1.5 can only be aromatic there); any other order falls back to the enum getter.
_BOND_TYPE_FROM_ORDER = CheapGetter(
    Chem.Bond.GetBondTypeAsDouble,
    {
        1.0: int(rdchem.BondType.SINGLE),
        1.5: int(rdchem.BondType.AROMATIC),
        2.0: int(rdchem.BondType.DOUBLE),
        3.0: int(rdchem.BondType.TRIPLE),
    },
)


def _smiles_hints(smiles: str) -> dict[str, Any] | None:
    """Shortcuts the SMILES text proves safe, letting the featurizer skip slow enum getters.

    RDKit only sets chiral tags from ``@``, double-bond stereo from ``/`` or ``\\``, and dative
    bonds from ``->``/``<-`` in a SMILES; CXSMILES extensions after ``|`` can set more, so they
    disable every shortcut. RDKit's Boost enum getters cost ~1 us per atom or bond, about a third
    of the featurization time on typical molecules.
    """
    if "|" in smiles:
        return None
    hints: dict[str, Any] = {}
    if "@" not in smiles:
        hints["chirality"] = int(rdchem.ChiralType.CHI_UNSPECIFIED)
    if "/" not in smiles and "\\" not in smiles:
        hints["stereo"] = int(rdchem.BondStereo.STEREONONE)
    if ">" not in smiles and "<" not in smiles:
        hints["bond_type"] = _BOND_TYPE_FROM_ORDER
    return hints or None


@dataclass
class MolGraphFeaturizer:
    """Featurizes a molecule (or SMILES) into a PyG graph.

    Args:
        atom_featurizer: atom rows (default: the ``ogb`` preset).
        bond_featurizer: bond rows (default: the ``ogb`` preset).
        parse_options: how SMILES are prepared (hydrogens, largest fragment, neutralization).
        positions: add ``pos``/``z`` when the molecule has a 3D conformer.
    """

    atom_featurizer: AtomFeaturizer = field(default_factory=AtomFeaturizer.ogb)
    bond_featurizer: BondFeaturizer = field(default_factory=BondFeaturizer.ogb)
    parse_options: ParseOptions = field(default_factory=ParseOptions)
    positions: bool = True

    # -- presets and config -------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str, **kwargs: Any) -> "MolGraphFeaturizer":
        """Atom and bond featurizers of the same preset (``"ogb"``, ``"pyg"``, ``"multihot"``)."""
        return cls(AtomFeaturizer.from_preset(name), BondFeaturizer.from_preset(name), **kwargs)

    @classmethod
    def ogb(cls, **kwargs: Any) -> "MolGraphFeaturizer":
        return cls.from_preset("ogb", **kwargs)

    @classmethod
    def pyg(cls, **kwargs: Any) -> "MolGraphFeaturizer":
        return cls.from_preset("pyg", **kwargs)

    @classmethod
    def multihot(cls, **kwargs: Any) -> "MolGraphFeaturizer":
        return cls.from_preset("multihot", **kwargs)

    def to_config(self) -> dict[str, Any]:
        """A JSON-serializable description that :meth:`from_config` turns back into this featurizer."""
        p = self.parse_options
        return {
            "type": "MolGraphFeaturizer",
            "atom": self.atom_featurizer.to_config(),
            "bond": self.bond_featurizer.to_config(),
            "parse": {
                "add_hs": p.add_hs,
                "keep_hs": p.keep_hs,
                "largest_fragment": p.largest_fragment,
                "neutralize": p.neutralize,
            },
            "positions": self.positions,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MolGraphFeaturizer":
        if config.get("type", "MolGraphFeaturizer") != "MolGraphFeaturizer":
            raise ValueError(f"config is for {config.get('type')}, not MolGraphFeaturizer")
        return cls(
            AtomFeaturizer.from_config(config["atom"]),
            BondFeaturizer.from_config(config["bond"]),
            ParseOptions(**config.get("parse", {})),
            bool(config.get("positions", True)),
        )

    @property
    def atom_dim(self) -> int:
        return self.atom_featurizer.dim

    @property
    def bond_dim(self) -> int:
        return self.bond_featurizer.dim

    # -- featurizing --------------------------------------------------------------------------
    def __call__(self, mol: Chem.Mol | str, *, index: int | None = None) -> Data:
        """Featurize one molecule or SMILES.

        Raises:
            MoleculeError: the SMILES cannot be read, or an atom/bond value is outside a
                vocabulary that has no unknown slot.
        """
        return self.arrays(mol, index=index).to_data()

    def arrays(self, mol: Chem.Mol | str, *, index: int | None = None) -> GraphArrays:
        """Like :meth:`__call__` but returns numpy arrays (:class:`GraphArrays`)."""
        if isinstance(mol, str):
            smiles = mol
            hints = _smiles_hints(smiles)
            mol = mol_from_smiles(smiles, self.parse_options, index=index)
        elif isinstance(mol, Chem.Mol):
            smiles = Chem.MolToSmiles(mol)
            hints = None
        else:
            raise MoleculeError(f"expected an RDKit Mol or a SMILES string, got {type(mol).__name__}", repr(mol), index)
        try:
            return self._mol_arrays(mol, smiles, hints)
        except ValueError as exc:  # out-of-vocabulary value without an unknown slot
            raise MoleculeError(str(exc), smiles, index) from exc

    def _mol_arrays(self, mol: Chem.Mol, smiles: str, hints: dict[str, Any] | None) -> GraphArrays:
        # GetAtomWithIdx is about twice as fast as iterating mol.GetAtoms() in RDKit's wrappers.
        atoms = list(map(mol.GetAtomWithIdx, range(mol.GetNumAtoms())))
        x = self.atom_featurizer.encode(atoms, hints)
        num_bonds = mol.GetNumBonds()
        edge_index = np.empty((2, 2 * num_bonds), dtype=np.int64)
        if num_bonds:
            bonds = list(map(mol.GetBondWithIdx, range(num_bonds)))
            begin = list(map(_BEGIN, bonds))
            end = list(map(_END, bonds))
            edge_index[0, 0::2] = begin
            edge_index[0, 1::2] = end
            edge_index[1, 0::2] = end
            edge_index[1, 1::2] = begin
            edge_attr = np.repeat(self.bond_featurizer.encode(bonds, hints), 2, axis=0)
        else:
            edge_attr = np.zeros((0, self.bond_featurizer.dim), dtype=self.bond_featurizer.dtype)
        pos = z = None
        if self.positions and mol.GetNumConformers() and mol.GetConformer().Is3D():
            pos = mol.GetConformer().GetPositions().astype(np.float32)
            z = np.fromiter(map(_ATOMIC_NUM, atoms), dtype=np.int64, count=len(atoms))
        return GraphArrays(x, edge_index, edge_attr, smiles, pos, z)


def _register_presets() -> None:
    from molgraph.registry import FEATURIZERS

    helps = {
        "ogb": "OGB's 9 atom / 3 bond index features (embedding tables)",
        "pyg": "PyG from_smiles' 9 atom / 3 bond index features",
        "multihot": "chemprop v2's one-hot atom (72) and bond (14) features",
    }
    for name in AtomFeaturizer._PRESETS:
        if name in BondFeaturizer._PRESETS:  # from_preset needs both
            FEATURIZERS.register(name, lambda n=name: MolGraphFeaturizer.from_preset(n), help=helps.get(name, name))


_register_presets()
