"""Cormorant (Anderson, Hy & Kondor, NeurIPS 2019) on e3nn: QM9 properties, rMD17 energies and forces.

``molgraph train --method cormorant``; see ``docs/cormorant.md``. The registration imports only
:mod:`~molgraph.methods.cormorant.config` and :mod:`~molgraph.methods.cormorant.method`; the
network (and e3nn) is imported when a model is built.
"""
