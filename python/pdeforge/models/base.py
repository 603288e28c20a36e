"""The model catalogue: ready-made systems with defaults, initial conditions and references."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from pdeforge.discretize.grid import UniformGrid, grid_of
from pdeforge.errors import PDEForgeError, SystemDefinitionError
from pdeforge.symbolic.system import PDESystem

#: ic(grid, params, rng) -> field -> array of grid.shape
InitialCondition = Callable[[UniformGrid, Mapping[str, float], np.random.Generator], dict]
#: exact(t, mesh, params) -> field -> array
ExactSolution = Callable[[float, tuple, Mapping[str, float]], dict]
#: mass(t, params) -> total mass U(t) = integral of the conserved field over the domain
ExactMass = Callable[[float, Mapping[str, float]], float]


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
        mass: exact total mass ``U(t)``, the integral over the domain of the conserved
            field (the model's first field), as ``mass(t, params) -> float``, when one is known (the right-hand side
            ``b`` of the conservation constraint of :func:`pdeforge.conservation.constraint`).
        scheme: default spatial discretization, "fd" (flux-form finite differences) or one
            of the finite-volume schemes of :data:`pdeforge.discretize.finite_volume.SCHEMES`.
        discretization: "fd" (finite differences) or "spectral" (Fourier pseudo-spectral,
            e.g. the incompressible flow models).
        variable_attrs: CF attributes (``long_name``, ``units``, ``standard_name``) per field and
            coordinate, written into the run's Dataset and file (see :func:`dimensionless`).
        geometry: "cartesian" (default) or a symmetric curvilinear grid ("polar", "cylindrical",
            "spherical"; see :mod:`pdeforge.symbolic.geometry`).
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
    mass: ExactMass | None = None
    scheme: str = "fd"
    discretization: str = "fd"
    variable_attrs: dict[str, dict[str, str]] = field(default_factory=dict)
    geometry: str = "cartesian"

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
        return PDESystem(self.equations, params=values, domain=self.domain, bcs=self.bcs, name=self.name,
                         geometry=self.geometry)

    def initial_condition(self, grid: UniformGrid, params: Mapping[str, float] | None = None, seed: int | None = None) -> dict:
        """Default initial condition on ``grid`` (seeded where random)."""
        rng = np.random.default_rng(0 if seed is None else seed)
        return self.initial(grid, self.check_params(params), rng)

    def setup(self, params=None, grid=None, seed=None):
        """System and the defaults a run needs: grid, t_end, method, dt, ic (arrays)."""
        system = self.system(**dict(params or {}))
        g = grid_of(system, grid if grid is not None else self.grid)
        ic = self.initial_condition(g, system.params, seed)
        return system, {"grid": g, "t_end": self.t_end, "method": self.method, "dt": self.dt, "ic": ic,
                        "save_every": self.save_every, "scheme": self.scheme}

    def exact_solution(self, t: float, grid, params: Mapping[str, float] | None = None) -> dict:
        """The exact solution at time ``t``.

        Args:
            t: the time.
            grid: a :class:`UniformGrid` (values at its cell centres), or the points
                themselves: one coordinate array per axis (a single array in 1-D), any
                broadcastable shapes, e.g. ``np.linspace(0, 1, 101)`` or ``(X, Y)``.
            params: parameter values overriding the defaults.

        Returns:
            field name -> array of the points' shape.
        """
        if self.exact is None:
            raise PDEForgeError(f"model {self.name!r} has no exact solution")
        if isinstance(grid, UniformGrid):
            mesh = grid.mesh()
        elif isinstance(grid, (tuple, list)):
            mesh = tuple(np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in grid]))
        else:
            mesh = (np.asarray(grid, dtype=float),)
        if len(mesh) != len(self.domain):
            raise PDEForgeError(
                f"model {self.name!r} is {len(self.domain)}-D; give {len(self.domain)} coordinate arrays, got {len(mesh)}"
            )
        return self.exact(float(t), mesh, self.check_params(params))

    def exact_mass(self, t, params: Mapping[str, float] | None = None):
        """Exact total mass ``U(t)`` (integral of the conserved field over the domain).

        Args:
            t: a time or an array of times.
            params: parameter values overriding the defaults.

        Returns:
            A float for a scalar ``t``, else an array of the shape of ``t``.

        Raises:
            PDEForgeError: if the model has no known exact mass.
        """
        if self.mass is None:
            raise PDEForgeError(f"model {self.name!r} has no exact mass U(t)")
        values = self.check_params(params)
        ts = np.asarray(t, dtype=float)
        out = np.array([float(self.mass(float(v), values)) for v in ts.ravel()]).reshape(ts.shape)
        return float(out) if out.ndim == 0 else out

    def describe(self) -> str:
        """Multi-line description: equations, parameters, defaults, source."""
        lines = [f"{self.name}: {self.title}", ""]
        lines += [f"  d{f}/dt = {rhs}" for f, rhs in self.equations.items()]
        lines += ["", "parameters:"]
        for p, v in self.params.items():
            lines.append(f"  {p} = {v:g}" + (f"   ({self.param_help[p]})" if p in self.param_help else ""))
        dom = " x ".join(f"[{a:g}, {b:g}]" for a, b in self.domain)
        if self.geometry != "cartesian":
            from pdeforge.symbolic.geometry import GEOMETRIES

            names = GEOMETRIES[self.geometry].axes
            dom = ", ".join(f"{n} in [{a:g}, {b:g}]" for n, (a, b) in zip(names, self.domain))
            dom += f" ({self.geometry} geometry" + ("; r = 0 is regular, no condition there)" if self.domain[0][0] == 0 else ")")
        lines += [
            "",
            f"domain: {dom};  boundary conditions: {self.bcs if isinstance(self.bcs, str) else 'see below'}",
            f"defaults: grid {'x'.join(map(str, self.grid))}, t_end {self.t_end:g}, method {self.method}"
            + (f", dt {self.dt:g}" if self.dt else "")
            + (f", scheme {self.scheme}" if self.scheme != "fd" else ""),
        ]
        if not isinstance(self.bcs, str):
            lines.append(f"boundary conditions: {self.bcs}")
        if self.description:
            lines += ["", self.description.strip()]
        if self.notes:
            lines += ["", self.notes.strip()]
        if self.exact is not None:
            lines += ["", "exact solution available (pdeforge.models.get_model(name).exact_solution)"]
        if self.mass is not None:
            lines += ["exact total mass U(t) available (pdeforge.models.get_model(name).exact_mass)"]
        return "\n".join(lines)


def dimensionless(**long_names: str) -> dict[str, dict[str, str]]:
    """CF attributes of a model written in dimensionless variables, as its source literature
    writes it: each name's ``long_name`` and ``units = "1"`` (time and space too)."""
    attrs = {name: {"long_name": text, "units": "1"} for name, text in long_names.items()}
    attrs.setdefault("t", {"long_name": "dimensionless time", "units": "1"})
    return attrs


_REGISTRY: dict[str, Model] = {}


def register(model: Model) -> Model:
    """Add ``model`` to the catalogue."""
    if model.name in _REGISTRY:
        raise ValueError(f"model {model.name!r} registered twice")
    _REGISTRY[model.name] = model
    return model


def get_model(name: str) -> Model:
    """The catalogue entry ``name``; a clear error listing valid names otherwise."""
    from pdeforge.models import _load_all

    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SystemDefinitionError(f"unknown model {name!r} (models: {', '.join(sorted(_REGISTRY))})") from None


def list_models() -> list[Model]:
    """Every catalogue entry, sorted by name."""
    from pdeforge.models import _load_all

    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
