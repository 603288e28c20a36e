"""Time stepping with the stiff linear part treated exactly or implicitly (spectral solver).

The generated kernels split every right-hand side into ``L u + N(u, t)``: ``L`` is the
diagonal constant-coefficient linear part read from the symbols (viscosity, hyperviscosity,
linear damping: :meth:`~pdeforge.codegen.spectral.compile.SpectralOperator.stiff_multipliers`), ``N``
the rest (``rhs_explicit``). Three methods use it:

* ``ifrk4``: integrating-factor RK4 (Lawson): classical RK4 on ``v = exp(-L t) u``; exact for
  ``N = 0``, fourth order;
* ``etdrk4``: exponential time differencing RK4 of Cox & Matthews (J. Comput. Phys. 176, 2002),
  with the phi functions evaluated by the contour integrals of Kassam & Trefethen (SIAM J. Sci.
  Comput. 26, 2005): 32 points on a circle of radius 1 around every ``L h`` (no cancellation
  near ``L h = 0``); exact for ``N = 0`` and for constant ``N`` (steady states are kept),
  fourth order;
* ``cnrk4``: the IMEX scheme of JAX-CFD's ``crank_nicolson_rk4``: Carpenter-Kennedy
  five-stage low-storage RK4 for ``N``, Crank-Nicolson for ``L`` (Canuto et al., Spectral
  Methods, 2007, appendix D.3); second order (fourth for ``L = 0``).

The CFL step of all three comes from the generated bound of ``N`` alone (``radius_explicit``)
against the RK4 stability region, so it does not depend on the viscosity. The coefficient
arrays depend on ``h`` and are kept for the last few steps used; CFL steps are rounded down
to a ladder of ratio ``2^(1/8)`` so that they change rarely.
"""

from __future__ import annotations

import math

import numpy as np

from pdeforge.tableaus import TABLEAUS, accumulating_stages, convex_stages
from pdeforge.solvers.run.inputs import SAFETY
from pdeforge.solvers.methods import Method, get_method
from pdeforge.solvers.stepping import BlowUp

#: steps between CFL re-estimates (and finiteness checks)
RECHECK_EVERY = 10
#: growth of the state's norm within one block that counts as a blow-up
GROWTH_LIMIT = 1e6

#: stiff-linear-part methods of the spectral solver; their explicit part is bounded by RK4's region
STIFF_METHODS: dict[str, Method] = {name: get_method(name) for name in ("ifrk4", "etdrk4", "cnrk4")}


class _Evaluations(dict):
    """Method name -> right-hand sides per step (an explicit tableau's stage count by default)."""

    def __missing__(self, method: str) -> int:
        return TABLEAUS[method].stages


#: right-hand side evaluations per step
EVALUATIONS = _Evaluations({"euler": 1, "ssprk3": 3, "rk4": 4, "ifrk4": 4, "etdrk4": 4, "cnrk4": 5})

#: Carpenter & Kennedy (1994) 2N-storage RK4 with Crank-Nicolson (the coefficients of JAX-CFD)
CK_ALPHA = (0.0, 0.1496590219993, 0.3704009573644, 0.6222557631345, 0.9582821306748, 1.0)
CK_BETA = (0.0, -0.4178904745, -1.192151694643, -1.697784692471, -1.514183444257)
CK_GAMMA = (0.1496590219993, 0.3792103129999, 0.8229550293869, 0.6994504559488, 0.1530572479681)

#: contour points of the Kassam-Trefethen phi functions
CONTOUR_POINTS = 32
#: coefficient sets kept (one per step size)
KEEP_COEFFICIENTS = 8


