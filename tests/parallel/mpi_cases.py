"""Cases run under ``mpiexec -n P python mpi_cases.py RESULT.json CASE...`` by test_mpi.py.

Each case runs a distributed solve and, on rank 0, the same solve on one process
(``FiniteDifference(comm=MPI.COMM_SELF)``, ``Spectral(comm=MPI.COMM_SELF)``), and records the largest difference;
rank 0 writes the JSON.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
from mpi4py import MPI

import pdeforge as pf
from pdeforge.errors import PDEForgeError
from pdeforge.solvers.methods import get_method

COMM = MPI.COMM_WORLD
RANK = COMM.Get_rank()


def walls_3d() -> pf.PDESystem:
    """Dirichlet (time-dependent), Robin, Neumann and periodic walls, mixed derivatives."""
    return pf.PDESystem(
        {"u": "0.1*laplace(u) + 0.05*d(d(u, x), y) + 0.1*u*v",
         "v": "0.05*laplace(v) - 0.1*u + 0.02*d(d(v, y), z)"},
        domain=[(0, 1), (0, 1.5), (0, 2)],
        bcs={"x": ({"dirichlet": "sin(3*t)*y + z"}, {"robin": (2, 1, "cos(y)")}), "y": "neumann", "z": "periodic"},
        ic={"u": "sin(pi*x)*cos(y) + z", "v": "x*y*z"}, name="walls3d")


def coupled_2d() -> pf.PDESystem:
    """Two fields and two scalars coupled through integral() and mean() (plain and not)."""
    return pf.PDESystem(
        {"u": "0.1*laplace(u) - u*v + A*mean(u**2)", "v": "0.05*laplace(v) + B*u - integral(v)*v",
         "A": "-A*integral(u*v) + B", "B": "mean(v**3) - A*B"},
        domain=[(0.0, 1.0), (0.0, 1.0)], bcs={"*": {"x": "neumann", "y": "periodic"}}, scalars=("A", "B"),
        ic={"u": "1 + 0.5*cos(pi*x)*sin(2*pi*y)", "v": "0.5 + 0.2*x*y", "A": 0.1, "B": 0.2}, name="coupled2d")


def scalar_walls() -> pf.PDESystem:
    """Wall values that read a scalar and an integral (Dirichlet and Robin walls)."""
    return pf.PDESystem({"u": "laplace(u)", "S": "-S"}, domain=[(0, np.pi / 2), (0, 1)],
                        bcs={"x": ({"dirichlet": "integral(u) + S"}, {"robin": (1, 3, "-3*S")}), "y": "neumann"},
                        scalars=("S",), ic={"u": "cos(x)*(1 + 0.1*cos(pi*y))", "S": 1.0}, name="scalar-walls")


def coefficient_arrays(grid=(20, 17)) -> pf.PDESystem:
    """Coefficient fields given as arrays of the whole grid, Dirichlet (time-dependent) and periodic walls."""
    x = (np.arange(grid[0]) + 0.5) / grid[0]
    y = (np.arange(grid[1]) + 0.5) * 2.0 / grid[1]
    X, Y = np.meshgrid(x, y, indexing="ij")
    return pf.PDESystem({"u": "div(k*grad(u)) + g*u"}, params={"k": 1 + X * np.cos(np.pi * Y), "g": np.sin(3 * X * Y)},
                        domain=[(0, 1), (0, 2)], bcs={"x": {"dirichlet": "sin(5*t)*y"}, "y": "periodic"},
                        ic={"u": "x*(1 - x)*cos(pi*y)"}, name="coefficients")


def relative(ds, ref, names=None) -> float:
    """Largest difference of ``names`` (default: every variable of ``ref``), each relative to the
    variable's largest magnitude in ``ref``."""
    out = 0.0
    for name in ref.data_vars if names is None else names:
        scale = max(float(np.max(np.abs(ref[name].values))), 1e-300)
        out = max(out, float(np.max(np.abs(ds[name].values - ref[name].values))) / scale)
    return out


def compare(ds, ref) -> float:
    return max(float(np.max(np.abs(ds[f].values - ref[f].values))) for f in ref.data_vars)


