"""The compile stage: system -> (cache lookup | discretize, simplify, lower, print) -> Kernel."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import sys

from pdeforge.codegen import cache
from pdeforge.codegen.kernel import Kernel
from pdeforge.errors import PDEForgeError, SolverError
from pdeforge.registry import Registry
from pdeforge.simplify import SIMPLIFIERS
from pdeforge.symbolic.system import PDESystem

#: target name -> module with ``generate(spec, key) -> source`` (and optionally
#: ``check_available()``); plugins ("julia") come from the ``pdeforge.targets`` entry points
TARGETS = Registry(
    "backend",
    "pdeforge.targets",
    {
        "numpy": "pdeforge.codegen.numpy_target",
        "numba": "pdeforge.codegen.numba.target",
        "torch": "pdeforge.codegen.torch.target",
    },
)


#: targets whose kernels read coefficient fields (frozen rows of the padded state)
COEFFICIENT_TARGETS = ("numpy", "numba", "torch")


def _generator(target: str) -> Callable:
    return TARGETS.get(target).generate


def check_target(target: str) -> None:
    """Raise a clear error for an unknown target name."""
    if target not in TARGETS:
        raise SolverError(
            f"backend {target!r} is not available for finite-difference kernels (valid: {', '.join(TARGETS)})"
        )


def compile_system(
    system: PDESystem,
    target: str = "numba",
    order: int = 2,
    simplifier: str = "sympy",
    use_cache: bool = True,
    scheme: str = "fd",
    closures: Mapping[str, Callable] | None = None,
    constants: Mapping[str, float] | None = None,
    runtime: bool = True,
    dtype: str = "float64",
) -> Kernel:
    """Generate (or load from the disk cache) the kernels of ``system`` for ``target``.

    Args:
        system: the PDE system.
        target: "numba" (default), "numpy", "julia" (Symbolics.jl build_function kernels) or "torch"
            (see :mod:`pdeforge.codegen.torch.kernel`).
        order: accuracy order of the spatial differences, 2 or 4.
        simplifier: "sympy" (default), "julia" (Symbolics.jl simplify) or "none" (keep the
            stencils as discretized).
        use_cache: look up and store the generated module in the disk cache.
        scheme: spatial scheme, "fd" (default) or a finite-volume scheme such as
            "fv-upwind" (see :mod:`pdeforge.discretize.finite_volume`); part of the cache key.
        closures: closure name -> what evaluates each closure term of the system
            (:mod:`pdeforge.symbolic.closure_terms`): for the "torch" target a ``torch.nn.Module``
            (or callable); for the "numba" target a small dense network
            (:class:`~pdeforge.codegen.dense_network.DenseNetwork`, or a module exporting one such
            as :class:`~pdeforge.neural.closures.MLPClosure`), printed into the kernel loops.
        constants: parameters fixed before discretization (``{"Du": 0}`` removes the term);
            part of the cache key (:func:`pdeforge.symbolic.constants.fix_constants`).
        runtime: check first that the target's runtime exists (Julia for "julia"); False only
            generates the kernel module, to read its source (``pdeforge show --code``): calling
            its kernels then needs the runtime.
        dtype: "float64" (default) or, for the "numba" target, "float32": single-precision
            kernels (every number and scalar argument cast; states, parameters, widths and
            coordinates bound in float32), half the bytes per cell; part of the cache key.

    Returns:
        The :class:`Kernel`; bind it to a grid with :meth:`Kernel.bind`. For a complex system
        it is the kernel of :meth:`PDESystem.real_form` (states hold ``psi_real``, ``psi_imag``).
    """
    check_target(target)
    if dtype not in ("float64", "float32") or (dtype == "float32" and target != "numba"):
        raise SolverError(f"dtype {dtype!r} for target {target!r}: 'float64', or 'float32' with the 'numba' target "
                          "(the 'torch' target takes its dtype when bound)")
    from pdeforge.symbolic.global_unknowns import has_coupling

    if has_coupling(system):  # scalars, integral(), mean(): two lifted systems (pdeforge.codegen.coupled)
        from pdeforge.codegen.coupled import compile_coupled

        if dtype != "float64":
            raise SolverError(f"dtype {dtype!r}: systems with scalars, integral() or mean() run in float64")
        return compile_coupled(system, target, compile_system, order=order, simplifier=simplifier, use_cache=use_cache,
                               scheme=scheme, closures=closures, constants=constants, runtime=runtime)
    if constants:
        from pdeforge.symbolic.constants import fix_constants

        try:
            system = fix_constants(system, constants)
        except PDEForgeError as exc:
            raise SolverError(str(exc)) from None
    if getattr(system, "is_complex", False):
        system = system.real_form()  # complex arithmetic as (real, imaginary) pairs, every target
    if getattr(system, "discretization", "fd") == "spectral":
        raise SolverError(
            f"system {system.name!r} is incompressible (its pressure is a projection): compile it with "
            "pdeforge.compile_spectral, or solve it with discretization='spectral'"
        )
    networks = _check_closures(system, target, closures)
    if networks and dtype != "float64":
        raise SolverError(f"dtype {dtype!r}: Numba kernels with closure networks run in float64 "
                          "(use the 'torch' target for float32 closures)")
    layouts = {name: net.layout for name, net in networks.items()}
    if getattr(system, "coefficients", None) and target not in COEFFICIENT_TARGETS:
        raise SolverError(
            f"system {system.name!r} has coefficient fields ({', '.join(system.coefficients)}), which the "
            f"{target!r} target does not read; use backend {', '.join(map(repr, COEFFICIENT_TARGETS))}"
        )
    if simplifier not in SIMPLIFIERS:
        raise SolverError(f"simplifier {simplifier!r} is not available (valid: {', '.join(SIMPLIFIERS)})")
    if order not in (2, 4):
        raise SolverError(f"order {order!r}: 2 or 4 are supported")
    _check_available(target if runtime else None, simplifier)
    from pdeforge.discretize.finite_volume import get_scheme

    try:
        spec = get_scheme(scheme)
    except PDEForgeError as exc:
        raise SolverError(str(exc)) from None
    if spec.finite_volume and order != 2:
        raise SolverError(f"scheme {scheme!r} is second order: use order=2 (got {order})")
    t0 = time.perf_counter()
    from pdeforge.symbolic.constants import constants_key

    key = cache.cache_key(scheme, system.structure_key(), target, order, simplifier, constants_key(system),
                          *([repr(sorted(layouts.items()))] if layouts else []),
                          *([dtype] if dtype != "float64" else []))
    module = cache.load(key) if use_cache else None
    hit = module is not None
    if module is None:
        from pdeforge.discretize.semidiscrete import discretize
        from pdeforge.codegen.module import kernel_spec

        semi = discretize(system, order, scheme)
        semi = SIMPLIFIERS.get(simplifier)(semi)
        spec = kernel_spec(semi, layouts, dtype)
        source = _generator(target)(spec, key)
        module = cache.store(key, source) if use_cache else _load_uncached(key, source)
    if target == "torch":
        from pdeforge.codegen.torch.kernel import TorchKernel

        return TorchKernel(system, target, module, key, hit, time.perf_counter() - t0, closures)
    return Kernel(system, target, module, key, hit, time.perf_counter() - t0, networks)


def _check_closures(system: PDESystem, target: str, closures) -> dict:
    """The dense networks of a "numba" kernel's closure terms ({} otherwise); a clear error
    where the target cannot evaluate the closures."""
    # closure terms are bound to torch callables or (Numba) dense networks; other targets
    # could only fail at run time
    from pdeforge.symbolic.closure_terms import system_closures

    used = system_closures(system)
    if target == "numba" and (used or closures):
        from pdeforge.codegen.dense_network import dense_networks

        return dense_networks(system.name, used, closures)
    if used and target != "torch":
        raise SolverError(
            f"system {system.name!r} has closure terms ({', '.join(used)}), which only the 'torch' target "
            "(any module) and the 'numba' target (dense networks) can evaluate; use one of them with closures={...}"
        )
    if closures and target != "torch":
        raise SolverError(f"closures are bound by the 'torch' and 'numba' targets only, not {target!r}")
    return {}


def _check_available(target: str | None, simplifier: str) -> None:
    """Fail before any symbolic work when a target or simplifier needs something absent (Julia)."""
    for implementation in (TARGETS.get(target) if target else None, SIMPLIFIERS.get(simplifier)):
        if implementation is None:
            continue
        module = implementation if isinstance(implementation, type(sys)) else sys.modules[implementation.__module__]
        check = getattr(module, "check_available", None)
        if check is not None:
            check()


def _load_uncached(key: str, source: str):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="pdeforge_")) / f"pdeforge_kernel_{key[:32]}_nocache.py"
    path.write_text(source.replace("cache=True", "cache=False"))
    return cache._import(path)
