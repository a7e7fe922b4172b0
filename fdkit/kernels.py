"""Numba kernels: every jitted finite-difference loop of fdkit.

Conventions (shared by all kernels)
-----------------------------------
* ``f`` is the first argument, a numba dispatcher; numba specialises the kernel on it and
  inlines it.  The public API calls the kernels through a small jitted entry point kept per
  user function (see ``fdkit._callable``), so the dispatcher is never boxed per call.
* Steps: ``h`` is a 1-D float64 array of length 1 (one step for all) or of length x.size
  (one per element).  If ``rel`` is true the step for element i is ``h * max(1, |x_i|)``
  (the default steps of :func:`fdkit.optimal_step`), else ``h`` is absolute.
* The step actually taken is ``hh = (x_i + h_i) - x_i`` (exact in floating point); stencil
  points are ``x_i + o_k * hh`` and the result is divided by ``hh**n``, never by the nominal h.
* Gradient kernels perturb ``xw`` in place (the caller's private C-contiguous copy of x,
  any shape: f is called with xw's own shape) and restore the *saved* value exactly.
* Every kernel returns nfev, counted at the call sites of f.  No fastmath anywhere: it would
  fold ``(x + h) - x`` into ``h``.
* Stencils: ``offsets`` and ``weights`` are 1-D float64 arrays or tuples of floats.  The API
  passes tuples to the elementwise kernels: the stencil's length is then part of the type,
  LLVM unrolls the loop over stencil points and vectorises the loop over x (4x faster for
  a cheap f, measured); gradient-type kernels get arrays, since there f's cost dominates.
* Kernels trust their inputs: the API validates; NaN propagates.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange

# Kernels that take a dispatcher are specialised per f and miss numba's disk cache in every
# new process (numba 0.68, measured), so they are not cached; helpers without f are.
jit = functools.partial(numba.njit, cache=False, error_model="numpy")
jit_cached = functools.partial(numba.njit, cache=True, error_model="numpy")
jit_par = functools.partial(numba.njit, cache=False, error_model="numpy", parallel=True)

__all__ = [
    "count_nonfinite",
    "deriv_stencil",
    "deriv_stencil_par",
    "deriv_complex",
    "deriv_complex_par",
    "grad_stencil",
    "grad_stencil_par",
    "grad_complex",
    "grad_complex_par",
    "jac_stencil",
    "jac_complex",
    "hess_central",
]


@jit_cached
def count_nonfinite(x):
    """Number of NaN/inf entries of a float64 array (any shape)."""
    c = 0
    for v in x.flat:
        if not np.isfinite(v):
            c += 1
    return c


@jit_cached(inline="always")  # inlined in numba IR: an out-of-line call stops LLVM vectorising
def _step(h, rel, i, xi):
    hi = h[0] if h.size == 1 else h[i]
    if rel:
        hi = hi * max(1.0, abs(xi))
    return hi


@jit_cached
def _has_zero(offsets):
    for k in range(len(offsets)):
        if offsets[k] == 0.0:
            return True
    return False


# ---------------------------------------------------------------------------- derivative


@jit
def deriv_stencil(f, x, h, rel, offsets, weights, n, out):
    """Elementwise n-th derivative of a scalar f at every point of x (1-D).

    ``out[i] = sum_k w_k f(x_i + o_k hh_i) / hh_i**n`` with ``hh_i = (x_i + h_i) - x_i``,
    n = 1 or 2.  One fused loop, no temporaries.  nfev = x.size * len(offsets).
    """
    cnt = 0
    for i in range(x.size):
        xi = x[i]
        hh = (xi + _step(h, rel, i, xi)) - xi
        acc = 0.0
        for k in range(len(offsets)):
            acc += weights[k] * f(xi + offsets[k] * hh)
            cnt += 1
        out[i] = acc / (hh if n == 1 else hh * hh)
    return cnt


@jit_par
def deriv_stencil_par(f, x, h, rel, offsets, weights, n, out):
    """``deriv_stencil`` with the points split over threads (prange)."""
    cnt = 0
    for i in prange(x.size):
        xi = x[i]
        hh = (xi + _step(h, rel, i, xi)) - xi
        acc = 0.0
        for k in range(len(offsets)):
            acc += weights[k] * f(xi + offsets[k] * hh)
        out[i] = acc / (hh if n == 1 else hh * hh)
        cnt += len(offsets)
    return cnt


@jit
def deriv_complex(f, x, h, rel, out):
    """Elementwise complex-step derivative: ``out[i] = Im f(x_i + i h_i) / h_i``; nfev = x.size."""
    cnt = 0
    for i in range(x.size):
        xi = x[i]
        hi = _step(h, rel, i, xi)
        out[i] = f(complex(xi, hi)).imag / hi
        cnt += 1
    return cnt


@jit_par
def deriv_complex_par(f, x, h, rel, out):
    """``deriv_complex`` with the points split over threads (prange)."""
    cnt = 0
    for i in prange(x.size):
        xi = x[i]
        hi = _step(h, rel, i, xi)
        out[i] = f(complex(xi, hi)).imag / hi
        cnt += 1
    return cnt


# ------------------------------------------------------------------------------ gradient


@jit
def grad_stencil(f, xw, h, rel, offsets, weights, out):
    """Gradient of a scalar f: R^N -> R with a first-derivative stencil.

    ``out[i] = sum_k w_k f(x + o_k hh_i e_i) / hh_i``.  f(x) is evaluated once if the stencil
    uses the base point, so forward costs exactly 1+N evaluations, central (p=2) 2N.
    ``xw`` is perturbed in place and restored; ``out`` is flat, of size N.
    """
    flat = xw.reshape(xw.size)
    cnt = 0
    f0 = 0.0
    if _has_zero(offsets):
        f0 = f(xw)
        cnt += 1
    for i in range(flat.size):
        xi = flat[i]
        hh = (xi + _step(h, rel, i, xi)) - xi
        acc = 0.0
        for k in range(len(offsets)):
            o = offsets[k]
            if o == 0.0:
                acc += weights[k] * f0
            else:
                flat[i] = xi + o * hh
                acc += weights[k] * f(xw)
                cnt += 1
        flat[i] = xi  # restore the saved value exactly
        out[i] = acc / hh
    return cnt


@jit_par
def grad_stencil_par(f, x, h, rel, offsets, weights, out):
    """``grad_stencil`` over threads: the parameters are split in one chunk per thread, each
    chunk perturbs its own copy of x (x itself is only read).  Same nfev as the serial kernel.
    """
    n = x.size
    nchunk = min(numba.get_num_threads(), n)
    counts = np.zeros(nchunk, dtype=np.int64)
    f0 = 0.0
    base = 0
    if _has_zero(offsets):
        f0 = f(x)
        base = 1
    for c in prange(nchunk):
        xw = x.copy()
        flat = xw.reshape(n)
        cnt = 0
        for i in range(c * n // nchunk, (c + 1) * n // nchunk):
            xi = flat[i]
            hh = (xi + _step(h, rel, i, xi)) - xi
            acc = 0.0
            for k in range(len(offsets)):
                o = offsets[k]
                if o == 0.0:
                    acc += weights[k] * f0
                else:
                    flat[i] = xi + o * hh
                    acc += weights[k] * f(xw)
                    cnt += 1
            flat[i] = xi
            out[i] = acc / hh
        counts[c] = cnt
    return base + counts.sum()


@jit
def grad_complex(f, x, h, rel, out):
    """Complex-step gradient: ``out[i] = Im f(x + i h_i e_i) / h_i``; nfev = N complex evaluations.

    x is only read; the kernel perturbs its own complex copy.
    """
    xc = x.astype(np.complex128)
    flat = xc.reshape(xc.size)
    xr = x.reshape(x.size)
    cnt = 0
    for i in range(flat.size):
        xi = xr[i]
        hi = _step(h, rel, i, xi)
        flat[i] = complex(xi, hi)
        out[i] = f(xc).imag / hi
        cnt += 1
        flat[i] = xi
    return cnt


@jit_par
def grad_complex_par(f, x, h, rel, out):
    """``grad_complex`` over threads, one complex work copy per chunk."""
    n = x.size
    nchunk = min(numba.get_num_threads(), n)
    counts = np.zeros(nchunk, dtype=np.int64)
    xr = x.reshape(n)
    for c in prange(nchunk):
        xc = x.astype(np.complex128)
        flat = xc.reshape(n)
        cnt = 0
        for i in range(c * n // nchunk, (c + 1) * n // nchunk):
            xi = xr[i]
            hi = _step(h, rel, i, xi)
            flat[i] = complex(xi, hi)
            out[i] = f(xc).imag / hi
            cnt += 1
            flat[i] = xi
        counts[c] = cnt
    return counts.sum()


# ------------------------------------------------------------------------------ Jacobian


@jit
def jac_stencil(f, xw, h, rel, offsets, weights):
    """Jacobian (M, N) of f: R^N -> R^M (f returns an array of any shape, M = its size).

    Column i is ``sum_k w_k f(x + o_k hh_i e_i) / hh_i``; f(x) once if the stencil uses it.
    Returns ``(jac, nfev)``; M is taken from the first evaluation and every later one must
    have the same size.
    """
    n = xw.size
    flat = xw.reshape(n)
    cnt = 0
    f0 = np.empty(0)
    m = -1
    if _has_zero(offsets):
        f0 = np.ravel(f(xw)).astype(np.float64)
        m = f0.size
        cnt += 1
    jac = np.zeros((max(m, 0), n))
    for i in range(n):
        xi = flat[i]
        hh = (xi + _step(h, rel, i, xi)) - xi
        for k in range(len(offsets)):
            o = offsets[k]
            if o == 0.0:
                fk = f0
            else:
                flat[i] = xi + o * hh
                fk = np.ravel(f(xw)).astype(np.float64)
                cnt += 1
                flat[i] = xi
            if m < 0:
                m = fk.size
                jac = np.zeros((m, n))
            if fk.size != m:
                raise ValueError("jacobian: f returned arrays of different sizes at different points")
            w = weights[k] / hh
            for r in range(m):
                jac[r, i] += w * fk[r]
    return jac, cnt


@jit
def jac_complex(f, x, h, rel):
    """Complex-step Jacobian (M, N): column i is ``Im f(x + i h_i e_i) / h_i``; nfev = N."""
    n = x.size
    xc = x.astype(np.complex128)
    flat = xc.reshape(n)
    xr = x.reshape(n)
    cnt = 0
    m = -1
    jac = np.zeros((0, n))
    for i in range(n):
        xi = xr[i]
        hi = _step(h, rel, i, xi)
        flat[i] = complex(xi, hi)
        fk = np.ravel(f(xc))
        cnt += 1
        flat[i] = xi
        if m < 0:
            m = fk.size
            jac = np.zeros((m, n))
        if fk.size != m:
            raise ValueError("jacobian: f returned arrays of different sizes at different points")
        for r in range(m):
            jac[r, i] = fk[r].imag / hi
    return jac, cnt


# ------------------------------------------------------------------------------- Hessian


@jit
def hess_central(f, xw, h, rel, out):
    """Hessian (N, N) of a scalar f by central differences, exactly symmetric.

    Diagonal: ``(f(x + hh_i e_i) - 2 f(x) + f(x - hh_i e_i)) / hh_i**2``.
    Off the diagonal (i > j), the four-point formula
    ``(f(++) - f(+-) - f(-+) + f(--)) / (4 hh_i hh_j)``, written to both (i, j) and (j, i).
    nfev = 1 + 2N + 4 N(N-1)/2 = 1 + 2N^2.  Truncation O(h^2).
    """
    n = xw.size
    flat = xw.reshape(n)
    hh = np.empty(n)
    for i in range(n):
        xi = flat[i]
        hh[i] = (xi + _step(h, rel, i, xi)) - xi
    f0 = f(xw)
    cnt = 1
    for i in range(n):
        xi = flat[i]
        hi = hh[i]
        flat[i] = xi + hi
        fp = f(xw)
        flat[i] = xi - hi
        fm = f(xw)
        flat[i] = xi
        cnt += 2
        out[i, i] = ((fp - f0) + (fm - f0)) / (hi * hi)
        for j in range(i):
            xj = flat[j]
            hj = hh[j]
            flat[i] = xi + hi
            flat[j] = xj + hj
            fpp = f(xw)
            flat[j] = xj - hj
            fpm = f(xw)
            flat[i] = xi - hi
            fmm = f(xw)
            flat[j] = xj + hj
            fmp = f(xw)
            flat[i] = xi
            flat[j] = xj
            cnt += 4
            v = ((fpp - fpm) - (fmp - fmm)) / (4.0 * hi * hj)
            out[i, j] = v
            out[j, i] = v
    return cnt
