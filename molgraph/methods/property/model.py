"""Molecular property prediction: graph encoder -> readout -> feed-forward head.

:class:`PropertyModel` is rebuilt from its :attr:`~PropertyModel.config` (a JSON-serializable
dict of its constructor arguments) plus a state dict, so a checkpoint needs no pickled code::

    model = PropertyModel(num_tasks=1, atom_dim=72, bond_dim=14)
    blob = {"config": model.config, "state_dict": model.state_dict()}
    clone = PropertyModel(**blob["config"]); clone.load_state_dict(blob["state_dict"])
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from molgraph.featurizers import MolGraphFeaturizer
from molgraph.registry import ENCODERS, MODELS
from molgraph.nn import FFN, PROPAGATIONS, BondMessagePassing, GCNEncoder, GINEEncoder, InputEncoder, Readout

__all__ = ["ENCODERS", "MODEL_PRESETS", "PropertyModel", "build_model", "featurizer_input_kwargs"]



# Encoders of PropertyModel: name -> builder(config, atom_in, bond_in) -> module with the shared
# forward(x, edge_index, edge_attr, batch, batch_size) -> (N, hidden_dim). A builder with
# ``embeds_inputs = True`` embeds index-encoded features itself (the OGB baselines' per-layer bond
# tables); otherwise PropertyModel embeds them first. A new encoder is one registration here or in
# a plugin; PropertyModel never names one.
def _dmpnn(c: dict[str, Any], atom_in: int, bond_in: int) -> nn.Module:
    return BondMessagePassing(atom_in, bond_in, c["hidden_dim"], c["depth"], c["dropout"], c["activation"])


def _gcn(c: dict[str, Any], atom_in: int, bond_in: int) -> nn.Module:
    return GCNEncoder(
        c["atom_dim"], c["bond_dim"], c["hidden_dim"], c["depth"], c["dropout"],
        norm=c["norm"] or ("batch" if c["batch_norm"] else "none"), activation=c["activation"],
        residual=c["residual"], atom_cardinalities=c["atom_cardinalities"],
        bond_cardinalities=c["bond_cardinalities"], norm_eps=c["norm_eps"], propagation=c["gcn_propagation"],
    )


def _gine(c: dict[str, Any], atom_in: int, bond_in: int) -> nn.Module:
    return GINEEncoder(
        c["atom_dim"], c["bond_dim"], c["hidden_dim"], c["depth"], c["dropout"],
        batch_norm=c["batch_norm"], activation=c["activation"], norm=c["norm"], residual=c["residual"],
        atom_cardinalities=c["atom_cardinalities"], bond_cardinalities=c["bond_cardinalities"],
        norm_eps=c["norm_eps"], message_activation=c["gin_message_activation"],
        last_activation=c["gin_last_activation"],
    )


def _graph_transformer(c: dict[str, Any], atom_in: int, bond_in: int) -> nn.Module:
    from molgraph.nn.graph_transformer import build_graph_transformer

    return build_graph_transformer({**c, **(c.get("encoder_options") or {})}, atom_in, bond_in)


# the options the graph transformer takes through encoder_options (GraphTransformerEncoder's kwargs)
_graph_transformer.options = ("heads", "norm_first", "pe", "pe_kind", "pe_dim", "lap_sign", "spd_bias",  # type: ignore[attr-defined]
                              "max_spd", "bond_bias", "ffn_mult", "attn_dropout")
_gcn.embeds_inputs = True  # type: ignore[attr-defined]
_gine.embeds_inputs = True  # type: ignore[attr-defined]
ENCODERS.register("dmpnn", _dmpnn, help="directed bond message passing (chemprop v2's BondMessagePassing)")
ENCODERS.register("gine", _gine, help="GIN with bond features, GINEConv (Hu et al. 2020)")
ENCODERS.register("gcn", _gcn, help="GCN with bond features in the messages (the OGB baseline)")
ENCODERS.register("graph_transformer", _graph_transformer,
                  help="graph transformer: Pre-LN blocks, bond and shortest-path attention biases, TUPE positions")


def featurizer_input_kwargs(featurizer: MolGraphFeaturizer) -> dict[str, Any]:
    """The input arguments of :class:`PropertyModel` that match ``featurizer``'s output.

    Returns:
        ``atom_dim``, ``bond_dim``, and ``atom_cardinalities``/``bond_cardinalities`` (lists for
        index-encoded featurizers such as ``"ogb"``, ``None`` for float ones such as
        ``"multihot"``).
    """

    def cards(f: Any) -> list[int] | None:
        return [int(c) for c in f.cardinalities] if f.encoding == "index" else None

    return {
        "atom_dim": int(featurizer.atom_dim),
        "bond_dim": int(featurizer.bond_dim),
        "atom_cardinalities": cards(featurizer.atom_featurizer),
        "bond_cardinalities": cards(featurizer.bond_featurizer),
    }


class PropertyModel(nn.Module):
    """Graph-level property predictor: ``batch -> (B, num_tasks)`` raw outputs.

    Pipeline: optional input embedding (index-encoded features for D-MPNN, :class:`InputEncoder`
    to ``hidden_dim``; GCN and GINE embed them themselves, bonds per layer as in the OGB
    baselines) -> encoder (:class:`BondMessagePassing`, :class:`GINEEncoder` or
    :class:`GCNEncoder`, ``(N, hidden_dim)``) -> :class:`Readout` (``(B, hidden_dim)``) -> concatenate
    ``batch.extra`` (``(B, extra_dim)``) if ``extra_dim > 0`` -> :class:`FFN` (``(B, num_tasks)``).

    Outputs are raw: logits for classification, (scaled) values for regression; losses and
    target scaling belong to the training code.

    Args (keyword-only):
        num_tasks: output columns.
        atom_dim, bond_dim: input feature widths (columns of ``x`` / ``edge_attr``).
        encoder: ``"dmpnn"``, ``"gine"`` or ``"gcn"`` (:class:`GCNEncoder`).
        hidden_dim: encoder width (and embedding width for index-encoded input).
        depth: message-passing steps (D-MPNN, chemprop's count) or GINE layers.
        dropout: dropout in the encoder and the head.
        readout: ``"sum"``, ``"mean"``, ``"max"``, ``"attention"`` or ``"norm"``.
        ffn_hidden_dim, ffn_layers: head width and number of hidden layers.
        extra_dim: width of molecule-level features in ``batch.extra`` (0: none).
        atom_cardinalities, bond_cardinalities: per-column vocabulary sizes when ``x`` /
            ``edge_attr`` are index-encoded (int64); ``None`` for float input.
        batch_norm: batch normalization in GINE/GCN when ``norm`` is ``None`` (ignored by D-MPNN).
        norm: GINE's and GCN's normalization, ``"graph" | "batch" | "layer" | "instance" | "none"``
            (:mod:`molgraph.nn.norm`; ``None``: from ``batch_norm``; ignored by D-MPNN).
        activation: activation name everywhere.
        residual: GINE/GCN add each layer's input to its output (ignored by D-MPNN). The GraphNorm
            reference's molecule GCN/GIN have it; with a per-graph norm (``graph``/``instance``) on
            the last layer and a mean readout it is what keeps molecules apart: without it the
            GCN's pooled embedding starts out the same for every molecule (tested), GINE's carries
            only the shape of each feature's distribution after the ReLU.
        norm_eps: ``eps`` of GINE's and GCN's norms (``None``: 1e-5, each norm's default).
        gcn_propagation: the GCN's layer, ``"symmetric"`` (Kipf & Welling weights, the OGB baseline)
            or ``"mean"`` (the GraphNorm reference's molecule GCN; :class:`MeanBondConv`).
        gin_message_activation, gin_last_activation: GINE's ReLU on each message ``h_u + e_uv`` and
            after its last layer (both on by default; both off: the GraphNorm reference's molecule
            GIN; see :class:`GINEEncoder`). GINE only.
        output_dropout: dropout on the raw outputs (logits) while training (0: none). The GraphNorm
            reference's molecule models use 0.5: for a binary task each step then learns from a
            random half of the batch with doubled logits, the rest contributing a constant loss.
            Evaluation is unchanged (ROC-AUC does not see the scale).
        head: how the outputs are read (:mod:`molgraph.methods.property.uncertainty`): ``"point"``
            (one value or logit per task), ``"mve"`` (mean and variance), ``"evidential"`` (the
            four Normal-Inverse-Gamma parameters) or ``"dirichlet"`` (two Beta concentrations);
            the output is ``(B, k * num_tasks)``, ``k`` blocks of ``num_tasks`` columns.
        encoder_options: settings only one encoder takes, by name (the graph transformer's
            ``heads``, ``pe``, ``pe_kind``, ``pe_dim``, ``norm_first``, ...; its builder's ``options``).
    """

    def __init__(
        self,
        *,
        num_tasks: int,
        atom_dim: int,
        bond_dim: int,
        encoder: str = "dmpnn",
        hidden_dim: int = 300,
        depth: int = 3,
        dropout: float = 0.0,
        readout: str = "mean",
        ffn_hidden_dim: int = 300,
        ffn_layers: int = 1,
        extra_dim: int = 0,
        atom_cardinalities: list[int] | None = None,
        bond_cardinalities: list[int] | None = None,
        batch_norm: bool = True,
        activation: str = "relu",
        norm: str | None = None,
        residual: bool = False,
        norm_eps: float | None = None,
        gcn_propagation: str = "symmetric",
        output_dropout: float = 0.0,
        gin_message_activation: bool = True,
        gin_last_activation: bool = True,
        head: str = "point",
        encoder_options: dict[str, Any] | None = None,
    ):
        super().__init__()
        from molgraph.methods.property.uncertainty import head_width

        width = head_width(head)  # raises on an unknown head
        if head != "point" and output_dropout > 0:
            raise ValueError(f"output_dropout drops raw logits; it does not apply to the {head!r} head")
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; choose one of {list(ENCODERS)}")
        allowed = getattr(ENCODERS[encoder], "options", ())
        unknown = sorted(set(encoder_options or {}) - set(allowed))
        if unknown:
            raise ValueError(f"encoder {encoder!r} takes no option(s) {unknown}"
                             + (f"; it takes {list(allowed)}" if allowed else ""))
        if gcn_propagation not in PROPAGATIONS:
            raise ValueError(f"unknown gcn_propagation {gcn_propagation!r}; choose one of {list(PROPAGATIONS)}")
        if gcn_propagation != "symmetric" and encoder != "gcn":
            raise ValueError(f"gcn_propagation={gcn_propagation!r} applies to the gcn encoder, not {encoder!r}")
        if not (gin_message_activation and gin_last_activation) and encoder != "gine":
            raise ValueError(f"gin_message_activation / gin_last_activation apply to the gine encoder, not {encoder!r}")
        if not 0.0 <= output_dropout < 1.0:
            raise ValueError(f"output_dropout must be in [0, 1), got {output_dropout}")
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        if extra_dim < 0:
            raise ValueError(f"extra_dim must be >= 0, got {extra_dim}")
        # Plain Python types only, so the config survives JSON and equals itself after a round trip.
        self._config: dict[str, Any] = {
            "num_tasks": int(num_tasks),
            "atom_dim": int(atom_dim),
            "bond_dim": int(bond_dim),
            "encoder": str(encoder),
            "hidden_dim": int(hidden_dim),
            "depth": int(depth),
            "dropout": float(dropout),
            "readout": str(readout),
            "ffn_hidden_dim": int(ffn_hidden_dim),
            "ffn_layers": int(ffn_layers),
            "extra_dim": int(extra_dim),
            "atom_cardinalities": None if atom_cardinalities is None else [int(c) for c in atom_cardinalities],
            "bond_cardinalities": None if bond_cardinalities is None else [int(c) for c in bond_cardinalities],
            "batch_norm": bool(batch_norm),
            "activation": str(activation),
            "norm": None if norm is None else str(norm),
            "residual": bool(residual),
            "norm_eps": None if norm_eps is None else float(norm_eps),
            "gcn_propagation": str(gcn_propagation),
            "output_dropout": float(output_dropout),
            "gin_message_activation": bool(gin_message_activation),
            "gin_last_activation": bool(gin_last_activation),
            "head": str(head),
            "encoder_options": dict(encoder_options or {}),
        }
        c = self._config

        # Index-encoded features have no numeric meaning, so they are embedded before the encoder;
        # float features go straight in (the encoders' first Linear is the embedding). The GCN
        # and GINE embed index input themselves, as the OGB baselines do (bond tables per layer).
        embeds_itself = getattr(ENCODERS[encoder], "embeds_inputs", False)
        self.atom_encoder = (
            InputEncoder(c["atom_dim"], c["hidden_dim"], c["atom_cardinalities"])
            if c["atom_cardinalities"] is not None and not embeds_itself else None
        )
        self.bond_encoder = (
            InputEncoder(c["bond_dim"], c["hidden_dim"], c["bond_cardinalities"])
            if c["bond_cardinalities"] is not None and not embeds_itself else None
        )
        atom_in = c["hidden_dim"] if self.atom_encoder is not None else c["atom_dim"]
        bond_in = c["hidden_dim"] if self.bond_encoder is not None else c["bond_dim"]

        self.encoder: nn.Module = ENCODERS[encoder](c, atom_in, bond_in)
        self.readout = Readout(c["readout"], c["hidden_dim"])
        self.ffn = FFN(
            c["hidden_dim"] + c["extra_dim"], width * c["num_tasks"], c["ffn_hidden_dim"],
            c["ffn_layers"], c["dropout"], c["activation"],
        )
        # A module (not F.dropout) so MC dropout and eval() treat it like every other dropout.
        self.output_dropout = nn.Dropout(c["output_dropout"]) if c["output_dropout"] > 0 else None

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments (a fresh, JSON-serializable dict): ``PropertyModel(**config)``."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._config.items()}

    @property
    def num_tasks(self) -> int:
        return self._config["num_tasks"]

    @property
    def embed_dim(self) -> int:
        """Width of :meth:`embed`'s output: ``hidden_dim + extra_dim``."""
        return self._config["hidden_dim"] + self._config["extra_dim"]

    def reset_parameters(self) -> None:
        """Re-initialize every parameter (and batch-norm statistics)."""
        # Each submodule resets its own children (InputEncoder's Xavier init must not be undone by
        # a later nn.Embedding.reset_parameters), so only the direct parts are called here.
        for part in (self.atom_encoder, self.bond_encoder, self.encoder, self.readout, self.ffn):
            if part is not None:
                part.reset_parameters()

    def _inputs(self, batch: Any) -> tuple[Tensor, Tensor]:
        x, edge_attr = batch.x, batch.edge_attr
        c = self._config
        if self.atom_encoder is not None:
            x = self.atom_encoder(x)
        elif c["atom_cardinalities"] is None and not x.is_floating_point():
            raise TypeError(
                "x is integer-typed (index-encoded features); build the model with atom_cardinalities "
                "(see featurizer_input_kwargs)"
            )
        if self.bond_encoder is not None:
            edge_attr = self.bond_encoder(edge_attr)
        elif c["bond_cardinalities"] is None and not edge_attr.is_floating_point():
            raise TypeError(
                "edge_attr is integer-typed (index-encoded features); build the model with "
                "bond_cardinalities (see featurizer_input_kwargs)"
            )
        return x, edge_attr

    def embed(self, batch: Any) -> Tensor:
        """The head's input: ``(B, hidden_dim + extra_dim)`` (readout, then ``batch.extra``).

        Args:
            batch: a PyG ``Batch`` (or a single ``Data``, treated as one graph) with ``x``,
                ``edge_index``, ``edge_attr`` and, when ``extra_dim > 0``, ``extra``
                ``(B, extra_dim)`` (store it per graph as ``(1, extra_dim)`` so batching stacks it).

        Raises:
            ValueError: ``extra`` is missing or has the wrong shape.
        """
        x, edge_attr = self._inputs(batch)
        index = batch.batch
        if index is None:  # a lone Data: one graph
            index = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            num_graphs = 1
        else:
            num_graphs = int(batch.num_graphs)
        h = self.encoder(x, batch.edge_index, edge_attr, index, num_graphs)  # (N, hidden_dim)
        g = self.readout(h, index, num_graphs)  # (B, hidden_dim)
        extra_dim = self._config["extra_dim"]
        if extra_dim:
            extra = getattr(batch, "extra", None)
            if extra is None:
                raise ValueError(
                    f"the model was built with extra_dim={extra_dim} but the batch has no 'extra' "
                    "attribute (molecule-level features, per graph of shape (1, extra_dim))"
                )
            if extra.dim() != 2 or tuple(extra.shape) != (num_graphs, extra_dim):
                raise ValueError(
                    f"batch.extra must have shape (num_graphs, extra_dim) = ({num_graphs}, {extra_dim}), "
                    f"got {tuple(extra.shape)} (store it per graph as (1, extra_dim))"
                )
            g = torch.cat((g, extra.to(g.dtype)), dim=1)
        return g

    def forward(self, batch: Any) -> Tensor:
        """``batch`` -> ``(B, k * num_tasks)`` raw outputs (no sigmoid/softmax, no unscaling; ``k = 1`` for the
        point head, see ``head``)."""
        out = self.ffn(self.embed(batch))
        return self.output_dropout(out) if self.output_dropout is not None else out

    def extra_repr(self) -> str:
        c = self._config
        return f"encoder={c['encoder']!r}, num_tasks={c['num_tasks']}, extra_dim={c['extra_dim']}"


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # chemprop v2 defaults (hidden 300, depth 3, FFN one hidden layer of 300, no dropout), with a
    # mean readout (chemprop's own default is "norm", the sum / 100; pass readout="norm" for it).
    "dmpnn": {
        "encoder": "dmpnn",
        "hidden_dim": 300,
        "depth": 3,
        "dropout": 0.0,
        "readout": "mean",
        "ffn_hidden_dim": 300,
        "ffn_layers": 1,
        "activation": "relu",
    },
    # Hu et al. 2020 GIN(E): 5 layers of 300, batch norm, mean pooling (their default readout).
    "gin": {
        "encoder": "gine",
        "hidden_dim": 300,
        "depth": 5,
        "dropout": 0.0,
        "readout": "mean",
        "ffn_hidden_dim": 300,
        "ffn_layers": 1,
        "batch_norm": True,
        "activation": "relu",
    },
}
# Hu et al. 2020 (OGB) GCN baseline: GIN's settings (5 x 300, batch norm, mean pooling) on the GCN block.
MODEL_PRESETS["gcn"] = {**MODEL_PRESETS["gin"], "encoder": "gcn"}
# a CPU-sized graph transformer: 4 Pre-LN blocks of 128 with 4 heads, TUPE positions from random-walk
# encodings (molgraph.nn.graph_transformer), mean readout
MODEL_PRESETS["graph_transformer"] = {
    "encoder": "graph_transformer",
    "hidden_dim": 128,
    "depth": 4,
    "dropout": 0.0,
    "readout": "mean",
    "ffn_hidden_dim": 128,
    "ffn_layers": 1,
    "activation": "relu",
}

_MODEL_HELP = {
    "dmpnn": "directed message passing (Yang et al. 2019), chemprop v2's sizes",
    "gin": "GIN with bond features (Hu et al. 2020), 5 x 300, batch norm",
    "gcn": "GCN with bond features (the OGB baseline), 5 x 300, batch norm",
    "graph_transformer": "graph transformer (Pre-LN, TUPE positions), 4 x 128, 4 heads",
}
for _name, _preset in MODEL_PRESETS.items():
    MODELS.register(_name, _preset, help=_MODEL_HELP[_name])


def build_model(name: str, **overrides: Any) -> PropertyModel:
    """A :class:`PropertyModel` from preset ``name`` with ``overrides`` on top.

    ``num_tasks``, ``atom_dim`` and ``bond_dim`` (and cardinalities for index-encoded input) are
    not in the presets and must be given.

    Raises:
        ValueError: unknown preset (the message lists the names).
        TypeError: a required argument is missing or an override is not a constructor argument.
    """
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(MODEL_PRESETS)}")
    kwargs = copy.deepcopy(MODEL_PRESETS[name])
    kwargs.update(overrides)
    return PropertyModel(**kwargs)
