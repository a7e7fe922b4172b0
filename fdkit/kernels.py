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

from .steps import RICH_FACTOR, RICH_H0, RICH_PATIENCE, RICH_RATIO, RICH_RETRY, RICH_ROUNDING, RICH_ROWS, RICH_SAFE

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
    "deriv_richardson",
    "deriv_richardson_par",
    "grad_richardson",
    "grad_richardson_par",
    "jac_richardson",
    "hess_richardson",
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
def _hess_diag(f, xw, flat, i, hi, f0):
    """``(f(x + hi e_i) - 2 f(x) + f(x - hi e_i)) / hi**2`` (f0 = f(x)) and the larger |f| of the
    two new points; xw is perturbed through flat and restored exactly.  2 evaluations."""
    xi = flat[i]
    flat[i] = xi + hi
    fp = f(xw)
    flat[i] = xi - hi
    fm = f(xw)
    flat[i] = xi
    return ((fp - f0) + (fm - f0)) / (hi * hi), max(abs(fp), abs(fm))


@jit
def _hess_cross(f, xw, flat, i, j, hi, hj):
    """The four-point formula ``(f(++) - f(+-) - f(-+) + f(--)) / (4 hi hj)`` in (x_i, x_j) and
    the largest |f| of its points; xw restored exactly.  4 evaluations."""
    xi = flat[i]
    xj = flat[j]
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
    return ((fpp - fpm) - (fmp - fmm)) / (4.0 * hi * hj), max(abs(fpp), abs(fpm), abs(fmm), abs(fmp))


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
        out[i, i] = _hess_diag(f, xw, flat, i, hh[i], f0)[0]
        cnt += 2
        for j in range(i):
            v = _hess_cross(f, xw, flat, i, j, hh[i], hh[j])[0]
            cnt += 4
            out[i, j] = v
            out[j, i] = v
    return cnt


# ------------------------------------------------------ Richardson (method="richardson")
#
# One *sequence* per point or parameter: central differences D(h_k) at h_k = h0 / r^k (the
# steps actually taken), extrapolated to h = 0 by Neville's scheme in h^2 (D is even in h);
# tableau entry (k, j) eliminates h^2 .. h^2j.  Its error estimate is FACTOR times Ridders'
# distance to its neighbours, max(|T[k,j] - T[k,j-1]|, |T[k,j] - T[k-1,j-1]|) (and
# |T[k,j] - T[k-1,j]| where that exists), never below the rounding floor
# RC * eps * max|f| * sum|w| / h_k^n.  The entry with the smallest estimate wins.  A sequence
# stops when the truncation estimate falls below the rounding floor (smaller steps only raise
# the floor), when the newest diagonal has moved by >= SAFE times the best estimate on PATIENCE
# consecutive rows (rounding has taken over), at a step that vanishes, or after ROWS rows.
# A non-finite difference restarts the tableau (jumping to h = |x|/2 if h > |x|/2).
# The error reported is the larger of the winner's estimate and ``post``, the largest move of
# the winner's level in the rows computed after it: the minimum over many noisy estimates is
# biased low, and those rows show the noise (rounding) the winner's own differences missed.
# A sequence's result is the tuple (error estimate, value, step, level); the state is kept in
# scalars (registers), not arrays: 3x faster, measured.

_EPS = float(np.finfo(np.float64).eps)
_R_H0, _R_RATIO, _R_ROWS = RICH_H0, RICH_RATIO, RICH_ROWS
_R_SAFE, _R_PATIENCE, _R_RETRY, _R_RC = RICH_SAFE, RICH_PATIENCE, RICH_RETRY, RICH_ROUNDING
_R_FACTOR = RICH_FACTOR
_NONE = (np.inf, np.nan, np.nan, -1)  # no estimate yet


