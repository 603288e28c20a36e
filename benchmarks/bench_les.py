"""3-D Smagorinsky LES through ``pf.solve`` against a hand-written NumPy pseudo-spectral loop.

The peer (``les_handwritten.py``) is the straightforward NumPy implementation of the same
equations (convective advection, Smagorinsky stress, 2/3-rule dealiasing, viscous term,
Leray projection), stepped here by the classical RK4 in Fourier space, as one writes it by
hand; once with ``numpy.fft`` and once with ``scipy.fft``. pdeforge is ``pf.solve`` as a user
calls it: the spectral discretization, ``method="rk4"`` at the same ``dt`` and number of steps
(the step is given so that both sides do the same work), every other option at its default,
timed around the whole call (kernels already in the disk cache; the Dataset built). Both start
from the same divergence-free random field; their final velocities are compared.

Rounds are interleaved (peer, pdeforge, peer, ...) and the best of each is kept, with the load
average printed: the machine is shared. Usage::

    python benchmarks/bench_les.py [--grid 32 64] [--steps 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import machine, save, table  # noqa: E402
from les_handwritten import HandWrittenLES  # noqa: E402

NU, CS = 1 / 64, 0.1


def initial_velocity(n: int) -> np.ndarray:
    """A smooth divergence-free random velocity (3, n, n, n): random modes below |k| = 4, projected."""
    rng = np.random.default_rng(0)
    k = np.fft.fftfreq(n, 1.0 / n)
    kz = np.fft.rfftfreq(n, 1.0 / n)
    K = np.stack(np.meshgrid(k, k, kz, indexing="ij"))
    k2 = (K**2).sum(0)
    uh = (rng.standard_normal((3, *k2.shape)) + 1j * rng.standard_normal((3, *k2.shape))) * (k2 < 16) * (k2 > 0)
    uh -= K * (K * uh).sum(0) / np.where(k2 > 0, k2, 1.0)
    u = np.fft.irfftn(uh, s=(n, n, n), axes=(1, 2, 3))
    return u / np.abs(u).max()


def hand_rk4(les: HandWrittenLES, u0: np.ndarray, dt: float, steps: int) -> np.ndarray:
    """Classical RK4 in Fourier space with the hand-written right-hand side; physical velocity out."""
    fft, n = les.fft, les.n
    uh = np.stack([fft.rfftn(u0[i]) for i in range(3)]) * les.mask  # the state starts dealiased
    f = les.rhs_hat
    for _ in range(steps):
        k1 = f(uh)
        k2 = f(uh + 0.5 * dt * k1)
        k3 = f(uh + 0.5 * dt * k2)
        k4 = f(uh + dt * k3)
        uh = uh + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return np.stack([fft.irfftn(uh[i], s=(n, n, n)) for i in range(3)])


def main(argv=None) -> int:
    import scipy.fft

    import pdeforge as pf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(machine(), "| load average before:", os.getloadavg())
    system = pf.les_system(3, nu=NU, Cs=CS)
    rows = []
    for n in args.grid:
        u0 = initial_velocity(n)
        dt = 0.2 * (2 * np.pi / n)  # CFL 0.2 at |u| <= 1
        t_end = args.steps * dt
        ic = {f: u0[i] for i, f in enumerate(system.fields)}
        result = {}

        def run_solve():
            ds = pf.solve(system, n, (0.0, t_end), ic, discretization="spectral", method="rk4", dt=dt,
                          progress=False, output=pf.Output(save_every=t_end))
            result["pf.solve"] = np.stack([ds[f].isel(t=-1).values for f in system.fields])

        peers = {"hand NumPy (numpy.fft)": HandWrittenLES(n, NU, CS), "hand NumPy (scipy.fft)": HandWrittenLES(n, NU, CS, fft=scipy.fft)}
        runners = {name: (lambda les=les, name=name: result.__setitem__(name, hand_rk4(les, u0, dt, args.steps)))
                   for name, les in peers.items()}
        runners["pf.solve"] = run_solve
        run_solve()  # kernels into the disk cache, FFT plans made
        best = {name: np.inf for name in runners}
        for _ in range(args.rounds):  # interleaved
            for name, fn in runners.items():
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
        ref = result["hand NumPy (numpy.fft)"]
        scale = float(np.abs(ref).max())
        for name in runners:
            rows.append({"grid": f"{n}^3", "steps": args.steps, "implementation": name, "best s": best[name],
                         "ms/step": 1e3 * best[name] / args.steps,
                         "speed vs hand (numpy.fft)": best["hand NumPy (numpy.fft)"] / best[name],
                         "max rel diff": float(np.abs(result[name] - ref).max()) / scale})
    load = os.getloadavg()
    print(table(rows, list(rows[0])))
    print("load average after:", load, "(a shared machine: interleaved rounds, best of each)")
    save("les_solve", rows, load_average=list(load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
