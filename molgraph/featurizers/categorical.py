"""Categorical feature specifications shared by the atom and bond featurizers.

A featurizer is a list of :class:`Feature` s, each naming an RDKit property and its vocabulary,
plus an encoding:

* ``"index"``: one integer column per feature (the value's position in the vocabulary), for
  embedding tables (OGB's ``AtomEncoder``/``BondEncoder`` style). Output dtype int64.
* ``"onehot"``: concatenated one-hot blocks (boolean features take a single 0/1 column), plus
  continuous ``scalars`` appended at the end. Output dtype float32.

A value outside the vocabulary goes to the feature's extra "unknown" slot when it has one
(``unknown_slot=True``, code ``len(values)``); otherwise featurizing fails with a ``ValueError``
naming the item, the feature and the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import numpy as np

__all__ = ["CategoricalFeaturizer", "CheapGetter", "CompiledFeature", "Feature", "compile_features", "encode_columns"]


@dataclass(frozen=True)
class Feature:
    """One categorical feature.

    Attributes:
        name: the property's name in the owning featurizer's registry (e.g. ``"hybridization"``).
        values: the vocabulary, in code order. Enum-valued RDKit properties use the enum's name
            (``"SP3"``, ``"CHI_TETRAHEDRAL_CW"``), so configs stay readable and RDKit-version-free.
        unknown_slot: whether an out-of-vocabulary value gets its own extra code.
    """

    name: str
    values: tuple[Any, ...]
    unknown_slot: bool = True

    @property
    def cardinality(self) -> int:
        """Number of distinct codes (the embedding-table size for index encoding)."""
        return len(self.values) + int(self.unknown_slot)

    @property
    def is_bool(self) -> bool:
        return self.values == (False, True) and not self.unknown_slot

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values), "unknown_slot": self.unknown_slot}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Feature":
        return cls(config["name"], tuple(config["values"]), bool(config.get("unknown_slot", True)))


class CheapGetter(NamedTuple):
    """Reads a property through a cheaper RDKit getter whose values ``translate`` maps to the
    property's raw values (e.g. a bond's order as a float instead of its ``BondType`` enum, whose
    Boost conversion costs about five times more). Only valid where the translation is exact."""

    getter: Callable[[Any], Any]
    translate: dict[Any, Any]


@dataclass(frozen=True)
class CompiledFeature:
    """A feature bound to its RDKit getter and a raw-value -> code table."""

    feature: Feature
    getter: Callable[[Any], Any]
    table: dict[Any, int]
    unknown: int  # code for out-of-vocabulary values, -1 when the feature has no slot


def compile_features(
    features: Sequence[Feature],
    getters: dict[str, Callable[[Any], Any]],
    enum_types: dict[str, Any],
) -> list[CompiledFeature]:
    """Bind features to getters and build lookup tables keyed by the raw values RDKit returns.

    Enum-valued properties are keyed by the enum's integer value: RDKit's Boost enums are ``int``
    subclasses, so a getter's result looks up directly without a costly ``str()``/``int()``.
    """
    compiled = []
    for feat in features:
        if feat.name not in getters:
            known = ", ".join(sorted(getters))
            raise ValueError(f"unknown feature {feat.name!r}; known features: {known}")
        enum_type = enum_types.get(feat.name)
        table: dict[Any, int] = {}
        for code, value in enumerate(feat.values):
            if enum_type is not None:
                if value not in enum_type.names:
                    raise ValueError(f"feature {feat.name!r}: {value!r} is not an RDKit {enum_type.__name__}")
                table[int(enum_type.names[value])] = code
            else:
                table[value] = code
        compiled.append(CompiledFeature(feat, getters[feat.name], table, len(feat.values) if feat.unknown_slot else -1))
    return compiled


def encode_columns(compiled: Sequence[CompiledFeature], items: Sequence[Any], what: str) -> list[list[int]]:
    """Codes of every item for every feature: a list (per feature) of lists (per item).

    ``what`` names the items in error messages ("atom", "bond").
    """
    columns = []
    for cf in compiled:
        try:
            # both loops run in C (map over the getter, then over dict.__getitem__); RDKit's Boost
            # enums are ints, so they look up directly in tables keyed by the enum's value
            columns.append(list(map(cf.table.__getitem__, map(cf.getter, items))))
        except KeyError:
            raw = list(map(cf.getter, items))
            columns.append(_fill_unknown(cf, raw, [cf.table.get(v, -1) for v in raw], what))
    return columns


def _fill_unknown(cf: CompiledFeature, raw: list[Any], codes: list[int], what: str) -> list[int]:
    if cf.unknown < 0:
        i = codes.index(-1)
        raise ValueError(_unknown_message(cf, i, raw[i], what))
    return [cf.unknown if c < 0 else c for c in codes]


def _unknown_message(cf: CompiledFeature, i: int, value: Any, what: str) -> str:
    value = getattr(value, "name", value)
    return (
        f"{what} {i}: {cf.feature.name}={value!r} is outside the vocabulary {list(cf.feature.values)} "
        "and the feature has no unknown slot"
    )


def onehot_layout(features: Iterable[Feature]) -> tuple[np.ndarray, int]:
    """Column offset of each feature's block and the total one-hot width."""
    offsets, width = [], 0
    for feat in features:
        offsets.append(width)
        width += 1 if feat.is_bool else feat.cardinality
    return np.asarray(offsets, dtype=np.int64), width