@jit_cached(inline="always")
def _rich_push(d, hh, rnd, m, T, t, best, val, hstep, level, bad, post):
    """Add row m (the difference d at step hh, rounding floor rnd) to the tableau, kept as its
    newest row T (updated in place) and the steps t.  ``post`` is the largest move of the best
    entry's level in the rows after it (noise the min over entries would hide).  Returns the
    updated (best, val, hstep, level, bad, post, stop)."""
    t[m] = hh
    o = T[0]  # the previous row's entry j-1 as the loop reaches j
    T[0] = d
    if m == 0:
        return best, val, hstep, level, bad, post, False
    stop = False
    improved = False
    prev = d
    last = o
    for j in range(1, m + 1):
        q = t[m - j] / hh
        cur = prev + (prev - o) / (q * q - 1.0)
        tr = max(abs(cur - prev), abs(cur - o))
        if j < m:  # and the same level one row up
            tr = max(tr, abs(cur - T[j]))
        e = max(_R_FACTOR * tr, rnd)
        if e <= best:
            best, val, hstep, level = e, cur, hh, j
            improved = True
        if tr <= rnd and m >= 2:  # truncation below rounding: smaller steps cannot help
            stop = True
        last = o
        o = T[j]  # unset for j = m (never read: the loop ends)
        T[j] = cur
        prev = cur
    if improved:
        post = 0.0
    elif 1 <= level <= m:
        post = max(post, abs(T[int(level)] - val))
    if not stop:
        if abs(prev - last) >= _R_SAFE * best:  # the newest diagonal jumped: rounding rules
            bad += 1
            stop = bad >= _R_PATIENCE
        else:
            bad = 0
    return best, val, hstep, level, bad, post, stop


@jit_cached
def _rich_next_h(hk, x):
    """The step after a non-finite difference: h/r, or |x|/2 if that is smaller (a singularity
    at 0, as for log or sqrt near 0)."""
    hk = hk / _R_RATIO
    ax = abs(x)
    if ax > 0.0 and hk > 0.5 * ax:
        hk = 0.5 * ax
    return hk


@jit_cached
def _rich_h0(h, userh, i, xi, second):
    """First step of sequence 1 (``second`` False) or 2: the user's h, else the policy's."""
    if userh:
        return h[0] if h.size == 1 else h[i]
    return _R_H0 * abs(xi) if second else _R_H0


@jit_cached
def _rich_retry(userh, xi, err, val):
    """True when a second, relative sequence should be tried (policy steps only)."""
    return (not userh) and abs(xi) > 1.0 and not (err <= _R_RETRY * abs(val))


@jit_cached
def _rich_rel(e, v):
    """e / |v| without dividing by zero: inf where there is no value, 0 for 0/0."""
    a = abs(v)
    if a > 0.0:
        return e / a
    if e == 0.0 and not np.isnan(v):
        return 0.0
    return np.inf


@jit_cached
def _rich_better(a, b):
    """The result (err, val, step, level) with the smaller relative error estimate (a on ties;
    the smaller absolute estimate where neither has a finite relative one)."""
    r1 = _rich_rel(a[0], a[1])
    r2 = _rich_rel(b[0], b[1])
    if r2 < r1 or (r1 == np.inf and r2 == np.inf and b[0] < a[0]):
        return b
    return a


@jit
def _rich_point_scalar(f, x, h, userh, i, n, T, t):
    """The n-th derivative (n = 1, 2) of scalar f at x: sequence 1, and sequence 2 if
    ``_rich_retry`` asks for it (one loop, so the inlined tableau code exists once).
    Returns (nfev, (err, value, step, level))."""
    cnt = 0
    f0 = 0.0
    if n == 2:
        f0 = f(x)
        cnt += 1
    res = _NONE
    for seq in range(2):
        if seq == 1 and not _rich_retry(userh, x, res[0], res[1]):
            break
        best, val, hstep, level = _NONE
        bad = 0
        post = 0.0
        m = 0
        hk = _rich_h0(h, userh, i, x, seq == 1)
        fmax = abs(f0) if n == 2 else 0.0
        for _ in range(_R_ROWS):
            hh = (x + hk) - x
            if hh == 0.0:
                break
            fp = f(x + hh)
            fm = f(x - hh)
            cnt += 2
            if n == 1:
                d = (fp - fm) / (2.0 * hh)
            else:
                d = ((fp - f0) + (fm - f0)) / (hh * hh)
            if not np.isfinite(d):
                m = 0
                hk = _rich_next_h(hk, x)
                continue
            hk = hk / _R_RATIO
            fmax = max(fmax, abs(fp), abs(fm))
            rnd = _R_RC * _EPS * fmax / hh if n == 1 else _R_RC * 4.0 * _EPS * fmax / (hh * hh)
            best, val, hstep, level, bad, post, stop = _rich_push(d, hh, rnd, m, T, t, best, val, hstep, level, bad, post)
            if stop:
                break
            m += 1
        this = (max(best, post), val, hstep, level)
        res = _rich_better(res, this) if seq == 1 else this
    return cnt, res


