"""``cgcf``: learned conformer generation (continuous flow over distances + energy tilt) as a :class:`Method`.

Rooms: ``config`` (settings), ``graph`` (extended graph and distance targets), ``flow`` (the CNF,
torchdiffeq solvers, Hutchinson trace), ``distgeom`` (distances -> 3D with chirality),
``energy`` (the NCE energy network), ``data`` (QM9 DFT geometries), ``train`` (both stages),
``model`` (sampling, scoring, the model file), ``cli`` (``molgraph cgcf train``).

CGCF does not train through the shared Lightning trainer (``molgraph train``): its two stages
(maximum likelihood through an ODE solver, then NCE against the frozen flow's samples) run in
``molgraph cgcf train``. Generation is ``molgraph conformers generate --method cgcf --model RUN``.
"""

from __future__ import annotations

import argparse
from typing import Any

from molgraph.train.method import Method

__all__ = ["CGCFMethod"]


class CGCFMethod(Method):
    """CGCF (Xu et al., ICLR 2021): conformers from a distance flow + energy model, beside ETKDG."""

    name = "cgcf"
    help = ("learned conformer generation (CGCF: continuous flow on distances + NCE energy); "
            "train with `molgraph cgcf train`, generate with `molgraph conformers generate --method cgcf`")
    config_class = None
    section_version = 1
    commands = ("molgraph.methods.cgcf.cli",)

    def load(self, section: dict[str, Any], payload: dict[str, Any]) -> Any:
        from molgraph.methods.cgcf.model import model_from_payload

        return model_from_payload(payload)

    def predict_command(self, predictor: Any, args: argparse.Namespace) -> int:
        """A CGCF model makes conformers, not predictions: say which command does."""
        from molgraph.io import error_exit

        return error_exit(f"{args.model} is a CGCF conformer model: generate conformers with "
                          f"`molgraph conformers generate -i {args.input} -o OUT.sdf --method cgcf --model {args.model}`")
