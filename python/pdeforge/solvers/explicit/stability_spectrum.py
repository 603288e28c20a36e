"""Explicit stability limits from the spectrum of the linearised semi-discrete operator.

A fixed-step Runge-Kutta method advances ``y' = J y`` by ``y <- R(dt J) y`` with the method's
stability polynomial ``R``; it is stable when ``dt * lambda`` lies in ``{|R(z)| <= 1}`` for every
eigenvalue ``lambda`` of ``J``. The region is precomputed along rays from the origin (its
boundary radius ``r(theta)`` in the left half-plane), and the extreme eigenvalues of the exact
sparse Jacobian are found with ARPACK (largest magnitude, Arnoldi), so

    dt_max = min over lambda of r(arg lambda) / |lambda|.

This treats waves (``u_t = v, v_t = c**2 laplace(u)``: eigenvalues on the imaginary axis),
advection, dispersion (KdV's ``d(u, x, 3)``), diffusion and any higher-order operator alike,
which the symbolic estimate of :mod:`pdeforge.solvers.explicit.stability` cannot. Eigenvalues with a
positive real part are physical growth (an unstable reaction, Cahn-Hilliard's ``-laplace(c)``,
a backward heat equation): no step makes them decay, and they limit the step as their mirror
images in the left half-plane would (so the growth is resolved in time).

The cost is capped: on grids with more than :data:`PROBE_UNKNOWNS` unknowns the spectrum is
taken on a probe grid with the same cell widths and about that many unknowns (48 cells in 1-D,
45^2 in 2-D, 12^3 in 3-D for one field; the corner of the state that holds the low walls),
whose extreme eigenvalues are those of the full operator to within the variation of the
coefficients across the grid (and, with walls, to O(1/m^2) for m probe cells per axis: a
Dirichlet Laplacian's largest eigenvalue differs by (pi/(2m))^2 relative, 1.7% at m = 12, well
inside the safety factor a chosen step takes).
"""

from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pdeforge.discretize.grid import UniformGrid
from pdeforge.solvers.methods import Method

#: Above this many unknowns the spectrum is taken on a probe grid of the same spacing, of at
#: most this many unknowns. Arnoldi's cost grows fast with the size where the extreme
#: eigenvalues cluster (3-D heat with walls, h = 1/128: 0.04 s on a 16^3 probe, 26 s on 48^3,
#: the same extreme eigenvalue to 1e-12; a 1-D polar Laplacian of 4096 cells: 0.6-1.1 s).
PROBE_UNKNOWNS = 2048
#: Cells per axis of the probe grid (at most; fewer where the unknowns would exceed
#: :data:`PROBE_UNKNOWNS`, never fewer than :data:`PROBE_MIN_CELLS`).
PROBE_CELLS = 48
PROBE_MIN_CELLS = 8
#: Below this many unknowns the eigenvalues are computed densely.
DENSE_UNKNOWNS = 600

#: Stability polynomials ``R(z) = sum c_k z**k`` (coefficients c_0, c_1, ...).
POLYNOMIALS = {
    "euler": (1.0, 1.0),
    "ssprk3": (1.0, 1.0, 1 / 2, 1 / 6),
    "rk4": (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24),
}
_RAYS = 1025  # angles from pi/2 (imaginary axis) to pi (negative real axis)
_RAY_BLOCK = 32  # rays sampled at once


@dataclass
class SpectralEstimate:
    """Result of :func:`spectral_dt_limit`.

    Attributes:
        dt_max: largest stable step (inf if the operator has no nonzero eigenvalue).
        eigenvalues: the extreme eigenvalues found (of the probe grid where one was used).
        limiting: the eigenvalue that sets ``dt_max``.
        probe_shape: shape of the probe grid, or None when the full grid was used.
    """

    dt_max: float
    eigenvalues: np.ndarray
    limiting: complex | None
    probe_shape: tuple[int, ...] | None


