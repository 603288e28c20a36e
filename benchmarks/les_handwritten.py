"""A straightforward hand-written NumPy pseudo-spectral LES right-hand side (the peer).

Filtered incompressible Navier-Stokes on the periodic box [0, 2 pi)^3 with the Smagorinsky
model, written the way one writes it by hand with ``numpy.fft``: velocity gradients by
spectral differentiation, strain rate, eddy viscosity ``nu_t = (Cs Delta)^2 sqrt(2 S_ij S_ij)``,
stress ``2 nu_t S_ij``, advection ``u_j d_j u_i`` in convective form, 2/3-rule dealiasing of
the transformed products, viscous term in Fourier space, Leray projection. It shares no code
with pdeforge: the tests use it as an independent check of the generated kernels, the
benchmark as the speed reference.
"""

from __future__ import annotations

import numpy as np


class HandWrittenLES:
    """Right-hand side of the 3-D Smagorinsky LES on an ``n^3`` grid of [0, 2 pi)^3.

    Args:
        n: points per axis.
        nu: kinematic viscosity.
        Cs: Smagorinsky constant.
        dealias: apply the 2/3 rule to the transforms of products.
        fft: the FFT module, ``numpy.fft`` (default) or ``scipy.fft``.
    """

    def __init__(self, n: int, nu: float, Cs: float, dealias: bool = True, fft=np.fft):
        self.fft = fft
        self.n = n
        self.nu = nu
        self.Cs = Cs
        k = np.fft.fftfreq(n, 1.0 / n)
        kz = np.fft.rfftfreq(n, 1.0 / n)
        kx3, ky3, kz3 = np.meshgrid(k, k, kz, indexing="ij")
        self.k2 = kx3**2 + ky3**2 + kz3**2
        # odd derivatives drop the Nyquist mode (not a real field)
        nyq = n // 2
        kx_o = np.where(np.abs(kx3) == nyq, 0.0, kx3)
        ky_o = np.where(np.abs(ky3) == nyq, 0.0, ky3)
        kz_o = np.where(np.abs(kz3) == nyq, 0.0, kz3)
        self.k = (kx_o, ky_o, kz_o)
        ko2 = kx_o**2 + ky_o**2 + kz_o**2
        self.ko2_inv = np.where(ko2 > 0, 1.0 / np.where(ko2 > 0, ko2, 1.0), 0.0)
        keep = (3 * np.abs(kx3) < n) & (3 * np.abs(ky3) < n) & (3 * np.abs(kz3) < n)
        self.mask = keep.astype(float) if dealias else np.ones_like(self.k2)
        self.delta = 2 * np.pi / n

    def rhs_hat(self, uh: np.ndarray) -> np.ndarray:
        """Spectral tendency (3, n, n, n//2+1) of the velocity transforms ``uh``."""
        n = self.n
        shape = (n, n, n)
        u = [self.fft.irfftn(uh[i], s=shape, axes=(0, 1, 2)) for i in range(3)]
        g = [[self.fft.irfftn(1j * self.k[j] * uh[i], s=shape, axes=(0, 1, 2)) for j in range(3)] for i in range(3)]
        S = [[0.5 * (g[i][j] + g[j][i]) for j in range(3)] for i in range(3)]
        SS = sum(S[i][j] * S[i][j] for i in range(3) for j in range(3))
        nut = (self.Cs * self.delta) ** 2 * np.sqrt(2.0 * SS)
        tau = {}
        for i in range(3):
            for j in range(i, 3):
                tau[i, j] = self.fft.rfftn(2.0 * nut * S[i][j]) * self.mask
                tau[j, i] = tau[i, j]
        out = np.empty_like(uh)
        for i in range(3):
            conv = u[0] * g[i][0] + u[1] * g[i][1] + u[2] * g[i][2]
            out[i] = (
                -self.fft.rfftn(conv) * self.mask
                + 1j * (self.k[0] * tau[i, 0] + self.k[1] * tau[i, 1] + self.k[2] * tau[i, 2])
                - self.nu * self.k2 * uh[i]
            )
        div = (self.k[0] * out[0] + self.k[1] * out[1] + self.k[2] * out[2]) * self.ko2_inv
        for i in range(3):
            out[i] -= self.k[i] * div
        return out

    def rhs(self, u: np.ndarray) -> np.ndarray:
        """Time derivative (3, n, n, n) of the physical velocity ``u``."""
        uh = np.stack([self.fft.rfftn(u[i]) for i in range(3)])
        out = self.rhs_hat(uh)
        return np.stack([self.fft.irfftn(out[i], s=u.shape[1:], axes=(0, 1, 2)) for i in range(3)])
