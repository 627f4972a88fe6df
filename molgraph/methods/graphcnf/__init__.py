"""GraphCNF: categorical normalizing flows that generate molecules (Lippe & Gavves, ICLR 2021).

Rooms: ``flows`` (ActNorm, 1x1 convolution, mixture-CDF coupling with a float64 bisection
inverse), ``encoding`` (logistic-mixture categorical encodings, the virtual-edge encoding and
edge decoder), ``model`` (the R-GCN and edge-GNN conditioners and the three-step flow), ``task``
(length-bucketed training through the shared trainer), ``sampling`` (generation, validity and
the generation metrics), ``config``, ``method`` (the :class:`Method`) and ``predict`` (a model
file: ``molgraph generate`` and ``molgraph predict``).
"""