def run(system, decomposition, order=2, **kw):
    ds = pf.solve(system, discretization=pf.FiniteDifference(order=order, decomposition=decomposition),
                  progress=False, **kw)
    ref = pf.solve(system, discretization=pf.FiniteDifference(order=order, comm=MPI.COMM_SELF), progress=False,
                   **kw) if RANK == 0 else None
    if RANK:
        return None
    return {"maxdiff": compare(ds, ref), "relative": relative(ds, ref),
            "dt_rule": [ds.attrs.get("dt_rule"), ref.attrs.get("dt_rule")], "steps": [int(ds.attrs["steps"]), int(ref.attrs["steps"])],
            "decomposition": ds.attrs["decomposition"], "frames": int(ds.sizes["t"]),
            "halo_bytes_per_step": float(ds.attrs["halo_bytes_per_step"]),
            "one_process_attrs": sorted(k for k in ("mpi_ranks", "decomposition") if k in ref.attrs)}


def gray_scott(decomposition, method, grid=(37, 29), **settings):
    m = pf.RK45() if method == "rk45" else get_method(method).replace(dt=0.5, **settings)
    return run("gray-scott", decomposition, grid=grid, t_span=20.0, method=m, output=pf.Output(save_every=5.0),
               seed=1)


def walls(decomposition, method, order=4):
    return run(walls_3d(), decomposition, order=order, grid=(13, 11, 9), t_span=0.03,
               method=get_method(method).replace(dt=1e-3), output=pf.Output(save_every=0.01))


def coupled(decomposition, method, **settings):
    m = pf.RK45(rtol=1e-8, atol=1e-10) if method == "rk45" else get_method(method).replace(dt=2e-3, **settings)
    r = run(coupled_2d(), decomposition, grid=(16, 12), t_span=0.1, method=m, output=pf.Output(save_every=0.05))
    return r


def walls_with_scalars(decomposition):
    return run(scalar_walls(), decomposition, grid=(16, 10), t_span=0.02, method=pf.RK4(dt=5e-4),
               output=pf.Output(save_every=0.01))


def coefficients(decomposition):
    return run(coefficient_arrays(), decomposition, grid=(20, 17), t_span=0.02, method=pf.RK4(dt=2e-4),
               output=pf.Output(save_every=0.01))


def coupled_store(path):
    """Scalars into the store; resumed by this rank count, equal to one uninterrupted run."""
    import xarray as xr

    kw = dict(grid=(16, 12), method=pf.SSPRK3(dt=2e-3), progress=False)
    save = dict(save_every=0.05, in_memory=False)
    pf.solve(coupled_2d(), t_span=0.05, output=pf.Output(path + "/c-half.zarr", **save), **kw)
    pf.solve(coupled_2d(), t_span=0.1, output=pf.Output(path + "/c-half.zarr", resume=True, **save), **kw)
    pf.solve(coupled_2d(), t_span=0.1, output=pf.Output(path + "/c-whole.zarr", **save), **kw)
    if RANK:
        return None
    ref = pf.solve(coupled_2d(), t_span=0.1, discretization=pf.FiniteDifference(comm=MPI.COMM_SELF),
                   output=pf.Output(save_every=0.05), **kw)
    with xr.open_zarr(path + "/c-half.zarr") as z, xr.open_zarr(path + "/c-whole.zarr") as w:
        return {"resumed": compare(z, w), "one_process": relative(z, ref), "scalars": sorted(z.A.dims + z.B.dims),
                "frames": [int(z.sizes["t"]), int(ref.sizes["t"])]}


