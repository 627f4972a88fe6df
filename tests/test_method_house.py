"""One house for every method: a method defined outside the package trains, predicts and resumes
through the real command line; the trainer imports no method; molgraph 0.1 model files load."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"

TOY_METHOD = textwrap.dedent('''
    """A toy method: the heavy-atom count of a molecule, learned from its atoms' features."""
    from __future__ import annotations

    import csv
    from dataclasses import dataclass, field

    import numpy as np
    import torch

    from molgraph.registry import METHODS
    from molgraph.train.method import Method, Prepared
    from molgraph.train.settings import SectionedConfig, TrainerSettings, setting
    from molgraph.train.task import Task


    @dataclass
    class ToyData:
        input: str | None = setting(None, flags=("-i",), help="CSV with a smiles column", path=True)


    @dataclass
    class ToyNet:
        hidden: int = setting(8, help="hidden width", minimum=1)


    @dataclass(init=False, eq=False, repr=False)
    class ToyConfig(SectionedConfig):
        data: ToyData = field(default_factory=ToyData)
        net: ToyNet = field(default_factory=ToyNet)
        train: TrainerSettings = field(default_factory=TrainerSettings)


    class AtomSum(torch.nn.Module):
        """Per-atom MLP on the node features, summed per molecule: (B, 1)."""

        def __init__(self, in_dim: int, hidden: int):
            super().__init__()
            self.mlp = torch.nn.Sequential(torch.nn.Linear(in_dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

        def forward(self, batch):
            out = torch.zeros(int(batch.num_graphs), 1)
            return out.index_add(0, batch.batch, self.mlp(batch.x.float()))


    class ToyTask(Task):
        def training_step(self, batch, batch_idx):
            loss = torch.nn.functional.mse_loss(self.model(batch), batch.y)
            self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=int(batch.num_graphs))
            return loss

        def validation_step(self, batch, batch_idx):
            loss = torch.nn.functional.mse_loss(self.model(batch), batch.y)
            self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=int(batch.num_graphs))


    def _graphs(smiles):
        """The featurizer, the collated graphs and each molecule's heavy-atom count (B, 1)."""
        from molgraph.data.collated import CollatedGraphs
        from molgraph.featurizers import MolGraphFeaturizer
        from molgraph.featurizers.batch import iter_featurize

        feat = MolGraphFeaturizer.from_preset("multihot")
        arrays = [a for _, a in iter_featurize(smiles, feat, errors="raise")]
        counts = torch.tensor([[float(len(a.x))] for a in arrays])
        return feat, CollatedGraphs.from_arrays(arrays), counts


    def _read(path):
        with open(path, newline="") as fh:
            return [row["smiles"] for row in csv.DictReader(fh)]


    @dataclass
    class ToyPrepared(Prepared):
        atom_dim: int = 0


    class ToyMethod(Method):
        name = "toy"
        help = "heavy-atom counts from atom features (a test method)"
        config_class = ToyConfig
        run_files = ("toy_notes.txt",)

        def prepare(self, config, *, run_dir, resume, say):
            from molgraph.data.loader import GraphBatcher
            from molgraph.train.datamodule import GraphDataModule

            feat, graphs, counts = _graphs(_read(config.input))
            n = len(graphs)
            dm = GraphDataModule(GraphBatcher(graphs, counts), np.arange(n - 4), np.arange(n - 4, n),
                                 batch_size=config.batch_size, data_seed=0)
            return ToyPrepared(datamodule=dm, n_train=n - 4, atom_dim=feat.atom_dim)

        def write_start(self, config, prepared, run_dir):
            (run_dir / "toy_notes.txt").write_text(f"atom_dim {prepared.atom_dim}\\n")

        def build_model(self, config, prepared):
            return AtomSum(prepared.atom_dim, config.hidden)

        def build_task(self, config, prepared, model, *, member):
            return ToyTask(model, schedule="constant", max_lr=config.max_lr, warmup_epochs=0.0, seed=config.seed)

        def finish(self, config, prepared, models, run_dir, *, say):
            return {"val": {"n": 4}}, {"atom_dim": prepared.atom_dim, "hidden": config.hidden}

        def load(self, section, payload):
            model = AtomSum(section["atom_dim"], section["hidden"])
            model.load_state_dict(payload["members"][0])
            return model.eval()

        def predict_command(self, predictor, args):
            smiles = _read(args.input)
            _, graphs, _ = _graphs(smiles)
            from molgraph.data.loader import GraphBatcher

            with torch.no_grad():
                pred = predictor(GraphBatcher(graphs)(np.arange(len(graphs))))[:, 0].numpy()
            with open(args.output, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["smiles", "heavy_atoms_pred"])
                w.writerows(zip(smiles, pred.tolist()))
            return 0


    METHODS.register("toy", ToyMethod())
