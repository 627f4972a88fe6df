"""``molgraph predict`` for Cormorant: the target (and forces) of 3D structures from SDF or xyz.

Input: an SDF file (every record's first conformer, hydrogens kept; positions in angstrom) or an
xyz file (one or more blocks of ``N``, a comment line, ``N`` lines ``Element x y z``). Output: a
CSV with ``index``, ``name``, ``n_atoms``, ``<target>_pred`` and ``unit``; with
``--with-forces``, a ``forces`` column holding the ``(n_atoms, 3)`` forces as a JSON list (in the
target's unit per angstrom). A structure that cannot be predicted (unreadable record, no 3D
coordinates, an element the model was not trained on, two coincident atoms) gets an empty
prediction and goes, with the reason, to ``<OUT stem>.rejects.csv``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Structure", "read_structures", "read_xyz", "read_sdf", "CormorantPredictor", "add_predict_arguments",
           "predict_command"]


@dataclass
class Structure:
    """One input structure: ``z`` (n,) atomic numbers, ``pos`` (n, 3) angstrom, or ``error`` when unreadable."""

    name: str
    z: np.ndarray | None = None
    pos: np.ndarray | None = None
    error: str | None = None


def read_xyz(path: str | Path) -> list[Structure]:
    """Every block of an xyz file; malformed blocks end the file with a clear error (ValueError).

    Raises:
        ValueError: naming the file, the line and the reason (bad atom count, short block,
            unknown element, non-numeric coordinate).
    """
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    lines = Path(path).read_text().splitlines()
    out: list[Structure] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].split()[0])
            if n < 1:
                raise ValueError
        except ValueError:
            raise ValueError(f"{path}: line {i + 1}: expected an atom count, got {lines[i]!r}") from None
        if i + 2 + n > len(lines):
            raise ValueError(f"{path}: line {i + 1}: the block announces {n} atoms, the file ends first")
        name = lines[i + 1].strip() or f"structure {len(out)}"
        z, pos = [], []
        for k in range(i + 2, i + 2 + n):
            parts = lines[k].split()
            if len(parts) < 4:
                raise ValueError(f"{path}: line {k + 1}: expected 'Element x y z', got {lines[k]!r}")
            sym = parts[0]
            try:
                number = int(sym) if sym.isdigit() else table.GetAtomicNumber(sym.capitalize())
            except RuntimeError:
                number = 0
            if number < 1:
                raise ValueError(f"{path}: line {k + 1}: unknown element {sym!r}")
            try:
                xyz = [float(v) for v in parts[1:4]]
            except ValueError:
                raise ValueError(f"{path}: line {k + 1}: non-numeric coordinate in {lines[k]!r}") from None
            z.append(number)
            pos.append(xyz)
        out.append(Structure(name, np.array(z, dtype=np.int64), np.array(pos, dtype=np.float64)))
        i += 2 + n
    return out


def read_sdf(path: str | Path) -> list[Structure]:
    """Every record of an SDF file (first conformer, hydrogens kept); bad records carry an ``error``."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    try:
        supplier = Chem.SDMolSupplier(str(path), removeHs=False, sanitize=False)
        out = []
        for k, mol in enumerate(supplier):
            if mol is None:
                out.append(Structure(f"record {k}", error="RDKit could not read the record"))
                continue
            name = mol.GetProp("_Name") if mol.HasProp("_Name") and mol.GetProp("_Name").strip() else f"record {k}"
            if mol.GetNumConformers() == 0:
                out.append(Structure(name, error="no coordinates"))
                continue
            pos = np.asarray(mol.GetConformer().GetPositions(), dtype=np.float64)
            if not mol.GetConformer().Is3D() or (mol.GetNumAtoms() > 1 and np.allclose(pos[:, 2], 0.0)):
                out.append(Structure(name, error="no 3D coordinates (the record is 2D)"))
                continue
            z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
            out.append(Structure(name, z, pos))
        return out
    finally:
        RDLogger.EnableLog("rdApp.*")


