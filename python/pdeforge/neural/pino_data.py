"""Inputs for PINO training and the solver reference it is compared with.

Training is physics-only: the solver provides *inputs* (velocity fields that look like the
flow the operator will be applied to, including its own rollouts), never target trajectories.
The reference run for evaluation is the generated pseudo-spectral LES solver itself.
"""

from __future__ import annotations

import time

import numpy as np


def spun_up_fields(
    system,
    grid: int | tuple[int, ...],
    runs: int,
    snapshots: int,
    t_spin: float,
    seed: int = 0,
    kp: float = 4.0,
    urms: float = 1.0,
    backend: str = "numpy",
    device=None,
) -> np.ndarray:
    """Velocity fields from ``runs`` seeded random divergence-free starts evolved by the solver.

    Each run starts from a solenoidal field with ``E(k) ~ k^4 exp(-2 (k/kp)^2)`` and rms
    ``urms`` and keeps ``snapshots`` frames equally spaced over ``[0, t_spin]`` (the start
    included when ``snapshots > 1``; only ``t_spin`` when 1).

    Args:
        system: the periodic incompressible system (e.g. ``les_system(2)``).
        grid: points per axis.
        runs: number of random starts.
        snapshots: frames kept per run.
        t_spin: length of each run.
        seed: seed of the random starts.
        kp, urms: spectrum peak and rms velocity of the starts.
        backend, device: solver backend ("numpy" or "torch") and torch device.

    Returns:
        Array ``(runs * snapshots, F, *shape)``.
    """
    import pdeforge as pf
    from pdeforge.models.les import solenoidal_random_field

    g = grid if isinstance(grid, pf.UniformGrid) else pf.UniformGrid.from_spec(system.domain, grid)
    rng = np.random.default_rng(seed)
    fields = list(system.fields)
    out = []
    for _ in range(runs):
        u0 = solenoidal_random_field(g, rng, kp=kp, urms=urms)
        if snapshots == 1 and t_spin == 0:
            out.append(u0[None])
            continue
        ds = pf.solve(system, g, (0.0, t_spin), dict(zip(fields, u0)), method="rk4",
                      backend=_backend(backend, device, "float64"), discretization=pf.Spectral(diagnostics=False),
                      output=pf.Output(save_every=t_spin / max(1, snapshots - 1)), progress=False)
        frames = np.stack([ds[f].values for f in fields], axis=1)
        out.append(frames[-snapshots:])
    return np.concatenate(out).astype(np.float64)


def solver_reference(system, grid, u0: np.ndarray, horizon: float, dt_out: float, backend: str = "numpy",
                     device=None, dtype: str = "float64") -> tuple[np.ndarray, float]:
    """Frames of the generated LES solver from ``u0`` (F, *shape) every ``dt_out`` up to ``horizon``.

    Returns:
        ``(frames (n, F, *shape) at dt_out, 2 dt_out, ..., horizon; wall seconds of the time
        stepping)`` (compilation and diagnostics excluded: ``diagnostics=False``).
    """
    import pdeforge as pf

    g = grid if isinstance(grid, pf.UniformGrid) else pf.UniformGrid.from_spec(system.domain, grid)
    fields = list(system.fields)
    started = time.perf_counter()
    ds = pf.solve(system, g, (0.0, horizon), dict(zip(fields, np.asarray(u0))), method="rk4",
                  backend=_backend(backend, device, dtype), discretization=pf.Spectral(diagnostics=False),
                  output=pf.Output(save_every=dt_out), progress=False)
    total = time.perf_counter() - started
    frames = np.stack([ds[f].values for f in fields], axis=1)[1:]
    return frames, float(ds.attrs.get("wall_time_s", total))


def _backend(name: str, device, dtype: str):
    """The spectral backend ``name`` ("numpy" or "torch") with its device and precision."""
    import pdeforge as pf

    return pf.Torch(device=device, dtype=dtype) if name == "torch" else pf.NumPy(dtype=dtype)


__all__ = ["spun_up_fields", "solver_reference"]
