"""Shared test fixtures.

Real data lives in ``../shared/data`` next to the repository (or wherever ``MOLGRAPH_TEST_DATA``
points). Tests that need it use the ``data_root`` fixture, which skips with a clear reason when
the folder is absent and otherwise points ``MOLGRAPH_DATA`` at it for the test's duration.

Caches: every test runs with ``MOLGRAPH_CACHE`` set to a temporary folder of the session
(:func:`molgraph_cache`, autouse), so loading datasets never writes to the user's cache folder;
it is set in ``os.environ``, so command-line tests run as subprocesses inherit it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    candidates = [os.environ.get("MOLGRAPH_TEST_DATA"), REPO.parent / "shared" / "data"]
    for cand in candidates:
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


SHARED_DATA = _shared_data()


@pytest.fixture(scope="session", autouse=True)
def molgraph_cache(tmp_path_factory: pytest.TempPathFactory):
    """The session's cache folder: ``MOLGRAPH_CACHE`` points here for every test (and subprocess).

    Without it the suite wrote ``tiny-*``, ``two-*``, ``bbbp_small-*`` and ``data-*`` caches into
    the user's home cache on every run. A test may still point ``MOLGRAPH_CACHE`` elsewhere with
    ``monkeypatch``; the session value comes back after it.
    """
    folder = tmp_path_factory.mktemp("molgraph-cache")
    previous = os.environ.get("MOLGRAPH_CACHE")
    os.environ["MOLGRAPH_CACHE"] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop("MOLGRAPH_CACHE", None)
        else:
            os.environ["MOLGRAPH_CACHE"] = previous


@pytest.fixture
def data_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared real-data folder; ``MOLGRAPH_DATA`` points at it during the test."""
    if SHARED_DATA is None:
        pytest.skip("shared data folder ../shared/data not found (set MOLGRAPH_TEST_DATA)")
    monkeypatch.setenv("MOLGRAPH_DATA", str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture
def no_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty data root and cache, so nothing outside the test is found or written."""
    empty = tmp_path / "empty_root"
    empty.mkdir()
    monkeypatch.setenv("MOLGRAPH_DATA", str(empty))
    monkeypatch.setenv("MOLGRAPH_CACHE", str(tmp_path / "cache"))
    return empty


@pytest.fixture(scope="session")
def graphnorm_benchmark():
    """``benchmarks/graphnorm.py`` as a module."""
    return _load_benchmark("graphnorm")


@pytest.fixture(scope="session")
def conformers_benchmark():
    """``benchmarks/conformers.py`` as a module."""
    return _load_benchmark("conformers")


def _load_benchmark(name: str):
    """``benchmarks/<name>.py`` as a module (benchmarks are scripts, not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
