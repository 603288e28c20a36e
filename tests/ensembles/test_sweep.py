"""Sweeps on a local Dask cluster of 2 worker processes, tiny grids.

Checked against serial ``pdeforge.solve`` calls (bit for bit: the same kernels run the same
steps), and under the accidents a long sweep meets: a worker killed mid-run, Ctrl-C,
members that blow up or have bad parameters.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

import pdeforge as pf
from pdeforge.ensembles.member import kernel_compile_counts
from pdeforge.ensembles.runner import SweepInterrupted

distributed = pytest.importorskip("distributed")

GS = dict(grid=(16, 16), t_span=40.0, save_every=10.0)  # gray-scott, ~10 ms per member
SLOW_GS = dict(grid=(96, 96), t_span=5000.0, save_every=1000.0)  # ~0.7 s per member


@pytest.fixture(scope="module")
def client():
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 3}):  # Dask's default, whatever the user's config
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
        c = distributed.Client(cluster)
        yield c
        c.close()
        cluster.close()


def _output(path, save_every=None, **kw):
    """A sweep's keywords for the store at ``path`` saving every ``save_every`` (the rest passed through)."""
    return dict(output=pf.Output(str(path), save_every=save_every), **kw)


def _serial(member, save_every=None, **kw):
    params = {n: float(member[n]) for n in ("F", "k") if n in member.coords}
    seed = int(member.seed) if "seed" in member.coords else None
    # gray-scott's default method with its preferred step (dt 1.0, an upper bound) and stability="error"
    return pf.solve("gray-scott", params=params, seed=seed, progress=False,
                    method=pf.RK4(dt_max=1.0, stability="error"), output=pf.Output(save_every=save_every), **kw)


def test_store_has_every_member_and_equals_serial_solves(client, tmp_path):
    out = tmp_path / "gs.zarr"
    ds = pf.sweep("gray-scott", params={"F": [0.03, 0.04], "k": "0.055:0.065:3"}, seeds=range(2), client=client,
                  progress=False, **_output(out, **GS))
    assert dict(ds.sizes) == {"member": 12, "t": 5, "x": 16, "y": 16}
    np.testing.assert_array_equal(ds.member, np.arange(12))
    np.testing.assert_array_equal(ds.F, np.repeat([0.03, 0.04], 6))
    np.testing.assert_array_equal(ds.k, np.tile(np.repeat([0.055, 0.06, 0.065], 2), 2))
    np.testing.assert_array_equal(ds.seed, np.tile([0, 1], 6))
    np.testing.assert_array_equal(ds.t, [0, 10, 20, 30, 40])
    assert ds.u.dims == ("member", "t", "x", "y") and ds.attrs["model"] == "gray-scott"
    assert (ds.status == 1).all() and (ds.error == "").all()
    for m in range(12):
        member = ds.isel(member=m).load()
        ref = _serial(member, **GS)
        np.testing.assert_array_equal(member.u.values, ref.u.values)
        np.testing.assert_array_equal(member.v.values, ref.v.values)
        np.testing.assert_array_equal(member.x.values, ref.x.values)
        assert int(member.steps) == ref.attrs["steps"]
    # different seeds really are different initial conditions
    assert not np.array_equal(ds.u.isel(member=0, t=0), ds.u.isel(member=1, t=0))
    # the plain xarray reader sees the same store
    again = xr.open_zarr(out)
    np.testing.assert_array_equal(again.u.values, ds.u.values)
    # the work was spread over both workers
    assert len(set(ds.worker.values)) == 2


def test_sweep_on_a_scheduler_given_by_address(client, tmp_path):
    address = client.scheduler.address  # as a user passes --scheduler tcp://host:8786
    ds = pf.sweep("heat", params={"k": [0.5, 1.0]}, grid=16, t_span=0.2, client=address,
                  output=str(tmp_path / "addr.zarr"), progress=False)
    assert (ds.status == 1).all()
    # sin x is an eigenvector of the 3-point Laplacian: u = exp(-k (2 - 2 cos h)/h^2 t) sin x exactly
    h = ds.x.values[1] - ds.x.values[0]
    rate = ds.k.values * (2 - 2 * np.cos(h)) / h**2
    exact = np.exp(-rate * 0.2)[:, None] * np.sin(ds.x.values)[None, :]
    assert np.abs(ds.u.isel(t=-1).values - exact).max() < 1e-7


