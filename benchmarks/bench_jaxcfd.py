"""pdeforge's kolmogorov-flow against JAX-CFD's pseudo-spectral Navier-Stokes, one process.

The flow: 2-D incompressible Navier-Stokes on [0, 2 pi]^2, nu = 0.05, body force F sin(4y)
along x (F = 1), started from pdeforge's model state (laminar profile plus a seeded
solenoidal perturbation, seed 0).

* pdeforge: ``pf.solve("kolmogorov-flow", ...)``, velocity form (the ``les`` system with
  Cs = 0 fixed at compile time; the solver's solenoidal plan: advection in divergence form,
  2/3-rule dealiasing, Leray projection; 2 inverse + 2 forward FFTs per right-hand side, the
  forcing transformed once), generated NumPy kernels on ducc0 (``scipy.fft`` without it; ``--workers``, default
  one thread like XLA here), ETDRK4 (viscosity exact, 4 right-hand sides per step; ``--method``).
  ``--torch`` adds the same run with ``backend="torch"`` on the CPU. The throughput rounds also
  run pdeforge's ``cnrk4`` (JAX-CFD's own scheme, 5 right-hand sides per step) beside
  ``--method``, so the per-step ratio is given for the same method too.
* JAX-CFD: ``spectral.equations.NavierStokes2D(nu, grid, drag=0, smooth=True,
  forcing_fn=kolmogorov_forcing)``, vorticity form, stepped with
  ``spectral.time_stepping.crank_nicolson_rk4`` (Carpenter-Kennedy low-storage RK4 for the
  advection and forcing, Crank-Nicolson for the viscous term; 5 explicit evaluations per step),
  float64 (``jax_enable_x64``), jit-compiled, steps repeated inside ``jax.lax.fori_loop``,
  ``block_until_ready``. Its initial vorticity is pdeforge's ``omega = v_x - u_y`` (spectral
  derivatives of pdeforge's initial velocity), real-FFT'd.

Matched discretizations (the pitfalls):

* pdeforge's grid is cell-centred, ``x_i = (i + 1/2) h``: JAX-CFD's forcing is sampled at
  offsets (0.5, 0.5) (its ``ForcedNavierStokes2D`` uses (0, 0), the nodes), else the two
  forcings differ by a phase of half a cell.
* 2/3 rule: pdeforge keeps the modes with ``3 |k| < n`` on each axis; JAX-CFD's
  ``brick_wall_filter_2d`` keeps ``kx`` in ``[-int(2n/3)//2, int(2n/3)//2 - 1]``, i.e. it drops
  the ``+k_max`` row of x-modes (not symmetric). The filter of the JAX-CFD equation is replaced
  by pdeforge's mask (``--filter native`` keeps JAX-CFD's; the difference is printed).
  JAX-CFD filters the advection term only, not the state; the initial vorticity is truncated to
  the same band, so both states stay in it.
* JAX-CFD's velocity from vorticity has zero mean; pdeforge's initial velocity has zero mean too
  (checked), so the two solve the same problem.
* Same semi-discrete equations (curl of the dealiased ``-(u.grad)u`` equals the dealiased
  ``-u.grad(omega)`` for a band-limited divergence-free field), different time integrators:
  their answers agree as dt -> 0 (printed), and at equal dt they differ by time error.

Measured:

1. per-step throughput (grid-point-steps/s) at the same dt, ``--grid`` sizes, interleaved
   rounds (pdeforge, JAX-CFD, pdeforge, ...), best of each; the dt is 0.5/(nu k_max^2), stable
   for both (the cost of a step does not depend on dt);
2. time to solution at t = 2 on ``--tts-grid``: for each side the largest dt on a ladder (equal
   steps ending exactly at t = 2) whose final vorticity is within ``--tol`` (max abs, relative to
   max |omega|) of a reference: pdeforge RK4 at a quarter of its CFL step (the reference's own
   error is estimated from the run at half its step count). At t = 2 the flow is still mostly
   the steady laminar profile (max |omega| ~ 5.4, max |omega - omega_laminar| ~ 1.8 at 64^2),
   which an implicit viscous step carries at any dt (and ETDRK4 keeps exactly):
   ``--relative-to perturbation`` measures the error against the perturbation instead (both
   are printed for every dt tried). The reference is pdeforge's ETDRK4 at a quarter of its
   CFL step; JAX-CFD is also run at 4x the reference's steps: its distance to the reference
   falls as dt^2 (its Crank-Nicolson part is second order), which shows the two solve the
   same semi-discrete equations;
3. ``pf.solve`` at its defaults (``--defaults-grid``; no dt, no method: ETDRK4 with its error
   control, rtol 1e-4) against JAX-CFD at the largest dt of the ladder within ``--tol``, both as
   the relative L2 distance of the final vorticity to a fine reference (pdeforge ETDRK4, 800
   steps); interleaved rounds, best of each, ``pf.solve``'s own ``wall_time_s`` (stepping) and
   the whole call;
4. 3-D: pdeforge's les-hit right-hand side against the straightforward NumPy / scipy.fft
   implementation of the same pseudo-spectral right-hand side. That comparison is
   ``benchmarks/les_rhs.py`` (peer ``benchmarks/les_handwritten.py``); it is run from here
   (``--les3d-grid``) rather than duplicated.

Install the peer with ``pip install jax-cfd jax`` (measured with jax-cfd 0.2.1, jax 0.10.2 CPU).
Quick check (defaults)::

    python benchmarks/bench_jaxcfd.py

Full sizes::

    python benchmarks/bench_jaxcfd.py --full     # 128^2 256^2 512^2, t = 2 at 256^2, 3-D 64^3

Every run prints the load average at its start and end; figures from a loaded machine are
provisional.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common

common.pin_early("--cores", 1)  # before NumPy's import starts OpenBLAS's threads

import numpy as np  # noqa: E402
from common import load_average, machine, table  # noqa: E402

MODEL = "kolmogorov-flow"
#: pdeforge's method and scipy.fft threads (set from the command line)
OPTIONS = {"method": "etdrk4", "workers": 1, "torch": False, "same_method": True}
SEED = 0
L = 2.0 * math.pi




def wavenumbers(n: int):
    k = np.fft.fftfreq(n, 1.0 / n)
    kr = np.fft.rfftfreq(n, 1.0 / n)
    return k[:, None], kr[None, :]


def pdeforge_mask(n: int) -> np.ndarray:
    """pdeforge's 2/3 rule on the rfft half spectrum: keep 3 |k| < n on each axis."""
    kx, ky = wavenumbers(n)
    return ((3 * np.abs(kx) < n) & (3 * np.abs(ky) < n)).astype(float)


