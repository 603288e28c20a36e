"""pdeforge: symbolic PDE systems to generated kernels, solvers and neural closures.

Heavy pieces (SymPy, Numba, xarray, PyTorch, juliacall) are imported on first use, so
``import pdeforge`` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "PDESystem": ("pdeforge.symbolic.system", "PDESystem"),
    "UniformGrid": ("pdeforge.discretize.grid", "UniformGrid"),
    "discretize": ("pdeforge.discretize", None),
    "simplify": ("pdeforge.simplify", None),
    "compile": ("pdeforge.codegen.build", "compile_system"),
    "solve": ("pdeforge.models.run", "solve"),
    "open_dataset": ("pdeforge.solvers.complex_fields", "open_dataset"),
    "methods": ("pdeforge.solvers.methods", None),
    "Euler": ("pdeforge.solvers.methods", "Euler"),
    "SSPRK3": ("pdeforge.solvers.methods", "SSPRK3"),
    "RK4": ("pdeforge.solvers.methods", "RK4"),
    "RK45": ("pdeforge.solvers.methods", "RK45"),
    "BDF": ("pdeforge.solvers.methods", "BDF"),
    "CVODE": ("pdeforge.solvers.methods", "CVODE"),
    "ScipyBDF": ("pdeforge.solvers.methods", "ScipyBDF"),
    "Rosenbrock23": ("pdeforge.solvers.methods", "Rosenbrock23"),
    "IMEX": ("pdeforge.solvers.methods", "IMEX"),
    "EulerMaruyama": ("pdeforge.solvers.methods", "EulerMaruyama"),
    "Milstein": ("pdeforge.solvers.methods", "Milstein"),
    "IFRK4": ("pdeforge.solvers.methods", "IFRK4"),
    "ETDRK4": ("pdeforge.solvers.methods", "ETDRK4"),
    "CNRK4": ("pdeforge.solvers.methods", "CNRK4"),
    "Numba": ("pdeforge.codegen.backends", "Numba"),
    "NumPy": ("pdeforge.codegen.backends", "NumPy"),
    "Torch": ("pdeforge.codegen.backends", "Torch"),
    "Julia": ("pdeforge.codegen.backends", "Julia"),
    "FiniteDifference": ("pdeforge.discretize.options", "FiniteDifference"),
    "Spectral": ("pdeforge.discretize.options", "Spectral"),
    "Output": ("pdeforge.solvers.run.output", "Output"),
    "Every": ("pdeforge.solvers.run.callbacks", "Every"),
    "SteadyState": ("pdeforge.solvers.run.callbacks", "SteadyState"),
    "StopWhen": ("pdeforge.solvers.run.callbacks", "StopWhen"),
    "StopRun": ("pdeforge.solvers.run.callbacks", "StopRun"),
    "models": ("pdeforge.models", None),
    "dirichlet": ("pdeforge.symbolic.boundary", "dirichlet"),
    "neumann": ("pdeforge.symbolic.boundary", "neumann"),
    "robin": ("pdeforge.symbolic.boundary", "robin"),
    "errors": ("pdeforge.errors", None),
    "export_julia": ("pdeforge.julia.export", "export_julia"),
    "neural": ("pdeforge.neural", None),
    "conservation": ("pdeforge.models.conservation", None),
    "conservation_law": ("pdeforge.models.conservation", "conservation_law"),
    "constraint": ("pdeforge.models.conservation", "constraint"),
    "quadrature_weights": ("pdeforge.models.conservation", "quadrature_weights"),
    "discrete_boundary_flux": ("pdeforge.models.conservation", "discrete_boundary_flux"),
    "SCHEMES": ("pdeforge.discretize.finite_volume", "SCHEMES"),
    "sweep": ("pdeforge.ensembles.runner", "sweep"),
    "open_sweep": ("pdeforge.ensembles.store", "open_sweep"),
    "SweepDataset": ("pdeforge.ensembles.torch_data", "SweepDataset"),
    "IncompressibleSystem": ("pdeforge.symbolic.incompressible", "IncompressibleSystem"),
    "les_system": ("pdeforge.models.les", "les_system"),
    "compile_spectral": ("pdeforge.codegen.spectral.compile", "compile_spectral"),
    "spectral_operator": ("pdeforge.codegen.spectral.compile", "spectral_operator"),
    "ClosureSystem": ("pdeforge.symbolic.closure_terms", "ClosureSystem"),
    "plot": ("pdeforge.plotting", "plot"),
    "animate": ("pdeforge.plotting", "animate"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pdeforge' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
