"""``molgraph tasks group RUN --groups K``: task groups from a run's recorded inter-task affinities.

A run trained with ``--task-affinity-every N`` holds ``task_affinity.json`` (TAG lookahead
affinities, Fifty et al. 2021). This command picks ``K`` groups that maximize the total affinity
onto each task from its group (``molgraph.train.task_grouping.select_groups``), names the group that
serves each task, writes ``groups.json`` (default: ``RUN/groups_K.json``) and prints one ``molgraph
train`` command per group: train one model per group, then take each task's predictions from the
model of its serving group.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

from molgraph.io import atomic_write_bytes, error_exit

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("tasks", help="multi-task tools: task groups from recorded affinities (TAG)",
                                   description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="tasks_command", metavar="ACTION", required=True)
    group = sub.add_parser("group", help="choose task groups from RUN/task_affinity.json",
                           description=__doc__.split("\n\n")[1])
    group.add_argument("run", help="a run folder trained with --task-affinity-every N")
    group.add_argument("--groups", type=int, required=True, help="number of groups K")
    group.add_argument("--restarts", type=int, default=64, help="random starts of the group search (default 64)")
    group.add_argument("--seed", type=int, default=0, help="seed of the group search (default 0)")
    group.add_argument("-o", "--output", help="groups JSON to write (default RUN/groups_K.json; never overwritten)")
    group.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from molgraph.train.task_grouping import group_score, select_groups, serving_group

    run_dir = Path(args.run)
    path = run_dir / "task_affinity.json"
    if not path.is_file():
        return error_exit(f"{path}: not found; train the run with --task-affinity-every N to record affinities")
    try:
        data = json.loads(path.read_text())
        tasks = [str(t) for t in data["tasks"]]
        z = np.array([[np.nan if v is None else float(v) for v in row] for row in data["affinity"]])
    except (ValueError, KeyError, TypeError) as exc:
        return error_exit(f"{path}: not a task affinity file ({exc})")
    if z.shape != (len(tasks), len(tasks)):
        return error_exit(f"{path}: affinity is {z.shape}, expected {len(tasks)} x {len(tasks)} for its tasks")
    if not 1 <= args.groups <= len(tasks):
        return error_exit(f"--groups must be between 1 and the number of tasks ({len(tasks)}), got {args.groups}")
    if args.restarts < 1:
        return error_exit(f"--restarts must be >= 1, got {args.restarts}")
    out = Path(args.output) if args.output else run_dir / f"groups_{args.groups}.json"
    if out.exists():
        return error_exit(f"{out} exists; not overwritten (give another -o)")
    groups = select_groups(z, args.groups, restarts=args.restarts, seed=args.seed)
    serving = serving_group(z, groups)
    config = run_dir / "config.toml"
    commands = []
    for k, g in enumerate(groups):
        cols = [tasks[i] for i in g]
        commands.append(shlex.join(["molgraph", "train", "--config", str(config), "--target-columns", *cols,
                                    "--task-affinity-every", "0", "-o", f"{run_dir}_group{k}"]))
    payload = {"run": str(run_dir), "tasks": tasks, "n_groups": args.groups,
               "groups": [[tasks[i] for i in g] for g in groups],
               "serving_group": {tasks[j]: serving[j] for j in range(len(tasks))},
               "score": group_score(z, groups), "train_commands": commands}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(payload, indent=2) + "\n").encode())
    for k, g in enumerate(payload["groups"]):
        served = [t for t in tasks if payload["serving_group"][t] == k]
        print(f"group {k}: {', '.join(g)}  (serves {', '.join(served) or 'none'})")
    print(f"total affinity onto the tasks: {payload['score']:.4f}; written {out}")
    for c in commands:
        print(c)
    return 0
