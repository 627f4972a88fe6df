"""Fixed-length molecule vectors for baselines: Morgan fingerprints and RDKit 2D descriptors.

Both take SMILES or RDKit molecules and return numpy arrays with one row per input; a molecule
that cannot be read raises :class:`~molgraph.chem.MoleculeError` naming its index.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors, rdFingerprintGenerator

from molgraph.chem import mol_from_smiles

__all__ = ["MorganFingerprint", "RDKitDescriptors", "morgan_fingerprints", "rdkit_descriptors"]


def _as_mol(item: Chem.Mol | str, index: int) -> Chem.Mol:
    return item if isinstance(item, Chem.Mol) else mol_from_smiles(item, index=index)


@dataclass(frozen=True)
class MorganFingerprint:
    """Morgan (ECFP-like) fingerprint through RDKit's fingerprint generator.

    Attributes:
        radius: bond radius (2 gives ECFP4).
        n_bits: vector length.
        counts: count vector (``uint32`` counts) instead of bits (``uint8`` 0/1).
        chirality: include chirality in atom invariants.
    """

    radius: int = 2
    n_bits: int = 2048
    counts: bool = False
    chirality: bool = False

    def __post_init__(self) -> None:
        if self.radius < 0 or self.n_bits < 1:
            raise ValueError(f"radius must be >= 0 and n_bits >= 1, got {self.radius}, {self.n_bits}")

    def to_config(self) -> dict[str, Any]:
        return {"type": "MorganFingerprint", **asdict(self)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MorganFingerprint":
        return cls(**{k: v for k, v in config.items() if k != "type"})

    def __call__(self, molecules: Sequence[Chem.Mol | str]) -> np.ndarray:
        """Fingerprints, shape ``(len(molecules), n_bits)``."""
        gen = rdFingerprintGenerator.GetMorganGenerator(
            radius=self.radius, fpSize=self.n_bits, includeChirality=self.chirality
        )
        get = gen.GetCountFingerprintAsNumPy if self.counts else gen.GetFingerprintAsNumPy
        out = np.zeros((len(molecules), self.n_bits), dtype=np.uint32 if self.counts else np.uint8)
        for i, item in enumerate(molecules):
            out[i] = get(_as_mol(item, i))
        return out


@dataclass(frozen=True)
class RDKitDescriptors:
    """RDKit's 2D descriptors (``rdkit.Chem.Descriptors.descList``), as float64.

    Attributes:
        names: which descriptors (default: all of RDKit's list, in its order).
    """

    names: tuple[str, ...] | None = None

    @property
    def descriptor_names(self) -> tuple[str, ...]:
        return self.names if self.names is not None else tuple(name for name, _ in Descriptors.descList)

    def __call__(self, molecules: Sequence[Chem.Mol | str]) -> np.ndarray:
        """Descriptor matrix, shape ``(len(molecules), len(descriptor_names))``.

        Descriptors RDKit cannot compute for a molecule are NaN (RDKit's own convention).
        """
        funcs = dict(Descriptors.descList)
        unknown = [n for n in self.descriptor_names if n not in funcs]
        if unknown:
            raise ValueError(f"unknown RDKit descriptors: {unknown}")
        selected = [funcs[n] for n in self.descriptor_names]
        out = np.empty((len(molecules), len(selected)), dtype=np.float64)
        for i, item in enumerate(molecules):
            mol = _as_mol(item, i)
            for j, func in enumerate(selected):
                try:
                    out[i, j] = func(mol)
                except Exception:  # RDKit raises on a few exotic molecules; NaN marks "undefined"
                    out[i, j] = np.nan
        return out


def morgan_fingerprints(
    molecules: Sequence[Chem.Mol | str], *, radius: int = 2, n_bits: int = 2048, counts: bool = False
) -> np.ndarray:
    """Shortcut for ``MorganFingerprint(radius, n_bits, counts)(molecules)``."""
    return MorganFingerprint(radius=radius, n_bits=n_bits, counts=counts)(molecules)


def rdkit_descriptors(molecules: Sequence[Chem.Mol | str], names: Sequence[str] | None = None) -> np.ndarray:
    """Shortcut for ``RDKitDescriptors(names)(molecules)``."""
    return RDKitDescriptors(tuple(names) if names is not None else None)(molecules)


def _register() -> None:
    from molgraph.registry import MOLECULE_FEATURIZERS

    MOLECULE_FEATURIZERS.register("rdkit_descriptors", RDKitDescriptors, aliases=("rdkit_2d",),
                                  help="RDKit's 2D descriptors (rdkit_2d: chemprop's name)")
    MOLECULE_FEATURIZERS.register("morgan", lambda: MorganFingerprint(radius=2, n_bits=2048), aliases=("morgan_binary",),
                                  help="Morgan (ECFP4) bits, 2048 (morgan_binary: chemprop's name)")
    MOLECULE_FEATURIZERS.register("morgan_count", lambda: MorganFingerprint(radius=2, n_bits=2048, counts=True),
                                  help="Morgan (ECFP4) counts, 2048")


_register()
