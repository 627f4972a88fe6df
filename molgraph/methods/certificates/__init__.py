"""Robustness certificates for node classifiers: sparse randomized smoothing (Bojchevski et al.,
ICML 2020) as the base certificate, and the collective certificate (Schuchardt et al., ICLR 2021).

``molgraph train --method smoothed_gcn`` trains the smoothed classifier; ``molgraph certify``
certifies it (see :mod:`molgraph.methods.certificates.cli`). The modules import torch and scipy
when used; this package's import registers nothing by itself (``molgraph.methods`` does).
"""
