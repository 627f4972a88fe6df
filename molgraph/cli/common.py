"""Small helpers shared by the sub-commands."""

from __future__ import annotations

import sys


def error_exit(message: str, code: int = 1) -> int:
    """Print ``molgraph: error: message`` to stderr and return the exit code."""
    print(f"molgraph: error: {message}", file=sys.stderr)
    return code
