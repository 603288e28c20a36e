"""Conservation laws of catalogue models and systems: ``pdeforge.conservation``.

The public face of the three pieces, each in its stage: the law read from the symbols
(:mod:`pdeforge.symbolic.conservation`), quadrature and the constraint ``G u = b``
(:mod:`pdeforge.discretize.constraint`), the discrete boundary flux of a computed state
(:mod:`pdeforge.solvers.boundary_flux`). Here model names are resolved and ``b`` comes from
a model's exact mass ``U(t)`` when it has one, else from ``U(0)`` plus the time integral of
the boundary flux (fixed by the boundary conditions, or taken from a computed solution).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import sympy as sp

from pdeforge.discretize.constraint import (
    RULES,
    Constraint,
    QuadratureGrid,
    assemble_constraint,
    quadrature_grid,
    quadrature_weights,
)
from pdeforge.discretize.grid import grid_of
from pdeforge.errors import PDEForgeError
from pdeforge.models.base import Model, get_model
from pdeforge.solvers.boundary_flux import face_flux_values
from pdeforge.solvers.run.initial import initial_state
from pdeforge.symbolic.conservation import (
    ConservationLaw,
    boundary_flux_from_bcs,
    integrate_in_time,
    system_of,
)
from pdeforge.symbolic.conservation import conservation_law as _law_of_system

__all__ = [
    "RULES", "ConservationLaw", "Constraint", "QuadratureGrid", "boundary_flux_from_bcs", "conservation_law",
    "constraint", "discrete_boundary_flux", "quadrature_grid", "quadrature_weights",
]


def conservation_law(source, field: str | None = None) -> ConservationLaw:
    """The conservation law of one field: its density and flux, read from the symbols.

    Args:
        source: a :class:`~pdeforge.PDESystem`, a catalogue :class:`~pdeforge.models.Model`,
            or a model name.
        field: the conserved field; may be omitted for single-field systems.

    Returns:
        The :class:`ConservationLaw` ``u_t + div(F) = 0``
        (:func:`pdeforge.symbolic.conservation.conservation_law` on the system).

    Raises:
        NotConservativeError: a term of the field's equation is not a divergence.
    """
    return _law_of_system(system_of(_resolve(source)), field)


def _resolve(source):
    """A model name -> its catalogue Model; anything else unchanged."""
    return get_model(source) if isinstance(source, str) else source


def constraint(
    source,
    grid,
    times: Sequence[float],
    rule: str = "trapezoid",
    params: Mapping[str, float] | None = None,
    field: str | None = None,
    solution=None,
    ic=None,
    t0: float = 0.0,
    b_from: str = "auto",
) -> Constraint:
    """The conservation constraint ``G u = b`` of a system on a grid at a set of times.

    Args:
        source: a catalogue model (or its name), a :class:`~pdeforge.PDESystem`, or a
            :class:`ConservationLaw`.
        grid: where the prediction lives: a :class:`~pdeforge.UniformGrid`, cell counts,
            a 1-D array of points (1-D), or one 1-D coordinate array per axis.
        times: the times ``t_j`` of the prediction's rows.
        rule: quadrature rule, "trapezoid" (default) or "midpoint"/"cell" (matches the
            finite-volume discrete mass exactly on a UniformGrid).
        params: parameter values overriding the defaults (e.g. the model's ``m``).
        field: the conserved field of a multi-field system.
        solution: an ``xarray.Dataset`` from :func:`pdeforge.solve` of this system; used for
            ``U(0)`` (its first frame) and, when the boundary conditions do not fix the
            boundary flux, for the flux itself (evaluated with the second-order face
            formulas of the scheme on every frame and integrated in time with the trapezoid
            rule; accurate to the frames' spacing squared).
        ic: initial condition for ``U(0)`` when ``b`` is not exact and no solution is given
            (as :func:`pdeforge.solve` takes it; default the system's or model's).
        t0: initial time.
        b_from: "auto" (exact when the model has U(t), else boundary flux), "exact",
            "boundary-flux", or "quadrature": ``b`` is the quadrature of the model's exact
            solution on the constraint's own points, so the exact profile satisfies
            ``G u = b`` to round-off. For a discontinuous profile (the Stefan front) the
            quadrature misses ``U(t)`` by up to half a cell times the jump; conditioning a
            prediction on ``U(t)`` would then pull it towards a mass that no profile sampled on
            these points can have.

    Returns:
        :class:`Constraint` (unpacks as ``G, b``).

    Raises:
        NotConservativeError: the field's equation is not in conservation form.
        PDEForgeError: bad grid or rule; ``b`` cannot be determined (exact mass asked for a
            system without one, or a boundary flux that needs a solution and none given).
    """

    model = get_model(source) if isinstance(source, str) else source if isinstance(source, Model) else None
    if model is not None:
        values = model.check_params(params)
        system = model.system(**values)
    elif isinstance(source, ConservationLaw):
        system = source.system.with_params(**dict(params or {})) if params else source.system
    else:
        system = system_of(_resolve(source))
        if params:
            system = system.with_params(**dict(params))
    law = source if isinstance(source, ConservationLaw) and not params else conservation_law(system, field)
    qgrid = quadrature_grid(system, grid, rule, law.field)
    ts = np.asarray(times, dtype=float).ravel()
    if ts.size == 0 or not np.all(np.isfinite(ts)):
        raise PDEForgeError("times: give at least one finite time")
    if b_from not in ("auto", "exact", "boundary-flux", "quadrature"):
        raise PDEForgeError(f"b_from: 'auto', 'exact', 'boundary-flux' or 'quadrature', got {b_from!r}")

    if b_from == "quadrature":
        if model is None or model.exact is None:
            raise PDEForgeError("b_from='quadrature' needs a catalogue model with an exact solution")
        mesh, w = qgrid.mesh(), qgrid.weights.ravel()
        b = np.array([np.asarray(model.exact_solution(float(t), mesh, values)[law.field], dtype=float).ravel() @ w
                      for t in ts])
        origin = "quadrature of the exact solution"
    elif b_from in ("auto", "exact") and model is not None and model.mass is not None:
        b = np.array([float(model.mass(float(t), values)) for t in ts])
        origin = "exact"
    elif b_from == "exact":
        raise PDEForgeError(f"{system.name!r} has no exact mass U(t); use b_from='boundary-flux'")
    else:
        b, origin = _mass_from_flux(law, system, qgrid, ts, t0, solution, ic, model, params)
    return assemble_constraint(law, qgrid, ts, b, origin)


def _mass_from_flux(law, system, qgrid, ts, t0, solution, ic, model, params):
    rate = boundary_flux_from_bcs(law)
    if solution is not None:
        frames = np.asarray(solution[law.field].values, dtype=float)
        frame_t = np.asarray(solution["t"].values, dtype=float)
        if frames.shape[1:] != qgrid.shape:
            raise PDEForgeError(
                f"solution: its grid {frames.shape[1:]} differs from the constraint's {qgrid.shape}; "
                "give the solution's grid"
            )
        U0 = float(frames[0].ravel() @ qgrid.weights.ravel())
        t0 = float(frame_t[0])
    else:
        U0 = _initial_mass(law, system, qgrid, ic, model, params)
    if rate is not None:
        return U0 - integrate_in_time(rate, t0, ts), "boundary conditions"
    if solution is None:
        raise PDEForgeError(
            f"the boundary flux of {law.field!r} is not fixed by the boundary conditions "
            f"({'; '.join(law.flux_text())}); pass solution=<Dataset from pdeforge.solve> to take it from a solution"
        )

    grid = grid_of(system, tuple(frames.shape[1:]))
    scheme = solution.attrs.get("scheme", "fd")
    outflow = np.array([
        discrete_boundary_flux(law, grid, np.asarray(solution[law.field].values[k])[None], float(frame_t[k]), scheme=scheme)
        ["total"]
        for k in range(frame_t.size)
    ])
    if ts.min() < frame_t[0] - 1e-12 or ts.max() > frame_t[-1] + 1e-12:
        raise PDEForgeError(f"times reach outside the solution's span [{frame_t[0]:g}, {frame_t[-1]:g}]")
    import scipy.integrate

    cumulative = scipy.integrate.cumulative_trapezoid(outflow, frame_t, initial=0.0)
    return U0 - np.interp(ts, frame_t, cumulative), "solution"


def _initial_mass(law, system, qgrid, ic, model, params) -> float:
    shape = qgrid.shape
    uniform = grid_of(system, tuple(shape))
    on_centres = all(np.allclose(a, c) for a, c in zip(qgrid.axes, uniform.coordinates))
    if ic is None and model is not None:
        if not on_centres:
            raise PDEForgeError("U(0) of a model off its cell centres: pass ic= as an expression or callable")
        ic = model.initial_condition(uniform, params)
    if ic is None:
        ic = system.ic
    if ic is None:
        raise PDEForgeError(f"U(0): give ic= (the initial condition of {law.field!r}) or solution=")
    if on_centres:
        cells = initial_state(system, uniform, ic)
        values = cells[system.fields.index(law.field)]
    else:
        spec = ic[law.field] if isinstance(ic, Mapping) else ic
        mesh = qgrid.mesh()
        if isinstance(spec, str):
            expr = system.parse(spec, f"initial condition of {law.field!r}", with_fields=False)
            fn = sp.lambdify(system.coords, expr.xreplace(system.parameter_values), "numpy")
            values = np.broadcast_to(np.asarray(fn(*mesh), dtype=float), shape)
        elif callable(spec):
            values = np.broadcast_to(np.asarray(spec(*mesh), dtype=float), shape)
        else:
            values = np.asarray(spec, dtype=float).reshape(shape)
    return float(np.asarray(values).ravel() @ qgrid.weights.ravel())


def discrete_boundary_flux(
    source,
    grid,
    cells: np.ndarray,
    t: float,
    scheme: str = "fd",
    params: Mapping[str, float] | None = None,
    field: str | None = None,
) -> dict:
    """Outward fluxes through the boundary faces as the second-order scheme computes them.

    The flux form of the scheme makes ``h * sum(rhs)`` telescope to exactly these fluxes, so
    ``d/dt (h * sum u) = -total`` holds to round-off for the semi-discrete system; tests use
    it to check conservation, :func:`constraint` to take ``b`` from a solution.

    Args:
        source: a :class:`ConservationLaw`, system, model or model name.
        grid: the :class:`~pdeforge.UniformGrid` of ``cells``.
        cells: state ``(fields, *grid.shape)`` (or ``(1, *shape)`` for the conserved field
            of a single-field system).
        t: time (for time-dependent boundary values).
        scheme: "fd" or a finite-volume scheme name.
        params: parameter values.
        field: the conserved field of a multi-field system.

    Returns:
        dict with ``(axis, "low" | "high")`` -> outward flux integrated over that face (sum
        over the face cells times their area), and ``"total"``.
    """

    law = source if isinstance(source, ConservationLaw) else conservation_law(system_of(_resolve(source)), field)
    return face_flux_values(law, grid, np.asarray(cells, dtype=float), float(t), scheme, params)