''')


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "molgraph.cli.main", *args], env=env, cwd=env["TOY_CWD"],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The toy method's module in a temporary folder, imported (so registered) in this process."""
    import importlib

    from molgraph.registry import METHODS

    (tmp_path / "toy_method.py").write_text(TOY_METHOD)
    smiles = pd.read_csv(REPO / "datasets" / "esol" / "delaney-processed.csv")["smiles"].tolist()[:40]
    pd.DataFrame({"smiles": smiles}).to_csv(tmp_path / "mols.csv", index=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    sys.modules.pop("toy_method", None)
    importlib.import_module("toy_method")
    yield tmp_path
    METHODS.unregister("toy")
    sys.modules.pop("toy_method", None)


def test_a_method_from_outside_the_package_trains_predicts_and_resumes(toy, capsys):
    from molgraph.cli.main import main
    from molgraph.registry import METHODS

    with pytest.raises(SystemExit):
        main(["train", "--method", "toy", "--help"])
    help_text = capsys.readouterr().out
    assert "--hidden" in help_text and "hidden width" in help_text  # options from its dataclass
    assert "--smiles-column" not in help_text  # the property method's options are not offered

    assert main(["train", "--method", "toy", "-i", "mols.csv", "--hidden", "0", "-o", "run"]) != 0
    assert "hidden must be >= 1" in capsys.readouterr().err and not (toy / "run").exists()

    common = ["-i", "mols.csv", "--hidden", "4", "--batch-size", "8", "--max-lr", "0.01", "--accelerator", "cpu",
              "--no-progress"]
    assert main(["train", "--method", "toy", *common, "--epochs", "2", "-o", "run"]) == 0
    run = toy / "run"
    saved = (run / "config.toml").read_text()
    assert 'method = "toy"' in saved and "[net]" in saved and "hidden = 4" in saved
    assert (run / "toy_notes.txt").read_text().startswith("atom_dim ")

    assert main(["predict", "--model", "run", "-i", "mols.csv", "-o", "preds.csv"]) == 0
    preds = pd.read_csv(toy / "preds.csv")
    assert len(preds) == 40 and np.isfinite(preds["heavy_atoms_pred"]).all()

    # an interrupted run: the member's epochs are in last.ckpt, its final weights and the model file not yet written
    (run / "checkpoints" / "member_0" / "best_weights.pt").unlink()
    (run / "model.pt").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", "run", "--epochs", "4"]) == 0  # the method comes from config.toml
    second = pd.read_csv(run / "logs" / "member_0" / "version_1" / "metrics.csv")
    assert sorted(second["epoch"].dropna().astype(int).unique()) == [2, 3]  # it went on from epoch 2
    assert (run / "model.pt").is_file()

    # without the method registered, the model file says which method it needs and how to get it
    METHODS.unregister("toy")
    assert main(["predict", "--model", "run", "-i", "mols.csv", "-o", "again.csv"]) != 0
    err = capsys.readouterr().err
    assert "method 'toy'" in err and "MOLGRAPH_PLUGINS" in err


def test_a_plugin_named_in_the_environment_is_found_by_the_console_command(toy):
    # the fixture's in-process registration plays no part here: a fresh process finds the
    # method through $MOLGRAPH_PLUGINS alone
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(toy), str(REPO), env.get("PYTHONPATH", "")])
    env["MOLGRAPH_PLUGINS"] = "toy_method"
    env["TOY_CWD"] = str(toy)
    out = _cli(["train", "--method", "toy", "--help"], env)
    assert out.returncode == 0 and "--hidden" in out.stdout, out.stderr
    env["MOLGRAPH_PLUGINS"] = "no_such_plugin_module"
    out = _cli(["train", "--help"], env)
    assert out.returncode != 0 and "no_such_plugin_module" in out.stderr


def test_importing_the_trainer_pulls_in_no_method():
    code = ("import sys, molgraph.train, molgraph.train.runner, molgraph.train.settings; "
            "print(sorted(m for m in sys.modules if m.startswith('molgraph.methods')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_a_model_file_of_molgraph_0_1_predicts_as_it_did(tmp_path):
    from molgraph.cli.main import main
    from molgraph.methods.property.predict import Predictor
    from molgraph.train.checkpoint import load_model_file

    legacy = DATA / "model_molgraph_0.1_esol_tiny.pt"
    payload = load_model_file(legacy)
    assert payload["method"] == "property" and payload["converted_from"] == "molgraph.model/1"
    expected = pd.read_csv(DATA / "model_molgraph_0.1_esol_tiny_predictions.csv")
    inputs = tmp_path / "in.csv"
    expected[["smiles"]].to_csv(inputs, index=False)
    assert main(["predict", "--model", str(legacy), "-i", str(inputs), "-o", str(tmp_path / "out.csv")]) == 0
    got = pd.read_csv(tmp_path / "out.csv")
    col = "measured log solubility in mols per litre"
    np.testing.assert_allclose(got[f"{col}_pred"], expected[f"{col}_pred"], rtol=1e-6, atol=1e-6)
    assert Predictor.load(legacy).target_names == [col]