@jit_cached
def _rich_store(r, i, out, err, hch, lev):
    err[i] = r[0]
    out[i] = r[1]
    hch[i] = r[2]
    lev[i] = r[3]


@jit
def _rich_chunk_scalar(f, x, h, userh, n, lo, hi, out, err, hch, lev):
    """Points lo..hi-1 of ``deriv_richardson``, with their own tableau; nfev.  A plain (not
    IR-inlined) function, so that numba's parfor analysis never sees the inlined tuples."""
    T = np.empty(_R_ROWS)
    t = np.empty(_R_ROWS)
    cnt = 0
    for i in range(lo, hi):
        c, r = _rich_point_scalar(f, x[i], h, userh, i, n, T, t)
        cnt += c
        _rich_store(r, i, out, err, hch, lev)
    return cnt


@jit
def deriv_richardson(f, x, h, userh, n, out, err, hch, lev):
    """Elementwise n-th derivative (n = 1, 2) of scalar f by Richardson extrapolation of central
    differences (see the section comment).  Writes the value, its error estimate, the step and
    tableau level chosen; returns nfev (about 6-14 per point; more where a second sequence runs).
    """
    return _rich_chunk_scalar(f, x, h, userh, n, 0, x.size, out, err, hch, lev)


@jit_par
def deriv_richardson_par(f, x, h, userh, n, out, err, hch, lev):
    """``deriv_richardson`` with the points split over threads, one chunk (and tableau) each."""
    npts = x.size
    nchunk = min(numba.get_num_threads(), max(npts, 1))
    counts = np.zeros(nchunk, dtype=np.int64)
    for c in prange(nchunk):
        lo, hi = c * npts // nchunk, (c + 1) * npts // nchunk
        counts[c] = _rich_chunk_scalar(f, x, h, userh, n, lo, hi, out, err, hch, lev)
    return counts.sum()


@jit
def _rich_param_grad(f, xw, flat, i, h, userh, T, t):
    """df/dx_i of scalar f: R^N -> R (xw perturbed through flat and restored), sequences as in
    ``_rich_point_scalar``.  Returns (nfev, (err, value, step, level))."""
    xi = flat[i]
    cnt = 0
    res = _NONE
    for seq in range(2):
        if seq == 1 and not _rich_retry(userh, xi, res[0], res[1]):
            break
        best, val, hstep, level = _NONE
        bad = 0
        post = 0.0
        m = 0
        hk = _rich_h0(h, userh, i, xi, seq == 1)
        fmax = 0.0
        for _ in range(_R_ROWS):
            hh = (xi + hk) - xi
            if hh == 0.0:
                break
            flat[i] = xi + hh
            fp = f(xw)
            flat[i] = xi - hh
            fm = f(xw)
            flat[i] = xi  # restore the saved value exactly
            cnt += 2
            d = (fp - fm) / (2.0 * hh)
            if not np.isfinite(d):
                m = 0
                hk = _rich_next_h(hk, xi)
                continue
            hk = hk / _R_RATIO
            fmax = max(fmax, abs(fp), abs(fm))
            rnd = _R_RC * _EPS * fmax / hh
            best, val, hstep, level, bad, post, stop = _rich_push(d, hh, rnd, m, T, t, best, val, hstep, level, bad, post)
            if stop:
                break
            m += 1
        this = (max(best, post), val, hstep, level)
        res = _rich_better(res, this) if seq == 1 else this
    return cnt, res


