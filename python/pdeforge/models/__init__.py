"""The catalogue of ready-made systems: ``pdeforge list`` / ``pdeforge show MODEL``.

Each model documents its equations, parameters (named as in its source literature), default
grid, time span, method and initial condition, and its exact solution where one exists.
"""

from __future__ import annotations

import importlib

from pdeforge.models.base import Model, get_model, list_models, register

#: modules that register models when imported
MODEL_MODULES = ("reaction_diffusion", "diffusion", "gpme", "les", "burgers_les", "wave", "radial")

_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in MODEL_MODULES:
        importlib.import_module(f"{__name__}.{name}")


__all__ = ["Model", "get_model", "list_models", "register"]
