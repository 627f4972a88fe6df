"""Small helpers shared by the sub-commands (:func:`error_exit` lives in :mod:`molgraph.io`, so
that methods' own sub-commands use it without importing the CLI layer)."""

from __future__ import annotations

from molgraph.io import error_exit

__all__ = ["error_exit"]
