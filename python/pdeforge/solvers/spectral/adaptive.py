"""ETDRK4 with an embedded error estimate and step-size control (the spectral default step).

The step of Cox & Matthews' ETDRK4 (see :mod:`pdeforge.solvers.spectral.stepping`),

    u1 = E u + f1 N(u) + 2 f2 (N(a) + N(b)) + f3 N(c),

has a third-order companion that differs in one stage only: the end-point stage ``N(c)``
replaced by ``N(u1)``, the tendency at the new state (first same as last: it is the next
step's ``N(u)``, so an accepted step costs four evaluations, as the fixed-step method does,
and a rejected one five). With ``z = L h`` -> 0 the pair is the classical RK4 with the
FSAL 3rd-order weights ``(1/6, 1/3, 1/3, 0, 1/6)``; both share ``sum b = phi1``,
``sum b c = phi2``, ``sum b c^2 / 2 = phi3``. Their difference

    d = f3 (N(c) - N(u1))

estimates the local error (``O(h^4)``, the error of the third-order solution; the fourth-order
one is kept: local extrapolation, as Dormand-Prince). A step is accepted when

    ||d|| <= atol sqrt(n) + rtol ||u1||         (L2 norms over the transform's modes)

and the next step is ``h (0.9 / err)^(1/4)``, limited to 0.2-5 times the last one. An
unstable step shows in the estimate (the growing modes enter ``N(c)`` and ``N(u1)``
differently) and is rejected; the CFL step of the explicit part is only the first guess.

The first step: a trial step of the CFL guess ``h0`` (the warm-up step, or the first step
of :meth:`AdaptiveETDRK4.advance`) gives ``err0``, and the step that follows is
``h0 (0.9 / err0)^(1/4)`` within 1/100-100 times ``h0`` (the error of a fourth-order pair
scales as ``h^4``; Hairer, Norsett & Wanner's starting step, with a real step for its
estimate), so a run does not climb from the CFL step by factors of 5.

Proposed steps are rounded to a ladder of ratio ``2^(1/8)``, and the span to the next
output time is cut into equal steps no longer than the proposal (no short last step);
while the proposal stays on its rung the step repeats exactly, so the phi-function
coefficients are built once per step size and reused (a run builds a handful of sets,
counted in ``coefficient_builds``).
"""

from __future__ import annotations

import math

import numpy as np

from pdeforge.solvers.stepping import BlowUp
from pdeforge.solvers.spectral.stepping import StiffSpectralStepper

#: default relative tolerance of the adaptive spectral step (relative L2 of the state per step)
DEFAULT_RTOL = 1e-4
#: default absolute tolerance (per mode, in the units of the transform divided by sqrt(modes))
DEFAULT_ATOL = 1e-12
#: the controller: safety factor, smallest and largest change of the step
SAFETY_FACTOR, SHRINK_MIN, GROW_MAX = 0.9, 0.2, 5.0
#: the first step after the trial of the CFL guess: within these factors of it
FIRST_CHANGE_MIN, FIRST_CHANGE_MAX = 0.01, 100.0
#: rungs of the step ladder per factor two
LADDER = 8


def on_ladder(h: float) -> float:
    """``h`` rounded to the nearest rung of the ladder ``2^(k / LADDER)`` (within 4.4%: the
    controller's safety factor, not the rounding, keeps the step inside the tolerance)."""
    return 2.0 ** (round(LADDER * math.log2(h)) / LADDER)


