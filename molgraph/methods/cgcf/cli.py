"""``molgraph cgcf train``: train the CGCF flow (and its energy network) on QM9 DFT geometries.

Every field of :class:`~molgraph.methods.cgcf.config.CGCFConfig` is an option
(``--hidden 64 --max-minutes 30 ...``). The run folder gets ``model.pt`` (for
``molgraph conformers generate --method cgcf --model RUN``) and ``metrics.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from molgraph.methods.cgcf.config import CGCFConfig

    p = subparsers.add_parser("cgcf", help="CGCF conformer generation: train the flow + energy model",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cgcf_command", metavar="{train}")
    t = sub.add_parser("train", help="train on QM9 (Cormorant split) -> RUN/model.pt")
    t.add_argument("-o", "--output-dir", required=True, type=Path, help="run folder (must not exist or be empty)")
    t.add_argument("--data-root", type=Path, default=None, help="data root (default $MOLGRAPH_DATA or ../shared/data)")
    t.add_argument("--no-energy", action="store_true", help="train the flow only (no NCE energy network)")
    t.add_argument("--flow-from", type=Path, default=None, metavar="RUN",
                   help="reuse the frozen flow of this run (folder or model.pt) and train only the energy network; "
                        "the flow's settings and data order come from that run")
    t.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu", "auto"),
                   help="where the networks train: cpu (default), gpu (CUDA; an error when none is visible) or auto "
                        "(CUDA when visible, else cpu); sampling, pools and the saved model stay on the CPU")
    for f in dataclasses.fields(CGCFConfig):
        t.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=type(f.default), default=f.default,
                       help=f"{f.metadata.get('help', '')} (default {f.default})")
    t.set_defaults(func=run_train)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p


def run_train(args: argparse.Namespace) -> int:
    import torch

    from molgraph.io import error_exit
    from molgraph.methods.cgcf.config import CGCFConfig
    from molgraph.methods.cgcf.train import resolve_device, train_cgcf

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = CGCFConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(CGCFConfig)})
    try:
        config.validate()
        resolve_device(args.accelerator)  # a refused accelerator fails before any data is read or written
        torch.manual_seed(config.seed)
        train_cgcf(config, args.output_dir, data_root=args.data_root, energy=not args.no_energy,
                   flow_from=args.flow_from, say=lambda msg: print(msg, flush=True), accelerator=args.accelerator)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError) as exc:
        return error_exit(str(exc))
    return 0
