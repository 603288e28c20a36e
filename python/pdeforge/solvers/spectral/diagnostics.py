"""Flow diagnostics from spectral states: kinetic energy, enstrophy, dissipation, E(k).

All sums use Parseval's identity on the unnormalized real FFT of :mod:`numpy.fft` layout
(``u_hat = sum_x u e^{-i k x}``): the volume mean of ``u^2`` is ``sum_k w_k |u_hat_k|^2 / N^2``,
with ``w_k = 2`` for the half-spectrum modes that stand for a conjugate pair too. On a
distributed runtime each rank sums its own modes and the sums go through Allreduce
(``runtime.allsum``), so every rank gets the one-process values.
"""

from __future__ import annotations

import math

import numpy as np

from pdeforge.codegen.spectral.backend import SpectralRuntime


def shell_edges(runtime: SpectralRuntime) -> tuple[np.ndarray, float]:
    """Shell centres ``k_n = n dk`` (n = 0, 1, ...) covering every mode, and the width ``dk``."""
    dk = 2.0 * math.pi / max(runtime.lengths)
    kmag = np.sqrt(runtime._np["ksq_full"])
    n_shells = int(np.rint(runtime.allmax(float(kmag.max())) / dk)) + 1
    return dk * np.arange(n_shells), dk


class FlowDiagnostics:
    """Diagnostics of the velocity part of spectral states on one grid.

    Args:
        runtime: a NumPy :class:`SpectralRuntime` of the grid (its wavenumbers and, for a
            distributed one, its sums over the ranks).
        velocity: indices of the velocity fields in the state.
        nu: kinematic viscosity for the dissipation (None: no dissipation output).
    """

    def __init__(self, runtime: SpectralRuntime, velocity: tuple[int, ...], nu: float | None):
        self.velocity = tuple(velocity)
        self.allsum = runtime.allsum
        self.nu = nu
        self.ksq = np.broadcast_to(runtime._np["ksq_full"], runtime.kshape)
        w = np.broadcast_to(np.asarray(runtime.mode_weight, dtype=float), runtime.kshape)
        self.weight = w / float(runtime.size) ** 2
        self.k, self.dk = shell_edges(runtime)
        self.shell = np.rint(np.sqrt(self.ksq) / self.dk).astype(np.int64).ravel()

    def _power(self, uh: np.ndarray) -> np.ndarray:
        """``sum_i w |u_hat_i|^2 / N^2`` per mode (velocity components only)."""
        p = np.zeros(self.ksq.shape)
        for i in self.velocity:
            p += np.abs(uh[i]) ** 2
        return p * self.weight

    def energy(self, uh: np.ndarray) -> float:
        """Mean kinetic energy ``<|u|^2>/2``."""
        return 0.5 * float(self.allsum(float(self._power(uh).sum())))

    def enstrophy(self, uh: np.ndarray) -> float:
        """Mean enstrophy ``<|omega|^2>/2`` (equal to ``<|grad u|^2>/2`` for solenoidal ``u``)."""
        return 0.5 * float(self.allsum(float((self._power(uh) * self.ksq).sum())))

    def dissipation(self, uh: np.ndarray) -> float:
        """Resolved viscous dissipation ``2 nu <S_ij S_ij> = nu <|omega|^2>`` (NaN without nu)."""
        return 2.0 * self.nu * self.enstrophy(uh) if self.nu is not None else float("nan")

    def energy_rate(self, uh: np.ndarray, rate: np.ndarray) -> float:
        """``dE/dt = <u . du/dt>`` of the semi-discrete equations (every term: viscous, subgrid, forcing)."""
        total = 0.0
        for i in self.velocity:
            total += float((np.real(np.conj(uh[i]) * rate[i]) * self.weight).sum())
        return float(self.allsum(total))

    def spectrum(self, uh: np.ndarray) -> np.ndarray:
        """Shell-summed energy spectrum ``E(k_n)`` (density: ``sum_n E(k_n) dk = E``)."""
        e = np.bincount(self.shell, weights=0.5 * self._power(uh).ravel(), minlength=len(self.k))
        return self.allsum(e[: len(self.k)]) / self.dk
