"""Neural pieces coupled to the symbolic systems (PyTorch).

ProbConserv and probabilistic neural operators (:mod:`pdeforge.neural.probconserv`,
:mod:`pdeforge.neural.deep_ensemble`), closures evaluated inside the generated solver
(:mod:`pdeforge.neural.closures`), the differentiable solve that trains them and estimates
parameters through the solver (:mod:`pdeforge.neural.differentiable`) and the physics-informed neural operator whose loss is the
generated residual (:mod:`pdeforge.neural.pino`, :mod:`pdeforge.neural.pino_data`).
PyTorch is imported only when one of these names is first used, so ``import pdeforge.neural``
stays cheap, and ``import pdeforge`` never imports it.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "probconserv_update": ("pdeforge.neural.probconserv", "probconserv_update"),
    "hardc_update": ("pdeforge.neural.probconserv", "hardc_update"),
    "ProbConservError": ("pdeforge.neural.probconserv", "ProbConservError"),
    "DeepEnsemble": ("pdeforge.neural.deep_ensemble", "DeepEnsemble"),
    "ProbabilisticFNO": ("pdeforge.neural.deep_ensemble", "ProbabilisticFNO"),
    "FieldData": ("pdeforge.neural.data", "FieldData"),
    "generate_dataset": ("pdeforge.neural.data", "generate_dataset"),
    "mean_squared_error": ("pdeforge.neural.metrics", "mean_squared_error"),
    "conservation_error": ("pdeforge.neural.metrics", "conservation_error"),
    "gaussian_log_likelihood": ("pdeforge.neural.metrics", "gaussian_log_likelihood"),
    "sample_gaussian": ("pdeforge.neural.metrics", "sample_gaussian"),
    "front_positions": ("pdeforge.neural.metrics", "front_positions"),
    "differentiable_solve": ("pdeforge.neural.differentiable", "differentiable_solve"),
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pdeforge.neural' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
