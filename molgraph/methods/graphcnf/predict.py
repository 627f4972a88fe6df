"""A trained GraphCNF loaded from its model file: ``molgraph generate`` and ``molgraph predict``.

The model file holds everything needed: the network's constructor arguments and weights, the
atom vocabulary, the training set's length histogram (sizes of generated molecules) and the
canonical SMILES of the training molecules (novelty). ``molgraph generate --model RUN -n N -o
samples.csv`` writes one row per sample (``smiles`` empty when invalid, ``valid``, ``reason``,
``largest_fragment_smiles``, ``num_atoms``) and a report ``samples.report.json`` (validity,
validity of the largest fragment, uniqueness, novelty, invalid samples by reason, internal
diversity, sampling rate). ``molgraph predict --model RUN -i mols.csv -o out.csv`` gives each
molecule's negative log-likelihood bound in bits per atom (beta = 1; mean over
``--noise-samples`` draws of the encoder noise); molecules the model cannot represent get an
empty value and their reason in ``<OUT stem>.rejects.csv``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molgraph.data.dense_graphs import AtomVocabulary, DenseGraphBatcher, DenseMolGraphs
from molgraph.methods.graphcnf.model import GraphCNF
from molgraph.methods.graphcnf.sampling import generate_graphs, generation_metrics, judge

__all__ = ["GraphCNFGenerator", "add_predict_arguments", "predict_command", "write_samples"]


class GraphCNFGenerator:
    """A trained model with what sampling and scoring need.

    Args:
        model: the :class:`~molgraph.methods.graphcnf.model.GraphCNF` (set to eval mode).
        vocab: its atom vocabulary; length_hist: ``(N + 1,)`` training molecules per size;
        train_smiles: canonical SMILES of the training molecules (novelty).
    """

    def __init__(self, model: GraphCNF, vocab: AtomVocabulary, length_hist: Any, train_smiles: Any = ()):
        self.model = model.eval()
        self.vocab = vocab
        self.length_hist = np.asarray(length_hist, dtype=np.float64)
        self.train_smiles = set(train_smiles)

    @property
    def max_atoms(self) -> int:
        return int(self.length_hist.size - 1)

    @classmethod
    def from_section(cls, section: dict[str, Any], payload: dict[str, Any]) -> "GraphCNFGenerator":
        model = GraphCNF(**section["model_config"])
        model.load_state_dict(payload["members"][0])
        return cls(model, AtomVocabulary.from_list(section["vocab"]), section["length_hist"],
                   section.get("train_smiles", ()))

    def generate(self, n: int, *, seed: int = 0, batch_size: int = 256, temperature: float = 1.0
                 ) -> tuple[list, dict[str, Any]]:
        """``n`` samples: their verdicts (:class:`~molgraph.data.dense_graphs.GraphCheck`) and the report."""
        if n < 1:
            raise ValueError(f"the number of samples must be >= 1, got {n}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        t0 = time.perf_counter()
        types, adjs, lengths = generate_graphs(self.model, self.length_hist, n, seed=seed, batch_size=batch_size,
                                               temperature=temperature)
        t_graphs = time.perf_counter() - t0
        checks = judge(types, adjs, lengths, self.vocab)
        t_all = time.perf_counter() - t0
        report = generation_metrics(checks, self.train_smiles or None)
        report.update({"seed": int(seed), "temperature": float(temperature),
                       "graphs_per_second": n / t_graphs, "molecules_per_second": n / t_all,
                       "threads": torch.get_num_threads()})
        return checks, report

    def generate_file(self, output: Path, n: int, *, seed: int = 0, batch_size: int = 256,
                      temperature: float = 1.0) -> dict[str, Any]:
        """``molgraph generate``: sample ``n`` molecules into ``output`` (CSV) and its report; returns the report."""
        checks, report = self.generate(n, seed=seed, batch_size=batch_size, temperature=temperature)
        report["report_file"] = str(write_samples(checks, report, Path(output)))
        return report

    @torch.no_grad()
    def bits_per_atom(self, smiles: list[str], *, noise_samples: int = 4, seed: int = 0, batch_size: int = 128
                      ) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
        """Bits per atom of each SMILES (NaN for rejects) and the rejects ``(row, SMILES, reason)``."""
        from molgraph.methods.graphcnf.task import evaluate_bits

        graphs, rejects = DenseMolGraphs.from_smiles(smiles, vocab=self.vocab, max_atoms=self.max_atoms)
        out = np.full(len(smiles), np.nan)
        if len(graphs):
            batcher = DenseGraphBatcher(graphs)
            idx = np.arange(len(graphs))
            vals = np.mean([evaluate_bits(self.model, batcher, idx, seed=seed + k, batch_size=batch_size)
                            for k in range(max(noise_samples, 1))], axis=0)
            out[graphs.source_index] = vals
        return out, rejects


def write_samples(checks: list, report: dict[str, Any], output: Path) -> Path:
    """Write the samples CSV and ``<stem>.report.json`` beside it; returns the report's path."""
    import pandas as pd

    from molgraph.io import atomic_output

    frame = pd.DataFrame({
        "smiles": [c.smiles for c in checks],
        "valid": [bool(c.valid) for c in checks],
        "reason": [c.reason for c in checks],
        "largest_fragment_valid": [bool(c.fragment_valid) for c in checks],
        "largest_fragment_smiles": [c.fragment_smiles for c in checks],
        "num_atoms": [int(c.num_atoms) for c in checks],
    })
    with atomic_output(output, "w", newline="") as fh:
        frame.to_csv(fh, index=False)
    report_path = output.with_name(output.stem + ".report.json")
    with atomic_output(report_path, "w") as fh:
        json.dump(report, fh, indent=2)
    return report_path


def add_predict_arguments(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--input-smiles-column", dest="graphcnf_smiles_column", default="smiles",
                        help="graphcnf: SMILES column of a CSV input (default smiles)")
    parser.add_argument("--noise-samples", type=int, default=4,
                        help="graphcnf: encoder noise draws averaged per molecule (default 4)")


def predict_command(predictor: GraphCNFGenerator, args: argparse.Namespace) -> int:
    """Bits per atom of every molecule of ``args.input``."""
    import pandas as pd

    from molgraph.data.table import iter_molecule_inputs
    from molgraph.io import atomic_output, error_exit

    if args.output.exists() and not args.overwrite:
        return error_exit(f"{args.output} exists (use --overwrite to replace it)", 2)
    column = getattr(args, "graphcnf_smiles_column", "smiles")
    smiles = [s if isinstance(s, str) else "" for s in iter_molecule_inputs(args.input, column)]
    noise = int(getattr(args, "noise_samples", 4))
    if noise < 1:
        return error_exit(f"--noise-samples must be >= 1, got {noise}", 2)
    bits, rejects = predictor.bits_per_atom(smiles, noise_samples=noise, batch_size=args.batch_size)
    frame = pd.DataFrame({"smiles": smiles, "bits_per_atom": bits})
    with atomic_output(args.output, "w", newline="") as fh:
        frame.to_csv(fh, index=False)
    if rejects:
        path = args.output.with_name(args.output.stem + ".rejects.csv")
        pd.DataFrame(rejects, columns=["row", "smiles", "reason"]).to_csv(path, index=False)
        print(f"{len(rejects)} molecule(s) not scored: see {path}")
    print(f"wrote {args.output} ({len(smiles) - len(rejects)} molecules scored)")
    return 0