def test_workers_load_the_kernels_the_client_compiled(client, tmp_path):
    # an equation no other test uses, so its kernels are not in the (session-private) cache yet
    system = pf.PDESystem({"u": "D*laplace(u) - 0.123456*u**3"}, params={"D": 0.1}, domain=[(0, 1)], bcs="periodic",
                          ic={"u": "sin(2*pi*x)"})
    before = kernel_compile_counts()
    ds = pf.sweep(system, params={"D": [0.05, 0.1, 0.2, 0.3]}, grid=32, t_span=0.5, client=client,
                  output=str(tmp_path / "k.zarr"), progress=False)
    assert (ds.status == 1).all()
    assert kernel_compile_counts()[1] > before[1], "the client compiled the new kernels itself"
    assert (ds.kernel_cache_hit == 1).all(), "workers found the generated module in the cache"
    assert (ds.kernels_compiled == 0).all(), "no worker compiled a Numba kernel"
    assert (ds.kernels_loaded > 0).all(), "every worker loaded the compiled kernels from Numba's cache"


def test_kernel_compile_counter_sees_compilation():
    # the instrument of the test above: a fresh structure compiled here shows as compiled
    loaded0, compiled0 = kernel_compile_counts()
    system = pf.PDESystem({"u": "laplace(u) - 0.654321*u"}, domain=[(0, 1)], bcs="periodic", ic={"u": "cos(2*pi*x)"})
    pf.solve(system, grid=16, t_span=0.01, progress=False)
    assert kernel_compile_counts()[1] > compiled0


def test_killed_worker_is_retried_and_the_sweep_completes(client, tmp_path):
    client.wait_for_workers(2)
    pids = client.run(os.getpid)
    killed = {}

    def kill_a_busy_worker():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            busy = {w: keys for w, keys in client.processing().items()
                    if any("pdeforge-member" in str(k) for k in keys)}
            if busy:
                time.sleep(0.15)  # let the member get well into its time stepping
                worker, keys = next(iter(busy.items()))
                killed.update(worker=worker, keys=[str(k) for k in keys])
                os.kill(pids[worker], signal.SIGKILL)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    ds = pf.sweep("gray-scott", params={"F": [0.03, 0.04, 0.05]}, seeds=range(2), client=client,
                  progress=False, **_output(tmp_path / "kill.zarr", **SLOW_GS))
    killer.join()
    assert killed, "no worker was killed"
    assert (ds.status == 1).all(), ds.error.values
    with pytest.raises(ProcessLookupError):
        os.kill(pids[killed["worker"]], 0)  # the worker process is gone
    lost = [int(k.split("-")[2]) for k in killed["keys"] if k.startswith("pdeforge-member")]
    # the member(s) running on the killed worker were run again elsewhere, to the same result
    rerun = [m for m in lost if ds.worker.values[m] != killed["worker"]]
    assert rerun, "the killed worker's member was not rerun elsewhere"
    for m in rerun:
        member = ds.isel(member=m).load()
        np.testing.assert_array_equal(member.u.values, _serial(member, **SLOW_GS).u.values)
    client.wait_for_workers(2)


def _heat_ic(grid, params, rng):
    (x,) = grid.mesh()
    return {"u": np.sin(x) + 0.01 * rng.standard_normal(grid.shape)}


def test_failing_members_are_recorded_and_the_sweep_goes_on(client, tmp_path):
    heat = pf.PDESystem({"u": "k*laplace(u)"}, params={"k": 1.0}, domain=[(0, 2 * np.pi)], bcs="periodic")
    # k = 100: dt exceeds the stability limit (a bad parameter); k = -1: backward diffusion,
    # whose grid-scale modes grow like exp(415 t) and overflow before t = 3 (a blow-up)
    ds = pf.sweep(heat, params={"k": [0.5, 100.0, -1.0]}, seeds=[0, 1], grid=64, t_span=3.0,
                  method=pf.RK4(dt=1e-3), ic=_heat_ic, client=client,
                  output=pf.Output(str(tmp_path / "fail.zarr"), save_every=0.5), progress=False)
    status = ds.status.values
    np.testing.assert_array_equal(status, [1, 1, 3, 3, 2, 2])
    err = ds.error.values
    assert all("stability limit" in e and "SolverError" in e for e in err[2:4])
    assert all("non-finite" in e for e in err[4:6])
    assert np.isnan(ds.u.isel(member=2)).all()  # a failed member has no data
    blown = ds.isel(member=4)
    assert 0 < float(blown.t_reached) < 3.0
    assert np.isfinite(blown.u.isel(t=0)).all() and np.isnan(blown.u.isel(t=-1)).all()
    # the completed members are right: the sin x component of the state is an eigenvector of the
    # 3-point Laplacian, so it decays exactly like exp(-k (2 - 2 cos h)/h^2 t) (RK4 error ~1e-13)
    x = ds.x.values
    h = x[1] - x[0]
    for m in (0, 1):
        u = ds.u.isel(member=m).values
        amplitude = 2 * np.mean(u * np.sin(x), axis=-1)
        expected = amplitude[0] * np.exp(-0.5 * (2 - 2 * np.cos(h)) / h**2 * ds.t.values)
        np.testing.assert_allclose(amplitude, expected, rtol=1e-9)


