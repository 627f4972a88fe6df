"""Small parts of the trainer: batching, schedules, optimizers, settings files, DDP sharding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch

from molgraph.data.collated import CollatedGraphs
from molgraph.data.loader import GraphBatcher
from molgraph.featurizers import MolGraphFeaturizer
from molgraph.methods.property.config import TrainConfig, load_config_file, resolve_config, save_config
from molgraph.train.datamodule import GraphDataModule
from molgraph.train.optim import build_optimizer, lr_multiplier, register_optimizer

SMILES = ["CCO", "c1ccccc1O", "[Na+].[Cl-]", "C", "CC(=O)Nc1ccc(O)cc1", "C#N"]


@pytest.mark.parametrize("preset", ["multihot", "ogb"])
def test_batcher_equals_pyg_batch(preset):
    feat = MolGraphFeaturizer.from_preset(preset)
    graphs = CollatedGraphs.from_arrays([feat.arrays(s) for s in SMILES])
    y = torch.arange(len(SMILES), dtype=torch.float32)[:, None]
    extra = torch.randn(len(SMILES), 3)
    idx = [4, 0, 3, 2]
    ours = GraphBatcher(graphs, y, extra)(idx)
    ref = Batch.from_data_list([graphs[i] for i in idx])
    for key in ("x", "edge_index", "edge_attr", "batch", "ptr"):
        assert torch.equal(getattr(ours, key), getattr(ref, key)), key
    assert torch.equal(ours.y, y[idx]) and torch.equal(ours.extra, extra[idx])
    assert ours.num_graphs == 4 and ours.index.tolist() == idx
    # reverse edges stay at e ^ 1 inside a batch
    e = torch.arange(ours.edge_index.shape[1])
    assert torch.equal(ours.edge_index[:, e ^ 1], ours.edge_index.flip(0))


def test_batcher_rejects_misaligned_targets():
    feat = MolGraphFeaturizer.from_preset("ogb")
    graphs = CollatedGraphs.from_arrays([feat.arrays(s) for s in SMILES])
    with pytest.raises(ValueError, match="y has 2 rows for 6 graphs"):
        GraphBatcher(graphs, torch.zeros(2, 1))


def test_noam_and_cosine_schedules_exact():
    kw = dict(total_steps=100, warmup_steps=10, init_lr=1e-4, max_lr=1e-3, final_lr=1e-5)
    noam = lr_multiplier("noam", **kw)
    assert noam(0) == pytest.approx(0.1)
    assert noam(5) == pytest.approx((1e-4 + 0.5 * 9e-4) / 1e-3)
    assert noam(10) == pytest.approx(1.0)
    assert noam(55) == pytest.approx((1e-5 / 1e-3) ** 0.5)
    assert noam(100) == pytest.approx(1e-2)
    cos = lr_multiplier("cosine", **kw)
    assert cos(10) == pytest.approx(1.0)
    assert cos(55) == pytest.approx((1e-5 + 0.5 * (1e-3 - 1e-5)) / 1e-3)
    assert cos(100) == pytest.approx(1e-2)
    assert lr_multiplier("constant", **kw)(77) == 1.0
    lin = lr_multiplier("linear", **{**kw, "final_lr": 0.0})
    assert lin(10) == pytest.approx(1.0)
    assert lin(55) == pytest.approx(0.5)
    assert lin(100) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown lr schedule 'step'"):
        lr_multiplier("step", **kw)
    with pytest.raises(ValueError, match="needs final_lr > 0"):
        lr_multiplier("noam", **{**kw, "final_lr": 0.0})


def test_optimizer_registry():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(build_optimizer("adamw", params, lr=0.1), torch.optim.AdamW)
    sgd = build_optimizer("sgd", params, lr=0.1)
    assert sgd.defaults["momentum"] == 0.9
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        build_optimizer("lion", params, lr=0.1)
    register_optimizer("test_rmsprop", torch.optim.RMSprop, overwrite=True)
    assert isinstance(build_optimizer("test_rmsprop", params, lr=0.1), torch.optim.RMSprop)
    with pytest.raises(ValueError, match="already registered"):
        register_optimizer("adam", torch.optim.Adam)


def test_settings_round_trip_and_priority(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[data]\ndataset = "esol"\nsplit = "scaffold"\n[optim]\nepochs = 7\nbatch_size = 16\n')
    cfg = resolve_config(load_config_file(recipe), {"epochs": 3, "output_dir": str(tmp_path / "o"), "seed": None})
    assert (cfg.dataset, cfg.split, cfg.epochs, cfg.batch_size, cfg.seed) == ("esol", "scaffold", 3, 16, 0)
    save_config(cfg, tmp_path / "config.toml")
    again = resolve_config(load_config_file(tmp_path / "config.toml"), {})
    assert again == cfg
    dup = tmp_path / "dup.toml"
    dup.write_text("epochs = 1\n[optim]\nepochs = 2\n")
    with pytest.raises(ValueError, match="'epochs' appears twice"):
        load_config_file(dup)
    with pytest.raises(ValueError, match="exactly one of input"):
        TrainConfig(output_dir="x").validate()
    with pytest.raises(ValueError, match="mc_dropout_samples needs dropout"):
        TrainConfig(dataset="esol", output_dir="x", mc_dropout_samples=3).validate()


class _FakeTrainer:
    def __init__(self, world: int, rank: int):
        self.world_size, self.global_rank = world, rank


def test_ddp_shards_are_the_single_process_batches():
    """Rank r of W with batch b takes positions r, r+W, ... of the batch W*b of one process."""
    feat = MolGraphFeaturizer.from_preset("ogb")
    graphs = CollatedGraphs.from_arrays([feat.arrays(s) for s in SMILES * 4])  # 24 graphs
    batcher = GraphBatcher(graphs)

    def batches(world: int, rank: int, b: int, epoch: int) -> list[list[int]]:
        dm = GraphDataModule(batcher, range(24), range(2), batch_size=b, data_seed=3)
        dm.trainer = _FakeTrainer(world, rank)
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return [bt.index.tolist() for bt in loader]

    for epoch in (0, 1):
        single = batches(1, 0, 8, epoch)
        r0, r1 = batches(2, 0, 4, epoch), batches(2, 1, 4, epoch)
        for full, a, b in zip(single, r0, r1):
            assert sorted(full) == sorted(a + b)
    assert batches(1, 0, 8, 0) != batches(1, 0, 8, 1)  # a new order each epoch
    assert batches(1, 0, 8, 1) == batches(1, 0, 8, 1)  # and the same order for the same epoch


@pytest.mark.parametrize("recipe", sorted((Path(__file__).resolve().parents[1] / "models").glob("*.toml")),
                         ids=lambda p: p.stem)
def test_model_recipes_load_and_validate(recipe, tmp_path):
    cfg = resolve_config(load_config_file(recipe), {"output_dir": str(tmp_path / "run")}).validate()
    assert cfg.dataset is not None and cfg.model in recipe.stem  # named <model>[_<variant>]_<dataset>
    assert recipe.stem.endswith(cfg.dataset)


@pytest.mark.parametrize(("recipe", "setting"), [("gcn_graphnorm_hiv", "full"), ("gin_graphnorm_hiv", "full_gin")])
def test_graphnorm_hiv_recipe_is_the_benchmark_setting(recipe, setting, tmp_path, graphnorm_benchmark):
    # The recipe and the benchmark's measured setting must not drift apart: the README's numbers are the recipe's.
    root = Path(__file__).resolve().parents[1]
    s = graphnorm_benchmark.HIV_SETTINGS[setting]
    cfg = resolve_config(load_config_file(root / "models" / f"{recipe}.toml"),
                         {"output_dir": str(tmp_path / "run")}).validate()
    assert (cfg.model, cfg.norm, cfg.featurizer, cfg.residual) == (recipe.split("_")[0], "graph", "ogb", True)
    assert (cfg.hidden_dim, cfg.depth, cfg.ffn_layers, cfg.split) == (
        s["hidden_dim"], s["depth"], s["ffn_layers"], s["split"])
    # the layer switches the benchmark passes for this model (_hiv_job), unset ones as None
    if cfg.model == "gcn":
        assert cfg.gcn_propagation == s["gcn_propagation"]
    assert (cfg.gin_message_activation, cfg.gin_last_activation) == (
        (s.get("gin_message_activation"), s.get("gin_last_activation")) if cfg.model == "gin" else (None, None))
    assert (cfg.dropout, cfg.output_dropout, cfg.norm_eps) == (s["dropout"], s["output_dropout"], s["norm_eps"])
    assert (cfg.batch_size, cfg.epochs, cfg.schedule, cfg.max_lr, cfg.final_lr) == (
        s["batch_size"], s["epochs"], s["schedule"], s["lr"], 0.0)