def etd_coefficients(z: np.ndarray, points: int = CONTOUR_POINTS) -> tuple[np.ndarray, ...]:
    """ETDRK4 coefficients of ``z = L h`` divided by ``h``: ``(Q, f1, f2, f3)``.

    ``Q = (exp(z/2) - 1)/z``, ``f1 = (-4 - z + e^z (4 - 3z + z^2))/z^3``,
    ``f2 = (2 + z + e^z (z - 2))/z^3``, ``f3 = (-4 - 3z - z^2 + e^z (4 - z))/z^3``, each the mean
    over ``points`` values on the circle of radius 1 around ``z`` (Cauchy's formula: exact
    up to the trapezoid rule's spectral accuracy, and free of the cancellation at small ``z``).
    The values are computed once per distinct ``z``.
    """
    if not np.iscomplexobj(z) or not np.any(np.imag(z)):
        return tuple(a + 0j for a in _etd_coefficients_real(np.real(np.asarray(z, dtype=complex))))
    flat = np.asarray(z, dtype=complex).ravel()
    values, inverse = np.unique(flat, return_inverse=True)
    r = np.exp(2j * np.pi * (np.arange(points) + 0.5) / points)
    acc = [np.zeros(values.shape, dtype=complex) for _ in range(4)]
    for rj in r:
        w = values + rj
        ew = np.exp(w)
        w3 = w * w * w
        acc[0] += (np.exp(w / 2) - 1.0) / w
        acc[1] += (-4.0 - w + ew * (4.0 - 3.0 * w + w * w)) / w3
        acc[2] += (2.0 + w + ew * (w - 2.0)) / w3
        acc[3] += (-4.0 - 3.0 * w - w * w + ew * (4.0 - w)) / w3
    shape = np.shape(z)
    out = []
    for a in acc:
        a = a / points
        if np.all(np.isreal(values)):
            a = a.real + 0j  # real L: the mean is real up to round-off
        out.append(a[inverse].reshape(shape))
    return tuple(out)


#: below this |z| the phi functions are summed as Taylor series (closed forms lose digits to cancellation)
TAYLOR_BELOW = 0.5