def vorticity(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """omega = dv/dx - du/dy by spectral derivatives (arrays indexed [x, y], period 2 pi)."""
    n = u.shape[0]
    kx, ky = wavenumbers(n)
    kx = np.where(np.abs(kx) == n // 2, 0.0, kx)  # odd derivative: no Nyquist mode
    ky = np.where(np.abs(ky) == n // 2, 0.0, ky)
    wh = 1j * kx * np.fft.rfft2(v) - 1j * ky * np.fft.rfft2(u)
    return np.fft.irfft2(wh, s=u.shape)


def rel_err(w: np.ndarray, ref: np.ndarray, scale: float | None = None) -> float:
    """max |w - ref| / scale (default max |ref|); inf for a run that blew up."""
    if not np.isfinite(w).all():
        return math.inf
    return float(np.max(np.abs(w - ref)) / (np.max(np.abs(ref)) if scale is None else scale))


# ------------------------------------------------------------------------------------------
# the two sides


class Pdeforge:
    """``pf.solve`` of the catalogue model with a fixed step (the model's ETDRK4 unless told)."""

    def __init__(self, n: int, method: str = "etdrk4", backend: str = "numpy", workers: int | None = 1):
        import pdeforge as pf

        self.pf = pf
        self.n = n
        self.method, self.backend, self.workers = method, backend, workers
        model = pf.models.get_model(MODEL)
        self.params = model.params
        system, defaults = model.setup(grid=n, seed=SEED)
        self.ic = defaults["ic"]
        self.nu = system.params["nu"]
        self.F = system.params["F"]
        y = defaults["grid"].mesh()[1]
        # vorticity of the laminar profile u = F/(nu 4^2) sin(4y), an exact steady solution
        self.omega_laminar = -self.F / (4.0 * self.nu) * np.cos(4.0 * y)

    def solve(self, t_end: float, dt: float | None, method: str | None = None):
        """(final vorticity, stepping seconds, total seconds, attrs); vorticity inf if it blew up."""
        started = time.perf_counter()
        backend = self.pf.NumPy(workers=self.workers) if self.backend == "numpy" else self.backend
        chosen = self.pf.methods.with_settings(method or self.method, stability="ignore")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = self.pf.solve(MODEL, grid=self.n, seed=SEED, t_span=(0.0, t_end), method=chosen, dt=dt,
                               output=self.pf.Output(save_every=t_end), progress=False, backend=backend)
        total = time.perf_counter() - started
        a = ds.attrs
        if a["status"] != "completed" or abs(float(ds.t[-1]) - t_end) > 1e-9:
            return np.full((self.n, self.n), np.inf), a["wall_time_s"], total, a
        w = vorticity(ds.u.isel(t=-1).values, ds.v.isel(t=-1).values)
        return w, a["wall_time_s"], total, a


    def defaults(self, t_end: float):
        """``pf.solve`` as a user calls it: no dt, no method, no backend options.

        Returns (final vorticity, stepping seconds, total seconds, attrs)."""
        started = time.perf_counter()
        ds = self.pf.solve(MODEL, grid=self.n, seed=SEED, t_span=(0.0, t_end),
                           output=self.pf.Output(save_every=t_end), progress=False)
        total = time.perf_counter() - started
        w = vorticity(ds.u.isel(t=-1).values, ds.v.isel(t=-1).values)
        return w, ds.attrs["wall_time_s"], total, ds.attrs


def rel_l2(w: np.ndarray, ref: np.ndarray) -> float:
    """||w - ref|| / ||ref|| (L2 over the grid); inf for a run that blew up."""
    if not np.isfinite(w).all():
        return math.inf
    return float(np.linalg.norm(w - ref) / np.linalg.norm(ref))


class Stepping:
    """pdeforge's stepper alone (what JAX-CFD's timed ``fori_loop`` is): ``steps`` steps of ``dt``
    from the initial state, the kernels compiled and the step's coefficients built once before."""

    def __init__(self, ours: Pdeforge, dt: float, steps: int, backend: str = "numpy", method: str | None = None):
        from pdeforge.solvers.spectral.solve import _compile_and_project, make_stepper, torch_cpu_threads

        model = ours.pf.models.get_model(MODEL)
        system, defaults = model.setup(grid=ours.n, seed=SEED)
        _, self.op, _, self.uh0 = _compile_and_project(system, defaults["grid"], defaults["ic"], backend, None,
                                                      "float64", workers=ours.workers if backend == "numpy" else None)
        self.make, self.threads = make_stepper, torch_cpu_threads
        self.method, self.dt, self.steps = method or ours.method, dt, steps
        self.run()  # warm-up: coefficient arrays, Numba and FFT plans

    def run(self):
        """(final vorticity, wall seconds, CPU seconds)."""
        K = self.op.K
        stepper = self.make(self.op, self.uh0.clone() if K.library == "torch" else self.uh0.copy(), 0.0,
                            self.method, self.dt)
        if hasattr(stepper, "_coefficients") and hasattr(self, "_coeff"):
            stepper._coefficients = self._coeff  # built in the warm-up, like a jit compilation
        with self.threads(self.op):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(self.steps):
                stepper.step(self.dt)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        self._coeff = getattr(stepper, "_coefficients", None)
        u = np.asarray(K.to_numpy(self.op.to_physical(stepper.y)))
        return vorticity(u[0], u[1]), wall, cpu


class JaxCFD:
    """JAX-CFD NavierStokes2D + crank_nicolson_rk4; one jit for any dt and step count."""

    def __init__(self, n: int, nu: float, F: float, omega0: np.ndarray, native_filter: bool = False):
        import jax
        import jax.numpy as jnp
        from jax_cfd.base import forcings, grids
        from jax_cfd.spectral import equations, time_stepping

        self.jax, self.n = jax, n
        grid = grids.Grid((n, n), domain=((0.0, L), (0.0, L)))
        centres = ((0.5, 0.5), (0.5, 0.5))  # pdeforge's cell centres (i + 1/2) h

        def forcing_fn(g):
            return forcings.kolmogorov_forcing(g, scale=F, k=4, offsets=centres)

        eq = equations.NavierStokes2D(nu, grid, drag=0.0, smooth=True, forcing_fn=forcing_fn)
        mask = pdeforge_mask(n)
        self.filter_differs = int(np.sum(np.asarray(eq.filter_) != mask))
        if not native_filter:
            eq.filter_ = jnp.asarray(mask)

        def run(wh, dt, steps):
            step = time_stepping.crank_nicolson_rk4(eq, dt)
            return jax.lax.fori_loop(0, steps, lambda i, w: step(w), wh)

        self._run = jax.jit(run)
        self.wh0 = jnp.asarray(np.fft.rfft2(omega0) * mask)
        started = time.perf_counter()
        self._run(self.wh0, 1e-3, 1).block_until_ready()
        self.compile_s = time.perf_counter() - started

    def solve(self, t_end: float, steps: int, with_cpu: bool = False):
        """(final vorticity, seconds[, CPU seconds of the process])."""
        started, cpu = time.perf_counter(), time.process_time()
        wh = self._run(self.wh0, t_end / steps, steps).block_until_ready()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        w = np.fft.irfft2(np.asarray(wh), s=(self.n, self.n))
        return (w, seconds, cpu) if with_cpu else (w, seconds)


def setup(n: int, native_filter: bool = False):
    ours = Pdeforge(n, OPTIONS["method"], workers=OPTIONS["workers"])
    u0, v0 = ours.ic["u"], ours.ic["v"]
    means = (abs(float(np.mean(u0))), abs(float(np.mean(v0))))
    if max(means) > 1e-12 * float(np.max(np.abs(u0))):
        print(f"  note: pdeforge's initial velocity has a mean {means}; JAX-CFD's has none")
    theirs = JaxCFD(n, ours.nu, ours.F, vorticity(u0, v0), native_filter)
    return ours, theirs


# ------------------------------------------------------------------------------------------


def throughput(n: int, steps: int, rounds: int, native_filter: bool) -> dict:
    ours, theirs = setup(n, native_filter)
    kmax = n // 3
    dt = 0.5 / (ours.nu * kmax * kmax)
    T = steps * dt
    w_ours, _, _, attrs = ours.solve(T, dt)  # the whole pf.solve once: compile time, transforms, agreement
    w_theirs, _ = theirs.solve(T, steps)
    sides = {"pdeforge": Stepping(ours, dt, steps)}
    if OPTIONS["torch"]:
        sides["torch"] = Stepping(ours, dt, steps, backend="torch")
    if OPTIONS["same_method"] and ours.method != "cnrk4":  # JAX-CFD's own scheme, on pdeforge's kernels
        sides["cnrk4"] = Stepping(ours, dt, steps, method="cnrk4")
    wall = {k: math.inf for k in [*sides, "jax-cfd", "pf.solve"]}
    cpu = dict(wall)
    finals = {}
    for _ in range(rounds):  # interleaved: pdeforge, JAX-CFD, pf.solve, (torch), pdeforge, ...
        for name in ["pdeforge", "jax-cfd", "pf.solve", *[k for k in sides if k != "pdeforge"]]:
            if name == "jax-cfd":
                w_theirs_steps, w, c = theirs.solve(T, steps, with_cpu=True)
            elif name == "pf.solve":  # the whole call, fixed dt; its wall_time_s counts stepping only
                c = time.process_time()
                _, w, _, a = ours.solve(T, dt)
                c = time.process_time() - c
            else:
                finals[name], w, c = sides[name].run()
            wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)
    rate = {k: n * n * steps / v for k, v in wall.items()}
    row = {
        "part": "throughput", "grid": f"{n}^2", "dt": dt, "steps": steps,
        "pdeforge_Mpoint_steps_s": rate["pdeforge"] / 1e6, "jaxcfd_Mpoint_steps_s": rate["jax-cfd"] / 1e6,
        "pdeforge_over_jaxcfd": rate["pdeforge"] / rate["jax-cfd"],
        "pdeforge_ms_per_step": 1e3 * wall["pdeforge"] / steps, "jaxcfd_ms_per_step": 1e3 * wall["jax-cfd"] / steps,
        "pdeforge_cpu_ms_per_step": 1e3 * cpu["pdeforge"] / steps, "jaxcfd_cpu_ms_per_step": 1e3 * cpu["jax-cfd"] / steps,
        "pdeforge_over_jaxcfd_cpu": cpu["jax-cfd"] / cpu["pdeforge"],
        "pfsolve_ms_per_step": 1e3 * wall["pf.solve"] / steps,
        "pfsolve_over_jaxcfd": wall["jax-cfd"] / wall["pf.solve"],
        "pdeforge_compile_s": attrs["compile_time_s"], "jaxcfd_jit_s": theirs.compile_s,
        "same_dt_vorticity_diff": rel_err(w_theirs, w_ours),
        "stepper_vs_solve_diff": rel_err(finals["pdeforge"], w_ours), "load": load_average(),
        "pdeforge_method": attrs["method"], "pdeforge_transforms_per_rhs": attrs["transforms_per_rhs"],
    }
    if "cnrk4" in sides:
        row["cnrk4_ms_per_step"] = 1e3 * wall["cnrk4"] / steps
        row["cnrk4_cpu_ms_per_step"] = 1e3 * cpu["cnrk4"] / steps
        row["cnrk4_over_jaxcfd"] = wall["jax-cfd"] / wall["cnrk4"]
        row["cnrk4_over_jaxcfd_cpu"] = cpu["jax-cfd"] / cpu["cnrk4"]
        row["cnrk4_vs_jaxcfd_diff"] = rel_err(w_theirs_steps, finals["cnrk4"])
        print(f"  same scheme (pdeforge cnrk4 vs JAX-CFD crank_nicolson_rk4, same dt): {row['cnrk4_ms_per_step']:.2f} "
              f"ms/step wall, {row['cnrk4_cpu_ms_per_step']:.2f} CPU -> pdeforge/JAX-CFD {row['cnrk4_over_jaxcfd']:.2f}x "
              f"(wall), {row['cnrk4_over_jaxcfd_cpu']:.2f}x (CPU); vorticities differ by {row['cnrk4_vs_jaxcfd_diff']:.1e}",
              flush=True)
    if "torch" in sides:
        row["torch_cpu_ms_per_step"] = 1e3 * wall["torch"] / steps
        row["torch_over_numpy_time"] = wall["torch"] / wall["pdeforge"]
        row["torch_over_numpy_cpu"] = cpu["torch"] / cpu["pdeforge"]
        row["torch_vs_numpy_diff"] = rel_err(finals["torch"], finals["pdeforge"])
        print(f"  torch CPU: {row['torch_cpu_ms_per_step']:.2f} ms/step = {row['torch_over_numpy_time']:.2f}x numpy's "
              f"wall time, {row['torch_over_numpy_cpu']:.2f}x its CPU time; vorticities differ by "
              f"{row['torch_vs_numpy_diff']:.1e}", flush=True)
    print(f"  pf.solve at the same dt (its wall_time_s): {row['pfsolve_ms_per_step']:.2f} ms/step -> "
          f"pf.solve/JAX-CFD {row['pfsolve_over_jaxcfd']:.2f}x", flush=True)
    print(f"{n}^2, dt = {dt:.3g}, {steps} steps: pdeforge {row['pdeforge_ms_per_step']:.2f} ms/step wall, "
          f"{row['pdeforge_cpu_ms_per_step']:.2f} CPU; JAX-CFD {row['jaxcfd_ms_per_step']:.2f} wall, "
          f"{row['jaxcfd_cpu_ms_per_step']:.2f} CPU -> pdeforge/JAX-CFD {row['pdeforge_over_jaxcfd']:.2f}x (wall), "
          f"{row['pdeforge_over_jaxcfd_cpu']:.2f}x (CPU); compile pdeforge {attrs['compile_time_s']:.2f} s "
          f"(cache hit {attrs['kernel_cache_hit']}), jit {theirs.compile_s:.2f} s; |d omega|/max after {steps} steps "
          f"{row['same_dt_vorticity_diff']:.2e} (load {load_average()})", flush=True)
    return row


def ladder(m_min: int, m_max: int) -> list[int]:
    """Step counts from m_min up to m_max, about 19% apart."""
    out, m = [], float(m_min)
    while m < m_max:
        out.append(math.ceil(m))
        m *= 2 ** 0.25
    out.append(m_max)
    return sorted(set(out))


def time_to_solution(n: int, T: float, tol: float, rounds: int, native_filter: bool, relative_to: str) -> list[dict]:
    ours, theirs = setup(n, native_filter)
    what = "max |omega|" if relative_to == "max" else "max |omega - omega_laminar| (the perturbation)"
    print(f"\ntime to solution, {n}^2, t = {T:g}, tolerance {tol:g} of {what} (max abs)"
          + (f"; JAX-CFD's own filter differs from pdeforge's 2/3 mask in {theirs.filter_differs} modes"
             f" ({'kept' if native_filter else 'replaced by the mask'})" if theirs.filter_differs else ""), flush=True)
    w_cfl, _, _, attrs = ours.solve(T, None, "ifrk4")  # the CFL step (0.8 of the limit of the explicit part)
    dt_cfl = float(attrs["dt_max"])
    m_cfl = round(T / dt_cfl)
    m_ref = 4 * m_cfl
    ref, *_ = ours.solve(T, T / m_ref, "etdrk4")
    half, *_ = ours.solve(T, T / (m_ref // 2), "etdrk4")
    scale_max = float(np.max(np.abs(ref)))
    scale_pert = float(np.max(np.abs(ref - ours.omega_laminar)))
    scale = scale_max if relative_to == "max" else scale_pert
    print(f"  max |omega| = {scale_max:.3g}, max |omega - omega_laminar| = {scale_pert:.3g} at t = {T:g}: the flow is "
          f"still {'mostly' if scale_pert < 0.5 * scale_max else 'not'} the steady laminar profile", flush=True)
    ref_err = rel_err(half, ref, scale) / 15.0  # ETDRK4: error(m/2) ~ 16 error(m)
    j_ref, _ = theirs.solve(T, m_ref)
    physics = rel_err(j_ref, ref)  # relative to max |omega|
    physics_fine = rel_err(theirs.solve(T, 4 * m_ref)[0], ref)
    print(f"  reference: pdeforge etdrk4, {m_ref} steps (dt {T / m_ref:.3g}; its error ~ {ref_err:.1e} by Richardson); "
          f"ifrk4 at the CFL step {dt_cfl:.3g} ({m_cfl} steps) error {rel_err(w_cfl, ref, scale):.1e}; "
          f"JAX-CFD at the reference step: |omega_jax - omega_ref|/max = {physics:.2e}, at a quarter of it "
          f"{physics_fine:.2e} (ratio {physics / physics_fine if physics_fine else math.inf:.1f}; 16 = second order)",
          flush=True)
    if native_filter is False and theirs.filter_differs:
        native = JaxCFD(n, ours.nu, ours.F, vorticity(ours.ic["u"], ours.ic["v"]), native_filter=True)
        w_native, _ = native.solve(T, m_ref)
        print(f"  JAX-CFD with its own 2/3 filter instead: differs from the matched one by "
              f"{rel_err(w_native, j_ref):.2e} (relative)", flush=True)

    def search(name, final):
        """Largest dt of the ladder (fewest steps) whose error is within tol; from large dt down."""
        for m in ladder(2, m_ref):
            w = final(m)
            err, err_max, err_pert = rel_err(w, ref, scale), rel_err(w, ref, scale_max), rel_err(w, ref, scale_pert)
            print(f"    {name}: {m:5d} steps, dt {T / m:.4g}: error {err_max:.2e} of max |omega|, "
                  f"{err_pert:.2e} of the perturbation", flush=True)
            if err <= tol:
                return m, err_max, err_pert
        return m_ref, err_max, err_pert

    m_ours, e_ours, p_ours = search("pdeforge", lambda m: ours.solve(T, T / m)[0])
    m_theirs, e_theirs, p_theirs = search("jax-cfd", lambda m: theirs.solve(T, m)[0])
    best = {"pdeforge": math.inf, "pdeforge_total": math.inf, "jax-cfd": math.inf, "pdeforge_cpu": math.inf,
            "jax-cfd_cpu": math.inf}
    for _ in range(rounds):  # interleaved
        c0 = time.process_time()
        _, s, tot, _ = ours.solve(T, T / m_ours)
        best["pdeforge_cpu"] = min(best["pdeforge_cpu"], time.process_time() - c0)
        best["pdeforge"], best["pdeforge_total"] = min(best["pdeforge"], s), min(best["pdeforge_total"], tot)
        _, w, c = theirs.solve(T, m_theirs, with_cpu=True)
        best["jax-cfd"], best["jax-cfd_cpu"] = min(best["jax-cfd"], w), min(best["jax-cfd_cpu"], c)
    row = {
        "part": "time_to_solution", "grid": f"{n}^2", "t_end": T, "tol": tol,
        "relative_to": relative_to, "max_omega": scale_max, "max_perturbation": scale_pert,
        "pdeforge_steps": m_ours, "pdeforge_dt": T / m_ours, "pdeforge_err": e_ours, "pdeforge_err_pert": p_ours,
        "pdeforge_method": ours.method, "pdeforge_rhs_evals": 4 * m_ours if ours.method != "cnrk4" else 5 * m_ours, "pdeforge_s": best["pdeforge"], "pdeforge_total_s": best["pdeforge_total"],
        "jaxcfd_steps": m_theirs, "jaxcfd_dt": T / m_theirs, "jaxcfd_err": e_theirs, "jaxcfd_err_pert": p_theirs,
        "jaxcfd_rhs_evals": 5 * m_theirs, "jaxcfd_s": best["jax-cfd"], "jaxcfd_jit_s": theirs.compile_s,
        "pdeforge_over_jaxcfd_speed": best["jax-cfd"] / best["pdeforge"],
        "pdeforge_cpu_s_whole_solve": best["pdeforge_cpu"], "jaxcfd_cpu_s": best["jax-cfd_cpu"],
        "pdeforge_over_jaxcfd_cpu": best["jax-cfd_cpu"] / best["pdeforge_cpu"],
        "reference_steps": m_ref, "reference_err_estimate": ref_err, "physics_diff_at_reference_dt": physics,
        "physics_diff_at_quarter_reference_dt": physics_fine,
        "load": load_average(),
    }
    print(f"  pdeforge: dt {T / m_ours:.4g} ({m_ours} steps, error {e_ours:.1e}) -> {best['pdeforge']:.3f} s stepping "
          f"({best['pdeforge_total']:.3f} s with setup); JAX-CFD: dt {T / m_theirs:.4g} ({m_theirs} steps, error "
          f"{e_theirs:.1e}) -> {best['jax-cfd']:.3f} s (+ jit {theirs.compile_s:.2f} s once); "
          f"JAX-CFD / pdeforge time = {best['jax-cfd'] / best['pdeforge']:.3f}; CPU: pdeforge whole solve "
          f"{best['pdeforge_cpu']:.3f} s, JAX-CFD {best['jax-cfd_cpu']:.3f} s (load {load_average()})", flush=True)
    return [row]


def at_defaults(n: int, T: float, tol: float, rounds: int, native_filter: bool) -> dict:
    """``pf.solve`` at its defaults (no dt, no method) against JAX-CFD at its largest step meeting
    ``tol``, both measured as the relative L2 distance of the final vorticity to a fine reference."""
    ours, theirs = setup(n, native_filter)
    m_ref = 800
    ref, *_ = ours.solve(T, T / m_ref, "etdrk4")
    half, *_ = ours.solve(T, T / (m_ref // 2), "etdrk4")
    ref_err = rel_l2(half, ref) / 15.0
    w_def, _, _, a = ours.defaults(T)
    err_def = rel_l2(w_def, ref)
    print(f"\npf.solve at its defaults, {n}^2 to t = {T:g}: {a['method']}, {a['steps']} steps "
          f"({a.get('steps_rejected', 0)} rejected), dt {a['dt']:.4g} ({a.get('dt_meaning', '')}), error {err_def:.2e} "
          f"(rel. L2 of the vorticity; reference etdrk4 {m_ref} steps, its error ~ {ref_err:.1e}); "
          f"the run's own estimate {a.get('error_estimate', math.nan):.1e}", flush=True)
    m_theirs, e_theirs = m_ref, math.inf
    for m in ladder(2, m_ref):
        e = rel_l2(theirs.solve(T, m)[0], ref)
        print(f"    jax-cfd: {m:5d} steps, dt {T / m:.4g}: error {e:.2e}", flush=True)
        if e <= tol:
            m_theirs, e_theirs = m, e
            break
    best = {"pf.solve": math.inf, "pf.solve_total": math.inf, "jax-cfd": math.inf}
    for _ in range(rounds):  # interleaved
        _, s, tot, _ = ours.defaults(T)
        best["pf.solve"], best["pf.solve_total"] = min(best["pf.solve"], s), min(best["pf.solve_total"], tot)
        best["jax-cfd"] = min(best["jax-cfd"], theirs.solve(T, m_theirs)[1])
    row = {
        "part": "defaults", "grid": f"{n}^2", "t_end": T, "tol": tol, "metric": "rel. L2 of the vorticity",
        "pfsolve_method": a["method"], "pfsolve_steps": a["steps"], "pfsolve_rejected": a.get("steps_rejected", 0),
        "pfsolve_dt_mean": a["dt"], "pfsolve_err": err_def, "pfsolve_s": best["pf.solve"],
        "pfsolve_total_s": best["pf.solve_total"], "pfsolve_compile_s": a["compile_time_s"],
        "jaxcfd_steps": m_theirs, "jaxcfd_dt": T / m_theirs, "jaxcfd_err": e_theirs, "jaxcfd_s": best["jax-cfd"],
        "pfsolve_over_jaxcfd_speed": best["jax-cfd"] / best["pf.solve"], "reference_err_estimate": ref_err,
        "load": load_average(),
    }
    print(f"  pf.solve defaults: {best['pf.solve']:.3f} s stepping ({best['pf.solve_total']:.3f} s the whole call), "
          f"error {err_def:.1e}; JAX-CFD dt {T / m_theirs:.4g} ({m_theirs} steps, error {e_theirs:.1e}): "
          f"{best['jax-cfd']:.3f} s -> JAX-CFD / pf.solve time = {row['pfsolve_over_jaxcfd_speed']:.2f} "
          f"(load {load_average()})", flush=True)
    return row


def les3d(grids: list[int], rounds: int) -> list[dict]:
    import les_rhs

    rows = []
    for n in grids:
        for r in les_rhs.measure(n, 1, [], rounds):
            rows.append({"part": "les3d_rhs", "grid": f"{n}^3", "implementation": r["name"],
                         "ms_per_rhs": 1e3 * r["seconds"], "Mpoint_rhs_s": r["points_per_s"] / 1e6,
                         "max_rel_diff": r["rel_err"]})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=int, nargs="*", default=[128], help="throughput grids")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed throughput round")
    ap.add_argument("--tts-grid", type=int, nargs="*", default=[64], help="time-to-solution grids at a fixed dt "
                    "searched on a ladder (none: skip)")
    ap.add_argument("--t-end", type=float, default=2.0)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--relative-to", choices=["max", "perturbation"], default="max",
                    help="tolerance relative to max |omega| (default) or to max |omega - omega_laminar|")
    ap.add_argument("--les3d-grid", type=int, nargs="*", default=[32], help="3-D les-hit rhs grids (none: skip)")
    ap.add_argument("--defaults-grid", type=int, nargs="*", default=[64],
                    help="grids of pf.solve at its defaults against JAX-CFD's largest step within --tol (none: skip)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each side is kept")
    ap.add_argument("--jax-threads", type=int, default=1, help="1: XLA on one thread, like pdeforge's scipy.fft; "
                    "0: XLA's default (all cores)")
    ap.add_argument("--filter", choices=["matched", "native"], default="matched",
                    help="JAX-CFD's 2/3 filter: pdeforge's mask (default) or its own")
    ap.add_argument("--method", default="etdrk4", choices=["etdrk4", "ifrk4", "cnrk4", "rk4"], help="pdeforge's method")
    ap.add_argument("--workers", type=int, default=1, help="pdeforge's scipy.fft threads (0: pdeforge's default)")
    ap.add_argument("--torch", action="store_true", help="also time backend='torch' on the CPU (throughput)")
    ap.add_argument("--no-same-method", action="store_true",
                    help="skip pdeforge's cnrk4 (JAX-CFD's scheme) beside --method in the throughput rounds")
    ap.add_argument("--cores", type=int, default=1, help="pin the process to this many cores (0: no pinning); "
                    "XLA starts threads of its own whatever its flags say, so pinning is what keeps both sides on one")
    ap.add_argument("--full", action="store_true", help="full sizes: 128 256 512, t = 2 at 256^2, 3-D 64^3")
    ap.add_argument("--results-dir", default=None, help="where jaxcfd.json goes (default benchmarks/results)")
    args = ap.parse_args()
    if args.full:
        args.grid, args.steps, args.tts_grid, args.les3d_grid, args.rounds = [128, 256, 512], 40, [256], [64], 3
        args.defaults_grid = [256]
    OPTIONS.update(method=args.method, workers=args.workers or None, torch=args.torch,
                   same_method=not args.no_same_method)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if args.jax_threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    try:
        import jax
        import jax_cfd
        from jax_cfd.spectral import equations  # noqa: F401
    except ImportError as exc:
        print(f"bench_jaxcfd: JAX-CFD is not installed ({exc}; pip install jax-cfd jax); skipped")
        return 0
    jax.config.update("jax_enable_x64", True)
    try:
        from importlib.metadata import version

        cfd_version = version("jax-cfd")
    except Exception:  # noqa: BLE001
        cfd_version = getattr(jax_cfd, "__version__", "?")
    native = args.filter == "native"
    print(f"pdeforge {MODEL} vs JAX-CFD {cfd_version} (jax {jax.__version__}, float64, "
          f"XLA threads: {'1' if args.jax_threads == 1 else 'default'}; pdeforge: numpy kernels, {args.method}, "
          f"scipy.fft {args.workers or 'default'} thread(s)); "
          f"{machine()}; load average {load_average()} at the start", flush=True)
    rows = []
    for n in args.grid:
        rows.append(throughput(n, args.steps, args.rounds, native))
    for n in args.defaults_grid:
        rows.append(at_defaults(n, args.t_end, args.tol, args.rounds, native))
    for n in args.tts_grid:
        rows += time_to_solution(n, args.t_end, args.tol, args.rounds, native, args.relative_to)
    if args.les3d_grid:
        print("\n3-D les-hit right-hand side vs the hand-written NumPy pseudo-spectral rhs "
              "(benchmarks/les_rhs.py, peer benchmarks/les_handwritten.py), one thread, median of rounds:")
        les = les3d(args.les3d_grid, max(3, args.rounds))
        for r in les:
            hand = next(x for x in les if x["grid"] == r["grid"] and x["implementation"].endswith("(numpy.fft)"))
            r["speed_vs_hand_numpy_fft"] = hand["ms_per_rhs"] / r["ms_per_rhs"]
        print(table(les, ["grid", "implementation", "ms_per_rhs", "Mpoint_rhs_s", "speed_vs_hand_numpy_fft", "max_rel_diff"]))
        rows += les
    print()
    tp = [r for r in rows if r["part"] == "throughput"]
    if tp:
        print(table(tp, ["grid", "dt", "steps", "pdeforge_ms_per_step", "jaxcfd_ms_per_step", "pdeforge_over_jaxcfd",
                         "pdeforge_cpu_ms_per_step", "jaxcfd_cpu_ms_per_step", "pdeforge_over_jaxcfd_cpu",
                         "cnrk4_over_jaxcfd", "cnrk4_over_jaxcfd_cpu", "torch_over_numpy_time", "torch_over_numpy_cpu"]))
    dft = [r for r in rows if r["part"] == "defaults"]
    if dft:
        print(table(dft, ["grid", "pfsolve_steps", "pfsolve_dt_mean", "pfsolve_err", "pfsolve_s", "jaxcfd_dt",
                          "jaxcfd_err", "jaxcfd_s", "pfsolve_over_jaxcfd_speed"]))
    tts = [r for r in rows if r["part"] == "time_to_solution"]
    if tts:
        print(table(tts, ["grid", "pdeforge_dt", "pdeforge_s", "jaxcfd_dt", "jaxcfd_s", "pdeforge_over_jaxcfd_speed",
                          "pdeforge_cpu_s_whole_solve", "jaxcfd_cpu_s", "pdeforge_over_jaxcfd_cpu",
                          "physics_diff_at_reference_dt"]))
    print(f"load average {load_average()} at the end ({os.cpu_count()} cores; this process pinned to "
          f"{len(os.sched_getaffinity(0))})")
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print("the machine was loaded: these figures are provisional (rerun on a quiet machine)")
    if args.results_dir:
        common.RESULTS = Path(args.results_dir)
    common.save("jaxcfd", rows, jax_cfd_version=cfd_version, jax_version=jax.__version__,
                       pdeforge_method=args.method, pdeforge_workers=args.workers or "default", cores=args.cores,
                       xla_threads=1 if args.jax_threads == 1 else "default", filter=args.filter, tol=args.tol,
                       load_average_end=load_average())
    return 0


if __name__ == "__main__":
    sys.exit(main())
