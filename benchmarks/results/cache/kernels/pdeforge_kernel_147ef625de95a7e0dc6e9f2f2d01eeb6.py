"""pdeforge generated pseudo-spectral kernels: les, target numpy.

Generated code; do not edit (it is regenerated when the equations change).

    S_mag = sqrt(2*(d(u,x)**2 + d(v,y)**2 + d(w,z)**2) + (d(u,y) + d(v,x))**2 + (d(u,z) + d(w,x))**2 + (d(v,z) + d(w,y))**2)
    nu_t = (Cs*Delta)**2*S_mag
    u_t = -dot(vec(u, v, w), grad(u)) + nu*laplace(u) + d(2*nu_t*d(u,x), x) + d(nu_t*(d(u,y) + d(v,x)), y) + d(nu_t*(d(u,z) + d(w,x)), z)
    v_t = -dot(vec(u, v, w), grad(v)) + nu*laplace(v) + d(nu_t*(d(u,y) + d(v,x)), x) + d(2*nu_t*d(v,y), y) + d(nu_t*(d(v,z) + d(w,y)), z)
    w_t = -dot(vec(u, v, w), grad(w)) + nu*laplace(w) + d(nu_t*(d(u,z) + d(w,x)), x) + d(nu_t*(d(v,z) + d(w,y)), y) + d(2*nu_t*d(w,z), z)
    div(vec(u, v, w)) = 0   (pressure removed by Leray projection of the u, v, w tendencies)
"""

import math  # noqa: F401
import numpy as np  # noqa: F401
from scipy.special import erf as _erf  # noqa: F401

KEY = '147ef625de95a7e0dc6e9f2f2d01eeb6fc69e2059bd9b44c3316ac351a11f182'
TARGET = 'numpy'
FIELDS = ('u', 'v', 'w')
VELOCITY = (0, 1, 2)
PARAMS = ('nu', 'Cs')
GRID_SYMBOLS = ('Delta',)
DIM = 3
USES_TIME = False
TRANSFORMS = {'inverse': 12, 'forward': 9}
NODES = (('v_u', 'u', (0, 0, 0)), ('d_u_z', 'u', (0, 0, 1)), ('d_u_y', 'u', (0, 1, 0)), ('d_u_x', 'u', (1, 0, 0)), ('v_v', 'v', (0, 0, 0)), ('d_v_z', 'v', (0, 0, 1)), ('d_v_y', 'v', (0, 1, 0)), ('d_v_x', 'v', (1, 0, 0)), ('v_w', 'w', (0, 0, 0)), ('d_w_z', 'w', (0, 0, 1)), ('d_w_y', 'w', (0, 1, 0)), ('d_w_x', 'w', (1, 0, 0)))


def multipliers(P, K):
    """Fourier multipliers of the derivative nodes and linear terms."""
    p_nu = P["nu"]
    k0 = K.k[0]
    kk0 = K.kk[0]
    k1 = K.k[1]
    kk1 = K.kk[1]
    k2 = K.k[2]
    kk2 = K.kk[2]
    M = {}
    M["n_d_u_z"] = 1j*k2
    M["n_d_u_y"] = 1j*k1
    M["n_d_u_x"] = 1j*k0
    M["n_d_v_z"] = 1j*k2
    M["n_d_v_y"] = 1j*k1
    M["n_d_v_x"] = 1j*k0
    M["n_d_w_z"] = 1j*k2
    M["n_d_w_y"] = 1j*k1
    M["n_d_w_x"] = 1j*k0
    M["l_0_u"] = -kk0*p_nu - kk1*p_nu - kk2*p_nu
    M["l_0_q0"] = K.dealias_multiplier(1j*k1)
    M["l_0_q1"] = K.dealias_multiplier(1j*k2)
    M["l_0_q2"] = K.dealias_multiplier(1j*k0)
    M["l_1_v"] = -kk0*p_nu - kk1*p_nu - kk2*p_nu
    M["l_1_q0"] = K.dealias_multiplier(1j*k0)
    M["l_1_q3"] = K.dealias_multiplier(1j*k2)
    M["l_1_q4"] = K.dealias_multiplier(1j*k1)
    M["l_2_w"] = -kk0*p_nu - kk1*p_nu - kk2*p_nu
    M["l_2_q1"] = K.dealias_multiplier(1j*k0)
    M["l_2_q3"] = K.dealias_multiplier(1j*k1)
    M["l_2_q5"] = K.dealias_multiplier(1j*k2)
    return M