def test_member_whose_workers_all_died_is_recorded_as_failed():
    from distributed.scheduler import KilledWorker

    from pdeforge.ensembles.runner import _record_of

    class Lost:  # what as_completed yields for a task that took its workers down each time
        key = "pdeforge-member-7-abc"

        def result(self):
            raise KilledWorker("pdeforge-member-7-abc", SimpleNamespace(address="tcp://127.0.0.1:1"), 3)

    record = _record_of(Lost(), 7)
    assert record["index"] == 7 and record["status"] == 3 and record["fields"] is None
    assert record["error"].startswith("KilledWorker: the worker processes running this member died")


def test_interrupted_sweep_resumes_with_every_member_once(client, tmp_path):
    out = tmp_path / "int.zarr"
    kw = dict(params={"F": [0.03, 0.035, 0.04, 0.045]}, seeds=range(2), client=client, progress=False,
              **_output(out, **SLOW_GS))
    main = threading.main_thread().ident

    def interrupt_after_two():
        import zarr

        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if (np.asarray(zarr.open_group(str(out), mode="r")["status"][:]) == 1).sum() >= 2:
                    break
            except Exception:
                pass
            time.sleep(0.02)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt_after_two).start()
    with pytest.raises(SweepInterrupted) as info:
        pf.sweep("gray-scott", **kw)
    assert 2 <= info.value.completed < 8 and info.value.total == 8
    first = xr.open_zarr(out)  # a valid store, part done
    done_first = first.status.values == 1
    assert 2 <= done_first.sum() < 8 and set(np.unique(first.status.values)) <= {0, 1}
    assert np.isnan(first.u.values[~done_first]).all()

    ds = pf.sweep("gray-scott", **kw)
    assert (ds.status == 1).all()
    runs = ds.run.values
    np.testing.assert_array_equal(runs[done_first], 1)  # not computed again
    np.testing.assert_array_equal(runs[~done_first], 2)
    np.testing.assert_array_equal(ds.member, np.arange(8))
    for m in (int(np.flatnonzero(done_first)[0]), int(np.flatnonzero(~done_first)[0])):
        member = ds.isel(member=m).load()
        np.testing.assert_array_equal(member.u.values, _serial(member, **SLOW_GS).u.values)

    # a third run has nothing to do and changes nothing: no member runs again (the run counts)
    again = pf.sweep("gray-scott", **kw)
    np.testing.assert_array_equal(again.run.values, runs)
    # a different sweep at the same place is refused, not mixed in
    with pytest.raises(pf.errors.PDEForgeError, match="different sweep.*params"):
        pf.sweep("gray-scott", **(kw | {"params": {"F": [0.03]}}))


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_sweep_ctrl_c_or_sigterm_then_rerun_finishes(tmp_path, signum, status):
    out = tmp_path / "cli.zarr"
    env = dict(os.environ, PYTHONPATH=str(Path(pf.__file__).parents[1]))
    cmd = [sys.executable, "-m", "pdeforge.cli", "sweep", "gray-scott", "--param", "F=0.03,0.04", "--param",
           "k=0.055:0.065:2", "--seeds", "0:1", "--grid", "96x96", "--t-end", "5000", "--save-every", "1000",
           "--workers", "1", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    import zarr

    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if (np.asarray(zarr.open_group(str(out), mode="r")["status"][:]) == 1).sum() >= 1:
                break
        except Exception:
            pass
        time.sleep(0.05)
    # Ctrl-C in a terminal and a batch scheduler's SIGTERM both signal the whole process group
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert f"interrupted ({signal.Signals(signum).name})" in err and "run the same command again" in err
    part = xr.open_zarr(out)
    n_first = int((part.status == 1).sum())
    assert 1 <= n_first < 4

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    ds = xr.open_zarr(out)
    assert (ds.status == 1).all() and ds.sizes["member"] == 4
    assert int((ds.run == 1).sum()) == n_first and int((ds.run == 2).sum()) == 4 - n_first
