"""``cormorant``: Cormorant (Anderson, Hy & Kondor, NeurIPS 2019) on e3nn, as a :class:`Method`.

``molgraph train --method cormorant -d qm9 --target U0`` trains on Cormorant's QM9 split
(100,000 / 17,748 / 13,083; ``--n-train`` etc. take seeded subsets of each part) with the
paper's units: energies in meV after subtracting the atomic reference energies, mu in D, alpha
in bohr^3. ``-d rmd17 --molecule aspirin`` trains on one official rMD17 split: its 1,000
training frames are divided (seeded) into 950 for training and 50 for validation, and its 1,000
test frames are the test set; energies in kcal/mol, forces in kcal/mol/angstrom, learned by
autograd from the energy. ``molgraph predict --model RUN -i molecules.sdf|.xyz`` predicts.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from molgraph.methods.cormorant.config import CormorantConfig
from molgraph.train.method import Method, Prepared

__all__ = ["CormorantMethod", "prepare_data", "CormorantData"]

QM9_SPECIES = [1, 6, 7, 8, 9]


@dataclass
class CormorantData:
    """The graphs of a run and their parts.

    Attributes:
        graphs: :class:`~molgraph.data.collated.CollatedGraphs` with ``z``, ``pos`` and the target field.
        train, val, test: positions in ``graphs``.
        field: the target field (``y`` for QM9, ``energy`` for rMD17).
        target, unit: the target's name and unit; force_unit: forces' unit (rMD17) or None.
        species: atomic numbers the model must know.
        describe: what the parts are (for the log and the model file).
    """

    graphs: Any
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    field: str
    target: str
    unit: str
    force_unit: str | None
    species: list[int]
    describe: dict[str, Any]


def _subset(idx: np.ndarray, n: int | None, rng: np.random.Generator, what: str) -> np.ndarray:
    if n is None or n >= len(idx):
        if n is not None and n > len(idx):
            raise ValueError(f"{what}: asked for {n} examples, the part has {len(idx)}")
        return np.asarray(idx, dtype=np.int64)
    return np.sort(rng.choice(np.asarray(idx, dtype=np.int64), size=n, replace=False))


def prepare_data(config: CormorantConfig) -> CormorantData:
    """Load the data set named by ``config`` and cut its parts (see the module doc)."""
    rng = np.random.default_rng(config.subset_seed)
    if config.dataset == "qm9":
        from molgraph.data.qm9 import load_qm9

        ds = load_qm9(config.data_root, targets=[config.target], energy_unit="meV", atomref=True)
        split = ds.cormorant_split()
        parts = [_subset(split.train, config.n_train, rng, "n_train"), _subset(split.val, config.n_valid, rng, "n_valid"),
                 _subset(split.test, config.n_test, rng, "n_test")]
        rows = np.concatenate(parts)
        graphs = ds.to_graphs(config.cutoff, indices=rows)
        a, b = len(parts[0]), len(parts[0]) + len(parts[1])
        n = len(rows)
        return CormorantData(graphs, np.arange(a), np.arange(a, b), np.arange(b, n), "y", config.target,
                             ds.units[config.target], None, list(QM9_SPECIES),
                             {"dataset": "qm9", "split": "cormorant", "atomref": True, "energy_unit": "meV",
                              "n_train": a, "n_valid": b - a, "n_test": n - b, "subset_seed": config.subset_seed})
    from molgraph.data.rmd17 import RMD17Dataset, load_rmd17

    train = load_rmd17(config.molecule, config.rmd17_split, "train", root=config.data_root)
    test = load_rmd17(config.molecule, config.rmd17_split, "test", root=config.data_root)
    if not np.array_equal(train.z.numpy(), test.z.numpy()):
        raise ValueError(f"rMD17 {config.molecule}: train and test files list different atoms")
    n_valid = config.n_valid if config.n_valid is not None else 50
    if n_valid >= len(train):
        raise ValueError(f"n_valid ({n_valid}) must leave training frames of the {len(train)} in the train file")
    order = rng.permutation(len(train))
    val = np.sort(order[:n_valid])
    tr = np.sort(order[n_valid:])
    tr = _subset(tr, config.n_train, rng, "n_train")
    te = _subset(np.arange(len(test)), config.n_test, rng, "n_test")
    arrays = {
        "nuclear_charges": train.z.numpy(),
        "coords": np.concatenate([train.pos.numpy()[tr], train.pos.numpy()[val], test.pos.numpy()[te]]),
        "energies": np.concatenate([train.energy.numpy()[tr], train.energy.numpy()[val], test.energy.numpy()[te]]),
        "forces": np.concatenate([train.forces.numpy()[tr], train.forces.numpy()[val], test.forces.numpy()[te]]),
        "old_indices": np.concatenate([train.old_indices[tr], train.old_indices[val], test.old_indices[te]]),
    }
    graphs = RMD17Dataset(config.molecule, config.rmd17_split, "train+test", arrays, "kcal/mol").to_graphs(config.cutoff)
    a, b = len(tr), len(tr) + len(val)
    n = b + len(te)
    return CormorantData(graphs, np.arange(a), np.arange(a, b), np.arange(b, n), "energy", "energy", "kcal/mol",
                         "kcal/mol/angstrom", sorted({int(z) for z in train.z.tolist()}),
                         {"dataset": "rmd17", "molecule": config.molecule, "split": config.rmd17_split,
                          "n_train": a, "n_valid": b - a, "n_test": n - b, "subset_seed": config.subset_seed})


def species_counts(graphs: Any, species: list[int]) -> np.ndarray:
    """``(num_graphs, S)`` float64: atoms of each species (in ``species`` order) per graph."""
    z = graphs.field("z").numpy()
    ptr = graphs.atom_ptr.numpy()
    mol = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    return np.stack([np.bincount(mol, weights=(z == s).astype(np.float64), minlength=len(ptr) - 1)
                     for s in species], axis=1)


def average_neighbors(graphs: Any, rows: np.ndarray) -> float:
    """Mean number of radius-graph neighbours per atom over the graphs ``rows``."""
    edges = float(graphs.num_edges[rows].sum())
    atoms = float(graphs.num_atoms[rows].sum())
    return max(edges / max(atoms, 1.0), 1.0)


@dataclass
class CormorantPrepared(Prepared):
    data: CormorantData | None = None
    scale: Any = None
    forces: bool = False
    activation: str = "leakyrelu"
    avg_neighbors: float = 1.0


def uses_forces(config: CormorantConfig) -> bool:
    return bool(config.forces) if config.forces is not None else config.dataset == "rmd17"


def build_network(config: CormorantConfig, species: list[int], *, avg_neighbors: float, activation: str) -> Any:
    from molgraph.methods.cormorant.model import CormorantNet

    return CormorantNet(species, charge_power=config.charge_power, levels=config.levels, lmax=config.lmax,
                        channels=config.channels, parity=config.parity, max_power=config.max_power,
                        max_freq=config.max_freq, soft_cutoff=config.soft_cutoff, soft_width=config.soft_width,
                        input_block=config.input_block, input_hidden=config.input_hidden,
                        readout_hidden=list(config.readout_hidden), activation=activation, modern=config.modern,
                        level_norm=config.level_norm, avg_neighbors=avg_neighbors)


class CormorantMethod(Method):
    """Cormorant: covariant molecular networks (e3nn) for QM9 properties and rMD17 energies/forces."""

    name = "cormorant"
    help = "Cormorant covariant 3D network (e3nn): QM9 properties, rMD17 energies and forces"
    config_class = CormorantConfig
    example_noun = "molecules"

    def validate(self, config: CormorantConfig) -> None:
        if config.forces and config.dataset != "rmd17":
            raise ValueError("forces: only rMD17 has force labels (use -d rmd17)")
        if config.cutoff <= 0:
            raise ValueError(f"cutoff must be > 0 angstrom, got {config.cutoff}")
        if config.soft_width <= 0:
            raise ValueError(f"soft_width must be > 0 angstrom, got {config.soft_width}")
        if config.rmd17_split > 5:
            raise ValueError(f"rmd17_split must be 1..5, got {config.rmd17_split}")
        if config.monitor == "val_force_mae" and not uses_forces(config):
            raise ValueError("monitor val_force_mae needs force training (-d rmd17)")

    def logged_values(self, config: Any) -> tuple[str, ...]:
        return ("val_mae", "val_loss", "val_force_mae", "train_loss", "train_mae")

    def prepare(self, config: CormorantConfig, *, run_dir: Path, resume: bool,
                say: Callable[[str], None]) -> CormorantPrepared:
        from molgraph.data.loader import GraphBatcher
        from molgraph.methods.cormorant.task import Standardizer
        from molgraph.train.datamodule import GraphDataModule

        data = prepare_data(config)
        d = data.describe
        say(f"data: {d['dataset']} {config.target if d['dataset'] == 'qm9' else config.molecule}: train {len(data.train)}, "
            f"valid {len(data.val)}, test {len(data.test)} ({data.unit})")
        y = data.graphs.field(data.field).reshape(len(data.graphs), -1)[:, 0].numpy()
        if config.offsets == "species":
            counts = species_counts(data.graphs, data.species)
            scale = Standardizer.fit(y[data.train], counts[data.train], data.species)
        else:
            scale = Standardizer.fit(y[data.train])
        forces = uses_forces(config)
        activation = config.activation if config.activation != "auto" else ("silu" if forces else "leakyrelu")
        fields = ("z", "pos", data.field) + (("forces",) if forces else ())
        dm = GraphDataModule(GraphBatcher(data.graphs, fields=fields), data.train, data.val, data.test,
                             batch_size=config.batch_size, data_seed=config.subset_seed, num_workers=config.num_workers)
        return CormorantPrepared(datamodule=dm, n_train=len(data.train), summary=str(d), data=data, scale=scale,
                                 forces=forces, activation=activation,
                                 avg_neighbors=average_neighbors(data.graphs, data.train))

    def resolve(self, config: CormorantConfig, prepared: CormorantPrepared) -> None:
        config.activation = prepared.activation
        config.forces = prepared.forces

    def build_model(self, config: CormorantConfig, prepared: CormorantPrepared) -> Any:
        return build_network(config, prepared.data.species, avg_neighbors=prepared.avg_neighbors,
                             activation=prepared.activation)

    def build_task(self, config: CormorantConfig, prepared: CormorantPrepared, model: Any, *, member: int) -> Any:
        from molgraph.methods.cormorant.task import CormorantTask

        return CormorantTask(model, prepared.scale, field=prepared.data.field, forces=prepared.forces,
                             force_weight=config.force_weight, optimizer=config.optimizer,
                             weight_decay=config.weight_decay, schedule=config.schedule,
                             warmup_epochs=config.warmup_epochs, init_lr=config.init_lr, max_lr=config.max_lr,
                             final_lr=config.final_lr, seed=config.seed + member)

    def finish(self, config: CormorantConfig, prepared: CormorantPrepared, models: list[Any], run_dir: Path,
               *, say: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
        """MAE (target units) on validation and test with the best weights; forces too on rMD17."""
        from molgraph.methods.cormorant.task import evaluate

        data, dm = prepared.data, prepared.datamodule
        results: dict[str, Any] = {"unit": data.unit, "target": data.target}
        if data.force_unit:
            results["force_unit"] = data.force_unit
        for part, idx in (("val", data.val), ("test", data.test)):
            if len(idx):
                r = evaluate(models[0], dm.loader(idx), prepared.scale, field=data.field, forces=prepared.forces)
                results[part] = r
                extra = f", force MAE {r['force_mae']:.4g} {data.force_unit}" if "force_mae" in r else ""
                say(f"{part}: {data.target} MAE {r['mae']:.4g} {data.unit}{extra} ({r['n']} examples)")
        results["primary_metric"] = "mae"
        section = {
            "model_config": dict(models[0].config),
            "data": dict(data.describe),
            "target": data.target,
            "unit": data.unit,
            "force_unit": data.force_unit,
            "field": data.field,
            "forces": bool(prepared.forces),
            "mean": float(prepared.scale.mean),
            "std": float(prepared.scale.std),
            "offset_species": list(prepared.scale.species or []),
            "offset_coef": list(prepared.scale.coef or []),
            "cutoff": float(config.cutoff),
        }
        return results, section

    # -- a model file --------------------------------------------------------------------------------
    def load(self, section: dict[str, Any], payload: dict[str, Any]) -> Any:
        from molgraph.methods.cormorant.predict import CormorantPredictor

        return CormorantPredictor.from_section(section, payload)

    def add_predict_arguments(self, parser: argparse.ArgumentParser) -> None:
        from molgraph.methods.cormorant.predict import add_predict_arguments

        add_predict_arguments(parser)

    def predict_command(self, predictor: Any, args: argparse.Namespace) -> int:
        from molgraph.methods.cormorant.predict import predict_command

        return predict_command(predictor, args)