def rhs(UH, t, P, K, M):
    """Spectral tendencies of every field (list of transforms in, list out)."""
    p_Cs = P["Cs"]
    p_Delta = P["Delta"]
    v_u = K.irfft(UH[0])
    d_u_z = K.irfft(M["n_d_u_z"] * UH[0])
    d_u_y = K.irfft(M["n_d_u_y"] * UH[0])
    d_u_x = K.irfft(M["n_d_u_x"] * UH[0])
    v_v = K.irfft(UH[1])
    d_v_z = K.irfft(M["n_d_v_z"] * UH[1])
    d_v_y = K.irfft(M["n_d_v_y"] * UH[1])
    d_v_x = K.irfft(M["n_d_v_x"] * UH[1])
    v_w = K.irfft(UH[2])
    d_w_z = K.irfft(M["n_d_w_z"] * UH[2])
    d_w_y = K.irfft(M["n_d_w_y"] * UH[2])
    d_w_x = K.irfft(M["n_d_w_x"] * UH[2])
    _c0_0 = (p_Cs*p_Cs)*(p_Delta*p_Delta)
    _c0_1 = 2*(p_Cs*p_Cs)*(p_Delta*p_Delta)
    _t0_0 = d_u_y + d_v_x
    _t0_1 = d_u_z + d_w_x
    _t0_2 = d_v_z + d_w_y
    _t0_3 = np.sqrt((_t0_0*_t0_0) + (_t0_1*_t0_1) + (_t0_2*_t0_2) + 2*(d_u_x*d_u_x) + 2*(d_v_y*d_v_y) + 2*(d_w_z*d_w_z))
    _t0_4 = _c0_0*_t0_3
    _t0_5 = _c0_1*_t0_3
    q0 = _t0_0*_t0_4
    Q0 = K.rfft(q0)
    q1 = _t0_1*_t0_4
    Q1 = K.rfft(q1)
    q2 = _t0_5*d_u_x
    Q2 = K.rfft(q2)
    q3 = _t0_2*_t0_4
    Q3 = K.rfft(q3)
    q4 = _t0_5*d_v_y
    Q4 = K.rfft(q4)
    q5 = _t0_5*d_w_z
    Q5 = K.rfft(q5)
    phys0 = -d_u_x*v_u - d_u_y*v_v - d_u_z*v_w
    phys1 = -d_v_x*v_u - d_v_y*v_v - d_v_z*v_w
    phys2 = -d_w_x*v_u - d_w_y*v_v - d_w_z*v_w
    R0 = K.dealias(K.rfft(phys0))
    R0 += M["l_0_u"] * UH[0]
    R0 += M["l_0_q0"] * Q0
    R0 += M["l_0_q1"] * Q1
    R0 += M["l_0_q2"] * Q2
    R1 = K.dealias(K.rfft(phys1))
    R1 += M["l_1_v"] * UH[1]
    R1 += M["l_1_q0"] * Q0
    R1 += M["l_1_q3"] * Q3
    R1 += M["l_1_q4"] * Q4
    R2 = K.dealias(K.rfft(phys2))
    R2 += M["l_2_w"] * UH[2]
    R2 += M["l_2_q1"] * Q1
    R2 += M["l_2_q3"] * Q3
    R2 += M["l_2_q5"] * Q5
    _div = (K.k[0] * R0 + K.k[1] * R1 + K.k[2] * R2) * K.kinv2
    R0 -= K.k[0] * _div
    R1 -= K.k[1] * _div
    R2 -= K.k[2] * _div
    return [R0, R1, R2]