def store(path):
    """A zarr store of a distributed run beside the netCDF file of one process."""
    import xarray as xr

    kw = dict(grid=(24, 20), t_span=10.0, method=pf.RK4(dt=0.5), seed=1, progress=False)
    pf.solve("gray-scott", output=pf.Output(path + "/run.zarr", save_every=2.5, in_memory=False), **kw)
    if RANK:
        return None
    pf.solve("gray-scott", discretization=pf.FiniteDifference(comm=MPI.COMM_SELF),
             output=pf.Output(path + "/one.nc", save_every=2.5), **kw)
    z = xr.open_zarr(path + "/run.zarr")
    nc = xr.open_dataset(path + "/one.nc")
    same_attrs = sorted(set(nc.attrs) - set(z.attrs))
    return {"maxdiff": compare(z, nc), "variables": sorted(z.variables) == sorted(nc.variables),
            "missing_attrs": same_attrs, "frames": [int(z.sizes["t"]), int(nc.sizes["t"])],
            "times": float(np.max(np.abs(z.t.values - nc.t.values))), "status": z.attrs["status"]}


def in_memory_and_store(path):
    """In memory and into a store at once: the gathered Dataset equals the store; a callback
    sees the whole state on every rank and its stop ends every rank at the same time."""
    import xarray as xr

    seen = []

    def watch(t, state):
        seen.append(state["u"].shape)
        if t >= 5.0 and RANK == 0:  # one rank asks: every rank stops there
            raise pf.StopRun("stopped by watch")

    ds = pf.solve("gray-scott", grid=(24, 20), t_span=10.0, method=pf.RK4(dt=0.5), seed=1, progress=False,
                  output=pf.Output(path + "/both.zarr", save_every=2.5), callbacks=[watch])
    z = xr.open_zarr(path + "/both.zarr")
    shapes = COMM.allgather(sorted(set(seen)))
    if RANK:
        return None
    return {"maxdiff": compare(ds, z), "frames": [int(ds.sizes["t"]), int(z.sizes["t"])],
            "status": ds.attrs["status"], "shapes": shapes}


def spectral_stop(path):
    """A spectral run in memory and into a store at once, stopped by a callback on rank 0 only:
    every rank stops at the same frame, and the gathered Dataset equals the store."""
    import xarray as xr

    seen = []

    def watch(t, state):
        seen.append(state["u"].shape)
        if t >= 0.5 and RANK == 0:
            raise pf.StopRun("stopped by watch")

    ds = pf.solve("kolmogorov-flow", grid=32, t_span=2.0, method=pf.RK4(dt=0.01), seed=1, progress=False,
                  output=pf.Output(path + "/spectral-both.zarr", save_every=0.25), callbacks=[watch])
    z = xr.open_zarr(path + "/spectral-both.zarr")
    shapes = COMM.allgather(sorted(set(seen)))
    statuses = COMM.allgather(ds.attrs["status"])
    if RANK:
        return None
    return {"maxdiff": max(float(np.max(np.abs(ds[f].values - z[f].values))) for f in ("u", "v")),
            "frames": [int(ds.sizes["t"]), int(z.sizes["t"])], "statuses": statuses, "shapes": shapes}


VELOCITY = ("u", "v", "w")


def spectral(model, grid, t_end, method, decomposition=None, dtype="float64", save_every=None, **kw):
    """A distributed spectral run against one process (``Spectral(comm=COMM_SELF)``) on rank 0."""
    kw = dict(grid=grid, t_span=t_end, method=method, progress=False, seed=1,
              backend=pf.NumPy(dtype=dtype), output=pf.Output(save_every=save_every or t_end / 2), **kw)
    ds = pf.solve(model, discretization=pf.Spectral(decomposition=decomposition), **kw)
    ref = pf.solve(model, discretization=pf.Spectral(comm=MPI.COMM_SELF), **kw) if RANK == 0 else None
    if RANK:
        return None
    fields = [f for f in ref.data_vars if f in VELOCITY]
    scale = max(float(np.max(np.abs(ref[f].values))) for f in fields)
    diagnostics = [k for k in ("energy", "enstrophy", "dissipation", "energy_rate", "E_k") if k in ref]
    return {"maxdiff": max(float(np.max(np.abs(ds[f].values - ref[f].values))) for f in fields) / scale,
            "diagnostics": relative(ds, ref, diagnostics), "n_diagnostics": len(diagnostics),
            "steps": [int(ds.attrs["steps"]), int(ref.attrs["steps"])],
            "rejected": [int(ds.attrs.get("steps_rejected", -1)), int(ref.attrs.get("steps_rejected", -1))],
            "decomposition": ds.attrs["decomposition"], "fft": ds.attrs["fft"], "frames": int(ds.sizes["t"]),
            "variables": sorted(ds.variables) == sorted(ref.variables), "dtype": str(ds["u"].dtype),
            "transpose_bytes": int(ds.attrs["transpose_bytes_per_transform"]), "status": ds.attrs["status"]}


