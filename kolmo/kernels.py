r"""Numba kernels for the spectral arithmetic of the hot loop, with NumPy references.

Advection uses Basdevant's (1983, J. Comput. Phys. 50, 209) form of the 2D nonlinear term,
which needs only the two velocity components:

.. math::

    u\cdot\nabla\omega = (\partial_{xx} - \partial_{yy})(uv) + \partial_x\partial_y(v^2 - u^2)
    \;\Longrightarrow\;
    \widehat{u\cdot\nabla\omega} = -(k_x^2 - k_y^2)\,\widehat{uv} + k_x k_y\,\widehat{(u^2 - v^2)}

so a stage costs 2 inverse + 2 forward transforms instead of 4 + 1 for the advective form
:math:`u\,\partial_x\omega + v\,\partial_y\omega`. Both are equal to round-off on the
dealiased modes for fields band-limited to the 2/3 mask (checked in the tests); the advective
form is kept as the NumPy reference (:func:`advection_hat_reference`).

Conventions: spectral fields are ``rfft2`` arrays ``(B, N, N//2+1)``; ``ky`` ``(N,)``,
``kx`` ``(N//2+1,)``; stream function :math:`\hat\psi = \hat\omega/|k|^2` (mean mode zero),
:math:`u = \partial_y\psi`, :math:`v = -\partial_x\psi`. Each ``*_numba`` kernel is a plain
loop (``cache=True``) writing into preallocated output; the function of the same name
without suffix is its NumPy reference.
"""

from __future__ import annotations

import numpy as np
from numba import njit


# --------------------------------------------------------------------------------------------
# NumPy references
# --------------------------------------------------------------------------------------------
def velocity_hat(omega_hat: np.ndarray, kx_odd: np.ndarray, ky_odd: np.ndarray, inv_k2: np.ndarray,
                 scale: float = 1.0) -> np.ndarray:
    r"""``(û, v̂) · scale``, shape ``(2, B, N, N//2+1)``: :math:`\hat u = i k_y\hat\psi`, :math:`\hat v = -i k_x\hat\psi`."""
    psi = omega_hat * inv_k2 * scale
    return np.stack([1j * ky_odd[:, None] * psi, -1j * kx_odd[None, :] * psi])