def radius(UH, t, P, K, M):
    """Per field, the largest (real, imaginary) extents of the linearized operator."""
    p_nu = P["nu"]
    p_Cs = P["Cs"]
    p_Delta = P["Delta"]
    kmax0 = K.kmax[0]
    kmax1 = K.kmax[1]
    kmax2 = K.kmax[2]
    v_u = K.irfft(UH[0])
    d_u_z = K.irfft(M["n_d_u_z"] * UH[0])
    d_u_y = K.irfft(M["n_d_u_y"] * UH[0])
    d_u_x = K.irfft(M["n_d_u_x"] * UH[0])
    v_v = K.irfft(UH[1])
    d_v_z = K.irfft(M["n_d_v_z"] * UH[1])
    d_v_y = K.irfft(M["n_d_v_y"] * UH[1])
    d_v_x = K.irfft(M["n_d_v_x"] * UH[1])
    v_w = K.irfft(UH[2])
    d_w_z = K.irfft(M["n_d_w_z"] * UH[2])
    d_w_y = K.irfft(M["n_d_w_y"] * UH[2])
    d_w_x = K.irfft(M["n_d_w_x"] * UH[2])
    _cr0_0 = abs(p_nu)
    _cr0_1 = 2*(p_Cs*p_Cs)*(p_Delta*p_Delta)
    _cr0_2 = 4*(p_Cs*p_Cs)*(p_Delta*p_Delta)
    _cr0_3 = (p_Cs*p_Cs)*(p_Delta*p_Delta)
    _tr0_0 = (kmax0*kmax0)
    _tr0_1 = d_u_y + d_v_x
    _tr0_2 = (_tr0_1*_tr0_1)
    _tr0_3 = d_u_z + d_w_x
    _tr0_4 = (_tr0_3*_tr0_3)
    _tr0_5 = d_v_z + d_w_y
    _tr0_6 = (_tr0_5*_tr0_5)
    _tr0_7 = (d_u_x*d_u_x)
    _tr0_8 = (d_v_y*d_v_y)
    _tr0_9 = (d_w_z*d_w_z)
    _tr0_10 = np.sqrt(_tr0_2 + _tr0_4 + _tr0_6 + 2*_tr0_7 + 2*_tr0_8 + 2*_tr0_9)
    _tr0_11 = _cr0_1*_tr0_10
    _tr0_12 = (1.0/(_tr0_10))
    _tr0_13 = _cr0_2*_tr0_12
    _tr0_14 = (kmax1*kmax1)
    _tr0_15 = abs(_cr0_3*(_tr0_10 + _tr0_12*_tr0_2))
    _tr0_16 = (kmax2*kmax2)
    _tr0_17 = abs(_cr0_3*(_tr0_10 + _tr0_12*_tr0_4))
    _tr0_18 = abs(_tr0_1*_tr0_3)
    _tr0_19 = kmax1*kmax2
    _tr0_20 = _cr0_1*_tr0_12
    _tr0_21 = _tr0_19*_tr0_20
    _tr0_22 = abs(_tr0_1*d_u_x)
    _tr0_23 = kmax0*kmax1
    _tr0_24 = _tr0_13*_tr0_23
    _tr0_25 = abs(_tr0_3*d_u_x)
    _tr0_26 = kmax0*kmax2
    _tr0_27 = _tr0_13*_tr0_26
    _tr0_28 = _cr0_0*_tr0_0
    _tr0_29 = _cr0_0*_tr0_14
    _tr0_30 = _cr0_0*_tr0_16
    _tr0_31 = _tr0_0*_tr0_20
    _tr0_32 = abs(_tr0_1*d_v_y)
    _tr0_33 = _tr0_14*_tr0_20
    _tr0_34 = abs(_tr0_3*_tr0_5)
    _tr0_35 = _cr0_3*_tr0_12
    _tr0_36 = _tr0_34*_tr0_35
    _tr0_37 = _tr0_20*abs(_tr0_5*d_u_x)
    _tr0_38 = abs(_tr0_3*d_v_y)
    _tr0_39 = _tr0_18*_tr0_35
    _tr0_40 = abs(_tr0_1*_tr0_5)
    _tr0_41 = _tr0_35*_tr0_40
    _tr0_42 = _tr0_15*_tr0_23 + _tr0_16*_tr0_36 + _tr0_19*_tr0_41 + _tr0_21*_tr0_38 + _tr0_22*_tr0_31 + _tr0_24*abs(d_u_x*d_v_y) + _tr0_26*_tr0_37 + _tr0_26*_tr0_39 + _tr0_28 + _tr0_29 + _tr0_30 + _tr0_32*_tr0_33
    _tr0_43 = abs(_tr0_3*d_w_z)
    _tr0_44 = _tr0_16*_tr0_20
    _tr0_45 = abs(_tr0_1*d_w_z)
    _tr0_46 = _tr0_14*_tr0_41 + _tr0_17*_tr0_26 + _tr0_19*_tr0_36 + _tr0_21*_tr0_45 + _tr0_23*_tr0_37 + _tr0_23*_tr0_39 + _tr0_25*_tr0_31 + _tr0_27*abs(d_u_x*d_w_z) + _tr0_43*_tr0_44
    _tr0_47 = kmax0*abs(v_u) + kmax1*abs(v_v) + kmax2*abs(v_w)
    _tr0_48 = abs(_cr0_3*(_tr0_10 + _tr0_12*_tr0_6))
    _tr0_49 = _tr0_20*_tr0_26
    _tr0_50 = abs(_tr0_5*d_v_y)
    _tr0_51 = _tr0_13*_tr0_19
    _tr0_52 = abs(_tr0_5*d_w_z)
    _tr0_53 = _tr0_20*_tr0_23
    _tr0_54 = _tr0_0*_tr0_39 + _tr0_19*_tr0_48 + _tr0_23*_tr0_41 + _tr0_26*_tr0_36 + _tr0_33*_tr0_50 + _tr0_38*_tr0_53 + _tr0_44*_tr0_52 + _tr0_45*_tr0_49 + _tr0_51*abs(d_v_y*d_w_z)
    lam0 = _tr0_0*abs(_tr0_11 + _tr0_13*_tr0_7) + _tr0_14*_tr0_15 + _tr0_16*_tr0_17 + _tr0_18*_tr0_21 + _tr0_22*_tr0_24 + _tr0_25*_tr0_27 + _tr0_42 + _tr0_46 + np.maximum(0, d_u_x)
    lam1 = _tr0_47
    lam2 = _tr0_0*_tr0_15 + _tr0_14*abs(_tr0_11 + _tr0_13*_tr0_8) + _tr0_16*_tr0_48 + _tr0_24*_tr0_32 + _tr0_40*_tr0_49 + _tr0_42 + _tr0_50*_tr0_51 + _tr0_54 + np.maximum(0, d_v_y)
    lam3 = _tr0_47
    lam4 = _tr0_0*_tr0_17 + _tr0_14*_tr0_48 + _tr0_16*abs(_tr0_11 + _tr0_13*_tr0_9) + _tr0_27*_tr0_43 + _tr0_28 + _tr0_29 + _tr0_30 + _tr0_34*_tr0_53 + _tr0_46 + _tr0_51*_tr0_52 + _tr0_54 + np.maximum(0, d_w_z)
    lam5 = _tr0_47
    return [(K.amax(lam0), K.amax(lam1)), (K.amax(lam2), K.amax(lam3)), (K.amax(lam4), K.amax(lam5))]
