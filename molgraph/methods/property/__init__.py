"""The property method: graph-level properties from SMILES with D-MPNN, GIN or GCN (``--method property``)."""

from molgraph.methods.property.config import PropertyConfig, TrainConfig
from molgraph.methods.property.method import PropertyMethod

__all__ = ["PropertyConfig", "PropertyMethod", "TrainConfig"]