class AdaptiveETDRK4(StiffSpectralStepper):
    """ETDRK4 with the embedded estimate of the module docstring and step-size control.

    Args:
        op: the bound operator (kernels with ``rhs_explicit`` and ``STIFF``).
        uh: initial transforms ``(F, *kshape)``, truncated and projected.
        t0: initial time.
        rtol: relative tolerance of the local error (L2 norm of the state).
        atol: absolute tolerance (per mode, root-mean-square).
        dt_max: largest step.
        h0: first step tried (None: the CFL step of the explicit part).
    """

    def __init__(self, op, uh, t0: float, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
                 dt_max: float = math.inf, h0: float | None = None):
        super().__init__(op, uh, t0, "etdrk4", None, dt_max=dt_max)
        if not (rtol > 0 or atol > 0):
            raise ValueError(f"rtol {rtol!r} and atol {atol!r}: one of them must be positive")
        self.rtol, self.atol = float(rtol), float(atol)
        self.rejected = 0
        #: largest accepted error estimate (in units of the tolerance) and the last one
        self.error_max = 0.0
        self.error_last = math.nan
        self._nc, self._n5 = self._empty(), self._empty()
        if self._on_support:
            self._nc[...] = 0
            self._n5[...] = 0
        self._fsal = False  # whether self._buffers[0] holds N(y) at the current state
        h = h0 if h0 is not None else self.cfl_dt()
        self._h = on_ladder(min(h, dt_max)) if h > 0 and math.isfinite(h) else dt_max
        self._first = True  # no error estimate yet: the next one sets the step (module docstring)
        #: the error estimate of the first trial step (tolerance units) and its step
        self.initial_error, self.initial_dt = math.nan, math.nan
        self._h_used = math.nan  # the last step taken (repeated while the proposal allows it)
        self._since_check = 0
        self._sqrt_n = math.sqrt(self.y.numel() if self.K.library == "torch" else self.K.allsum(self.y.size))

    # the step ---------------------------------------------------------------------------------
    def _try(self, h: float) -> float:
        """One ETDRK4 step of ``h`` into ``self.acc`` with its error estimate (units of the
        tolerance); ``self._n5`` gets ``N`` at the new state."""
        E, E2, Q, f1, f2, f3 = self._coeff(h)
        y, t, a, out = self.y, self.t, self.stage, self.acc
        nu, na, nb, b = self._buffers
        nc, n5 = self._nc, self._n5
        fused = self._fused()
        if fused is not None:
            flat = [x.reshape(-1) for x in (y, a, out, nu, na, nb, nc, n5)]
            fy, fa, fo, fnu, fna, fnb, fnc, fn5 = flat
            E, E2, Q, f1, f2, f3 = (c.reshape(-1) for c in (E, E2, Q, f1, f2, f3))
            z = self._on_support
            if self._fsal:
                fused["etd_stage"](fa, E2, fy, Q, fnu)  # a = E2 u + Q Nu
            else:
                self._f(y, t, nu, ("etd_ab", (a, y), (E2, Q), 0.0, z))
            self._f(a, t + 0.5 * h, na, ("etd_ab", (b, y), (E2, Q), 0.0, z))  # b = E2 u + Q Na
            self._f(b, t + 0.5 * h, nb, ("etd_c", (a, nu), (E2, Q), 0.0, z))  # c = E2 a + Q (2 Nb - Nu)
            self._f(a, t + h, nc)
            fused["etd_sum"](fo, E, fy, f1, fnu, f2, fna, fnb, f3, fnc)
            self._f(out, t + h, n5)
            # the error norm over every rank's modes: every rank accepts or rejects alike
            diff2, size2 = self.K.allsum(np.array(fused["etd_error"](f3, fnc, fn5, fo)))
        else:
            if not self._fsal:
                self._f(y, t, nu)
            a = E2 * y + Q * nu
            self._f(a, t + 0.5 * h, na)
            b = E2 * y + Q * na
            self._f(b, t + 0.5 * h, nb)
            c = E2 * a + Q * (2.0 * nb - nu)
            self._f(c, t + h, nc)
            self._copy_into(out, E * y + f1 * nu + 2.0 * f2 * (na + nb) + f3 * nc)
            self._f(out, t + h, n5)
            diff2 = self._norm(f3 * (nc - n5)) ** 2
            size2 = self._norm(out) ** 2
        self._fsal = True
        if not (math.isfinite(diff2) and math.isfinite(size2)):
            return math.inf
        return math.sqrt(diff2) / (self.atol * self._sqrt_n + self.rtol * math.sqrt(size2))

    def step(self, dt: float) -> None:
        """One step of ``dt`` whatever its error (the fixed-step interface; warm-up)."""
        self._try(dt)
        self._accept()

    def _accept(self) -> None:
        self.y, self.acc = self.acc, self.y
        self._buffers[0], self._n5 = self._n5, self._buffers[0]  # FSAL: N at the new state

    def warm(self) -> None:
        """The trial step of the CFL guess from the current state (which is kept): loads the
        kernels, and its error estimate sets the first step (module docstring)."""
        saved = self.y.clone() if self.K.library == "torch" else self.y.copy()
        h = self._h
        with np.errstate(all="ignore"):
            err = self._try(h)
            fused = self._fused()
            if fused is not None:  # the first-same-as-last stage pass too (loaded here, not in the first step)
                E, E2, Q, *_ = (c.reshape(-1) for c in self._coeff(h))
                fused["etd_stage"](self.stage.reshape(-1), E2, self.y.reshape(-1), Q, self._buffers[0].reshape(-1))
        self._copy_into(self.y, saved)
        self._fsal = False
        self._first_step(h, err)

    def _first_step(self, h: float, err: float) -> None:
        """Set the step from the first error estimate ``err`` of a step ``h`` (see the module
        docstring); a non-finite estimate leaves the shrinking to the controller."""
        if not self._first or not math.isfinite(err):
            return
        self._first = False
        self.initial_error, self.initial_dt = float(err), float(h)
        change = FIRST_CHANGE_MAX if err == 0 else SAFETY_FACTOR * err ** -0.25
        self._h = on_ladder(min(self.dt_max, h * min(FIRST_CHANGE_MAX, max(FIRST_CHANGE_MIN, change))))

    # the controller ----------------------------------------------------------------------------
    def advance(self, t_target: float, progress=None) -> None:
        """Step to ``t_target`` exactly with accepted steps only (see the module docstring);
        the state is checked every ``recheck`` accepted steps and at ``t_target``."""
        while t_target - self.t > 1e-12 * max(1.0, abs(t_target)):
            span = t_target - self.t
            n = max(1, math.ceil(span / self._h * (1.0 - 1e-9)))
            last = n == 1
            h = span / n  # equal steps to t_target, none longer than the proposal
            if abs(h - self._h_used) <= 1e-9 * h:
                h = self._h_used  # the same step again: its coefficients are cached
            if h < 1e-12 * max(1.0, abs(self.t)):
                raise BlowUp(self.t, self._good_t, self.op.to_physical(self._good))
            first = self._first
            err = self._try(h)
            if first and err <= 1.0:
                self._first_step(h, err)
            if err <= 1.0:
                self._accept()
                self.t = float(t_target) if last else self.t + h
                self.steps += 1
                self.dt_used.append(h)
                self._h_used = h
                self.error_last = err
                self.error_max = max(self.error_max, err)
                if not first:
                    change = GROW_MAX if err == 0 else min(GROW_MAX, max(SHRINK_MIN, SAFETY_FACTOR * err ** -0.25))
                    proposal = on_ladder(min(self.dt_max, h * change))
                    # a step shortened to fit the span, passed easily, says nothing against the proposal
                    self._h = max(self._h, proposal) if (h < self._h and change >= 1) else proposal
                self._since_check += 1
                if self._since_check >= self.recheck or last:
                    self._check()
                    self._since_check = 0
                if progress is not None:
                    progress(self.t)
            else:
                self.rejected += 1
                change = SHRINK_MIN if not math.isfinite(err) else max(SHRINK_MIN, SAFETY_FACTOR * err ** -0.25)
                self._h = on_ladder(h * min(change, 0.9))

    def restart_state(self) -> dict:
        return super().restart_state() | {"h_next": float(self._h), "rejected": int(self.rejected)}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.rejected = int(state.get("rejected", 0))
        if state.get("h_next", 0) > 0:
            self._h = float(state["h_next"])

    def run_attributes(self, t_span: float) -> dict:
        out = super().run_attributes(t_span)
        out.update(
            dt_meaning="mean accepted step (time stepped / accepted steps)",
            dt_last=float(self.dt_used[-1]) if self.dt_used else math.nan,
            dt_rule=f"error control: embedded ETDRK4(3) pair, rtol {self.rtol:g}, atol {self.atol:g}",
            steps_rejected=int(self.rejected),
            rhs_evaluations=int(4 * (self.steps - self._steps_before) + 5 * self.rejected + 1),
            initial_dt=float(self.initial_dt),
            initial_error_estimate=float(self.initial_error * self.rtol),
            rtol=self.rtol,
            atol=self.atol,
            error_estimate=float(self.error_max * self.rtol),
            error_estimate_meaning="largest accepted local error estimate, relative L2 of the state "
                                   "(||f3 (N(c) - N(u1))|| / ||u1||, tolerance units times rtol)",
        )
        return out
