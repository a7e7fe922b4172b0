"""Naive reference twins of fdkit's kernels: plain Python loops, written for the tests.

Each twin applies a stencil the obvious way (copy x, perturb one element, call f, sum the
weighted values, divide by the step actually taken), so a kernel that indexes, perturbs,
restores, chunks or counts wrongly disagrees with it.  The stencil weights come from
Fornberg's published table (``oracles.FORNBERG_*``) where fdkit's own are not needed.
"""

from __future__ import annotations

import numpy as np


def taken(x, h, dtype):
    """The step actually taken at x in dtype: (x + h) - x, exact."""
    return float(dtype.type(x + h) - dtype.type(x))


def points(stencil):
    """(offsets, weights) of a fixed stencil as Python numbers (1j for the complex step)."""
    return [complex(o) if isinstance(o, complex) else float(o) for o in stencil.offsets.tolist()], \
        [float(w) for w in stencil.weights]


def naive_derivative(f, x, h, stencil):
    """Elementwise: out[i] = sum_k w_k f(x_i + o_k hh_i) / hh_i**n (Im f(x_i + i h_i) / h_i)."""
    x = np.asarray(x)
    dt = x.dtype
    offs, wts = points(stencil)
    out = np.empty(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        xi, hi = x[idx], float(np.broadcast_to(h, x.shape)[idx])
        if stencil.method == "complex":
            ct = np.complex64 if dt == np.float32 else np.complex128
            out[idx] = complex(f(ct(complex(float(xi), hi)))).imag / hi
            continue
        hh = taken(xi, hi, dt)
        acc = 0.0
        for o, w in zip(offs, wts):
            acc += w * float(f(dt.type(float(xi) + o * hh)))
        out[idx] = acc / hh**stencil.n
    return out


def naive_gradient(f, x, h, stencil):
    """g[i] = sum_k w_k f(x + o_k hh_i e_i) / hh_i, a fresh copy of x for every evaluation."""
    x = np.asarray(x)
    dt = x.dtype
    offs, wts = points(stencil)
    hb = np.broadcast_to(h, x.shape)
    g = np.empty(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        if stencil.method == "complex":
            xc = x.astype(np.complex64 if dt == np.float32 else np.complex128)
            xc[idx] = complex(float(x[idx]), float(hb[idx]))
            g[idx] = complex(f(xc)).imag / float(hb[idx])
            continue
        hh = taken(x[idx], float(hb[idx]), dt)
        acc = 0.0
        for o, w in zip(offs, wts):
            xp = x.copy()
            xp[idx] = float(x[idx]) + o * hh
            acc += w * float(f(xp))
        g[idx] = acc / hh
    return g


def naive_jacobian(f, x, h, stencil):
    """J[:, i] = sum_k w_k ravel(f(x + o_k hh_i e_i)) / hh_i; column i belongs to x.flat[i]."""
    x = np.asarray(x)
    dt = x.dtype
    offs, wts = points(stencil)
    hb = np.broadcast_to(h, x.shape).reshape(-1)
    xf = x.reshape(-1)
    cols = []
    for i in range(x.size):
        if stencil.method == "complex":
            xc = xf.astype(np.complex64 if dt == np.float32 else np.complex128)
            xc[i] = complex(float(xf[i]), float(hb[i]))
            cols.append(np.imag(np.ravel(f(xc.reshape(x.shape)))).astype(np.float64) / float(hb[i]))
            continue
        hh = taken(xf[i], float(hb[i]), dt)
        acc = 0.0
        for o, w in zip(offs, wts):
            xp = xf.copy()
            xp[i] = float(xf[i]) + o * hh
            acc = acc + w * np.ravel(f(xp.reshape(x.shape))).astype(np.float64)
        cols.append(acc / hh)
    return np.stack(cols, axis=1)


def naive_hessian(f, x, h):
    """Central second differences on the diagonal, the four-point formula off it."""
    x = np.asarray(x)
    dt = x.dtype
    xf = x.reshape(-1)
    n = x.size
    hb = np.broadcast_to(h, x.shape).reshape(-1)
    hh = [taken(xf[i], float(hb[i]), dt) for i in range(n)]

    def at(*moves):
        xp = xf.copy()
        for i, s in moves:
            xp[i] = float(xf[i]) + s * hh[i]
        return float(f(xp.reshape(x.shape)))

    f0 = at()
    H = np.empty((n, n))
    for i in range(n):
        H[i, i] = ((at((i, 1)) - f0) + (at((i, -1)) - f0)) / hh[i] ** 2
        for j in range(i):
            v = ((at((i, 1), (j, 1)) - at((i, 1), (j, -1))) - (at((i, -1), (j, 1)) - at((i, -1), (j, -1)))) / (4 * hh[i] * hh[j])
            H[i, j] = H[j, i] = v
    return H