@lru_cache(maxsize=None)
def region_radii(method: str) -> tuple[np.ndarray, np.ndarray]:
    """Boundary radius of the stability region of ``method`` along rays of the left half-plane.

    Returns:
        ``(theta, r)``: angles from pi/2 to pi and the distance from 0 to the first point on
        each ray where ``|R(z)| > 1``.
    """
    coeffs = np.array(POLYNOMIALS[method])[::-1]
    theta = np.linspace(np.pi / 2, np.pi, _RAYS)
    s = np.linspace(0.0, 8.0, 4001)[1:]
    first = np.empty(_RAYS, dtype=np.intp)
    # the first sample outside on each ray, a block of rays at a time: the block's complex
    # temporaries (2 MB) stay in cache, where the whole sweep's (65 MB each) cost 0.3-0.4 s of
    # page faults and memory traffic in every fresh process (same values)
    for a in range(0, _RAYS, _RAY_BLOCK):
        z = s[None, :] * np.exp(1j * theta[a : a + _RAY_BLOCK])[:, None]
        outside = np.abs(np.polyval(coeffs, z)) > 1.0 + 1e-12
        first[a : a + _RAY_BLOCK] = np.where(outside.any(axis=1), outside.argmax(axis=1), s.size - 1)
    r = np.where(first > 0, s[np.maximum(first - 1, 0)], 0.0)
    # refine each crossing by bisection between the last inside and first outside sample
    lo, hi = r.copy(), s[first]
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        out = np.abs(np.polyval(coeffs, mid * np.exp(1j * theta))) > 1.0 + 1e-12
        hi = np.where(out, mid, hi)
        lo = np.where(out, lo, mid)
    return theta, np.where(first > 0, lo, 0.0)


def dt_from_eigenvalues(eigenvalues: np.ndarray, method: str) -> tuple[float, complex | None]:
    """Largest ``dt`` with ``dt * lambda`` inside the region of ``method`` for every eigenvalue.

    Eigenvalues with a positive real part (growth) count as their mirror image in the left
    half-plane: the step then resolves the growth as it would a decay of the same rate.

    Returns:
        ``(dt_max, limiting eigenvalue)``; ``(inf, None)`` when every eigenvalue is zero.
    """
    theta, r = region_radii(method)
    lam = np.asarray(eigenvalues, dtype=complex)
    scale = np.abs(lam).max() if lam.size else 0.0
    # real parts at the eigensolver's tolerance (a wave's or centred advection's imaginary spectrum) are zero
    real = np.where(np.abs(lam.real) <= 1e-3 * scale, 0.0, -np.abs(lam.real))
    lam = real + 1j * np.abs(lam.imag)
    mag = np.abs(lam)
    keep = mag > 1e-12 * scale
    if scale == 0 or not keep.any():
        return math.inf, None
    lam, mag = lam[keep], mag[keep]
    angle = np.clip(np.angle(lam), np.pi / 2, np.pi)
    dts = np.interp(angle, theta, r) / mag
    i = int(np.argmin(dts))
    return float(dts[i]), complex(lam[i])