class CategoricalFeaturizer:
    """Base of :class:`AtomFeaturizer` and :class:`BondFeaturizer` (not used directly).

    Subclasses set the class attributes ``_GETTERS`` (property name -> RDKit getter),
    ``_ENUMS`` (property name -> RDKit enum type), ``_SCALARS`` (scalar name -> getter),
    ``_ITEM`` (the word used in error messages) and ``_PRESETS`` (preset classmethod names).
    """

    _GETTERS: dict[str, Callable[[Any], Any]] = {}
    _ENUMS: dict[str, Any] = {}
    _SCALARS: dict[str, Callable[[Any], float]] = {}
    _ITEM = "item"
    _PRESETS: tuple[str, ...] = ()  # names of the classmethods that build presets

    @classmethod
    def from_preset(cls, name: str):
        """The preset called ``name`` (see the subclass's ``_PRESETS``)."""
        if name not in cls._PRESETS:
            raise ValueError(f"unknown {cls._ITEM} featurizer preset {name!r}; known: {list(cls._PRESETS)}")
        return getattr(cls, name)()

    def __init__(
        self,
        features: Sequence[Feature],
        encoding: str = "index",
        scalars: Sequence[str] = (),
        preset: str | None = None,
    ):
        if encoding not in ("index", "onehot"):
            raise ValueError(f"encoding must be 'index' or 'onehot', got {encoding!r}")
        if encoding == "index" and scalars:
            raise ValueError("scalar features need encoding='onehot' (index encoding is integer-only)")
        for name in scalars:
            if name not in self._SCALARS:
                raise ValueError(f"unknown scalar {name!r}; known: {sorted(self._SCALARS)}")
        self.features = tuple(features)
        self.encoding = encoding
        self.scalars = tuple(scalars)
        self.preset = preset
        self._compiled = compile_features(self.features, self._GETTERS, self._ENUMS)
        self._offsets, width = onehot_layout(self.features)
        self._width = width + len(self.scalars)
        self._bool_mask = np.array([f.is_bool for f in self.features], dtype=bool)

    # -- description -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Number of output columns."""
        return len(self.features) if self.encoding == "index" else self._width

    @property
    def cardinalities(self) -> list[int]:
        """Codes per column (index encoding): the embedding-table sizes."""
        return [f.cardinality for f in self.features]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.int64) if self.encoding == "index" else np.dtype(np.float32)

    def to_config(self) -> dict[str, Any]:
        """Everything needed to rebuild this featurizer exactly (JSON/TOML-serializable)."""
        return {
            "type": type(self).__name__,
            "preset": self.preset,
            "encoding": self.encoding,
            "features": [f.to_config() for f in self.features],
            "scalars": list(self.scalars),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        if config.get("type", cls.__name__) != cls.__name__:
            raise ValueError(f"config is for {config.get('type')}, not {cls.__name__}")
        return cls(
            [Feature.from_config(f) for f in config["features"]],
            encoding=config.get("encoding", "index"),
            scalars=config.get("scalars", ()),
            preset=config.get("preset"),
        )

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_config() == self.to_config()  # type: ignore[union-attr]

    def __repr__(self) -> str:
        name = f"preset={self.preset!r}, " if self.preset else ""
        return f"{type(self).__name__}({name}encoding={self.encoding!r}, dim={self.dim})"

    # -- featurizing -------------------------------------------------------------------------
    def encode(self, items: Sequence[Any], hints: dict[str, Any] | None = None) -> np.ndarray:
        """Features of RDKit atoms or bonds, shape ``(len(items), dim)``.

        Args:
            items: the RDKit objects, in output row order.
            hints: shortcuts the graph featurizer takes when the SMILES text proves them safe:
                property name -> either a raw value that holds for every item (e.g. no atom is
                chiral), or a :class:`CheapGetter` reading the property through a faster getter.
        """
        n = len(items)
        if hints:
            columns = [self._hinted_column(cf, hints.get(cf.feature.name), items) for cf in self._compiled]
        else:
            columns = encode_columns(self._compiled, items, self._ITEM)
        codes = np.array(columns, dtype=np.int64).reshape(len(self._compiled), n)
        if self.encoding == "index":
            return np.ascontiguousarray(codes.T)
        return self._onehot(codes, items)

    def _hinted_column(self, cf: CompiledFeature, hint: Any, items: Sequence[Any]) -> list[int]:
        if hint is None:
            return encode_columns((cf,), items, self._ITEM)[0]
        if isinstance(hint, CheapGetter):
            try:
                return list(map(cf.table.__getitem__, map(hint.translate.__getitem__, map(hint.getter, items))))
            except KeyError:  # a value the shortcut does not cover: ask RDKit the normal way
                return encode_columns((cf,), items, self._ITEM)[0]
        return [cf.table.get(hint, cf.unknown)] * len(items)

    def _onehot(self, codes: np.ndarray, items: Sequence[Any]) -> np.ndarray:
        """One-hot blocks from codes of shape ``(num_features, num_items)``, then the scalars."""
        n = len(items)
        out = np.zeros((n, self._width), dtype=np.float32)
        if n == 0:
            return out
        if len(codes):
            bool_col = self._bool_mask[:, None]
            # a boolean feature is one column, set only when its code is 1 (True)
            keep = ~bool_col | (codes == 1)
            cols = np.where(bool_col, self._offsets[:, None], self._offsets[:, None] + codes)
            rows = np.broadcast_to(np.arange(n), codes.shape)
            out[rows[keep], cols[keep]] = 1.0
        base = self._width - len(self.scalars)
        for j, name in enumerate(self.scalars):
            out[:, base + j] = list(map(self._SCALARS[name], items))
        return out