@jit
def _rich_chunk_grad(f, xw, h, userh, lo, hi, out, err, hch, lev):
    """Parameters lo..hi-1 of ``grad_richardson`` on the work copy xw; nfev (not IR-inlined,
    as ``_rich_chunk_scalar``)."""
    flat = xw.reshape(xw.size)
    T = np.empty(_R_ROWS)
    t = np.empty(_R_ROWS)
    cnt = 0
    for i in range(lo, hi):
        c, r = _rich_param_grad(f, xw, flat, i, h, userh, T, t)
        cnt += c
        _rich_store(r, i, out, err, hch, lev)
    return cnt


@jit
def grad_richardson(f, xw, h, userh, out, err, hch, lev):
    """Gradient of scalar f: R^N -> R by Richardson extrapolation, one sequence (two if needed)
    per parameter; xw is perturbed in place and restored.  Outputs as ``deriv_richardson``."""
    return _rich_chunk_grad(f, xw, h, userh, 0, xw.size, out, err, hch, lev)


@jit_par
def grad_richardson_par(f, x, h, userh, out, err, hch, lev):
    """``grad_richardson`` over threads: one chunk of parameters and one work copy of x per thread."""
    n = x.size
    nchunk = min(numba.get_num_threads(), max(n, 1))
    counts = np.zeros(nchunk, dtype=np.int64)
    for c in prange(nchunk):
        counts[c] = _rich_chunk_grad(f, x.copy(), h, userh, c * n // nchunk, (c + 1) * n // nchunk, out, err, hch, lev)
    return counts.sum()


@jit
def _rich_seq_jac(f, xw, flat, i, h0, m, T, t, S, B, rows, done):
    """One sequence for column i of the Jacobian: a tableau per component r (newest row T[r],
    steps t[r]; S[r] = (err, val, step, level, post), divergence count B[r]).  A component
    stops on its own, the sequence when all have.  Returns nfev."""
    for r in range(m):
        S[r, 0], S[r, 1], S[r, 2], S[r, 3] = _NONE
        S[r, 4] = 0.0
        B[r] = 0
        rows[r] = 0
        done[r] = False
    xi = flat[i]
    cnt = 0
    hk = h0
    fmax = np.zeros(m)
    for _ in range(_R_ROWS):
        hh = (xi + hk) - xi
        if hh == 0.0:
            break
        flat[i] = xi + hh
        fp = np.ravel(f(xw)).astype(np.float64)
        flat[i] = xi - hh
        fm = np.ravel(f(xw)).astype(np.float64)
        flat[i] = xi
        cnt += 2
        if fp.size != m or fm.size != m:
            raise ValueError("jacobian: f returned arrays of different sizes at different points")
        anybad = False
        alldone = True
        for r in range(m):
            if done[r]:
                continue
            alldone = False
            d = (fp[r] - fm[r]) / (2.0 * hh)
            if not np.isfinite(d):
                rows[r] = 0
                anybad = True
                continue
            fmax[r] = max(fmax[r], abs(fp[r]), abs(fm[r]))
            rnd = _R_RC * _EPS * fmax[r] / hh
            res = _rich_push(d, hh, rnd, rows[r], T[r], t[r], S[r, 0], S[r, 1], S[r, 2], S[r, 3], B[r], S[r, 4])
            S[r, 0], S[r, 1], S[r, 2], S[r, 3], B[r], S[r, 4], done[r] = res
            rows[r] += 1
        if alldone:
            break
        hk = _rich_next_h(hk, xi) if anybad else hk / _R_RATIO
    return cnt


@jit
def jac_richardson(f, xw, h, userh):
    """Jacobian (M, N) of f: R^N -> R^M by Richardson extrapolation, one sequence (two if a
    component needs it) per column, a tableau per component.  f(x) is evaluated once for M.
    Returns ``(jac, err, step, level, nfev)``, the last three of the Jacobian's shape."""
    n = xw.size
    flat = xw.reshape(n)
    m = np.ravel(f(xw)).size
    cnt = 1
    jac = np.empty((m, n))
    err = np.empty((m, n))
    hch = np.empty((m, n))
    lev = np.empty((m, n), dtype=np.int64)
    T = np.empty((m, _R_ROWS))
    t = np.empty((m, _R_ROWS))
    S = np.empty((m, 5))
    S2 = np.empty((m, 5))
    B = np.zeros(m, dtype=np.int64)
    rows = np.zeros(m, dtype=np.int64)
    done = np.zeros(m, dtype=np.bool_)
    for i in range(n):
        xi = flat[i]
        cnt += _rich_seq_jac(f, xw, flat, i, _rich_h0(h, userh, i, xi, False), m, T, t, S, B, rows, done)
        retry = False
        for r in range(m):
            if _rich_retry(userh, xi, S[r, 0], S[r, 1]):
                retry = True
        if retry:
            cnt += _rich_seq_jac(f, xw, flat, i, _rich_h0(h, userh, i, xi, True), m, T, t, S2, B, rows, done)
        for r in range(m):
            best = (max(S[r, 0], S[r, 4]), S[r, 1], S[r, 2], S[r, 3])
            if retry:
                best = _rich_better(best, (max(S2[r, 0], S2[r, 4]), S2[r, 1], S2[r, 2], S2[r, 3]))
            err[r, i], jac[r, i], hch[r, i], lev[r, i] = best
    return jac, err, hch, lev, cnt


@jit
def _rich_hess_entry(f, xw, flat, i, j, f0, h, userh, T, t):
    """H[i, j] of scalar f by Richardson extrapolation: the second difference (i == j) or the
    four-point formula (f(++) - f(+-) - f(-+) + f(--)) / (4 h_i h_j) (i != j) with both steps
    shrinking together, both even in the common scale; sequences and policy as in
    ``_rich_point_scalar`` (a relative second sequence if the first stays above RETRY).
    Returns (nfev, (err, value, step, level)); the step is h_i's."""
    xi = flat[i]
    xj = flat[j]
    ax = max(abs(xi), abs(xj))
    cnt = 0
    res = _NONE
    for seq in range(2):
        if seq == 1 and not _rich_retry(userh, ax, res[0], res[1]):
            break
        best, val, hstep, level = _NONE
        bad = 0
        post = 0.0
        m = 0
        ai = _rich_h0(h, userh, i, xi, seq == 1)
        aj = _rich_h0(h, userh, j, xj, seq == 1)
        fmax = abs(f0)
        for _ in range(_R_ROWS):
            hi = (xi + ai) - xi
            hj = (xj + aj) - xj
            if hi == 0.0 or hj == 0.0:
                break
            if i == j:
                d, fnew = _hess_diag(f, xw, flat, i, hi, f0)
                cnt += 2
                fmax = max(fmax, fnew)
                rnd = _R_RC * 4.0 * _EPS * fmax / (hi * hi)
                scale = hi
            else:
                d, fnew = _hess_cross(f, xw, flat, i, j, hi, hj)
                cnt += 4
                fmax = max(fmax, fnew)
                rnd = _R_RC * _EPS * fmax / (hi * hj)
                scale = np.sqrt(hi * hj)
            if not np.isfinite(d):
                m = 0
                ai = _rich_next_h(ai, xi)
                aj = _rich_next_h(aj, xj)
                continue
            ai = ai / _R_RATIO
            aj = aj / _R_RATIO
            best, val, hstep, level, bad, post, stop = _rich_push(d, scale, rnd, m, T, t, best, val, hstep, level, bad, post)
            if stop:
                break
            m += 1
        this = (max(best, post), val, hstep, level)
        res = _rich_better(res, this) if seq == 1 else this
    return cnt, res


@jit
def hess_richardson(f, xw, h, userh, out, err, hch, lev):
    """Hessian (N, N) of scalar f by Richardson extrapolation, entry by entry (i >= j, mirrored):
    exactly symmetric, with an error estimate, step and level per entry.  xw is perturbed in
    place and restored.  nfev = 1 + about 10 per diagonal and 20 per off-diagonal entry."""
    n = xw.size
    flat = xw.reshape(n)
    T = np.empty(_R_ROWS)
    t = np.empty(_R_ROWS)
    f0 = f(xw)
    cnt = 1
    for i in range(n):
        for j in range(i + 1):
            c, r = _rich_hess_entry(f, xw, flat, i, j, f0, h, userh, T, t)
            cnt += c
            err[i, j], out[i, j], hch[i, j], lev[i, j] = r
            err[j, i], out[j, i], hch[j, i], lev[j, i] = r
    return cnt
