"""CAW-N: causal anonymous walks for temporal link prediction (Wang et al., ICLR 2021).

Rooms: ``store`` (time-biased causal walks on the CSR neighbour store), ``anonymize`` (the
set-based relative node identities), ``model`` (the walk encoder and pair scorer), ``task``
(training through the shared trainer), ``config``, ``method`` (the :class:`Method`) and
``predict`` (scoring ``(u, v, t)`` queries).
"""
