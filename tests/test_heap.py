"""`molgraph.io.limit_heap_growth`: the glibc setting the command line applies at start."""

from __future__ import annotations

import ctypes
import platform
import sys

import pytest

from molgraph.io import limit_heap_growth


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="a glibc setting")
def test_applies_on_glibc():
    assert limit_heap_growth() is True
    assert limit_heap_growth(4 * 1024 * 1024) is True


def test_reports_false_where_the_c_library_cannot_be_loaded(monkeypatch):
    def no_libc(*args, **kwargs):
        raise OSError("no C library here")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert limit_heap_growth() is False
