"""The model catalogue: ready-made systems with defaults, initial conditions and references."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..discretize.grid import UniformGrid
from ..errors import PDEForgeError, SystemDefinitionError
from ..symbolic.system import PDESystem

#: ic(grid, params, rng) -> field -> array of grid.shape
InitialCondition = Callable[[UniformGrid, Mapping[str, float], np.random.Generator], dict]
#: exact(t, mesh, params) -> field -> array
ExactSolution = Callable[[float, tuple, Mapping[str, float]], dict]


@dataclass
class Model:
    """A catalogue entry.

    Attributes:
        name: lower-case, hyphenated name (``pdeforge run NAME``).
        title: one-line title.
        equations: field -> right-hand side in the equation language.
        params: default parameter values (names from the source literature).
        domain: the box, one (low, high) per axis.
        bcs: boundary conditions (any form :class:`PDESystem` accepts).
        grid: default cells per axis.
        t_end: default final time.
        method: default time integrator.
        dt: default step (None: from the stability estimate or adaptive).
        initial: builds the default initial condition.
        exact: exact solution, when one is known.
        description: what the model shows, with its source.
        param_help: parameter -> meaning.
        notes: extra documentation (regimes, caveats).
        save_every: default output interval (None: 50 frames).
        builder: optional replacement of the PDESystem construction (for models whose
            equations depend on parameters in ways strings cannot express).
        discretization: "fd" (finite differences) or "spectral" (Fourier pseudo-spectral,
            e.g. the incompressible flow models).
    """

    name: str
    title: str
    equations: dict[str, str]
    params: dict[str, float]
    domain: tuple
    bcs: object
    grid: tuple[int, ...]
    t_end: float
    method: str
    dt: float | None
    initial: InitialCondition
    exact: ExactSolution | None = None
    description: str = ""
    param_help: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    save_every: float | None = None
    builder: Callable[[dict], PDESystem] | None = None
    discretization: str = "fd"

    def check_params(self, params: Mapping[str, float] | None) -> dict[str, float]:
        """Defaults overridden by ``params``; unknown names are an error."""
        params = dict(params or {})
        unknown = [p for p in params if p not in self.params]
        if unknown:
            raise SystemDefinitionError(
                f"model {self.name!r} has no parameter {unknown[0]!r} (parameters: {', '.join(self.params)})"
            )
        return {**self.params, **{k: float(v) for k, v in params.items()}}

    def system(self, **params: float) -> PDESystem:
        """The model's :class:`PDESystem` with parameter values overriding the defaults."""
        values = self.check_params(params)
        if self.builder is not None:
            return self.builder(values)
        return PDESystem(self.equations, params=values, domain=self.domain, bcs=self.bcs, name=self.name)

    def initial_condition(self, grid: UniformGrid, params: Mapping[str, float] | None = None, seed: int | None = None) -> dict:
        """Default initial condition on ``grid`` (seeded where random)."""
        rng = np.random.default_rng(0 if seed is None else seed)
        return self.initial(grid, self.check_params(params), rng)

    def setup(self, params=None, grid=None, seed=None):
        """System and the defaults a run needs: grid, t_end, method, dt, ic (arrays)."""
        system = self.system(**dict(params or {}))
        g = UniformGrid.from_spec(system.domain, grid if grid is not None else self.grid)
        ic = self.initial_condition(g, system.params, seed)
        return system, {"grid": g, "t_end": self.t_end, "method": self.method, "dt": self.dt, "ic": ic,
                        "save_every": self.save_every}

    def exact_solution(self, t: float, grid: UniformGrid, params: Mapping[str, float] | None = None) -> dict:
        """The exact solution on ``grid`` at time ``t``."""
        if self.exact is None:
            raise PDEForgeError(f"model {self.name!r} has no exact solution")
        return self.exact(t, grid.mesh(), self.check_params(params))

    def describe(self) -> str:
        """Multi-line description: equations, parameters, defaults, source."""
        lines = [f"{self.name}: {self.title}", ""]
        lines += [f"  d{f}/dt = {rhs}" for f, rhs in self.equations.items()]
        lines += ["", "parameters:"]
        for p, v in self.params.items():
            lines.append(f"  {p} = {v:g}" + (f"   ({self.param_help[p]})" if p in self.param_help else ""))
        dom = " x ".join(f"[{a:g}, {b:g}]" for a, b in self.domain)
        lines += [
            "",
            f"domain: {dom};  boundary conditions: {self.bcs if isinstance(self.bcs, str) else 'see below'}",
            f"defaults: grid {'x'.join(map(str, self.grid))}, t_end {self.t_end:g}, method {self.method}"
            + (f", dt {self.dt:g}" if self.dt else ""),
        ]
        if not isinstance(self.bcs, str):
            lines.append(f"boundary conditions: {self.bcs}")
        if self.description:
            lines += ["", self.description.strip()]
        if self.notes:
            lines += ["", self.notes.strip()]
        if self.exact is not None:
            lines += ["", "exact solution available (pdeforge.models.get_model(name).exact_solution)"]
        return "\n".join(lines)


_REGISTRY: dict[str, Model] = {}


def register(model: Model) -> Model:
    """Add ``model`` to the catalogue."""
    if model.name in _REGISTRY:
        raise ValueError(f"model {model.name!r} registered twice")
    _REGISTRY[model.name] = model
    return model


def get_model(name: str) -> Model:
    """The catalogue entry ``name``; a clear error listing valid names otherwise."""
    from . import _load_all

    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SystemDefinitionError(f"unknown model {name!r} (models: {', '.join(sorted(_REGISTRY))})") from None


def list_models() -> list[Model]:
    """Every catalogue entry, sorted by name."""
    from . import _load_all

    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
