"""Diffusion on py-pde's symmetric curvilinear grids: pdeforge against py-pde, same steps.

Polar (disc), spherical (ball) and cylindrical (r, z) diffusion ``u_t = laplace(u)`` with
``u(R) = 0`` (and zero flux in z), forward Euler with the same dt and number of steps on the
same cells: ``pf.solve`` (and, as a diagnosis, pdeforge's bare compiled step loop) against
py-pde's numba EulerSolver stepper.
Compilation is excluded on both sides; rounds are interleaved (A, B, A, B) and the best of
each is kept; wall and process CPU time are both reported, with the load average, because
the machine these figures come from is shared. Run it pinned to one core:

    taskset -c 1 python benchmarks/bench_curvilinear.py [--rounds 3]

The final states of both are compared (they agree to round-off: the discretizations are the
same; see tests/discretize/test_curvilinear.py).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from common import machine, save, table

CASES = {  # name -> (py-pde grid factory, pdeforge domain, cells, steps)
    "polar": (lambda pde, n: pde.PolarSymGrid(1.0, n[0]), [(0.0, 1.0)], (4096,), 20000),
    "spherical": (lambda pde, n: pde.SphericalSymGrid(1.0, n[0]), [(0.0, 1.0)], (4096,), 20000),
    "cylindrical": (lambda pde, n: pde.CylindricalSymGrid(1.0, (0.0, 2.0), n), [(0.0, 1.0), (0.0, 2.0)], (256, 256), 1000),
}


def timed(fn) -> tuple[float, float]:
    """(wall, process CPU) seconds of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def setup(name: str):
    import pde

    import pdeforge as pf
    from pdeforge.discretize.grid import grid_of

    make_grid, domain, cells, steps = CASES[name]
    grid = make_grid(pde, cells)
    h = min(grid.discretization)
    dt = 0.2 * h * h
    coords = grid.cell_coords
    u0 = np.exp(-5 * coords[..., 0] ** 2) * (np.cos(coords[..., 1]) if name == "cylindrical" else 1.0)

    bc = {"r-": {"derivative": 0}, "r+": {"value": 0}}
    if name == "cylindrical":
        bc["z"] = {"derivative": 0}
    state = pde.ScalarField(grid, u0.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stepper = pde.EulerSolver(pde.DiffusionPDE(diffusivity=1.0, bc=bc), backend="numba").make_stepper(state, dt=dt)
        stepper(state, 0.0, dt)  # compile
    state.data[...] = u0
    clock = [0.0]

    def run_pypde():
        state.data[...] = u0
        stepper(state, clock[0], clock[0] + steps * dt)
        clock[0] += steps * dt

    bcs = {"r": "dirichlet", "z": "neumann"} if name == "cylindrical" else {"r": "dirichlet"}
    system = pf.PDESystem({"u": "laplace(u)"}, domain=domain, geometry=name, bcs=bcs)
    bound = pf.compile(system, target="numba").bind(grid_of(system, cells))
    bufs = [bound.new_padded() for _ in range(2)]

    def run_pdeforge():
        bound.cells(bufs[0])[...] = u0[None]
        bound.advance_compiled("euler", bufs, 0.0, dt, steps, False)

    run_pdeforge()  # compile / load
    result = {}

    def run_solve():  # the front door at its defaults but for the method and dt both sides share
        ds = pf.solve(system, cells, (0.0, steps * dt), {"u": u0}, method=pf.Euler(dt=dt), progress=False,
                      output=pf.Output(save_every=steps * dt))
        result["u"] = ds.u.isel(t=-1).values

    run_solve()  # kernels from the disk cache
    runners = {"py-pde": run_pypde, "pdeforge loop": run_pdeforge, "pf.solve": run_solve}
    states = {"py-pde": lambda: state.data, "pdeforge loop": lambda: bound.cells(bufs[0])[0],
              "pf.solve": lambda: result["u"]}
    return runners, states, steps, cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(machine(), "| load average before:", os.getloadavg())
    rows = []
    for name in CASES:
        runners, states, steps, cells = setup(name)
        best = {label: [np.inf, np.inf] for label in runners}
        for _ in range(args.rounds):  # interleaved A, B, C, A, B, C
            for label, fn in runners.items():
                wall, cpu = timed(fn)
                best[label] = [min(best[label][0], wall), min(best[label][1], cpu)]
        peer = states["py-pde"]()
        rows.append({
            "geometry": name, "cells": "x".join(map(str, cells)), "steps": steps,
            "py-pde wall s": best["py-pde"][0], "loop wall s": best["pdeforge loop"][0],
            "pf.solve wall s": best["pf.solve"][0],
            "pf.solve/py-pde wall": best["py-pde"][0] / best["pf.solve"][0],
            "pf.solve/py-pde cpu": best["py-pde"][1] / best["pf.solve"][1],
            "loop/py-pde wall": best["py-pde"][0] / best["pdeforge loop"][0],
            "max |diff| loop": float(np.abs(peer - states["pdeforge loop"]()).max()),
            "max |diff| pf.solve": float(np.abs(peer - states["pf.solve"]()).max()),
        })
    load = os.getloadavg()
    print(table(rows, list(rows[0])))
    print("load average after:", load, "(a shared machine: ratios from interleaved rounds, best of each)")
    save("curvilinear", rows, load_average=list(load))


if __name__ == "__main__":
    main()
