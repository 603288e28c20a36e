"""Incompressible flow and large-eddy simulation: Taylor-Green, decaying isotropic turbulence, Kolmogorov flow.

All three share one system, built by :func:`les_system`: the filtered incompressible
Navier-Stokes equations with the Smagorinsky subgrid model,

    d(u_i)/dt = P[ -u_j d_j u_i + nu lap u_i + d_j(2 nu_t S_ij) + f_i ],
    nu_t = (Cs Delta)^2 |S|,  |S| = sqrt(2 S_ij S_ij),  S_ij = (d_j u_i + d_i u_j)/2,

written in the equation language (``definitions`` hold ``S_mag`` and ``nu_t``), with the
pressure removed by the Leray projection ``P`` and ``Delta`` the grid's filter width.
``Cs = 0`` gives the plain Navier-Stokes equations. They are solved by the generated Fourier
pseudo-spectral kernels; the same system gives the PINO residual
(:mod:`pdeforge.codegen.spectral.compile`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pdeforge.symbolic.incompressible import IncompressibleSystem
from pdeforge.models.base import Model, dimensionless, register

AXES = ("x", "y", "z")
VELOCITY = ("u", "v", "w")


def les_definitions(dim: int) -> dict[str, str]:
    """``S_mag = sqrt(2 S_ij S_ij)`` and ``nu_t = (Cs Delta)^2 S_mag`` in the equation language."""
    vel, axes = VELOCITY[:dim], AXES[:dim]
    diag = " + ".join(f"d({c},{a})**2" for c, a in zip(vel, axes))
    off = " + ".join(
        f"(d({vel[i]},{axes[j]}) + d({vel[j]},{axes[i]}))**2" for i in range(dim) for j in range(i + 1, dim)
    )
    return {"S_mag": f"sqrt(2*({diag}) + {off})", "nu_t": "(Cs*Delta)**2*S_mag"}


def les_equations(dim: int, forcing: Sequence[str] | None = None) -> dict[str, str]:
    """Momentum equations (no pressure: it is the projection) for ``dim`` = 2 or 3.

    Args:
        dim: 2 or 3.
        forcing: optional body force per component, expressions in the equation language
            (e.g. ``("F*sin(4*y)", "0")``).
    """
    vel, axes = VELOCITY[:dim], AXES[:dim]
    advecting = f"vec({', '.join(vel)})"
    out = {}
    for i, c in enumerate(vel):
        stress = []
        for j, a in enumerate(axes):
            if i == j:
                stress.append(f"d(2*nu_t*d({c},{a}), {a})")
            else:
                lo, hi = min(i, j), max(i, j)
                stress.append(f"d(nu_t*(d({vel[lo]},{axes[hi]}) + d({vel[hi]},{axes[lo]})), {a})")
        rhs = f"-dot({advecting}, grad({c})) + nu*laplace({c}) + " + " + ".join(stress)
        if forcing is not None and str(forcing[i]).strip() not in ("", "0"):
            rhs += f" + {forcing[i]}"
        out[c] = rhs
    return out


def les_system(
    dim: int = 3,
    nu: float = 1.0 / 64.0,
    Cs: float = 0.1,
    forcing: Sequence[str] | None = None,
    params: dict[str, float] | None = None,
    domain: Sequence[tuple[float, float]] | None = None,
    name: str = "les",
) -> IncompressibleSystem:
    """The Smagorinsky LES system on a periodic box (default ``[0, 2 pi]^dim``).

    Args:
        dim: 2 or 3.
        nu: kinematic viscosity.
        Cs: Smagorinsky constant (0: Navier-Stokes).
        forcing: optional body force per component (equation-language strings).
        params: extra parameters used by the forcing (e.g. ``{"F": 1.0}``).
        domain: the box; default ``[0, 2 pi]`` on every axis.
        name: system name.
    """
    domain = domain if domain is not None else [(0.0, 2.0 * math.pi)] * dim
    return IncompressibleSystem(
        les_equations(dim, forcing),
        velocity=VELOCITY[:dim],
        params={"nu": nu, "Cs": Cs, **(params or {})},
        domain=domain,
        definitions=les_definitions(dim),
        name=name,
    )


def _fixed_when_zero(system: IncompressibleSystem, names=("Cs",)) -> IncompressibleSystem:
    """Fix the parameters among ``names`` whose value is 0 before code generation.

    A model run keeps its parameters for the whole run, so with ``Cs = 0`` the Smagorinsky
    terms are not generated at all (2-D Navier-Stokes: 4 FFTs per right-hand side instead of 8).
    """
    from pdeforge.symbolic.constants import fix_constants

    return fix_constants(system, {p: 0.0 for p in names if system.params.get(p) == 0})


# initial conditions -------------------------------------------------------------------------
def solenoidal_random_field(grid, rng: np.random.Generator, kp: float = 4.0, urms: float = 1.0) -> np.ndarray:
    """A random divergence-free velocity with the spectrum ``E(k) ~ k^4 exp(-2 (k/kp)^2)``.

    White noise is projected onto divergence-free fields and truncated by the 2/3 rule; each
    wavenumber shell is then rescaled to the prescribed spectrum (random phases, exact shell
    energies) and the whole field to ``<|u|^2>/dim = urms^2``.

    Args:
        grid: a periodic :class:`~pdeforge.UniformGrid` (2-D or 3-D).
        rng: the random generator (seeded by the caller).
        kp: wavenumber of the spectrum's peak.
        urms: root-mean-square velocity per component.

    Returns:
        Array ``(dim, *grid.shape)``.
    """
    from pdeforge.codegen.spectral.backend import SpectralRuntime
    from pdeforge.solvers.spectral.diagnostics import FlowDiagnostics

    K = SpectralRuntime(grid)
    dim = grid.dim
    noise = rng.standard_normal((dim, *grid.shape))
    uh = np.fft.rfftn(noise, axes=tuple(range(1, dim + 1))) * K._np["mask"]
    k = K._np["k"]
    div = sum(k[a] * uh[a] for a in range(dim)) * K._np["kinv2"]
    uh = np.stack([uh[a] - k[a] * div for a in range(dim)])

    diag = FlowDiagnostics(K, tuple(range(dim)), None)
    have = np.bincount(diag.shell, weights=0.5 * diag._power(uh).ravel(), minlength=len(diag.k))
    want = diag.k**4 * np.exp(-2.0 * (diag.k / kp) ** 2)
    scale = np.where(have > 0, np.sqrt(want / np.where(have > 0, have, 1.0)), 0.0)
    uh = uh * scale[diag.shell].reshape(diag.ksq.shape)
    energy = diag.energy(uh)
    uh = uh * math.sqrt(0.5 * dim * urms**2 / energy)
    return np.fft.irfftn(uh, s=grid.shape, axes=tuple(range(1, dim + 1)))


def _taylor_green_ic(grid, params, rng):
    x, y = grid.mesh()
    return {"u": np.sin(x) * np.cos(y), "v": -np.cos(x) * np.sin(y)}


def _taylor_green_exact(t, mesh, params):
    """Exact for Cs = 0: the nonlinear term is a gradient, so the mode decays viscously."""
    x, y = mesh
    decay = math.exp(-2.0 * params["nu"] * t)
    return {"u": np.sin(x) * np.cos(y) * decay, "v": -np.cos(x) * np.sin(y) * decay}


def _hit_ic(grid, params, rng):
    u = solenoidal_random_field(grid, rng, kp=HIT_KP, urms=HIT_URMS)
    return dict(zip(VELOCITY[: grid.dim], u))


def _kolmogorov_ic(grid, params, rng):
    """The laminar profile ``u = F/(nu n^2) sin(n y)`` plus a small random solenoidal perturbation."""
    x, y = grid.mesh()
    laminar = params["F"] / (params["nu"] * KOLMOGOROV_N**2) * np.sin(KOLMOGOROV_N * y)
    noise = solenoidal_random_field(grid, rng, kp=2.0, urms=0.05)
    return {"u": laminar + noise[0], "v": noise[1]}


#: peak wavenumber and rms velocity of the les-hit initial spectrum
HIT_KP = 4.0
HIT_URMS = 1.0
#: forcing wavenumber of kolmogorov-flow
KOLMOGOROV_N = 4

_LES_NOTES = (
    "definitions: S_mag = sqrt(2 S_ij S_ij), nu_t = (Cs*Delta)**2*S_mag, Delta = filter width of the grid "
    "(geometric mean of the cell widths). The velocity is kept divergence-free by the Leray projection "
    "(no pressure term). Solved by generated Fourier pseudo-spectral kernels (2/3-rule dealiasing, "
    "ETDRK4 by default: viscosity exact, the rest explicit with a CFL step recomputed as the flow evolves; "
    "--method ifrk4|etdrk4|cnrk4|rk4|ssprk3|euler; --backend numpy or torch; Cs = 0 is fixed at compile time). "
    "Extra output variables: energy, enstrophy, dissipation, energy_rate (t) and E_k (t, k)."
)

register(
    Model(
        name="taylor-green",
        title="Taylor-Green vortex (2-D Navier-Stokes / Smagorinsky LES, exact decay for Cs = 0)",
        variable_attrs=dimensionless(u="filtered x-velocity", v="filtered y-velocity"),
        equations=les_equations(2),
        params={"nu": 0.05, "Cs": 0.0},
        domain=((0.0, 2.0 * math.pi), (0.0, 2.0 * math.pi)),
        bcs="periodic",
        grid=(32, 32),
        t_end=10.0,
        method="etdrk4",
        dt=None,
        save_every=0.5,
        initial=_taylor_green_ic,
        exact=_taylor_green_exact,
        builder=lambda p: _fixed_when_zero(les_system(2, p["nu"], p["Cs"], name="taylor-green")),
        param_help={"nu": "kinematic viscosity", "Cs": "Smagorinsky constant (0: Navier-Stokes)"},
        description=(
            "u = sin x cos y exp(-2 nu t), v = -cos x sin y exp(-2 nu t) solves the incompressible Navier-Stokes "
            "equations exactly (Taylor & Green 1937): the kinetic energy decays as exp(-2 nu |k|^2 t), |k|^2 = 2. "
            "With Cs > 0 the Smagorinsky viscosity adds dissipation."
        ),
        notes=_LES_NOTES,
        discretization="spectral",
    )
)

register(
    Model(
        name="les-hit",
        title="Decaying homogeneous isotropic turbulence, Smagorinsky LES (3-D)",
        variable_attrs=dimensionless(u="filtered x-velocity", v="filtered y-velocity", w="filtered z-velocity"),
        equations=les_equations(3),
        params={"nu": 1.0 / 64.0, "Cs": 0.1},
        domain=((0.0, 2.0 * math.pi),) * 3,
        bcs="periodic",
        grid=(32, 32, 32),
        t_end=2.0,
        method="etdrk4",
        dt=None,
        save_every=0.1,
        initial=_hit_ic,
        builder=lambda p: _fixed_when_zero(les_system(3, p["nu"], p["Cs"], name="les-hit")),
        param_help={"nu": "kinematic viscosity", "Cs": "Smagorinsky constant"},
        description=(
            "Decaying isotropic turbulence on [0, 2 pi]^3 as in LESnets (Zhao et al., JCP 2025): 32^3, Cs = 0.1, "
            f"nu = 1/64. Seeded random divergence-free initial velocity with E(k) ~ k^4 exp(-2 (k/{HIT_KP:g})^2) "
            f"and u_rms = {HIT_URMS:g} (--seed)."
        ),
        notes=_LES_NOTES,
        discretization="spectral",
    )
)

register(
    Model(
        name="kolmogorov-flow",
        title="Kolmogorov flow: 2-D Navier-Stokes forced by F sin(4y)",
        variable_attrs=dimensionless(u="filtered x-velocity", v="filtered y-velocity"),
        equations=les_equations(2, (f"F*sin({KOLMOGOROV_N}*y)", "0")),
        params={"nu": 0.05, "Cs": 0.0, "F": 1.0},
        domain=((0.0, 2.0 * math.pi), (0.0, 2.0 * math.pi)),
        bcs="periodic",
        grid=(64, 64),
        t_end=20.0,
        method="etdrk4",
        dt=None,
        save_every=0.5,
        initial=_kolmogorov_ic,
        builder=lambda p: _fixed_when_zero(les_system(
            2, p["nu"], p["Cs"], forcing=(f"F*sin({KOLMOGOROV_N}*y)", "0"), params={"F": p["F"]}, name="kolmogorov-flow"
        )),
        param_help={"nu": "kinematic viscosity", "Cs": "Smagorinsky constant (0: Navier-Stokes)", "F": "forcing amplitude"},
        description=(
            f"Body force F sin({KOLMOGOROV_N} y) along x on [0, 2 pi]^2. The laminar profile "
            f"u = F/(nu {KOLMOGOROV_N}^2) sin({KOLMOGOROV_N} y) is an exact steady solution, unstable at the default "
            "nu; the run starts from it plus a small seeded perturbation and becomes turbulent."
        ),
        notes=_LES_NOTES,
        discretization="spectral",
    )
)
