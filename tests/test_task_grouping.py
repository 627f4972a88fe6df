"""Task grouping (TAG) and transference: lookahead affinities against a brute-force lookahead on
a two-task toy, the group search against exhaustive search, PCGrad on a hand case."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from molgraph.train.task_grouping import (
    group_score,
    lookahead_affinity,
    pcgrad,
    random_groupings,
    select_groups,
    serving_group,
)


class _Batch:
    def __init__(self, x, y):
        self.x, self.y = x, y


class _Toy(nn.Module):
    """A shared trunk and one output column per task."""

    def __init__(self, tasks: int = 2):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
        self.head = nn.Linear(4, tasks)

    def forward(self, b):
        return self.head(self.trunk(b.x))


def _losses(model, b):
    out = model(b)
    mask = ~torch.isnan(b.y)
    err = torch.where(mask, (out - torch.nan_to_num(b.y)) ** 2, torch.zeros_like(out))
    n = mask.sum(0)
    return torch.where(n > 0, err.sum(0) / n.clamp(min=1), torch.full_like(err[0], float("nan")))


def _data(seed=0, tasks=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 3, generator=g, dtype=torch.float64)
    y = torch.stack([x[:, 0] + 0.1 * k * x[:, 1] for k in range(tasks)], 1)
    return _Batch(x, y)


def test_affinity_equals_brute_force_lookahead():
    torch.manual_seed(0)
    model, batch, lr = _Toy().double(), _data(), 0.3
    z = lookahead_affinity(model, _losses, batch, lr)
    base = _losses(model, batch).detach()
    for i in range(2):
        clone = copy.deepcopy(model)
        opt = torch.optim.SGD(clone.parameters(), lr=lr)
        _losses(clone, batch)[i].backward()
        opt.step()
        after = _losses(clone, batch).detach()
        np.testing.assert_allclose(z[i], (1 - after / base).numpy(), rtol=1e-10)
    assert z[0, 0] > 0 and z[1, 1] > 0  # a step on a task lowers its own loss
    # the model itself is untouched
    torch.testing.assert_close(_losses(model, batch).detach(), base)


def test_unlabelled_task_gives_nan_row_and_column():
    torch.manual_seed(0)
    model, batch = _Toy(3).double(), _data(tasks=3)
    batch.y[:, 2] = float("nan")
    z = lookahead_affinity(model, _losses, batch, 0.1)
    assert np.isnan(z[2]).all() and np.isnan(z[:, 2]).all()
    assert np.isfinite(z[:2, :2]).all()


def test_group_score_exact():
    z = np.array([[0.0, 0.4, -0.2], [0.1, 0.0, 0.3], [0.5, -0.1, 0.0]])
    # group {0, 1}: onto 0 from 1 = 0.1, onto 1 from 0 = 0.4; {2} alone: 0
    assert group_score(z, [[0, 1], [2]]) == pytest.approx(0.5)
    # {0, 1, 2}: onto 0 = (0.1 + 0.5) / 2, onto 1 = (0.4 - 0.1) / 2, onto 2 = (-0.2 + 0.3) / 2
    assert group_score(z, [[0, 1, 2]]) == pytest.approx(0.3 + 0.15 + 0.05)
    assert group_score(z, [[0, 1]]) == -np.inf  # task 2 uncovered
    assert serving_group(z, [[0, 1], [0, 2], [2]]) == [1, 0, 2]  # alone (0) beats -0.2 from task 0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [2, 3])
def test_group_search_reaches_the_exhaustive_optimum(seed, k):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, (5, 5))
    subsets = [c for r in range(1, 6) for c in itertools.combinations(range(5), r)]
    best = max(group_score(z, list(gs)) for gs in itertools.combinations(subsets, k))
    assert group_score(z, select_groups(z, k, seed=seed)) == pytest.approx(best)


def test_random_groupings_are_partitions():
    for groups in random_groupings(12, 3, 5, seed=0):
        assert len(groups) == 3 and all(groups)
        assert sorted(sum(groups, [])) == list(range(12))


def test_pcgrad_hand_case():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    # g1.g2 = -1: g1 -> g1 - (-1 / 2) g2 = (0.5, 0.5); g2 -> g2 - (-1 / 1) g1 = (0, 1)
    out = pcgrad([g1, g2], np.random.default_rng(0))
    torch.testing.assert_close(out, torch.tensor([0.5, 1.5]))
    # no conflict: the plain sum
    torch.testing.assert_close(pcgrad([g1, torch.tensor([1.0, 1.0])], np.random.default_rng(0)), torch.tensor([2.0, 1.0]))


def test_callbacks_run_inside_the_shared_trainer(tmp_path):
    """A short Tox21 run (3 tasks): the affinity callback records a finite matrix and writes its
    files; the transference callback picks a candidate at every step."""
    import json

    import pandas as pd

    from molgraph.data.registry import dataset_path
    from molgraph.methods.property.config import TrainConfig
    from molgraph.train.runner import run_training
    from molgraph.train.task_grouping import TaskAffinityCallback, TransferenceCallback

    df = pd.read_csv(dataset_path("tox21"))[:200]
    path = tmp_path / "tox.csv"
    tasks = ["NR-AR", "NR-AhR", "SR-MMP"]
    df[["smiles", *tasks]].to_csv(path, index=False)
    affinity = TaskAffinityCallback(every=2, out_dir=tmp_path / "aff")
    transfer = TransferenceCallback(seed=0)
    cfg = TrainConfig(input=str(path), smiles_column="smiles", target_columns=tasks, task_type="classification",
                      epochs=1, batch_size=32, output_dir=str(tmp_path / "run"), split="random",
                      hidden_dim=16, ffn_hidden_dim=16, accelerator="cpu", progress=False)
    run_training(cfg, callbacks=[affinity, transfer])
    z = affinity.affinity
    assert z.shape == (3, 3) and np.isfinite(np.diag(z)).all()
    saved = json.loads((tmp_path / "aff" / "task_affinity.json").read_text())
    assert saved["tasks"] == tasks and saved["steps_recorded"] == affinity.steps >= 2
    assert (tmp_path / "aff" / "task_affinity.png").is_file()
    assert sum(transfer.chosen.values()) == 5  # 160 training rows / 32: one pick per optimizer step


def test_cli_records_affinities_and_groups_tasks(tmp_path, capsys):
    """molgraph train --task-affinity-every, then molgraph tasks group; bad settings fail before any write."""
    import json

    import pandas as pd

    from molgraph.cli.main import main
    from molgraph.data.registry import dataset_path

    df = pd.read_csv(dataset_path("tox21"))[:160]
    path = tmp_path / "tox.csv"
    tasks = ["NR-AR", "NR-AhR", "SR-MMP", "SR-ARE"]
    df[["smiles", *tasks]].to_csv(path, index=False)
    base = ["train", "-i", str(path), "-s", "smiles", "--target-columns", *tasks, "-t", "classification",
            "--hidden-dim", "16", "--ffn-hidden-dim", "16", "--epochs", "1", "-b", "32", "--no-progress"]
    run = tmp_path / "run"
    assert main([*base, "--task-affinity-every", "1", "--transference", "-o", str(run)]) == 0
    saved = json.loads((run / "task_affinity.json").read_text())
    assert saved["tasks"] == tasks and saved["steps_recorded"] == 4
    assert main(["tasks", "group", str(run), "--groups", "2"]) == 0
    groups = json.loads((run / "groups_2.json").read_text())
    assert len(groups["groups"]) == 2 and set(groups["serving_group"]) == set(tasks)
    assert all(t in groups["groups"][k] for t, k in groups["serving_group"].items())
    assert "--target-columns" in groups["train_commands"][0]
    # never overwritten; bad settings name themselves, before a run folder is made
    assert main(["tasks", "group", str(run), "--groups", "2"]) != 0
    assert main(["tasks", "group", str(run), "--groups", "9", "-o", str(tmp_path / "g.json")]) != 0
    one = ["train", "-i", str(path), "-s", "smiles", "--target-columns", "NR-AR", "-t", "classification",
           "--task-affinity-every", "5", "-o", str(tmp_path / "bad")]
    assert main(one) != 0 and not (tmp_path / "bad").exists()
    err = capsys.readouterr().err
    assert "needs at least 2 targets" in err and "exists; not overwritten" in err
