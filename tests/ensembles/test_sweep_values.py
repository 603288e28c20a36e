"""The sweep value syntax, the member table, and the errors of bad sweep input (no cluster)."""

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.cli import main
from pdeforge.ensembles.plan import make_plan
from pdeforge.ensembles.values import SweepSpecError, normalize_params, parse_seeds, parse_values


def test_value_lists_and_linspace_ranges():
    assert parse_values("F", "0.02,0.03") == [0.02, 0.03]
    np.testing.assert_allclose(parse_values("k", "0.05:0.07:5"), np.linspace(0.05, 0.07, 5))
    assert parse_values("k", "0.05:0.07:5")[-1] == 0.07  # both ends included
    np.testing.assert_allclose(parse_values("F", "0.01, 0.02:0.04:3"), [0.01, 0.02, 0.03, 0.04])
    assert parse_values("F", "2:2:1") == [2.0]


@pytest.mark.parametrize("text, fragment", [
    ("", "no values"), ("1,,2", "empty item"), ("a", "not a number"), ("1:2", "start:stop:count"),
    ("1:2:0", "at least 1"), ("1:2:x", "not a whole number"), ("nan", "not finite"), ("1,1", "more than once"),
])
def test_bad_values_say_what_is_wrong(text, fragment):
    with pytest.raises(SweepSpecError, match=fragment):
        parse_values("F", text)


def test_seed_ranges_exclude_their_stop():
    assert parse_seeds("0:100") == list(range(100))
    assert parse_seeds("1,5,9") == [1, 5, 9]
    assert parse_seeds("0:3,10") == [0, 1, 2, 10]
    for text, fragment in [("3:1", "empty"), ("-1", "negative"), ("0:2,1", "more than once"), ("x", "whole number")]:
        with pytest.raises(SweepSpecError, match=fragment):
            parse_seeds(text)


def test_params_accept_lists_numbers_and_strings():
    got = normalize_params({"F": [0.02, 0.03], "k": "0.05:0.07:3", "Du": 2e-5, "Dv": np.array([1e-5, 2e-5])})
    assert got == {"F": [0.02, 0.03], "k": [0.05, 0.06, 0.07], "Du": [2e-5], "Dv": [1e-5, 2e-5]}


def test_members_are_the_cartesian_product_with_seeds_fastest():
    plan = make_plan("gray-scott", {"F": [0.02, 0.03], "k": [0.05, 0.06, 0.07]}, range(2), (8, 8), 10.0)
    members = plan.members()
    assert plan.size == len(members) == 12
    assert members[0] == ({"F": 0.02, "k": 0.05}, 0)
    assert members[1] == ({"F": 0.02, "k": 0.05}, 1)
    assert members[2] == ({"F": 0.02, "k": 0.06}, 0)
    assert members[-1] == ({"F": 0.03, "k": 0.07}, 1)
    assert len({(m[0]["F"], m[0]["k"], m[1]) for m in members}) == 12


def test_model_defaults_are_resolved_like_pdeforge_run():
    plan = make_plan("gray-scott", {"F": [0.03]}, None, None, None)
    kw = plan.common.solve_kwargs
    assert kw["grid"] == (256, 256) and kw["t_span"] == (0.0, 5000.0) and kw["output"].save_every == 250.0
    # the model's method, with its step as the largest automatic one (no fixed dt) and stability="error"
    assert kw["method"] == pf.RK4(dt_max=1.0, stability="error")
    assert kw["method"].dt is None and kw["method"].dt_max == 1.0
    assert plan.method == "rk4" and plan.scheme == "fd"
    assert len(plan.common.times) == 21
    short = make_plan("gray-scott", {"F": [0.03]}, None, (8, 8), 100.0, method="ssprk3").common.solve_kwargs
    assert short["output"].save_every == 100.0 and short["method"].dt_max is None and short["method"].name == "ssprk3"