def read_structures(path: str | Path) -> list[Structure]:
    """SDF (``.sdf``, ``.mol``) or xyz (``.xyz``) by extension."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".sdf", ".mol"):
        return read_sdf(path)
    if suffix == ".xyz":
        return read_xyz(path)
    raise ValueError(f"{path}: unknown structure format {suffix!r}; give an .sdf, .mol or .xyz file")


class CormorantPredictor:
    """A trained Cormorant network with its standardization, target and radius cutoff.

    Args:
        model: :class:`~molgraph.methods.cormorant.model.CormorantNet`.
        mean, std: the target's training intercept and standard deviation (target units).
        offset_species, offset_coef: per-species offsets (see :class:`~molgraph.methods.cormorant.task.Standardizer`).
        target, unit: name and unit of the prediction.
        cutoff: radius graph cutoff, angstrom.
        forces: whether the model was trained on forces (forces are available either way).
    """

    def __init__(self, model: Any, *, mean: float, std: float, target: str, unit: str, cutoff: float,
                 forces: bool = False, offset_species: list[int] | None = None,
                 offset_coef: list[float] | None = None):
        from molgraph.methods.cormorant.task import Standardizer

        self.model = model.eval()
        self.scale = Standardizer(float(mean), float(std), list(offset_species) if offset_species else None,
                                  list(offset_coef) if offset_coef else None)
        self.target, self.unit, self.cutoff, self.trained_on_forces = target, unit, float(cutoff), bool(forces)

    @classmethod
    def from_section(cls, section: dict[str, Any], payload: dict[str, Any]) -> "CormorantPredictor":
        from molgraph.methods.cormorant.model import CormorantNet

        cfg = dict(section["model_config"])
        model = CormorantNet(cfg.pop("species"), **cfg)
        model.load_state_dict(payload["members"][0])
        return cls(model, mean=section["mean"], std=section["std"], target=section["target"], unit=section["unit"],
                   cutoff=section["cutoff"], forces=section.get("forces", False),
                   offset_species=section.get("offset_species"), offset_coef=section.get("offset_coef"))

    def check(self, z: np.ndarray, pos: np.ndarray) -> str | None:
        """Why the structure cannot be predicted, or None."""
        from molgraph.data.geometry import radius_graph

        known = set(self.model.config["species"])
        unknown = sorted({int(v) for v in z} - known)
        if unknown:
            return f"element(s) with atomic number {unknown} not among the model's species {sorted(known)}"
        if pos.shape != (len(z), 3) or not np.isfinite(pos).all():
            return "positions must be finite (n_atoms, 3)"
        try:
            radius_graph(pos, np.array([0, len(z)]), self.cutoff)
        except ValueError as exc:
            return str(exc).replace("molecule 0: ", "")
        return None

    def predict(self, zs: list[np.ndarray], positions: list[np.ndarray], *, forces: bool = False,
                batch_size: int = 64, device: str | None = None) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Predictions ``(M,)`` in :attr:`unit` and, with ``forces``, one ``(n_i, 3)`` array each.

        Raises:
            ValueError: a structure with an unknown element or coincident atoms (names it).
        """
        import torch

        from molgraph.data.geometry import radius_graph
        from molgraph.methods.cormorant.task import predict_batch

        if device:
            self.model.to(device)
        dev = next(self.model.parameters()).device
        preds: list[np.ndarray] = []
        fs: list[np.ndarray] = []
        for lo in range(0, len(zs), batch_size):
            z_part, p_part = zs[lo:lo + batch_size], positions[lo:lo + batch_size]
            counts = np.array([len(z) for z in z_part], dtype=np.int64)
            ptr = np.concatenate([[0], np.cumsum(counts)])
            pos = np.concatenate(p_part).astype(np.float64)
            for k, (z, p) in enumerate(zip(z_part, p_part)):
                reason = self.check(np.asarray(z), np.asarray(p, dtype=np.float64))
                if reason:
                    raise ValueError(f"structure {lo + k}: {reason}")
            ei, eptr = radius_graph(pos, ptr, self.cutoff)
            ei = ei + np.repeat(ptr[:-1], np.diff(eptr))
            batch = _Batch(z=torch.from_numpy(np.concatenate(z_part)).to(dev), pos=torch.from_numpy(pos).to(dev),
                           edge_index=torch.from_numpy(ei).to(dev),
                           batch=torch.from_numpy(np.repeat(np.arange(len(counts)), counts)).to(dev),
                           num_graphs=len(counts))
            if forces:
                _, y, f = predict_batch(self.model, batch, self.scale, forces=True)
                fs.extend(np.split(f.detach().cpu().numpy(), ptr[1:-1]))
            else:
                with torch.no_grad():
                    _, y, _ = predict_batch(self.model, batch, self.scale)
            preds.append(y.detach().cpu().numpy())
        return (np.concatenate(preds) if preds else np.zeros(0)), (fs if forces else None)


@dataclass
class _Batch:
    z: Any
    pos: Any
    edge_index: Any
    batch: Any
    num_graphs: int


def add_predict_arguments(parser: argparse.ArgumentParser | Any) -> None:
    if isinstance(parser, argparse._ArgumentGroup) and not parser.description:
        parser.description = ("input: an SDF (.sdf/.mol) or xyz file of 3D structures (angstrom); output: index, "
                              "name, n_atoms, <target>_pred, unit (and forces with --with-forces)")
    parser.add_argument("--with-forces", action="store_true",
                        help="cormorant: add each structure's forces (-dE/dpos, JSON list) to the output")


def predict_command(predictor: CormorantPredictor, args: argparse.Namespace) -> int:
    """Predict every structure of ``args.input``; unusable ones go to ``<OUT stem>.rejects.csv``."""
    import pandas as pd

    from molgraph.io import atomic_output, error_exit

    if args.output.exists() and not args.overwrite:
        return error_exit(f"{args.output} exists (use --overwrite to replace it)", 2)
    structures = read_structures(args.input)
    if not structures:
        return error_exit(f"{args.input}: no structures", 2)
    ok, rejects = [], []
    for i, s in enumerate(structures):
        reason = s.error or predictor.check(s.z, s.pos)
        if reason:
            rejects.append((i, s.name, reason))
        else:
            ok.append(i)
    with_forces = bool(getattr(args, "with_forces", False))
    device = getattr(args, "device", None)
    values, forces = predictor.predict([structures[i].z for i in ok], [structures[i].pos for i in ok],
                                       forces=with_forces, batch_size=int(getattr(args, "batch_size", None) or 64),
                                       device=None if device in (None, "auto") else device)
    col = f"{predictor.target}_pred"
    out = pd.DataFrame({"index": np.arange(len(structures)), "name": [s.name for s in structures],
                        "n_atoms": [len(s.z) if s.z is not None else 0 for s in structures]})
    out[col] = np.nan
    out.loc[ok, col] = values
    out["unit"] = predictor.unit
    if with_forces:
        text = [""] * len(structures)
        for i, f in zip(ok, forces or []):
            text[i] = json.dumps(np.round(f, 8).tolist())
        out["forces"] = text
    with atomic_output(args.output, "w", newline="") as fh:
        out.to_csv(fh, index=False, float_format="%.10g")
    if rejects:
        path = args.output.with_name(args.output.stem + ".rejects.csv")
        pd.DataFrame(rejects, columns=["index", "name", "reason"]).to_csv(path, index=False)
        print(f"molgraph: {len(rejects)} of {len(structures)} structures could not be predicted; reasons in {path}")
    return 0
