"""Stochastic PDEs: space-time white noise in Ito form, Euler-Maruyama and Milstein.

A system with ``noise={"u": g}`` is ``du = f(u) dt + g(u) dW`` per cell, with the noise of
py-pde's scaling: over a step ``dt`` each cell of volume ``V`` receives
``g * sqrt(dt / V) * N(0, 1)``, independent across cells, fields and steps. The drift ``f``
is the compiled right-hand side of the chosen backend; the noise strengths are evaluated here
with NumPy, and the random numbers come from one place, so a run is the same on every
backend for the same seed:

    rng = numpy.random.default_rng(seed)
    every step: Z = rng.standard_normal((number of noisy fields, *grid.shape))

(noisy fields in the system's field order), ``dW = sqrt(dt) * Z``.

Schemes (strong orders for multiplicative noise): ``euler`` is Euler-Maruyama (1/2),
``milstein`` adds ``0.5 * g * dg/du * (dW**2 - dt) / V`` (1; diagonal noise: the strength of
field ``u`` may depend on ``u`` but on no other field). For additive noise both are the same
scheme, of strong order 1.
"""

from __future__ import annotations

import json
import math

import numpy as np
import sympy as sp

from pdeforge.codegen.kernel import BoundKernel
from pdeforge.discretize.coefficients import coefficient_cells
from pdeforge.errors import SolverError
from pdeforge.solvers.run.initial import numpy_modules
from pdeforge.solvers.methods import EulerMaruyama, Method, Milstein, get_method
from pdeforge.solvers.stepping import CHECK_EVERY, BlowUp, Stepper, equal_steps
from pdeforge.symbolic.system import PDESystem

#: the stochastic schemes by the names a system with noise accepts ("euler" is Euler-Maruyama)
SCHEMES = {"euler": EulerMaruyama, "euler-maruyama": EulerMaruyama, "milstein": Milstein}


class NoiseTerms:
    """The noise strengths of a system on a grid, as NumPy functions of the cell values.

    Args:
        system: the PDE system (its ``noise``).
        grid: the grid.
        with_derivative: also build ``dg/du`` of each strength (Milstein); requires diagonal noise.
    """

    def __init__(self, system: PDESystem, grid, with_derivative: bool = False):
        self.fields = [system.fields.index(f) for f in system.fields if f in system.noise]
        values = {system.param_symbols[p]: v for p, v in system.params.items()}
        fns = [system.field_functions[f] for f in system.fields]
        coefs = list(system.coefficient_functions.values())
        args = [*fns, *coefs, *system.coords, system.t]
        shape = [[1] * grid.dim for _ in range(grid.dim)]
        for a in range(grid.dim):
            shape[a][a] = -1
        self._coords = [c.reshape(s) for c, s in zip(grid.coordinates, shape)]
        self._coefs = [coefficient_cells(system, grid, k) for k in system.coefficients]
        # per cell on a curvilinear grid (its rings and shells differ), as py-pde's cell_volume_data
        self.inv_volume = 1.0 / (grid.cell_volumes() if getattr(grid, "curvilinear", False) else grid.cell_volume)
        self.shape = grid.shape
        self.strength, self.derivative = [], []
        for i in self.fields:
            g = sp.sympify(system.noise[system.fields[i]].xreplace(values))
            self.strength.append(sp.lambdify(args, g, modules=numpy_modules(g)))
            if with_derivative:
                others = [system.fields[j] for j, fn in enumerate(fns) if j != i and g.has(fn)]
                if others:
                    raise SolverError(
                        f"method 'milstein' needs diagonal noise: the noise of {system.fields[i]!r} depends on "
                        f"{', '.join(map(repr, others))}; use method 'euler' (Euler-Maruyama)"
                    )
                dg = sp.diff(g, fns[i])
                self.derivative.append(sp.lambdify(args, dg, modules=numpy_modules(dg)))

    def _call(self, fn, y: np.ndarray, t: float) -> np.ndarray:
        return np.broadcast_to(np.asarray(fn(*y, *self._coefs, *self._coords, t), dtype=float), self.shape)

    def increment(self, y: np.ndarray, t: float, dt: float, z: np.ndarray, milstein: bool) -> list[np.ndarray]:
        """The noise increment of each noisy field for one step from ``y`` (fields, *shape) with
        standard normals ``z`` (noisy fields, *shape)."""
        out = []
        for k, fn in enumerate(self.strength):
            g = self._call(fn, y, t)
            dw = math.sqrt(dt) * z[k]
            inc = g * np.sqrt(self.inv_volume) * dw
            if milstein:
                inc = inc + 0.5 * self.inv_volume * g * self._call(self.derivative[k], y, t) * (dw * dw - dt)
            out.append(inc)
        return out


