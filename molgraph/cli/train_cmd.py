"""``molgraph train``: train a property model on a CSV or a bundled dataset.

Settings come from (lowest to highest priority) the defaults, ``--config FILE.toml`` and the
command line; the resolved settings are written to ``RUN_DIR/config.toml``. File keys are the
option metavars below in lower case (``--splits-file SPLIT_FILE`` -> ``split_file``), the fields of
``molgraph.train.TrainConfig``. ``molgraph train --resume RUN_DIR`` continues an interrupted
run from those settings alone.

Batch size is per process: with ``--devices N`` (or ``--num-nodes``), the effective batch is
N times larger. Several GPUs: ``molgraph train ... --accelerator gpu --devices 4``; several nodes:
start the same command on each node under SLURM (``srun``) or ``torchrun --nnodes M
--nproc-per-node N -m molgraph.cli.main train ... --devices N --num-nodes M``; RUN_DIR must be on
a file system all nodes share.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Iterator

from molgraph.cli.common import error_exit


class _Names:
    """``choices`` of an option, read from the registry that defines the names when first needed.

    The lists come from :func:`molgraph.train.config.setting_choices` (one definition per name
    list, shared with the settings check); the import is deferred because the registries pull in
    torch, which building the parser for every other command should not. Parsing a ``train``
    command tests membership; ``molgraph train --help`` lists the names (``%(choices)s``). Options
    using it set ``metavar``: argparse would list the choices while building the parser otherwise.
    """

    def __init__(self, setting: str) -> None:
        self.setting = setting

    def _names(self) -> tuple[str, ...]:
        from molgraph.train.config import setting_choices

        return setting_choices()[self.setting]

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def _message(exc: BaseException) -> str:
    """An exception's message with its notes (where a failed run says how to go on)."""
    # KeyError's str() adds quotes around the message
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return "\n".join([text, *getattr(exc, "__notes__", ())])


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    S = argparse.SUPPRESS  # "not given": lets the config file supply the value
    p = subparsers.add_parser(
        "train",
        help="train a property model (GIN or D-MPNN) and write a run folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=S,
    )
    d = p.add_argument_group("data")
    d.add_argument("-i", "--input", "--data-path", dest="input", help="CSV/TSV file with SMILES and targets")
    d.add_argument("-s", "--smiles-column", "--smiles-columns", dest="smiles_column", help="SMILES column")
    d.add_argument("--target-columns", nargs="+", help="target column(s)")
    d.add_argument("--dataset", help="a registry dataset instead of -i (see `molgraph datasets list`)")
    d.add_argument("--data-root", help="folder holding data-root datasets (default: $MOLGRAPH_DATA)")
    d.add_argument("-t", "--task-type", choices=_Names("task_type"), metavar="TASK_TYPE", help="%(choices)s")
    d.add_argument("--featurizer", choices=_Names("featurizer"), metavar="NAME",
                   help="atom/bond features: %(choices)s (default: multihot)")
    d.add_argument("--molecule-featurizers", "--features-generators", dest="molecule_featurizers", nargs="+",
                   metavar="NAME",
                   help="extra molecule-level features: rdkit_descriptors, morgan, morgan_count (rdkit_2d and "
                        "morgan_binary: chemprop's names), ngram (N-gram graph, W fitted on the training split) "
                        "or ngram:MODEL.npz (a fitted N-gram model, from `molgraph ngram embed --save-model`)")
    d.add_argument("--n-jobs", type=int, help="featurization processes")
    sp = p.add_argument_group("split")
    sp.add_argument("--split", "--split-type", dest="split", choices=_Names("split"), metavar="NAME",
                    help="%(choices)s (default: random; ogb_scaffold: the rule of OGB's ogbg-mol* splits, "
                         "ties latest first)")
    sp.add_argument("--split-sizes", nargs=3, type=float, metavar=("TRAIN", "VAL", "TEST"), help="default: 0.8 0.1 0.1")
    sp.add_argument("--splits-file", "--split-file", dest="split_file", help="a split file (JSON or CSV, file rows)")
    sp.add_argument("--data-seed", type=int, help="seed of the split and of the batch order (default 0)")
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=_Names("model"), metavar="NAME",
                   help="%(choices)s (default: dmpnn; gin, gcn: Hu et al. 2020 baselines)")
    m.add_argument("--hidden-dim", "--message-hidden-dim", dest="hidden_dim", type=int)
    m.add_argument("--depth", type=int, help="message-passing steps")
    m.add_argument("--dropout", type=float)
    m.add_argument("--readout", "--aggregation", dest="readout", choices=_Names("readout"), metavar="NAME",
                   help="molecule readout: %(choices)s (norm: sum / 100, chemprop's default)")
    m.add_argument("--norm", choices=_Names("norm"), metavar="NAME",
                   help="normalization of gin and gcn after each linear map: %(choices)s (graph: GraphNorm, "
                        "Cai et al. 2021; default batch)")
    m.add_argument("--residual", action=argparse.BooleanOptionalAction, default=None,
                   help="residual connections in gin and gcn (default: on with --norm graph or instance, else off)")
    m.add_argument("--norm-eps", type=float,
                   help="eps of the gin/gcn norms (default 1e-5); GraphNorm on small molecules may want more")
    m.add_argument("--gcn-propagation", choices=_Names("gcn_propagation"), metavar="NAME",
                   help="the gcn model's layer: symmetric (Kipf & Welling, the OGB baseline; default) or mean "
                        "(the GraphNorm reference's molecule GCN)")
    m.add_argument("--gin-message-activation", action=argparse.BooleanOptionalAction, default=None,
                   help="the gin model's ReLU on each message h_u + e_uv (default on, GINEConv; off: the "
                        "GraphNorm reference's molecule GIN)")
    m.add_argument("--gin-last-activation", action=argparse.BooleanOptionalAction, default=None,
                   help="the gin model's ReLU after its last layer (default on; off: Hu et al.'s code and the "
                        "GraphNorm reference's)")
    m.add_argument("--output-dropout", type=float,
                   help="dropout on the raw outputs (logits) while training (default 0; the GraphNorm "
                        "reference's molecule models use 0.5)")
    m.add_argument("--ffn-hidden-dim", type=int)
    m.add_argument("--ffn-num-layers", "--ffn-layers", dest="ffn_layers", type=int)
    o = p.add_argument_group("optimization")
    o.add_argument("--seed", "--pytorch-seed", dest="seed", type=int, help="model seed (default 0)")
    o.add_argument("--epochs", type=int, help="default 50")
    o.add_argument("--patience", type=int, help="early stopping after N epochs without improvement")
    o.add_argument("-b", "--batch-size", type=int, help="molecules per batch per process (default 64)")
    o.add_argument("--optimizer", choices=_Names("optimizer"), metavar="NAME", help="%(choices)s (default adam)")
    o.add_argument("--weight-decay", type=float)
    o.add_argument("--schedule", choices=_Names("schedule"), metavar="NAME",
                   help="LR schedule: %(choices)s (default noam)")
    o.add_argument("--warmup-epochs", type=float)
    o.add_argument("--init-lr", type=float)
    o.add_argument("--max-lr", type=float)
    o.add_argument("--final-lr", type=float)
    o.add_argument("--grad-clip", type=float, help="gradient norm clipping")
    o.add_argument("--metrics", "--metric", dest="metrics", nargs="+", choices=_Names("metrics"), metavar="NAME",
                   help="%(choices)s (those of the task type); the first one is the primary metric")
    o.add_argument("--monitor", "--tracking-metric", dest="monitor",
                   help="what selects the best epoch: val_loss (default) or val_<metric>")
    o.add_argument("--ensemble-size", type=int, help="deep ensemble of K models (default 1)")
    o.add_argument("--mc-dropout-samples", type=int, help="MC-dropout passes at prediction (needs --dropout)")
    h = p.add_argument_group("hardware")
    h.add_argument("--accelerator", help="cpu | gpu | auto (default auto)")
    h.add_argument("--devices", help="number of devices or a list like 0,1 (default 1)")
    h.add_argument("--num-nodes", type=int)
    h.add_argument("--strategy", help="Lightning strategy, e.g. ddp (default auto)")
    h.add_argument("--precision", help="e.g. 32-true, bf16-mixed")
    h.add_argument("--num-workers", type=int, help="DataLoader workers (default 0)")
    h.add_argument("--deterministic", action=argparse.BooleanOptionalAction,
                   help="torch deterministic algorithms (default off: CPU runs repeat exactly with the same "
                        "seeds and thread count anyway, and the deterministic scatter path is ~6x slower; "
                        "turn on for bit-repeatable GPU runs)")
    h.add_argument("--progress", action=argparse.BooleanOptionalAction, help="progress bar (default: on a terminal)")
    p.add_argument("--config", "--config-path", dest="config", type=Path, help="TOML settings file (a models/ recipe)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("-o", "--output-dir", "--save-dir", dest="output_dir", help="run folder to create")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from molgraph.train.config import load_config_file, resolve_config

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    values = {k: v for k, v in vars(args).items() if k not in ("func", "command", "config", "resume")}
    if "split_sizes" in values:
        values["split_sizes"] = list(values["split_sizes"])
    if "devices" in values:
        values["devices"] = str(values["devices"])
    resume = getattr(args, "resume", None)
    try:
        if resume is not None:
            saved = Path(resume) / "config.toml"
            if not saved.is_file():
                raise FileNotFoundError(f"--resume {resume}: no config.toml there, so it is not the folder of a "
                                        "molgraph train run")
            file_values = load_config_file(saved)
            if values.get("output_dir") not in (None, str(resume)):
                raise ValueError("--resume continues RUN_DIR in place; drop -o")
            values["output_dir"] = str(resume)
        else:
            file_values = load_config_file(args.config) if getattr(args, "config", None) else {}
        config = resolve_config(file_values, values)
    except (ValueError, FileNotFoundError) as exc:
        return error_exit(str(exc))
    try:
        config.validate()
    except ValueError as exc:
        if resume is None:
            return error_exit(str(exc))
        # the saved settings are bad (written by an older version, or edited): say how to mend them
        return error_exit(f"{Path(resume) / 'config.toml'}: {exc}\ngive a valid value on the command line with "
                          f"--resume (it overrides the saved one) or correct it in that file")

    from molgraph.train.runner import run_training

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)  # after import: Lightning sets INFO on import

    say = logging.getLogger("molgraph.train").info
    try:
        result = run_training(config, resume=resume is not None, say=say)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError) as exc:
        return error_exit(_message(exc))
    except KeyboardInterrupt as exc:
        return error_exit(str(exc) or f"interrupted; continue with: molgraph train --resume {config.output_dir}", code=130)
    if result is None:  # a non-zero DDP rank: rank 0 reports
        return 0
    primary = result.metrics["primary_metric"]
    for part in ("val", "test"):
        if part in result.metrics:
            scores = result.metrics[part]
            print(f"{part} {primary}: {scores[primary]:.4f}  " + json.dumps({k: round(v, 4) for k, v in scores.items() if "/" not in k and k != "n"}))
    print(f"run folder: {result.run_dir}  (model file: {result.model_path})")
    return 0