def spectral_blow_up():
    """A too-large fixed step: every rank stops at the same step and keeps the same last finite state."""
    kw = dict(grid=32, t_span=8.0, method=pf.RK4(dt=0.4, stability="ignore"), progress=False, seed=1,
              output=pf.Output(save_every=1.0))
    ds = pf.solve("kolmogorov-flow", **kw)
    statuses = COMM.allgather(ds.attrs["status"])
    ref = pf.solve("kolmogorov-flow", discretization=pf.Spectral(comm=MPI.COMM_SELF), **kw) if RANK == 0 else None
    if RANK:
        return None
    return {"statuses": statuses, "status": ref.attrs["status"], "frames": [int(ds.sizes["t"]), int(ref.sizes["t"])],
            "maxdiff": relative(ds, ref, ["u", "v"])}


def spectral_store(path):
    """The zarr store of a distributed spectral run (fields and diagnostics) beside one process's netCDF."""
    import xarray as xr

    kw = dict(grid=12, t_span=0.1, method=pf.ETDRK4(dt=0.025), seed=2, progress=False)
    pf.solve("les-hit", output=pf.Output(path + "/les.zarr", save_every=0.05, in_memory=False), **kw)
    if RANK:
        return None
    pf.solve("les-hit", discretization=pf.Spectral(comm=MPI.COMM_SELF), output=pf.Output(path + "/les.nc",
                                                                                        save_every=0.05), **kw)
    z = xr.open_zarr(path + "/les.zarr")
    nc = xr.open_dataset(path + "/les.nc")
    return {"maxdiff": relative(z, nc, ["u", "v", "w"]),
            "diagnostics": relative(z, nc, ["energy", "enstrophy", "dissipation", "energy_rate", "E_k"]),
            "variables": sorted(z.variables) == sorted(nc.variables), "extra": sorted(set(z.variables) ^ set(nc.variables)),
            "missing_attrs": sorted(set(nc.attrs) - set(z.attrs)), "frames": [int(z.sizes["t"]), int(nc.sizes["t"])],
            "k": float(np.max(np.abs(z.k.values - nc.k.values))), "status": z.attrs["status"]}


def resumed(path, written_by=None):
    """Run to t = 5 into a store, resume it to t = 10 (under this rank count), and compare with
    one uninterrupted distributed run to t = 10 (``written_by``: the store of the first half was
    written by another rank count, by an earlier mpiexec)."""
    import xarray as xr

    kw = dict(grid=(24, 20), method=pf.RK4(dt=0.5), seed=1, progress=False)
    save = dict(save_every=2.5, in_memory=False)
    first = path + ("/half.zarr" if written_by is None else f"/half-{written_by}.zarr")
    if written_by is None:
        pf.solve("gray-scott", t_span=5.0, output=pf.Output(first, **save), **kw)
        if RANK == 0:  # the same first half, for a run under another rank count to continue
            import shutil

            shutil.copytree(first, path + f"/half-{COMM.Get_size()}.zarr")
        COMM.Barrier()
        pf.solve("gray-scott", t_span=10.0, output=pf.Output(path + "/whole.zarr", **save), **kw)
    pf.solve("gray-scott", t_span=10.0, output=pf.Output(first, resume=True, **save), **kw)
    if RANK:
        return None
    with xr.open_zarr(first) as z, xr.open_zarr(path + "/whole.zarr") as w:
        return {"maxdiff": compare(z, w), "steps": [int(z.attrs["steps"]), int(w.attrs["steps"])],
                "frames": [int(z.sizes["t"]), int(w.sizes["t"])], "times": float(np.max(np.abs(z.t - w.t))),
                "status": z.attrs["status"], "ranks": [int(z.attrs["mpi_ranks"]), int(w.attrs["mpi_ranks"])],
                "history": z.attrs["history"].count("resumed at t = 5")}