def test_bad_sweep_input_is_one_clear_error(tmp_path):
    heat = pf.PDESystem({"u": "k*laplace(u)"}, params={"k": 1.0}, domain=[(0, 1)], bcs="periodic", ic={"u": "sin(2*pi*x)"})
    with pytest.raises(pf.errors.PDEForgeError, match="no parameter 'q'"):
        make_plan("heat", {"q": [1]}, None, 8, 1.0)
    with pytest.raises(SweepSpecError, match="no parameter 'q'"):
        make_plan(heat, {"q": [1]}, None, 8, 1.0)
    with pytest.raises(SweepSpecError, match="ic as a function"):
        make_plan(heat, {"k": [1]}, range(3), 8, 1.0)
    with pytest.raises(SweepSpecError, match="grid"):
        make_plan(heat, {"k": [1]}, None, None, 1.0)
    with pytest.raises(SweepSpecError, match="dtype"):
        make_plan(heat, {"k": [1]}, None, 8, 1.0, dtype="int8")
    with pytest.raises(SweepSpecError, match=".zarr"):
        pf.sweep(heat, {"k": [1]}, grid=8, t_span=1.0, output=str(tmp_path / "runs.nc"))
    with pytest.raises(SweepSpecError, match="does not exist"):
        pf.sweep(heat, {"k": [1]}, grid=8, t_span=1.0, output=str(tmp_path / "missing" / "runs.zarr"))
    with pytest.raises(SweepSpecError, match="client: a number of local workers must be positive"):
        pf.sweep(heat, {"k": [1]}, grid=8, t_span=1.0, client=0, output=str(tmp_path / "runs.zarr"))
    (tmp_path / "other.zarr").mkdir()
    (tmp_path / "other.zarr" / "notes.txt").write_text("mine")
    with pytest.raises(SweepSpecError, match="not a pdeforge sweep store"):
        pf.sweep(heat, {"k": [1]}, grid=8, t_span=1.0, output=str(tmp_path / "other.zarr"), overwrite=True)
    assert (tmp_path / "other.zarr" / "notes.txt").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["--param", "F=0.02,,0.03"], "empty item"),
    (["--param", "F=0.02", "--param", "F=0.03"], "given twice"),
    (["--param", "Q=1"], "no parameter 'Q'"),
    (["--seeds", "5:2"], "empty"),
    (["--workers", "0"], "positive whole number"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not allowed with"),
    (["--out", "runs.nc"], ".zarr"),
])
def test_cli_bad_input_exits_2_with_one_line(argv, fragment, capsys):
    assert main(["sweep", "gray-scott", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err


def test_store_variable_names_cannot_be_swept():
    from pdeforge.ensembles.plan import RESERVED_NAMES
    from pdeforge.ensembles.store import RECORDS

    assert set(RECORDS) | {"status", "error", "worker", "member", "seed", "t"} <= RESERVED_NAMES


def test_cli_summary_and_exit_status(monkeypatch, capsys):
    import xarray as xr

    from pdeforge.ensembles import runner

    def fake_sweep(model, **kw):  # the store a sweep with one failed member returns
        assert kw["params"] == {"F": [0.02, 0.03]} and kw["seeds"] == [0, 1] and kw["client"] == 2
        return xr.Dataset({"status": ("member", [1, 1, 3, 1]), "error": ("member", ["", "", "SolverError: bad dt", ""])},
                          attrs={"model": model})

    monkeypatch.setattr(runner, "sweep", fake_sweep)
    assert main(["sweep", "gray-scott", "--param", "F=0.02,0.03", "--seeds", "0:2", "--workers", "2"]) == 1
    out, err = capsys.readouterr()
    assert "4 members in runs.zarr: 3 completed, 0 blew up, 1 failed" in out
    assert "member 2: SolverError: bad dt" in err

    def interrupted(model, **kw):
        raise runner.SweepInterrupted("sweep interrupted: 1 of 4 members done in 'runs.zarr'", "runs.zarr", 1, 4)

    monkeypatch.setattr(runner, "sweep", interrupted)
    assert main(["sweep", "gray-scott", "--param", "F=0.02,0.03", "--seeds", "0:2"]) == 130
    assert "1 of 4 members done" in capsys.readouterr().err

    def terminated(model, **kw):
        raise runner.SweepInterrupted("sweep interrupted (SIGTERM): 1 of 4 members done", "runs.zarr", 1, 4, 15)

    monkeypatch.setattr(runner, "sweep", terminated)
    assert main(["sweep", "gray-scott", "--param", "F=0.02,0.03", "--seeds", "0:2"]) == 143


def test_float32_store_without_a_cluster(tmp_path):
    from pdeforge.ensembles.member import run_member
    from pdeforge.ensembles.store import prepare_store

    plan = make_plan("heat", {"k": [0.5, 2.0]}, None, 16, 0.1, dtype="float32")
    store = prepare_store(tmp_path / "f32.zarr", plan)
    assert store.todo() == [0, 1]
    for i, (params, seed) in enumerate(plan.members()):
        store.write(run_member(plan.common, i, params, seed), run=1)
    ds = pf.open_sweep(tmp_path / "f32.zarr")
    assert ds.u.dtype == np.float32 and (ds.status == 1).all() and store.todo() == []
    ref = pf.solve("heat", params={"k": 2.0}, grid=16, t_span=0.1, progress=False, method=pf.RK4(stability="error"))
    np.testing.assert_array_equal(ds.u.isel(member=1).values, ref.u.values.astype(np.float32))


def test_dashboard_address_is_printed_when_the_scheduler_serves_one(capsys):
    from pdeforge.ensembles.runner import _print_dashboard

    class FakeClient:
        dashboard_link = "http://127.0.0.1:8787/status"

        def __init__(self, services):
            self.services = services

        def scheduler_info(self):
            return {"services": self.services}

    _print_dashboard(FakeClient({"dashboard": 8787}))
    assert capsys.readouterr().err == "Dask dashboard: http://127.0.0.1:8787/status\n"
    _print_dashboard(FakeClient({}))
    assert capsys.readouterr().err == ""
