"""Run files describe themselves: CF attributes (units, long names, axes, standard names where the
units allow one), the pdeforge version and the command or call that made them; checked by the CF
checker when it is installed, and read by cf_xarray."""

import shutil
import subprocess
import sys

import netCDF4
import pdeforge as pf
import pytest
import xarray as xr

# The checker reads the CF tables from cfconventions.org; offline, it gets the entries of the CF
# standard-name table (version 84) for the standard names these files use, with their canonical units.
STANDARD_NAMES = """<?xml version="1.0"?>
<standard_name_table><version_number>84</version_number><last_modified>2024-01-19T15:55:10Z</last_modified>
<entry id="time"><canonical_units>s</canonical_units></entry>
<entry id="projection_x_coordinate"><canonical_units>m</canonical_units></entry>
<entry id="projection_y_coordinate"><canonical_units>m</canonical_units></entry>
<entry id="air_temperature"><canonical_units>K</canonical_units></entry>
</standard_name_table>"""
AREA_TYPES = '<?xml version="1.0"?><area_type_table><version_number>12</version_number><date>2023-09-04</date></area_type_table>'
REGIONS = '<?xml version="1.0"?><standardized_region_list><version_number>4</version_number><date>2021-01-01</date></standardized_region_list>'


def _assert_cf_clean(report: str) -> None:
    """No error; the only warning allowed is CF's recommendation (2.4) of the dimension order
    T, Z, Y, X: pdeforge's arrays are (t, x, y, z), the order its Datasets promise."""
    assert "ERRORS detected: 0" in report, report
    warnings = [line for line in report.splitlines() if line.startswith("WARN:")]
    assert all(w.startswith("WARN: (2.4): space/time dimensions appear in incorrect order") for w in warnings), report


def _cf_check(path, tmp_path) -> str:
    """The CF checker's report on a copy of ``path`` (checked as CF-1.8, the newest version it knows)."""
    copy = tmp_path / ("checked-" + path.name)
    shutil.copy(path, copy)
    with netCDF4.Dataset(copy, "a") as nc:
        assert nc.Conventions == "CF-1.10"
        nc.Conventions = "CF-1.8"
    tables = {}
    for name, text in (("sn", STANDARD_NAMES), ("at", AREA_TYPES), ("rn", REGIONS)):
        tables[name] = tmp_path / f"{name}.xml"
        tables[name].write_text(text)
    cmd = [sys.executable, "-c", "import sys; from cfchecker.cfchecks import main; sys.argv[0] = 'cfchecks'; main()",
           "-v", "1.8", "-s", str(tables["sn"]), "-a", str(tables["at"]), "-r", str(tables["rn"]), str(copy)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


def test_model_runs_carry_cf_attributes_version_and_command(tmp_path):
    out = tmp_path / "gs.nc"
    pf.solve("gray-scott", grid=(16, 16), t_span=20.0, progress=False, backend="numpy", output=pf.Output(str(out), save_every=10.0))
    with xr.open_dataset(out) as ds:
        a = ds.attrs
        assert a["Conventions"] == "CF-1.10" and a["source"] == f"pdeforge {pf.__version__}"
        assert a["pdeforge_version"] == pf.__version__
        assert a["call"].startswith("pdeforge.solve('gray-scott', grid=(16, 16), t_span=20.0")
        assert a["command"] in a["history"]
        assert ds.u.attrs == {"long_name": "concentration of the substrate U", "units": "1"}
        assert ds.x.attrs["axis"] == "X" and ds.y.attrs["axis"] == "Y" and ds.x.attrs["units"] == "1"
        # dimensionless time is no CF time coordinate (that needs units "... since <date>")
        assert ds.t.attrs["units"] == "1" and "axis" not in ds.t.attrs
    in_memory = pf.solve("gray-scott", grid=(16, 16), t_span=20.0, progress=False, backend="numpy", output=pf.Output(save_every=10.0))
    assert in_memory.v.attrs["long_name"] == "concentration of the autocatalyst V"


def test_physical_units_give_standard_names_and_a_time_axis(tmp_path):
    heat = pf.PDESystem({"theta": "k*laplace(theta)"}, params={"k": 1e-3}, domain=[(0, 1)], bcs="neumann")
    meta = {"theta": {"units": "K", "standard_name": "air_temperature", "long_name": "temperature"},
            "x": {"units": "m"}, "t": {"units": "s since 2000-01-01 00:00:00"}}
    out = tmp_path / "heat.nc"
    pf.solve(heat, grid=16, t_span=10.0, ic={"theta": "280 + x"}, progress=False, backend="numpy", output=pf.Output(str(out), save_every=5.0, variable_attrs=meta))
    with xr.open_dataset(out, decode_times=False) as ds:
        assert ds.x.attrs["standard_name"] == "projection_x_coordinate" and ds.x.attrs["units"] == "m"
        assert ds.t.attrs["axis"] == "T" and ds.t.attrs["standard_name"] == "time"
        assert ds["theta"].attrs["standard_name"] == "air_temperature"
    if _has("cfchecker"):  # _cf_check runs it through this interpreter (a cfchecks of another one is no use)
        _assert_cf_clean(_cf_check(out, tmp_path))


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(not _has("cfchecker"), reason="cfchecker is not installed (pip install cfchecker; needs udunits2)")
@pytest.mark.parametrize("model, kw", [
    ("gray-scott", dict(grid=(16, 16), t_span=20.0, save_every=10.0, backend="numpy")),
    ("taylor-green", dict(grid=(16, 16), t_span=0.1, save_every=0.05)),  # spectral: diagnostics and E_k(t, k) too
])
def test_the_cf_checker_finds_no_error(model, kw, tmp_path):
    out = tmp_path / f"{model}.nc"
    kw = dict(kw)
    pf.solve(model, output=pf.Output(str(out), save_every=kw.pop("save_every")), progress=False, **kw)
    _assert_cf_clean(_cf_check(out, tmp_path))


@pytest.mark.skipif(not _has("cf_xarray"), reason="cf_xarray is not installed")
def test_cf_xarray_finds_the_axes(tmp_path):
    import cf_xarray  # noqa: F401  (registers the .cf accessor)

    out = tmp_path / "gs.nc"
    pf.solve("gray-scott", grid=(16, 16), t_span=20.0, progress=False, backend="numpy", output=pf.Output(str(out), save_every=10.0))
    with xr.open_dataset(out) as ds:
        assert ds.cf.axes == {"X": ["x"], "Y": ["y"]}
        assert ds.cf["X"].name == "x"