def spectral_resumed(path):
    """A spectral LES run to t = 0.1 into a store, resumed to t = 0.2, against one uninterrupted
    distributed run to t = 0.2 (fields and diagnostics; the state restarts from its physical
    frame, as a one-process spectral resume does: round-off, not bit for bit)."""
    import xarray as xr

    kw = dict(grid=12, method=pf.ETDRK4(dt=0.025), seed=2, progress=False, discretization="spectral")
    save = dict(save_every=0.05, in_memory=False)
    pf.solve("les-hit", t_span=0.1, output=pf.Output(path + "/half-les.zarr", **save), **kw)
    pf.solve("les-hit", t_span=0.2, output=pf.Output(path + "/whole-les.zarr", **save), **kw)
    pf.solve("les-hit", t_span=0.2, output=pf.Output(path + "/half-les.zarr", resume=True, **save), **kw)
    if RANK:
        return None
    with xr.open_zarr(path + "/half-les.zarr") as z, xr.open_zarr(path + "/whole-les.zarr") as w:
        return {"maxdiff": relative(z, w, ["u", "v", "w"]),
                "diagnostics": relative(z, w, ["energy", "enstrophy", "dissipation", "energy_rate", "E_k"]),
                "variables": sorted(z.variables) == sorted(w.variables), "frames": [int(z.sizes["t"]), int(w.sizes["t"])],
                "steps": [int(z.attrs["steps"]), int(w.attrs["steps"])], "status": z.attrs["status"],
                "history": z.attrs["history"].count("resumed at t = 0.1")}


def refused(what):
    kw = dict(grid=(16, 16), t_span=1.0, progress=False)
    try:
        if what == "bdf":
            pf.solve("gray-scott", method="bdf", **kw)
        elif what == "narrow":
            pf.solve("gray-scott", grid=(COMM.Get_size() + 1, 16), t_span=1.0, method=pf.RK4(dt=0.1),
                     discretization=pf.FiniteDifference(order=4, decomposition=(COMM.Get_size(), 1)), progress=False)
        elif what == "netcdf":
            pf.solve("gray-scott", output="/tmp/never.nc", method=pf.RK4(dt=0.1), **kw)
        elif what == "resume":
            pf.solve("gray-scott", output=pf.Output(f"/tmp/never-{COMM.Get_size()}.zarr", resume=True),
                     method=pf.RK4(dt=0.1), **kw)
        elif what == "spectral-torch":
            pf.solve("les-hit", grid=8, t_span=0.01, backend="torch", progress=False)
        elif what == "spectral-2d-slabs":  # under 4 ranks: 3 rfft modes for 4 slabs of the half spectrum
            pf.solve("taylor-green", grid=(8, 4), t_span=0.01, progress=False)
        elif what == "spectral-2d-pencil":
            pf.solve("taylor-green", grid=16, t_span=0.01, discretization=pf.Spectral(decomposition="pencil"),
                     progress=False)
    except PDEForgeError as exc:
        return {"message": str(exc)}
    return {"message": None}