class StochasticStepper(Stepper):
    """Fixed-step Euler-Maruyama or Milstein on the cell values.

    Args:
        bound: the bound kernel (the drift).
        system: the PDE system (its noise).
        cells: initial cell values (fields, *shape).
        t0: initial time.
        dt: step; each interval between output times is split into equal steps no larger.
        method: "euler" or "milstein".
        seed: seed of :func:`numpy.random.default_rng`.
    """

    def __init__(self, bound: BoundKernel, system: PDESystem, cells: np.ndarray, t0: float, dt: float,
                 method: str, seed: int | None):
        super().__init__(bound, cells, t0)
        if not (dt > 0 and math.isfinite(dt)):
            raise SolverError(f"dt must be a positive number, got {dt!r}")
        self.dt = float(dt)
        self.milstein = method == "milstein"
        self.noise = NoiseTerms(system, bound.grid, with_derivative=self.milstein)
        self.rng = np.random.default_rng(seed)
        self.y = np.array(cells, dtype=float, copy=True)
        self._good, self._good_t = self.y.copy(), self.t

    def kernels_used(self) -> tuple[str, ...]:
        return ("rhs",)

    def cells(self) -> np.ndarray:
        return self.y

    def step(self, t: float, dt: float) -> None:
        """One step from ``t`` to ``t + dt``."""
        y = self.y
        drift = np.asarray(self.bound.rhs(t, y.reshape(-1))).reshape(y.shape)
        z = self.rng.standard_normal((len(self.noise.fields), *y.shape[1:]))
        increments = self.noise.increment(y, t, dt, z, self.milstein)
        new = y + dt * drift
        for i, inc in zip(self.noise.fields, increments):
            new[i] += inc
        self.y = new

    def advance(self, t_target: float, progress=None) -> None:
        if t_target <= self.t:
            return
        n, dt = equal_steps(self.t, t_target, self.dt)
        t_start = self.t
        for s in range(n):
            self.step(t_start + s * dt, dt)
            self.steps += 1
            self.t = t_start + (s + 1) * dt if s + 1 < n else t_target
            if (s + 1) % CHECK_EVERY == 0 or s + 1 == n:
                if not math.isfinite(float(np.sum(self.y))):
                    raise BlowUp(self.t, self._good_t, self._good.copy())
                np.copyto(self._good, self.y)
                self._good_t = self.t
                if progress is not None:
                    progress(self.t)


def stochastic_method(method: str | Method | None) -> Method:
    """The scheme of a system with noise: Euler-Maruyama (default; also ``"euler"``/``Euler(...)``,
    whose settings it keeps) or Milstein."""
    if method is None:
        return EulerMaruyama()
    if isinstance(method, str):
        if method not in SCHEMES:
            raise SolverError(f"method {method!r}: a system with noise runs with 'euler' (Euler-Maruyama, also "
                              "'euler-maruyama') or 'milstein'")
        return SCHEMES[method]()
    method = get_method(method)
    if isinstance(method, (EulerMaruyama, Milstein)):
        return method
    if method.name == "euler":
        return EulerMaruyama(**method.settings())
    raise SolverError(f"method {method.name!r}: a system with noise runs with 'euler' (Euler-Maruyama, also "
                      "'euler-maruyama') or 'milstein'")


def noise_attributes(system: PDESystem, seed: int | None) -> dict:
    """The Dataset attributes of a run with noise: the strengths (JSON) and the seed (-1: none)."""
    strengths = {f: str(g).replace(f"({', '.join(system.axes)})", "") for f, g in system.noise.items()}
    return {"noise": json.dumps(strengths), "seed": -1 if seed is None else int(seed)}
