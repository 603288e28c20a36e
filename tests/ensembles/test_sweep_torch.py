"""SweepDataset: the PyTorch view of a sweep store equals the store, batches as documented."""

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.ensembles.member import STATUS_BLEW_UP, STATUS_COMPLETED, STATUS_FAILED, run_member
from pdeforge.ensembles.plan import make_plan
from pdeforge.ensembles.store import prepare_store

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A small fitzhugh-nagumo sweep written without a cluster (the store code is the same),
    with one member marked failed to check the status filter."""
    out = tmp_path_factory.mktemp("torch") / "fhn.zarr"
    plan = make_plan("fitzhugh-nagumo", {"k": [0.0, 0.01]}, range(3), (8, 8), 0.2, save_every=0.05)
    st = prepare_store(out, plan)
    for i, (params, seed) in enumerate(plan.members()):
        record = run_member(plan.common, i, params, seed)
        assert record["status"] == STATUS_COMPLETED, record["error"]
        if i == 4:
            record = {"index": 4, "status": STATUS_FAILED, "error": "RuntimeError: for the test", "fields": None}
        st.write(record, run=1)
    return out


def test_trajectory_items_equal_the_store(store):
    ds = pf.open_sweep(store).load()
    data = pf.SweepDataset(store)
    assert len(data) == 5 and data.param_names == ["k"] and data.fields == ["u", "v"]
    assert list(data.members) == [0, 1, 2, 3, 5]  # member 4 failed
    item = data[3]
    assert item["member"] == 3 and item["seed"] == 0 and item["fields"].dtype == torch.float32
    assert item["fields"].shape == (5, 2, 8, 8)
    np.testing.assert_allclose(item["fields"][:, 0].numpy(), ds.u.isel(member=3).values, rtol=1e-6)
    np.testing.assert_allclose(item["fields"][:, 1].numpy(), ds.v.isel(member=3).values, rtol=1e-6)
    assert float(item["params"][0]) == pytest.approx(0.01)
    np.testing.assert_allclose(item["t"].numpy(), [0, 0.05, 0.1, 0.15, 0.2], atol=1e-7)
    np.testing.assert_array_equal(data.coordinates["x"], ds.x.values)
    arrays = data.arrays()
    assert arrays["fields"].shape == (5, 5, 2, 8, 8) and arrays["params"].shape == (5, 1)
    np.testing.assert_array_equal(arrays["fields"][4, :, 0], ds.u.isel(member=5).values)
    np.testing.assert_array_equal(arrays["seed"], [0, 1, 2, 0, 2])


def test_pairs_are_frames_lag_apart_and_batch(store):
    ds = pf.open_sweep(store).load()
    data = pf.SweepDataset(store, layout="pairs", lag=2, fields=["v"], dtype=torch.float64, in_memory=True)
    assert len(data) == 5 * (5 - 2)
    item = data[4]  # member 1, input frame 1
    assert item["member"] == 1
    np.testing.assert_array_equal(item["input"][0].numpy(), ds.v.isel(member=1, t=1).values)
    np.testing.assert_array_equal(item["target"][0].numpy(), ds.v.isel(member=1, t=3).values)
    assert float(item["dt"]) == pytest.approx(0.1) and float(item["t"]) == pytest.approx(0.05)
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True)
    batch = next(iter(loader))
    assert batch["input"].shape == (4, 1, 8, 8) and batch["params"].shape == (4, 1)
    # reading lazily from disk gives the same samples as reading into memory
    lazy = pf.SweepDataset(store, layout="pairs", lag=2, fields=["v"], dtype=torch.float64)
    assert torch.equal(lazy[7]["target"], data[7]["target"])


def test_dataloader_worker_processes_reopen_the_store(store):
    data = pf.SweepDataset(store, times=slice(0, None, 2))
    assert data[0]["fields"].shape[0] == 3
    loader = torch.utils.data.DataLoader(data, batch_size=5, num_workers=1)
    (batch,) = list(loader)
    assert batch["fields"].shape == (5, 3, 2, 8, 8)


def test_status_filter_and_bad_options(store, tmp_path):
    assert len(pf.SweepDataset(store, statuses=("failed",))) == 1
    assert len(pf.SweepDataset(store, statuses=("completed", "failed"))) == 6
    with pytest.raises(pf.errors.PDEForgeError, match="not a field"):
        pf.SweepDataset(store, fields=["w"])
    with pytest.raises(pf.errors.PDEForgeError, match="lag"):
        pf.SweepDataset(store, layout="pairs", lag=5)
    with pytest.raises(pf.errors.PDEForgeError, match="layout"):
        pf.SweepDataset(store, layout="frames")
    with pytest.raises(pf.errors.PDEForgeError, match="status"):
        pf.SweepDataset(store, statuses=("done",))
    with pytest.raises(pf.errors.PDEForgeError, match="not a pdeforge sweep store"):
        pf.SweepDataset(tmp_path / "nothing.zarr")
    assert STATUS_BLEW_UP == 2


def test_import_pdeforge_does_not_import_torch_or_dask():
    import subprocess
    import sys

    code = "import sys, pdeforge; pdeforge.sweep; print('torch' in sys.modules, 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