def _phi123(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``phi_1, phi_2, phi_3`` of real ``z`` (``phi_k(z) = sum_j z^j / (j + k)!``)."""
    small = np.abs(z) < TAYLOR_BELOW
    zb = np.where(small, 1.0, z)  # the closed forms where |z| is not small
    ez = np.exp(zb)
    p1 = (ez - 1.0) / zb
    p2 = (ez - 1.0 - zb) / (zb * zb)
    p3 = (ez - 1.0 - zb - 0.5 * zb * zb) / (zb * zb * zb)
    if np.any(small):
        zs = z[small]
        series = [np.zeros_like(zs) for _ in range(3)]
        power = np.ones_like(zs)
        for j in range(18):  # 0.5^18 / 18! ~ 1e-21
            for k in range(3):
                series[k] += power / math.factorial(j + k + 1)
            power = power * zs
        p1[small], p2[small], p3[small] = series
    return p1, p2, p3


def etd_values_real(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(Q, f1, f2, f3)`` of :func:`etd_coefficients` for real ``z``, elementwise and real:
    phi functions by closed forms and Taylor series (no search for repeated values; callers
    pass distinct values)."""
    p1, p2, p3 = _phi123(z)
    q = 0.5 * _phi123(0.5 * z)[0]  # (exp(z/2) - 1) / z
    return q, p1 - 3.0 * p2 + 4.0 * p3, p2 - 2.0 * p3, -p2 + 4.0 * p3


def _etd_coefficients_real(z: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`etd_coefficients` of real ``z``: phi functions by closed forms and Taylor series."""
    shape = np.shape(z)
    values, inverse = np.unique(np.ravel(z), return_inverse=True)
    return tuple(a[inverse].reshape(shape) for a in etd_values_real(values))


class SpectralRK:
    """Explicit Runge-Kutta in Fourier space on a :class:`~pdeforge.codegen.spectral.compile.SpectralOperator`.

    Args:
        op: the bound operator.
        uh: initial transforms ``(F, *kshape)`` (already truncated and projected).
        t0: initial time.
        method: "euler", "ssprk3" or "rk4".
        dt: fixed step (None: CFL step, re-estimated every ``recheck`` steps).
        safety: fraction of the CFL limit.
        recheck: largest number of steps between CFL estimates and finiteness checks.
        dt_max: largest step when nothing limits it.
    """

    def __init__(self, op, uh, t0: float, method: str, dt: float | None, safety: float = SAFETY,
                 recheck: int = RECHECK_EVERY, dt_max: float = math.inf):
        self.op = op
        self.K = op.K
        self.method = get_method(method)
        self.t = float(t0)
        self.fixed_dt = dt
        self.safety = safety
        self.recheck = max(1, int(recheck))
        self.dt_max = dt_max
        self.y = uh
        self.k = self._empty()
        registers = TABLEAUS[method].stages > 1 if method in TABLEAUS else True
        self.acc = self._empty() if registers else None
        self.stage = self._empty() if registers else None
        self.steps = 0
        self._steps_before = 0  # steps of the run this one continues
        self.dt_used: list[float] = []
        self._good = self.y.clone() if self.K.library == "torch" else self.y.copy()
        self._good_t = self.t
        self._good_norm = self._norm(self.y)

    def _empty(self):
        if self.K.library == "torch":
            return self.K.torch.empty_like(self.y)
        return np.empty_like(self.y)

    def _copy_into(self, dst, src):
        if self.K.library == "torch":
            dst.copy_(src)
        else:
            np.copyto(dst, src)

    def _axpy(self, y, a: float, x) -> None:
        """``y += a * x`` in place."""
        if self.K.library == "torch":
            y.add_(x, alpha=a)
        else:
            y += a * x

    def _f(self, y, t: float) -> None:
        self.op.rhs_hat(y, t, out=self.k)

    def restart_state(self) -> dict:
        """Steps so far and the last step (the fixed step, or the last CFL step)."""
        return {"steps": int(self.steps), "dt": float(self.dt_used[-1]) if self.dt_used else math.nan}

    def restore(self, state: dict) -> None:
        """Continue the step count of a saved run (a CFL step is re-estimated from the state)."""
        self.steps = int(state.get("steps", 0))
        self._steps_before = self.steps

    def cfl_dt(self) -> float:
        """The CFL step at the current state (``safety`` times the stability limit)."""
        bounds = self.op.spectral_radius(self.y, self.t)
        limit = min(self.method.stable_dt(lr, li) for lr, li in bounds)
        if math.isnan(limit):
            return math.nan
        return min(self.safety * limit, self.dt_max)

    def step(self, dt: float) -> None:
        """One step of the method's tableau: the convex (Shu-Osher) form of euler and ssprk3, the
        accumulator form of rk4 (:mod:`pdeforge.tableaus`)."""
        y, k, t = self.y, self.k, self.t
        tab = TABLEAUS[self.method.name]
        if tab.shu_osher is not None:
            stages = convex_stages(tab)
            first = stages[0]
            self._f(y, t)
            if len(stages) == 1:
                self._axpy(y, first.euler_by(dt), k)
                return
            s, acc = self.stage, self.acc
            self._copy_into(s, y)
            self._axpy(s, first.euler_by(dt), k)  # u_1
            cur = s
            for i, st in enumerate(stages[1:], 1):
                # u_{i+1} = keep u_0 + mix (u_i + (weight / mix) dt f(u_i))
                self._f(cur, t + st.at(dt))
                self._axpy(cur, st.euler_by(dt), k)
                if i == len(stages) - 1:
                    y *= st.keep_f
                    self._axpy(y, st.mix_f, cur)
                else:
                    dst = acc if cur is s else s
                    self._copy_into(dst, y)
                    dst *= st.keep_f
                    self._axpy(dst, st.mix_f, cur)
                    cur = dst
            return
        s, acc = self.stage, self.acc
        stages = accumulating_stages(tab)
        self._f(y, t)
        self._copy_into(acc, y)
        for i, st in enumerate(stages[:-1]):
            # sum += weight dt k_i; the next stage value y + advance dt k_i
            self._axpy(acc, st.by(dt), k)
            self._copy_into(s, y)
            self._axpy(s, st.advance_by(dt), k)
            self._f(s, t + stages[i + 1].at(dt))
        self._axpy(acc, stages[-1].by(dt), k)
        self.y, self.acc = acc, y

    def _check(self) -> None:
        """Keep the state as the last good one, or raise :class:`BlowUp`.

        A state is bad when its norm is not finite (this also catches entries above ~1e154,
        whose squares overflow) or when it grew within one block of at most ``recheck`` steps
        to more than :data:`GROWTH_LIMIT` times what the last good state plus its tendency over
        the block can reach (``|u| + t_block |du/dt|``, so a forced flow starting from rest is
        fine): no resolved flow does that, an unstable step does (a too-large dt once ran to
        values of 1e227 and finished as "completed").
        """
        norm = self._norm(self.y)
        bad = not math.isfinite(norm)
        if not bad and norm > GROWTH_LIMIT * self._good_norm:
            rate = self._norm(self.op.rhs_hat(self._good, self._good_t))
            bad = norm > GROWTH_LIMIT * (self._good_norm + (self.t - self._good_t) * rate)
        if bad:
            raise BlowUp(self.t, self._good_t, self.op.to_physical(self._good))
        self._copy_into(self._good, self.y)
        self._good_t = self.t
        self._good_norm = norm

    def _norm(self, a) -> float:
        if self.K.library == "torch":
            return float(self.K.torch.linalg.vector_norm(a.detach()))
        with np.errstate(over="ignore", invalid="ignore"):
            # over every rank's modes in a distributed runtime, so every rank decides alike
            square = self.K.allsum(float(np.vdot(a, a).real))
            return math.sqrt(square) if math.isfinite(square) else math.inf

    def advance(self, t_target: float, progress=None) -> None:
        """Step to ``t_target`` exactly, in blocks of at most ``recheck`` steps.

        A fixed step is used as given (:meth:`_advance_fixed`). Otherwise, before each block
        the step is re-estimated from the CFL bound and the rest of the interval is split into
        equal steps no larger than it. After each block the state is checked for non-finite
        values and kept as the last good state.
        """
        if self.fixed_dt is not None:
            self._advance_fixed(t_target, progress)
            return
        while t_target - self.t > 1e-12 * max(1.0, abs(t_target)):
            span = t_target - self.t
            h = self.cfl_dt()
            if not (h > 0):  # NaN bound: the state went bad
                raise BlowUp(self.t, self._good_t, self.op.to_physical(self._good))
            n = max(1, math.ceil(span / h - 1e-9))
            dt = span / n
            block = min(n, self.recheck)
            for _ in range(block):
                self.step(dt)
                self.t += dt
            self.steps += block
            if block == n:
                self.t = t_target
            self.dt_used.append(dt)
            self._check()
            if progress is not None:
                progress(self.t)

    def _advance_fixed(self, t_target: float, progress=None) -> None:
        """Step to ``t_target`` with the fixed step exactly as given.

        As many whole steps as fit (a span of ``n`` steps up to rounding counts as ``n``), then,
        only where the span is not a whole number of steps, one shorter step to ``t_target``
        (its length rounded to 12 significant digits, so that every segment with the same
        remainder shares one set of step coefficients). Times are ``t_start + i h``: no drift.
        """
        h = float(self.fixed_dt)
        start = self.t
        span = t_target - start
        whole = max(0, math.floor(span / h + 1e-9))
        rest = span - whole * h
        done = 0
        while done < whole:
            block = min(whole - done, self.recheck)
            for _ in range(block):
                self.step(h)
                done += 1
                self.t = start + done * h
            self.steps += block
            self.dt_used.append(h)
            self._check()
            if progress is not None:
                progress(self.t)
        if rest > 1e-9 * h:
            last = float(f"{rest:.12g}")
            self.step(last)
            self.steps += 1
            self.dt_used.append(last)
            self._check()
        self.t = float(t_target)
        if progress is not None:
            progress(self.t)

    def warm(self) -> None:
        """One throw-away step from the current state (which is kept): loads the compiled
        kernels and FFT plans and builds the coefficients of the first step, so that the
        first call of :meth:`advance` measures stepping only (the solver counts this as
        compile time)."""
        h = self.fixed_dt if self.fixed_dt is not None else self.cfl_dt()
        if not (h > 0 and math.isfinite(h)):
            return
        saved = self.y.clone() if self.K.library == "torch" else self.y.copy()
        with np.errstate(all="ignore"):
            self.step(h)
        self._copy_into(self.y, saved)

    def run_attributes(self, t_span: float) -> dict:
        """Dataset attributes of the stepping so far: steps, the step sizes used and what the
        recorded ``dt`` means (``t_span``: the model time stepped over)."""
        used = self.dt_used
        fixed = self.fixed_dt is not None
        taken = self.steps - self._steps_before
        return {
            "steps": int(self.steps),
            "dt": float(self.fixed_dt) if fixed else (float(t_span / taken) if taken else math.nan),
            "dt_meaning": "the fixed step as given" if fixed else "mean step (time stepped / steps)",
            "dt_min": float(min(used)) if used else math.nan,
            "dt_max": float(max(used)) if used else math.nan,
        }


class StiffSpectralStepper(SpectralRK):
    """``ifrk4``, ``etdrk4`` or ``cnrk4`` on a spectral operator (see the module docstring).

    Args:
        op: the bound operator (kernels with ``rhs_explicit`` and ``STIFF``).
        uh: initial transforms ``(F, *kshape)``, truncated and projected.
        t0: initial time.
        method: "ifrk4", "etdrk4" or "cnrk4".
        dt: fixed step (None: CFL step of the explicit part).
        safety: fraction of the CFL limit.
        recheck: largest number of steps between CFL estimates and finiteness checks.
        dt_max: largest step when nothing limits it.
    """

    def __init__(self, op, uh, t0: float, method: str, dt: float | None, safety: float = SAFETY,
                 recheck: int = RECHECK_EVERY, dt_max: float = math.inf):
        self.stiff_method = STIFF_METHODS[method]
        super().__init__(op, uh, t0, "rk4", dt, safety, recheck, dt_max)
        self.method = self.stiff_method
        K = op.K
        kshape = op.kshape
        multipliers = op.stiff_multipliers()
        self._L = np.stack([np.broadcast_to(K.to_numpy(m) if m is not None else np.zeros(1, complex), kshape)
                            for m in multipliers]).astype(complex)
        # the distinct values of L (few: L depends on |k| only, mostly), once for every step size
        self._L_values, self._L_index = np.unique(self._L.ravel(), return_inverse=True)
        self._L_index = self._L_index.reshape(-1)
        self._L_real = not np.any(self._L_values.imag)
        self._coefficients: dict[float, tuple] = {}
        #: coefficient sets built so far (one per distinct step size still cached)
        self.coefficient_builds = 0
        extra = {"ifrk4": 1, "etdrk4": 4, "cnrk4": 1}[method]
        self._buffers = [self._empty() for _ in range(extra)]
        self._on_support = self._start_on_support()

    def _start_on_support(self) -> bool:
        """Whether the fused passes may visit only the support of the explicit part.

        True when the state is zero outside it (the solver's truncated states): there the
        explicit part is zero and the linear part diagonal, so those modes stay exactly zero
        in every stage; the work buffers are zeroed once so that they are zero there too.
        """
        support = self.op.explicit_support() if self.K.library == "numpy" else None
        if support is None:
            return False
        F = self.y.shape[0]
        outside = np.ones(self.y[0].size, dtype=bool)
        outside[support] = False
        if self.y.ndim != len(self.op.kshape) + 1 or np.any(self.y.reshape(F, -1)[:, outside]):
            return False
        for b in [self.k, self.acc, self.stage, *self._buffers]:
            if b is not None:
                b[...] = 0
        return True

    def run_attributes(self, t_span: float) -> dict:
        """:meth:`SpectralRK.run_attributes` and the step coefficient sets built (one per step size)."""
        return super().run_attributes(t_span) | {"coefficient_builds": int(self.coefficient_builds)}

    # explicit part ------------------------------------------------------------------------
    def _f(self, y, t: float, out=None, then=None) -> None:
        self.op.rhs_explicit_hat(y, t, out=self.k if out is None else out, then=then)

    def cfl_dt(self) -> float:
        bounds = self.op.spectral_radius(self.y, self.t, explicit=True)
        limit = min(self.method.stable_dt(lr, li) for lr, li in bounds)
        if math.isnan(limit):
            return math.nan
        h = min(self.safety * limit, self.dt_max)
        if math.isfinite(h) and h > 0:  # a ladder of steps: coefficients are rebuilt rarely
            h = 2.0 ** (math.floor(8.0 * math.log2(h)) / 8.0)
        return h

    # coefficients ---------------------------------------------------------------------------
    def _coeff(self, h: float) -> tuple:
        """The step's coefficient arrays for step ``h`` (cached for the last few step sizes).

        They are computed on the distinct values of ``L`` (a few thousand: ``L`` depends on
        ``|k|`` mostly) and spread to the modes by one gather each; a real ``L`` gives real
        arrays throughout (half the memory of complex ones, in the build and in every step)."""
        found = self._coefficients.get(h)
        if found is not None:
            return found
        K, name = self.K, self.stiff_method.name
        self.coefficient_builds += 1
        real = self._L_real
        L = self._L_values.real if real else self._L_values
        if name == "ifrk4":
            half = np.exp(0.5 * h * L)
            values = (half, half * half)
        elif name == "etdrk4":
            q, f1, f2, f3 = etd_values_real(h * L) if real else etd_coefficients(h * L)
            values = (np.exp(h * L), np.exp(0.5 * h * L), h * q, h * f1, h * f2, h * f3)
        else:
            values = []
            for k in range(len(CK_BETA)):
                mu = 0.5 * h * (CK_ALPHA[k + 1] - CK_ALPHA[k])
                inv = 1.0 / (1.0 - mu * L)
                values += [(1.0 + mu * L) * inv, CK_GAMMA[k] * h * inv]
        shape = self._L.shape
        if K.library == "numpy":  # the fused passes: real arrays where the values are real
            out = []
            for v in values:
                if np.iscomplexobj(v) and np.any(v.imag):
                    dtype = K.complex_dtype
                else:
                    v, dtype = np.real(v), K.real_dtype
                a = np.empty(shape, dtype=dtype)
                np.take(v.astype(dtype, copy=False), self._L_index, out=a.reshape(-1))
                out.append(a)
            out = tuple(out)
        else:
            out = tuple(K.asarray(np.asarray(v, dtype=complex)[self._L_index].reshape(shape), complex_=True)
                        for v in values)
        if len(self._coefficients) >= KEEP_COEFFICIENTS:
            self._coefficients.pop(next(iter(self._coefficients)))
            forget = getattr(self.op, "forget_prepared", None)
            if forget is not None:  # fused calls that kept the dropped set: freed with it
                forget()
        self._coefficients[h] = out
        return out

    # steps ------------------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        name = self.stiff_method.name
        if name == "ifrk4":
            self._ifrk4(dt)
        elif name == "etdrk4":
            self._etdrk4(dt)
        else:
            self._cnrk4(dt)

    def _fused(self):
        """The Numba passes of :mod:`pdeforge.codegen.spectral.fused` (numpy target), else None."""
        if self.K.library != "numpy":
            return None
        from pdeforge.codegen.spectral.fused import kernels

        return kernels()

    def _ifrk4(self, h: float) -> None:
        fused = self._fused()
        if fused is not None:
            return self._ifrk4_fused(h, fused)
        E, E2 = self._coeff(h)
        y, k, t, s, acc = self.y, self.k, self.t, self.stage, self.acc
        (eu,) = self._buffers
        self._f(y, t)
        self._copy_into(acc, y)
        self._axpy(acc, h / 6.0, k)
        acc *= E2  # E2 (u + h/6 k1)
        self._copy_into(eu, y)
        eu *= E  # E u
        self._copy_into(s, y)
        self._axpy(s, 0.5 * h, k)
        s *= E  # E (u + h/2 k1)
        self._f(s, t + 0.5 * h)
        self._copy_into(s, k)
        s *= E
        self._axpy(acc, h / 3.0, s)  # + h/3 E k2
        self._copy_into(s, eu)
        self._axpy(s, 0.5 * h, k)  # E u + h/2 k2
        self._f(s, t + 0.5 * h)
        self._copy_into(s, eu)
        self._axpy(s, h, k)
        s *= E  # E (E u + h k3) = E2 u + h E k3
        k *= E
        self._axpy(acc, h / 3.0, k)  # + h/3 E k3
        self._f(s, t + h)
        self._axpy(acc, h / 6.0, k)
        self.y, self.acc = acc, y

    def _ifrk4_fused(self, h: float, fused) -> None:
        E, E2 = (c.reshape(-1) for c in self._coeff(h))
        y, k, t, s, acc = self.y, self.k, self.t, self.stage, self.acc
        (eu,) = self._buffers
        fy, fk, fs, fa, fe = (a.reshape(-1) for a in (y, k, s, acc, eu))
        self._f(y, t)
        fused["if_stage"](fa, E2, fy, h / 6.0, fk)  # E2 (u + h/6 k1)
        fused["if_stage"](fs, E, fy, 0.5 * h, fk)  # E (u + h/2 k1)
        fused["if_stage"](fe, E, fy, 0.0, fk)  # E u
        self._f(s, t + 0.5 * h)
        fused["axpy_e"](fa, h / 3.0, E, fk)
        np.multiply(k, 0.5 * h, out=s)
        s += eu  # E u + h/2 k2
        self._f(s, t + 0.5 * h)
        fused["axpy_e"](fa, h / 3.0, E, fk)
        fused["if_stage"](fs, E, fe, h, fk)  # E (E u + h k3)
        self._f(s, t + h)
        self._axpy(acc, h / 6.0, k)
        self.y, self.acc = acc, y

    def _etdrk4_fused(self, h: float, fused) -> None:
        """ETDRK4 with each stage update done in the pass that ends the right-hand side."""
        E, E2, Q, f1, f2, f3 = self._coeff(h)
        y, t, a, out = self.y, self.t, self.stage, self.acc
        nu, na, nb, b = self._buffers
        z = self._on_support
        self._f(y, t, nu, ("etd_ab", (a, y), (E2, Q), 0.0, z))  # Nu; a = E2 u + Q Nu
        self._f(a, t + 0.5 * h, na, ("etd_ab", (b, y), (E2, Q), 0.0, z))  # Na; b = E2 u + Q Na
        self._f(b, t + 0.5 * h, nb, ("etd_c", (a, nu), (E2, Q), 0.0, z))  # Nb; c = E2 a + Q (2 Nb - Nu)
        self._f(a, t + h, out, ("etd_final", (y, nu, na, nb), (E, f1, f2, f3), 0.0, z))  # E u + f1 Nu + 2 f2 (Na + Nb) + f3 Nc
        self.y, self.acc = out, y

    def _cnrk4_fused(self, h: float) -> None:
        """CN-RK4 with each stage's update done in the pass that ends the right-hand side."""
        coeff = self._coeff(h)
        acc = self.acc
        (spare,) = self._buffers
        for stage in range(len(CK_BETA)):
            A, B = coeff[2 * stage], coeff[2 * stage + 1]
            # h_k = N(u) + beta_k h_(k-1); u <- ((1 + mu L) u + gamma dt h_k) / (1 - mu L), into the spare buffer
            self._f(self.y, self.t + CK_ALPHA[stage] * h, spare,
                    ("cn", (acc, self.y), (A, B), CK_BETA[stage], self._on_support))
            self.y, spare = spare, self.y
        self._buffers = [spare]

    def _etdrk4(self, h: float) -> None:
        fused = self._fused()
        if fused is not None:
            return self._etdrk4_fused(h, fused)
        E, E2, Q, f1, f2, f3 = self._coeff(h)
        y, k, t, a, out = self.y, self.k, self.t, self.stage, self.acc
        nu, na, eu2, b = self._buffers
        self._f(y, t)
        self._copy_into(nu, k)
        self._copy_into(eu2, y)
        eu2 *= E2  # E2 u
        self._copy_into(a, k)
        a *= Q
        a += eu2  # a = E2 u + Q Nu
        self._f(a, t + 0.5 * h)
        self._copy_into(na, k)
        self._copy_into(b, k)
        b *= Q
        b += eu2  # b = E2 u + Q Na
        self._f(b, t + 0.5 * h)  # k = Nb
        self._copy_into(out, y)
        out *= E
        self._copy_into(eu2, nu)
        eu2 *= f1
        out += eu2  # E u + f1 Nu
        na += k
        na *= f2
        self._axpy(out, 2.0, na)  # + 2 f2 (Na + Nb)
        self._axpy(nu, -2.0, k)
        nu *= Q  # Q (Nu - 2 Nb)
        a *= E2
        a -= nu  # c = E2 a + Q (2 Nb - Nu)
        self._f(a, t + h)
        k *= f3
        out += k
        self.y, self.acc = out, y

    def _cnrk4(self, h: float) -> None:
        if self._fused() is not None:
            return self._cnrk4_fused(h)
        coeff = self._coeff(h)
        y, k, acc = self.y, self.k, self.acc
        for stage in range(len(CK_BETA)):
            A, B = coeff[2 * stage], coeff[2 * stage + 1]
            self._f(y, self.t + CK_ALPHA[stage] * h)
            if stage == 0:
                self._copy_into(acc, k)
            else:
                acc *= CK_BETA[stage]
                acc += k  # h_k = N(u) + beta_k h_(k-1)
            y *= A
            self._copy_into(k, acc)
            k *= B
            y += k  # u = ((1 + mu L) u + gamma dt h) / (1 - mu L)


def routes_to_numpy(op, uh) -> bool:
    """Whether a torch operator's stepping runs on the numpy kernels: on the CPU, when nothing
    asks for autograd (the state and the parameters need no gradient).

    Why: per operation, torch's dispatch costs a few microseconds, and a spectral step is some
    hundred small operations; the numpy kernels do the step in one fused pass per stage plus the
    FFTs (the same generated code, the same results to round-off). On a GPU, or with
    gradients, the torch kernels run.
    """
    if op.K.library != "torch" or op.K.device.type != "cpu" or op.dtype not in ("float32", "float64"):
        return False
    torch = op.K.torch
    if isinstance(uh, torch.Tensor) and uh.requires_grad:
        return False
    return not any(isinstance(v, torch.Tensor) and v.requires_grad for v in op._P.values())


def numpy_twin(op):
    """The numpy-target operator of a torch operator's system, grid, parameters and precision."""
    from pdeforge.codegen.spectral.compile import compile_spectral

    system = op.system
    kernel = compile_spectral(system, "numpy", None, op.dtype, form=op.form)
    fixed = getattr(system, "constants", {})
    overrides = {k: float(v) for k, v in op.params.items() if k not in fixed and system.params.get(k) != v}
    return kernel.bind(op.grid, overrides or None, dealias=op.K.mask is not None)


class NumpyRouted:
    """A spectral stepper of a torch CPU operator that steps with the numpy kernels.

    The state stays one block of memory: :attr:`y` is a tensor sharing it with the numpy
    stepper's array (``torch.from_numpy``, no copy), so the solver's output, diagnostics and
    restarts see torch tensors as with the torch kernels. Every other attribute is the inner
    stepper's.

    Args:
        inner: the stepper built on :func:`numpy_twin` of the operator.
        torch: the torch module.
    """

    def __init__(self, inner, torch):
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "_torch", torch)

    @property
    def y(self):
        return self._torch.from_numpy(self.inner.y)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __setattr__(self, name, value):
        setattr(self.inner, name, value)