def extreme_eigenvalues(J, k: int = 8) -> np.ndarray:
    """The ``k`` largest-magnitude eigenvalues of the sparse matrix ``J`` (all of them when small)."""
    import scipy.sparse.linalg as spla

    n = J.shape[0]
    if n <= DENSE_UNKNOWNS:
        return np.linalg.eigvals(J.toarray())
    v0 = np.random.default_rng(0).standard_normal(n)  # deterministic start: reproducible estimates
    try:
        return spla.eigs(J, k=k, which="LM", tol=1e-4, ncv=min(n - 1, 4 * k + 1), maxiter=max(300, n // 10),
                         v0=v0, return_eigenvectors=False)
    except spla.ArpackNoConvergence as exc:
        if len(exc.eigenvalues):
            return exc.eigenvalues
        raise


def probe_grid(grid: UniformGrid, nfields: int = 1) -> UniformGrid | None:
    """A grid with ``grid``'s cell widths and at most :data:`PROBE_CELLS` cells per axis, or None
    when ``grid`` (with ``nfields`` unknowns per cell) is small enough to be used itself."""
    if nfields * grid.size <= PROBE_UNKNOWNS:
        return None
    per_axis = int((PROBE_UNKNOWNS / nfields) ** (1.0 / grid.dim) + 1e-9)
    shape = tuple(min(n, PROBE_CELLS, max(PROBE_MIN_CELLS, per_axis)) for n in grid.shape)
    domain = tuple((lo, lo + m * h) for (lo, _), m, h in zip(grid.domain, shape, grid.spacing))
    return dataclasses.replace(grid, domain=domain, shape=shape)  # keeps axis names and geometry


def spectral_dt_limit(kernel, grid: UniformGrid, params, states: list[tuple[np.ndarray, float]],
                      method: Method) -> SpectralEstimate:
    """Largest stable step of ``method`` over the linearisations at ``states``.

    Args:
        kernel: a compiled kernel (its ``bind(grid, params)`` gives the exact Jacobian).
        grid: the grid of the run.
        params: parameter values.
        states: ``(cells, t)`` pairs (cells of shape (fields, *grid.shape)) to linearise at.
        method: the explicit method.
    """
    probe = probe_grid(grid, len(kernel.system.fields))
    bound = kernel.bind(probe or grid, params)
    window = (slice(None), *(slice(0, n) for n in (probe or grid).shape))
    dt, limiting, found = math.inf, None, []
    for cells, t in states:
        y = np.ascontiguousarray(np.asarray(cells, dtype=float)[window]).ravel()
        lam = extreme_eigenvalues(bound.jacobian(t, y))
        found.append(lam)
        d, lim = dt_from_eigenvalues(lam, method.name)
        if d < dt:
            dt, limiting = d, lim
    return SpectralEstimate(dt, np.concatenate(found), limiting, probe.shape if probe else None)


def estimate_dt(system, grid: UniformGrid, kernel, params, cells: np.ndarray, t0: float, t1: float,
                method: Method, order: int, scheme: str) -> tuple[float, str]:
    """The explicit step limit of a run, and where it comes from (for messages).

    The spectrum of the exact Jacobian (:func:`spectral_dt_limit`) at the initial state and at
    the uniform Dirichlet boundary states at ``t0`` and ``t1`` (a degenerate diffusion that starts
    from ``u = 0`` only diffuses what flows in) gives the limit for finite differences on NumPy
    kernels, and for Numba and PyTorch kernels through the NumPy kernel of the same
    discretization (same stencils, so the same spectrum; for Numba kernels it is the cheaper
    one to build). Finite-volume schemes (their upwinded
    fluxes obey a TVD CFL condition) keep the symbolic estimate of
    :func:`pdeforge.solvers.explicit.stability.explicit_dt_limit`.

    Returns:
        ``(dt_max, description)``.
    """
    from pdeforge.codegen.kernel import Kernel
    from pdeforge.discretize.finite_volume import get_scheme
    from pdeforge.solvers.explicit.stability import _boundary_states, explicit_dt_limit

    spectral = method.name in POLYNOMIALS and not get_scheme(scheme).finite_volume
    torch_kernel = isinstance(kernel, Kernel) and type(kernel) is not Kernel and kernel.target == "torch"
    numba_kernel = type(kernel) is Kernel and kernel.target == "numba" and not kernel.networks
    if spectral and (torch_kernel or numba_kernel):
        # the NumPy kernel of the same discretization has the same spectrum (same stencils):
        # a torch kernel has no NumPy Jacobian, and for a Numba kernel the NumPy one costs
        # milliseconds on the probe grid where compiling its Jacobian costs a fresh cache 0.3 s
        # of LLVM that a fixed-step run never uses again
        from pdeforge.codegen.build import compile_system

        source = system if torch_kernel else kernel.system
        kernel = compile_system(source, target="numpy", order=order, scheme=scheme)
    if spectral and type(kernel) is Kernel:
        states = [(np.asarray(cells, dtype=float), t0)]
        for state, ts, _ in _boundary_states(system, grid, cells, t0, t1, params):
            if ts in (t0, t1) and not any(np.allclose(state, s, rtol=0.1, atol=0.0) for s, _ in states):
                states.append((state, ts))
        est = spectral_dt_limit(kernel, grid, params, states, method)
        where = f" on a {'x'.join(map(str, est.probe_shape))} probe of the same spacing" if est.probe_shape else ""
        lam = "" if est.limiting is None else f", limiting eigenvalue {est.limiting:.4g}"
        return est.dt_max, f"{method.name} stability limit {est.dt_max:.4g} (spectrum of the Jacobian{where}{lam})"
    est = explicit_dt_limit(system, grid, cells, t0, method, order, params=params, scheme=scheme, t_end=t1)
    return est.dt_max, f"{method.name} stability limit {est.dt_max:.4g} (from the equation for {est.limiting_field!r})"


def measured_dt_limit(bound, cells: np.ndarray, method: str, lo: float, hi: float, steps: int = 400,
                      growth: float = 10.0, iterations: int = 14) -> float:
    """The true step limit, bisected: the largest ``dt`` in ``[lo, hi]`` for which ``steps`` steps
    of the solver's own stepper grow a perturbation of ``cells`` by at most ``growth``.

    Used to check :func:`spectral_dt_limit` (``lo`` must be stable, ``hi`` unstable). The
    perturbation is random (seeded) so that it holds every mode; the system should be linear.
    """
    import warnings

    from pdeforge.solvers.explicit.runge_kutta import BlowUp, FixedStepRK

    base = np.asarray(cells, dtype=float)
    start = base + 1e-3 * np.random.default_rng(0).standard_normal(base.shape)

    def stable(dt: float) -> bool:
        stepper = FixedStepRK(bound, start.copy(), 0.0, dt, method)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                stepper.advance(steps * dt)
        except BlowUp:
            return False
        change = np.abs(stepper.cells() - base).max()
        return bool(np.isfinite(change) and change <= growth * np.abs(start - base).max() + np.abs(base).max())

    for _ in range(iterations):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return lo
