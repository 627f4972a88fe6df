"""Graph classification on TU datasets: the GIN classifier of the GraphNorm paper's experiments."""

from molgraph.methods.graph_classification.model import GraphClassifier

__all__ = ["GraphClassifier"]
