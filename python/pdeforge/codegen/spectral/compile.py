"""Compile a periodic system to generated pseudo-spectral kernels, and use them.

This is the stable API that the spectral solver, the PINO loss and the learned closures are
built on. Signatures (kept stable; new keyword arguments may be added at the end):

.. code-block:: python

    compile_spectral(system, target="numpy", device=None, dtype="float64",
                     use_cache=True, constants=None, form="as-written") -> SpectralKernel
    SpectralKernel.bind(grid, params=None, dealias=True, workers=None, runtime=None) -> SpectralOperator
    spectral_operator(system, grid, target="numpy", device=None, dtype="float64",
                      params=None, dealias=True, constants=None, form="as-written") -> SpectralOperator

    op = spectral_operator(les_system, 32, target="torch", device="cuda", dtype="float32")
    op.fields, op.velocity, op.dim, op.shape, op.kshape, op.target, op.device, op.dtype
    op.asarray(a)                            # numpy array / tensor -> target array on device
    op.rhs(u, t=0.0, params=None)            # u: (..., F, *shape) -> du/dt, same shape
    op.rhs_hat(uh, t=0.0, params=None)       # transforms in, transforms out: (..., F, *kshape)
    op.residual(traj, dt, t0=0.0, params=None)
        # traj: (..., T, F, *shape), T >= 3 frames dt apart (axis -(dim+2) is time)
        # -> (R, D): R = (traj[2:] - traj[:-2]) / (2 dt) - rhs(traj[1:-1]),  (..., T-2, F, *shape)
        #            D = div(velocity) of every frame,                       (..., T, *shape)
    op.divergence(u)                         # (..., F, *shape) -> (..., *shape)
    op.project(u)                            # Leray projection (+ 2/3 truncation if dealias)
    op.to_spectral(u), op.to_physical(uh)    # rfft / irfft over the last dim axes
    op.energy(u)                             # (..., F, *shape) -> (...): mean of |velocity|^2 / 2
    op.rhs_explicit_hat(uh, t=0.0)           # rhs_hat without the stiff linear parts
    op.stiff_multipliers()                   # per field: the stiff multiplier L (kshape) or None
    op.transform_counts                      # {"inverse": n, "forward": m} per right-hand side

``constants={"Cs": 0}`` fixes parameters before code generation (terms they zero are not
generated; binding them to another value is refused). ``form="solenoidal"`` plans for
divergence-free, 2/3-truncated states (the solver's): fewer transforms, same tendencies
to round-off there (see :func:`pdeforge.discretize.spectral.spectral_discretize`).

Arrays are NumPy arrays for target "numpy" and tensors for "torch" (any leading batch axes;
the field axis is ``-(dim+1)``). With target "torch" every method is differentiable by
autograd, also with respect to parameters passed as tensors in ``params`` (a learnable
``Cs``: ``op.rhs(u, params={"Cs": cs})``); multipliers are rebuilt for such a call.

What is computed is generated from the system's symbols (see
:mod:`pdeforge.discretize.spectral`): derivatives are spectral, products are pointwise and
their transforms dealiased by the 2/3 rule, velocity tendencies are Leray-projected. The
state handed in is not truncated: linear terms act on every mode, as in LESnets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import ModuleType

from pdeforge.discretize.grid import UniformGrid, grid_of
from pdeforge.errors import SolverError
from pdeforge.symbolic.system import PDESystem
from pdeforge.codegen import cache
from pdeforge.codegen.kernel import GeneratedModule
from pdeforge.codegen.spectral.backend import SpectralRuntime, make_runtime

#: spectral code-generation targets
SPECTRAL_TARGETS = ("numpy", "torch")


class SpectralKernel(GeneratedModule):
    """The generated spectral code of one system for one target (grid-independent).

    Attributes:
        system: the system it was generated from.
        target: "numpy" or "torch".
        device: torch device (None for numpy).
        dtype: "float32" or "float64".
        module: the generated module.
        key: cache key.
        cache_hit: whether the module came from the disk cache.
        build_time_s: seconds spent producing or loading it.
    """

    def __init__(self, system, target, device, dtype, module, key, cache_hit, build_time_s):
        super().__init__(system, target, module, key, cache_hit, build_time_s)
        self.device = device
        self.dtype = dtype

    def bind(
        self,
        grid: int | tuple[int, ...] | UniformGrid,
        params: Mapping[str, float] | None = None,
        dealias: bool = True,
        workers: int | None = None,
        runtime: SpectralRuntime | None = None,
    ) -> SpectralOperator:
        """Bind to a grid and parameter values (the system's by default).

        Args:
            grid: points per axis (int or tuple) or a :class:`UniformGrid` on the system's domain.
            params: parameter values overriding the system's.
            dealias: 2/3-rule truncation of the transforms of products.
            workers: threads of ``scipy.fft`` (numpy target). None: the ``scipy.fft.set_workers``
                context if one is set, else the physical cores for grids of at least
                :data:`~pdeforge.codegen.spectral.backend.THREADED_POINTS` points and one thread
                below (where threads cost more than they save).
            runtime: a runtime built for ``grid`` already (one rank's part of a distributed
                grid: :class:`pdeforge.parallel.spectral.DistributedSpectralRuntime`); None:
                the target's own on the whole grid.
        """
        if not isinstance(grid, UniformGrid):
            grid = grid_of(self.system, grid)
        if grid.dim != self.system.dim:
            raise SolverError(f"grid has {grid.dim} axes, system {self.system.name!r} has {self.system.dim}")
        if runtime is None:
            runtime = make_runtime(grid, self.target, self.dtype, dealias, self.device)
            runtime.workers = default_workers(grid.shape) if workers is None else int(workers)
        unknown = [p for p in (params or {}) if p not in self.system.params]
        if unknown:
            raise SolverError(
                f"unknown parameter {unknown[0]!r}; parameters of {self.system.name}: {', '.join(self.system.params)}"
            )
        _refuse_fixed(self.system, params or {})
        return SpectralOperator(self, runtime, dict(self.system.params) | dict(params or {}))


class SpectralOperator:
    """A spectral kernel bound to a grid, parameters, array library, device and precision.

    See the module docstring for the methods; arrays follow the layout ``(..., F, *shape)``.
    """

    def __init__(self, kernel: SpectralKernel, runtime: SpectralRuntime, params: dict):
        from pdeforge.symbolic.incompressible import filter_width

        self.kernel = kernel
        self.module: ModuleType = kernel.module
        self.K = runtime
        self.system = kernel.system
        self.fields = list(self.module.FIELDS)
        self.velocity = tuple(self.fields[i] for i in self.module.VELOCITY)
        self.velocity_index = tuple(self.module.VELOCITY)
        self.dim = runtime.dim
        self.shape = runtime.shape
        self.kshape = runtime.kshape
        self.grid = runtime.grid
        self.target = kernel.target
        self.device = getattr(runtime, "device", None)
        self.dtype = runtime.dtype_name
        self.params = dict(params)
        self.grid_values = {"Delta": filter_width(self.grid.spacing)} if "Delta" in self.module.GRID_SYMBOLS else {}
        self._P = {k: runtime.scalar(v) for k, v in {**self.params, **self.grid_values}.items()}
        self._M = self.module.multipliers(self._P, self.K)

    # layout helpers -----------------------------------------------------------------------
    @property
    def field_axis(self) -> int:
        return -(self.dim + 1)

    def asarray(self, a):
        """``a`` as a real array of the target's library, device and precision."""
        return self.K.asarray(a)

    def _split(self, UH) -> list:
        axis, F = -(self.dim + 1), len(self.fields)
        if UH.shape[axis] != F:
            raise SolverError(
                f"expected {F} fields ({', '.join(self.fields)}) on axis {axis}, got shape {tuple(UH.shape)}"
            )
        if UH.ndim == self.dim + 1:  # unbatched (a time stepper's state): the fields are the first axis
            return list(UH)
        return [self.K.take(UH, i, axis) for i in range(F)]

    def _check_physical(self, u, what: str):
        if tuple(u.shape[-self.dim:]) != self.shape or u.ndim < self.dim + 1:
            raise SolverError(f"{what}: expected shape (..., {len(self.fields)}, {', '.join(map(str, self.shape))}), got {tuple(u.shape)}")

    def _parameters(self, params):
        if not params:
            return self._P, self._M
        unknown = [p for p in params if p not in self.params]
        if unknown:
            raise SolverError(f"unknown parameter {unknown[0]!r}; parameters: {', '.join(self.params)}")
        _refuse_fixed(self.system, params)
        P = {**self._P, **{k: self.K.scalar(v) for k, v in params.items()}}
        return P, self.module.multipliers(P, self.K)

    # transforms ---------------------------------------------------------------------------
    def to_spectral(self, u):
        """Real FFT over the spatial axes: (..., *shape) -> (..., *kshape)."""
        return self.K.rfft(self.K.asarray(u))

    def to_physical(self, uh):
        """Inverse real FFT over the spatial axes."""
        return self.K.irfft(uh)

    # right-hand side ----------------------------------------------------------------------
    def rhs_hat(self, uh, t: float = 0.0, params: Mapping | None = None, out=None):
        """Spectral tendencies ``(..., F, *kshape)`` of the transforms ``uh``."""
        return self._tendencies(self.module.rhs, uh, t, params, out)

    def rhs_explicit_hat(self, uh, t: float = 0.0, params: Mapping | None = None, out=None, then=None):
        """:meth:`rhs_hat` without the stiff linear parts (see :meth:`stiff_multipliers`).

        ``then`` (numpy target, with ``out``): a time stepper's stage update done in the same
        pass as the final combination, see :class:`pdeforge.codegen.spectral.fused.Combination`.
        """
        return self._tendencies(self.module.rhs_explicit, uh, t, params, out, then)

    def _tendencies(self, kernel, uh, t, params, out, then=None):
        P, M = self._parameters(params)
        if self.module.USES_TIME:
            t = self.K.scalar(t)
        if self.target == "numpy":  # the fused combination writes the stacked result itself
            return kernel(self._split(uh), t, P, self.K, M, out, then)
        if then is not None:
            raise SolverError("a fused stage update (then=) needs the numpy target")
        return self.K.stack(kernel(self._split(uh), t, P, self.K, M), self.field_axis, out=out)

    def forget_prepared(self) -> None:
        """Drop the prepared fused stage calls (:class:`~pdeforge.codegen.spectral.fused.Combination`
        keeps the arrays of calls it saw; a stepper that discards a set of step coefficients
        calls this so that they are freed)."""
        for value in self._M.values():
            prepared = getattr(value, "_prepared", None)
            if prepared is not None:
                prepared.clear()

    def explicit_support(self):
        """Flat indices (into ``(F, *kshape)`` per field's ``kshape``) of the modes where
        :meth:`rhs_explicit_hat` can be non-zero (numpy target; None for torch)."""
        comb = self._M.get("comb_explicit") if self.target == "numpy" else None
        return None if comb is None else comb.idx

    def stiff_multipliers(self) -> list:
        """Per field, the multiplier ``L`` of its stiff linear part (``kshape``-broadcastable,
        complex) or None: ``rhs_hat = rhs_explicit_hat + L * uh`` field by field."""
        out = []
        for key in self.module.STIFF:
            out.append(None if key is None else self.K.asarray(self.K.to_numpy(self._M[key]) + 0j, complex_=True))
        return out

    @property
    def transform_counts(self) -> dict[str, int]:
        """Inverse and forward FFTs per right-hand side evaluation."""
        return dict(self.module.TRANSFORMS)

    @property
    def form(self) -> str:
        """The form the kernels were planned in ("as-written" or "solenoidal")."""
        return self.module.FORM

    def rhs(self, u, t: float = 0.0, params: Mapping | None = None):
        """Time derivative ``(..., F, *shape)`` of the physical fields ``u``."""
        u = self.K.asarray(u)
        self._check_physical(u, "rhs")
        return self.K.irfft(self.rhs_hat(self.K.rfft(u), t, params))

    def residual(self, traj, dt: float, t0: float = 0.0, params: Mapping | None = None):
        """PINO residual of a trajectory: central difference in time minus the right-hand side.

        Args:
            traj: frames ``(..., T, F, *shape)``, ``T >= 3``, equally spaced by ``dt``.
            dt: time between frames.
            t0: time of the first frame (matters only for time-dependent equations).
            params: parameter overrides (tensors allowed with target "torch").

        Returns:
            ``(R, D)``: ``R = (traj[2:] - traj[:-2]) / (2 dt) - rhs(traj[1:-1])`` of shape
            ``(..., T-2, F, *shape)``, and the divergence of the velocity of every frame,
            ``(..., T, *shape)`` (zeros for systems without a velocity).
        """
        traj = self.K.asarray(traj)
        self._check_physical(traj, "residual")
        taxis = -(self.dim + 2)
        if traj.ndim < self.dim + 2 or traj.shape[taxis] < 3:
            raise SolverError(f"residual: need at least 3 frames on axis {taxis}, got shape {tuple(traj.shape)}")
        if not (dt > 0):
            raise SolverError(f"residual: dt must be positive, got {dt!r}")
        n = traj.shape[taxis]
        later = self._frames(traj, 2, n)
        earlier = self._frames(traj, 0, n - 2)
        middle = self._frames(traj, 1, n - 1)
        dudt = (later - earlier) / (2.0 * dt)
        if self.module.USES_TIME:
            rates = [self.rhs(self.K.take(middle, j, taxis), t0 + (j + 1) * dt, params) for j in range(n - 2)]
            rate = self.K.stack(rates, taxis)
        else:
            rate = self.rhs(middle, t0, params)
        return dudt - rate, self.divergence(traj)

    def _frames(self, traj, start: int, stop: int):
        taxis = traj.ndim - (self.dim + 2)
        sl = [slice(None)] * traj.ndim
        sl[taxis] = slice(start, stop)
        return traj[tuple(sl)]

    # incompressibility ----------------------------------------------------------------------
    def divergence(self, u):
        """Spectral divergence of the velocity components of ``u`` (..., F, *shape) -> (..., *shape)."""
        u = self.K.asarray(u)
        if not self.velocity_index:
            return 0.0 * self.K.take(u, 0, self.field_axis)
        total = None
        for a, i in enumerate(self.velocity_index):
            term = self.K.k[a] * self.K.rfft(self.K.take(u, i, self.field_axis))
            total = term if total is None else total + term
        return self.K.irfft(1j * total)

    def project_hat(self, uh, truncate: bool = True):
        """Leray projection (and 2/3 truncation) of the velocity part of transforms ``uh``."""
        parts = self._split(uh)
        K = self.K
        if truncate and K.mask is not None:
            parts = [p * K.mask for p in parts]
        if self.velocity_index:
            div = sum(K.k[a] * parts[i] for a, i in enumerate(self.velocity_index)) * K.kinv2
            for a, i in enumerate(self.velocity_index):
                parts[i] = parts[i] - K.k[a] * div
        return K.stack(parts, self.field_axis)

    def project(self, u, truncate: bool = True):
        """Divergence-free (and, with ``truncate``, 2/3-truncated) version of fields ``u``."""
        return self.K.irfft(self.project_hat(self.K.rfft(self.K.asarray(u)), truncate))

    # diagnostics ----------------------------------------------------------------------------
    def energy(self, u):
        """Mean kinetic energy ``<|velocity|^2> / 2`` of ``u`` (..., F, *shape) -> (...)."""
        u = self.K.asarray(u)
        total = None
        for i in self.velocity_index:
            c = self.K.take(u, i, self.field_axis)
            sq = (c * c).mean(axis=tuple(range(-self.dim, 0))) if self.target == "numpy" else (c * c).mean(dim=tuple(range(-self.dim, 0)))
            total = sq if total is None else total + sq
        return 0.5 * total

    def spectral_radius(self, uh, t: float = 0.0, explicit: bool = False) -> list[tuple[float, float]]:
        """Per field, bounds (real, imaginary) of the linearized operator's spectrum at ``uh``
        (with ``explicit``: of the operator without its stiff linear parts)."""
        if self.module.USES_TIME:
            t = self.K.scalar(t)
        fn = self.module.radius_explicit if explicit else self.module.radius
        return fn(self._split(uh), t, self._P, self.K, self._M)

    def __repr__(self) -> str:
        dev = f", device={self.device}" if self.device is not None else ""
        return (f"SpectralOperator({self.system.name!r}, grid {'x'.join(map(str, self.shape))}, "
                f"target={self.target}{dev}, dtype={self.dtype})")


def compile_spectral(
    system: PDESystem,
    target: str = "numpy",
    device=None,
    dtype: str = "float64",
    use_cache: bool = True,
    constants: Mapping[str, float] | None = None,
    form: str = "as-written",
) -> SpectralKernel:
    """Generate (or load from the disk cache) the pseudo-spectral kernels of ``system``.

    Args:
        system: a periodic :class:`~pdeforge.PDESystem`, typically an
            :class:`~pdeforge.symbolic.incompressible.IncompressibleSystem`.
        target: "numpy" (CPU, ``scipy.fft``) or "torch" (CPU or CUDA, autograd-ready).
        device: torch device for target "torch" ("cpu", "cuda", ...); None: CPU.
        dtype: "float32" or "float64".
        use_cache: look up and store the generated module in the kernel cache.
        constants: parameters fixed before code generation (``{"Cs": 0}``: the Smagorinsky
            terms are not generated); see :func:`pdeforge.symbolic.constants.fix_constants`.
        form: "as-written" (any state) or "solenoidal" (divergence-free, 2/3-truncated
            states, fewer transforms); see :func:`pdeforge.discretize.spectral.spectral_discretize`.

    Returns:
        A :class:`SpectralKernel`; :meth:`SpectralKernel.bind` gives the operator.
    """
    from pdeforge.discretize.spectral import FORMS
    from pdeforge.errors import PDEForgeError
    from pdeforge.symbolic.constants import constants_key, fix_constants

    if form not in FORMS:
        raise SolverError(f"form {form!r}: valid forms are {', '.join(FORMS)}")
    try:
        system = fix_constants(system, constants)
    except PDEForgeError as exc:
        raise SolverError(str(exc)) from None
    if target not in SPECTRAL_TARGETS:
        raise SolverError(f"spectral target {target!r} is not available (valid: {', '.join(SPECTRAL_TARGETS)})")
    from pdeforge.codegen.spectral.backend import _dtype_name

    dtype = _dtype_name(dtype)
    if target == "numpy" and device not in (None, "cpu"):
        raise SolverError(f"device {device!r}: the numpy target runs on the CPU only (use target 'torch')")
    t0 = time.perf_counter()
    key = cache.cache_key("spectral", system.structure_key(), target, form, constants_key(system))
    module = cache.load(key) if use_cache else None
    hit = module is not None
    if module is None:
        from pdeforge.discretize.spectral import spectral_discretize
        from pdeforge.codegen.spectral.target import generate

        semi = spectral_discretize(system, form=form)
        source = generate(semi, target, key)
        if use_cache:
            module = cache.store(key, source)
        else:
            from pdeforge.codegen.build import _load_uncached

            module = _load_uncached(key, source)
    return SpectralKernel(system, target, device, dtype, module, key, hit, time.perf_counter() - t0)


def spectral_operator(
    system: PDESystem,
    grid: int | tuple[int, ...] | UniformGrid,
    target: str = "numpy",
    device=None,
    dtype: str = "float64",
    params: Mapping[str, float] | None = None,
    dealias: bool = True,
    constants: Mapping[str, float] | None = None,
    form: str = "as-written",
) -> SpectralOperator:
    """Compile ``system`` for ``target`` and bind it to ``grid`` in one call.

    Args:
        system: the periodic system.
        grid: points per axis or a :class:`UniformGrid`.
        target: "numpy" or "torch".
        device: torch device for "torch".
        dtype: "float32" or "float64".
        params: parameter overrides.
        dealias: 2/3-rule truncation of the transforms of products.
        constants: parameters fixed before code generation (see :func:`compile_spectral`).
        form: "as-written" or "solenoidal" (see :func:`compile_spectral`).
    """
    return compile_spectral(system, target, device, dtype, constants=constants, form=form).bind(grid, params, dealias)


def _refuse_fixed(system: PDESystem, params: Mapping) -> None:
    from pdeforge.errors import PDEForgeError
    from pdeforge.symbolic.constants import check_not_fixed

    try:
        check_not_fixed(system, params)
    except PDEForgeError as exc:
        raise SolverError(str(exc)) from None


def default_workers(shape) -> int:
    """Threads of ``scipy.fft`` for a grid of ``shape`` when the caller names none."""
    import math

    import scipy.fft

    from pdeforge.codegen.spectral.backend import THREADED_POINTS, physical_cores

    context = scipy.fft.get_workers()
    if context != 1:  # the user's scipy.fft.set_workers(...) context
        return context
    return physical_cores() if math.prod(shape) >= THREADED_POINTS else 1