def basdevant_products(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(uv, u² − v², max(|u| + |v|) per member)`` for physical ``(B, N, N)`` velocities."""
    return u * v, u * u - v * v, np.max(np.abs(u) + np.abs(v), axis=(-2, -1))


def advection_coefficients(kx: np.ndarray, ky: np.ndarray, kx_odd: np.ndarray, ky_odd: np.ndarray,
                           mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Masked multipliers ``(A, C)`` with :math:`\widehat{u\cdot\nabla\omega} = A\,\widehat{uv} + C\,\widehat{(u^2-v^2)}`:
    :math:`A = -(k_x^2 - k_y^2)P`, :math:`C = k_x k_y P` (``P`` the dealiasing mask), ``(N, N//2+1)`` each."""
    a = -(kx[None, :] ** 2 - ky[:, None] ** 2) * mask
    c = kx_odd[None, :] * ky_odd[:, None] * mask
    return a, c


def cn_stage_advective(u: np.ndarray, pq_hat: np.ndarray, coef_a: np.ndarray, coef_c: np.ndarray,
                       forcing_hat: np.ndarray, tendency: np.ndarray | None, previous: np.ndarray,
                       explicit_gain: np.ndarray, implicit_gain: np.ndarray, gamma_dt: float,
                       zeta_dt: float) -> tuple[np.ndarray, np.ndarray]:
    r"""One Crank–Nicolson / low-storage RK stage with the Basdevant advection: ``(u_new, N)`` (new arrays).

    .. math:: N = \hat f - (A\hat P + C\hat Q) + \hat s,\qquad
              u_{new} = \frac{1 + \alpha\Delta t L}{1 - \beta\Delta t L}u
              + \frac{\gamma\Delta t N + \zeta\Delta t N_{prev}}{1 - \beta\Delta t L}

    ``pq_hat`` ``(2B, N, N//2+1)`` holds (``uv``, ``u² − v²``) transforms, ``previous`` is
    :math:`N_{prev}`; ``tendency`` :math:`\hat s` may be ``None``.
    """
    b = u.shape[0]
    nl = forcing_hat - (coef_a * pq_hat[:b] + coef_c * pq_hat[b:])
    if tendency is not None:
        nl = nl + tendency
    return explicit_gain * u + implicit_gain * (gamma_dt * nl + zeta_dt * previous), nl


def advection_hat_reference(omega_hat: np.ndarray, kx_odd: np.ndarray, ky_odd: np.ndarray,
                            inv_k2: np.ndarray, mask: np.ndarray) -> np.ndarray:
    r"""Dealiased :math:`P\,\widehat{u\partial_x\omega + v\partial_y\omega}` in the advective form, with numpy.fft."""
    n = omega_hat.shape[-2]
    inv = lambda f: np.fft.irfft2(f, s=(n, n))  # noqa: E731
    psi = omega_hat * inv_k2
    u = inv(1j * ky_odd[:, None] * psi)
    v = inv(-1j * kx_odd[None, :] * psi)
    wx = inv(1j * kx_odd[None, :] * omega_hat)
    wy = inv(1j * ky_odd[:, None] * omega_hat)
    return mask * np.fft.rfft2(u * wx + v * wy)


# --------------------------------------------------------------------------------------------
# Numba kernels (preallocated outputs)
# --------------------------------------------------------------------------------------------
@njit(cache=True, fastmath=True)
def velocity_hat_numba(omega_hat, kx_odd, ky_odd, inv_k2, scale, out):  # pragma: no cover
    """Numba :func:`velocity_hat` into ``out`` ``(2*B, N, N//2+1)`` (rows ``b``: û, ``B + b``: v̂).

    Real arithmetic (``i k f = (−k Im f, k Re f)``) so that it vectorises.
    """
    b_count, n, m = omega_hat.shape
    for b in range(b_count):
        for j in range(n):
            kyj = ky_odd[j]
            for i in range(m):
                w = omega_hat[b, j, i]
                s = inv_k2[j, i] * scale
                pr = w.real * s
                pi = w.imag * s
                out[b, j, i] = complex(-kyj * pi, kyj * pr)
                out[b_count + b, j, i] = complex(kx_odd[i] * pi, -kx_odd[i] * pr)
    return out


@njit(cache=True, fastmath=True)
def basdevant_products_numba(fields, speed, track_speed=True):  # pragma: no cover
    """In place on ``fields`` ``(2*B, N, N)``: ``(u, v) → (uv, u² − v²)``; with ``track_speed``,
    also ``max(|u|+|v|)`` per member into ``speed``.

    The maximum is kept per column in a row of ``N`` running maxima and reduced once per member:
    an element-wise max vectorises, a scalar max reduction does not (it tripled the cost of the
    loop at 256²).
    """
    b_count = fields.shape[0] // 2
    n, n2 = fields.shape[1], fields.shape[2]
    if not track_speed:
        for b in range(b_count):
            for j in range(n):
                for i in range(n2):
                    u = fields[b, j, i]
                    v = fields[b_count + b, j, i]
                    fields[b, j, i] = u * v
                    fields[b_count + b, j, i] = (u - v) * (u + v)
        return speed
    running = np.empty(n2)
    for b in range(b_count):
        running[:] = 0.0
        for j in range(n):
            for i in range(n2):
                u = fields[b, j, i]
                v = fields[b_count + b, j, i]
                fields[b, j, i] = u * v
                fields[b_count + b, j, i] = (u - v) * (u + v)
                s = abs(u) + abs(v)
                running[i] = s if s > running[i] else running[i]
        speed[b] = running.max()
    return speed


@njit(cache=True, fastmath=True)
def advection_assemble_numba(pq_hat, coef_a, coef_c, forcing_hat, sign, out):  # pragma: no cover
    r"""``out = f̂ + sign · (A P̂ + C Q̂)`` for ``pq_hat`` ``(2*B, N, N//2+1)`` = (``uv``, ``u²−v²``) transforms."""
    b_count, n, m = out.shape
    for b in range(b_count):
        for j in range(n):
            for i in range(m):
                out[b, j, i] = forcing_hat[j, i] + sign * (
                    coef_a[j, i] * pq_hat[b, j, i] + coef_c[j, i] * pq_hat[b_count + b, j, i])
    return out


@njit(cache=True, fastmath=True)
def cn_stage_numba(u, explicit, tendency, previous, explicit_gain, implicit_gain, gamma_dt, zeta_dt,
                   use_tendency):  # pragma: no cover
    r"""One Crank–Nicolson / low-storage RK stage, in place on ``u``.

    .. math:: u \leftarrow \frac{(1 + \alpha\Delta t L)u + \gamma\Delta t N + \zeta\Delta t N_{prev}}
              {1 - \beta\Delta t L},\qquad N = \text{explicit} + \text{tendency}

    with the diagonal factors precomputed: ``explicit_gain = (1 + αΔtL)/(1 − βΔtL)`` and
    ``implicit_gain = 1/(1 − βΔtL)``; ``previous ← N`` for the next stage.
    """
    b_count, n, m = u.shape
    for b in range(b_count):
        for j in range(n):
            for i in range(m):
                nl = explicit[b, j, i]
                if use_tendency:
                    nl += tendency[b, j, i]
                u[b, j, i] = explicit_gain[j, i] * u[b, j, i] + implicit_gain[j, i] * (
                    gamma_dt * nl + zeta_dt * previous[b, j, i])
                previous[b, j, i] = nl
    return u


@njit(cache=True, fastmath=True)
def cn_stage_advective_numba(u, pq_hat, coef_a, coef_c, forcing_hat, tendency, previous, explicit_gain,
                             implicit_gain, gamma_dt, zeta_dt, use_tendency):  # pragma: no cover
    r""":func:`cn_stage_numba` with :math:`N = \hat f - (A\hat P + C\hat Q) + \hat s` assembled on the fly
    (Basdevant products ``pq_hat``; one pass over memory instead of two)."""
    b_count, n, m = u.shape
    for b in range(b_count):
        for j in range(n):
            for i in range(m):
                nl = forcing_hat[j, i] - (coef_a[j, i] * pq_hat[b, j, i] + coef_c[j, i] * pq_hat[b_count + b, j, i])
                if use_tendency:
                    nl += tendency[b, j, i]
                u[b, j, i] = explicit_gain[j, i] * u[b, j, i] + implicit_gain[j, i] * (
                    gamma_dt * nl + zeta_dt * previous[b, j, i])
                previous[b, j, i] = nl
    return u


@njit(cache=True, fastmath=True)
def cn_stage_invert_numba(u, pq_hat, coef_a, coef_c, forcing_hat, tendency, previous, explicit_gain,
                          implicit_gain, gamma_dt, zeta_dt, use_tendency, kx_odd, ky_odd, inv_k2,
                          scale):  # pragma: no cover
    r""":func:`cn_stage_advective_numba` fused with the next stage's inversion, in one pass.

    Updates ``u`` and ``previous`` as :func:`cn_stage_advective_numba`, then overwrites
    ``pq_hat`` (read first, mode by mode) with the scaled velocities of the *updated* ``u``,
    exactly what :func:`velocity_hat_numba` would write: rows ``b`` û·scale, rows ``B + b``
    v̂·scale. One pass over the spectral arrays instead of two (NumPy reference:
    :func:`cn_stage_advective` then :func:`velocity_hat`).
    """
    b_count, n, m = u.shape
    for b in range(b_count):
        for j in range(n):
            kyj = ky_odd[j]
            for i in range(m):
                p = pq_hat[b, j, i]
                q = pq_hat[b_count + b, j, i]
                a = coef_a[j, i]
                c = coef_c[j, i]
                f = forcing_hat[j, i]
                nr = f.real - (a * p.real + c * q.real)
                ni = f.imag - (a * p.imag + c * q.imag)
                if use_tendency:
                    t = tendency[b, j, i]
                    nr += t.real
                    ni += t.imag
                w = u[b, j, i]
                pv = previous[b, j, i]
                e = explicit_gain[j, i]
                g = implicit_gain[j, i]
                wr = e * w.real + g * (gamma_dt * nr + zeta_dt * pv.real)
                wi = e * w.imag + g * (gamma_dt * ni + zeta_dt * pv.imag)
                u[b, j, i] = complex(wr, wi)
                previous[b, j, i] = complex(nr, ni)
                s = inv_k2[j, i] * scale
                pr = wr * s
                pi = wi * s
                pq_hat[b, j, i] = complex(-kyj * pi, kyj * pr)
                pq_hat[b_count + b, j, i] = complex(kx_odd[i] * pi, -kx_odd[i] * pr)
    return u
