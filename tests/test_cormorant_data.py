"""Data-layer pieces the Cormorant method relies on: QM9 energies in meV, Cormorant's split."""

from __future__ import annotations

import numpy as np
import pytest


def test_qm9_mev_is_a_thousand_ev_and_leaves_other_units(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MOLGRAPH_CACHE", str(tmp_path / "cache"))
    from molgraph.data.qm9 import load_qm9

    targets = ["U0", "gap", "mu", "alpha"]
    ev = load_qm9(targets=targets, energy_unit="eV", atomref=True, cache=False)
    mev = load_qm9(targets=targets, energy_unit="meV", atomref=True, cache=False)
    assert mev.units == {"U0": "meV", "gap": "meV", "mu": "D", "alpha": "bohr^3"}
    rows = ev.position_of([1, 3, 1000])
    assert np.allclose(mev.y[rows, :2].numpy(), 1000 * ev.y[rows, :2].numpy(), rtol=1e-12)
    assert np.array_equal(mev.y[rows, 2:].numpy(), ev.y[rows, 2:].numpy())
    # methane's atomization energy: U0 - sum(atomref U0), Hartree -> meV (27.211386246 eV/Hartree)
    assert mev.y[rows[0], 0].item() == pytest.approx((-40.47893 - (-37.846772 - 4 * 0.500273)) * 27211.386246,
                                                      abs=0.1)
    with pytest.raises(ValueError, match="energy_unit must be one of"):
        load_qm9(targets=targets, energy_unit="kcal", cache=False)


def test_cormorant_split_sizes_and_disjoint(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MOLGRAPH_CACHE", str(tmp_path / "cache"))
    from molgraph.data.qm9 import load_qm9

    split = load_qm9(targets=["U0"], cache=False).cormorant_split()
    assert (len(split.train), len(split.val), len(split.test)) == (100_000, 17_748, 13_083)
    assert not set(split.train) & set(split.test) and not set(split.val) & set(split.test)
