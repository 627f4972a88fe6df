"""molgraph: graph and molecule machine learning on RDKit, PyTorch and PyTorch Geometric.

Data flows one way through the sub-packages: ``chem`` (RDKit layer) -> ``featurizers`` ->
``data`` -> ``nn``/``models`` -> ``train`` -> ``cli``; a lower layer never imports a higher one.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