CASES = {
    "gs-2x1-rk4": lambda: gray_scott((2, 1), "rk4"),
    "gs-1x2-euler": lambda: gray_scott((1, 2), "euler", stability="ignore"),  # no rank gathers the whole state
    "gs-auto-ssprk3": lambda: gray_scott(None, "ssprk3"),
    "gs-rk45": lambda: gray_scott(None, "rk45"),
    "gs-2x2-rk4": lambda: gray_scott((2, 2), "rk4"),
    "gs-4x1-uneven-euler": lambda: gray_scott((4, 1), "euler", grid=(38, 29)),
    "walls-2x1-rk4": lambda: walls((2, 1, 1), "rk4"),
    "walls-1x1x2-ssprk3": lambda: walls((1, 1, 2), "ssprk3"),
    "walls-2x2-rk4": lambda: walls((2, 2, 1), "rk4"),
    "walls-1x2x2-euler": lambda: walls((1, 2, 2), "euler", order=2),
    "coupled-2x1-rk4": lambda: coupled((2, 1), "rk4"),
    "coupled-1x2-rk45": lambda: coupled((1, 2), "rk45"),
    "coupled-2x2-euler": lambda: coupled((2, 2), "euler", stability="ignore"),
    "scalar-walls-2x1": lambda: walls_with_scalars((2, 1)),
    "coefficients-2x1": lambda: coefficients((2, 1)),
    "coefficients-1x2": lambda: coefficients((1, 2)),
    "coefficients-2x2": lambda: coefficients((2, 2)),
    "refuse-bdf": lambda: refused("bdf"),
    "refuse-narrow": lambda: refused("narrow"),
    "refuse-netcdf": lambda: refused("netcdf"),
    "refuse-resume": lambda: refused("resume"),
    "refuse-spectral-torch": lambda: refused("spectral-torch"),
    "refuse-spectral-2d-slabs": lambda: refused("spectral-2d-slabs"),
    "refuse-spectral-2d-pencil": lambda: refused("spectral-2d-pencil"),
    # pseudo-spectral: 2-D (Smagorinsky LES, Kolmogorov flow) and 3-D (isotropic turbulence)
    "spec2d-rk4": lambda: spectral("taylor-green", 32, 0.5, pf.RK4(dt=0.05), params={"Cs": 0.1}),
    "spec2d-etdrk4": lambda: spectral("kolmogorov-flow", 64, 1.0, pf.ETDRK4(dt=0.05)),
    "spec2d-etdrk4-adaptive": lambda: spectral("kolmogorov-flow", 64, 2.0, "etdrk4"),
    "spec2d-cnrk4": lambda: spectral("kolmogorov-flow", 64, 1.0, pf.CNRK4(dt=0.05)),
    "spec2d-float32": lambda: spectral("taylor-green", 32, 0.5, pf.SSPRK3(dt=0.05), dtype="float32",
                                       params={"Cs": 0.1}),
    "spec2d-blow-up": spectral_blow_up,
    "spec3d-rk4-slab": lambda: spectral("les-hit", 16, 0.1, pf.RK4(dt=0.02), "slab"),
    "spec3d-ifrk4": lambda: spectral("les-hit", 12, 0.1, pf.IFRK4(dt=0.025)),
    "spec2d-etdrk4-rejects": lambda: spectral("kolmogorov-flow", 64, 8.0, "etdrk4"),
    "spec3d-etdrk4-adaptive-pencil": lambda: spectral("les-hit", 16, 0.2, pf.ETDRK4(rtol=1e-6), "pencil"),
    "spec3d-euler-pencil-uneven": lambda: spectral("les-hit", (12, 10, 8), 0.05, pf.Euler(dt=0.01), (2, 2, 1)),
}


def main() -> None:
    out, names = sys.argv[1], sys.argv[2:]
    results = {}
    warnings.simplefilter("ignore")
    for name in names:
        if name.startswith("store:"):
            results[name] = store(name.split(":", 1)[1])
        elif name.startswith("spectral-store:"):
            results[name] = spectral_store(name.split(":", 1)[1])
        elif name.startswith("spectral-both:"):
            results[name] = spectral_stop(name.split(":", 1)[1])
        elif name.startswith("spectral-resume:"):
            results[name] = spectral_resumed(name.split(":", 1)[1])
        elif name.startswith("resume:"):
            results[name] = resumed(name.split(":", 1)[1])
        elif name.startswith("resume-from-2:"):
            results[name] = resumed(name.split(":", 1)[1], written_by=2)
        elif name.startswith("coupled-store:"):
            results[name] = coupled_store(name.split(":", 1)[1])
        elif name.startswith("both:"):
            results[name] = in_memory_and_store(name.split(":", 1)[1])
        else:
            results[name] = CASES[name]()
    if RANK == 0:
        with open(out, "w") as fh:
            json.dump(results, fh)


if __name__ == "__main__":
    try:
        main()
    except BaseException:  # one rank failing would leave the others waiting in a collective
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        COMM.Abort(1)
