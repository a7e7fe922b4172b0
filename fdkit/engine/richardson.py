"""method="richardson": one sequence driver, a difference helper per quantity, one body per quantity.

One *sequence* per point, parameter or entry: central differences D(h_k) at h_k = h0 / r^k (the
steps actually taken), extrapolated to h = 0 by Neville's scheme in h^2 (D is even in h);
tableau entry (k, j) eliminates h^2 .. h^2j.  Its error estimate is FACTOR times Ridders'
distance to its neighbours, max(|T[k,j] - T[k,j-1]|, |T[k,j] - T[k-1,j-1]|) (and
|T[k,j] - T[k-1,j]| where that exists), never below the rounding floor: the largest
over the rows so far of RC * eps * max|f| * sum|w| / h_k^n, with max|f| over the points of that
row and the two before it (the rows its newest entries combine) and eps of the working precision.  The entry with the
smallest estimate wins.  A sequence stops when the truncation estimate falls below the rounding
floor (smaller steps only raise the floor), when the newest diagonal has moved by >= SAFE times
the best estimate on PATIENCE consecutive rows while that estimate is within NOISE times the
rounding floor (rounding has taken over; far above the floor such a jump is truncation, the
steps not yet down to the scale on which f varies), at a step that vanishes, or after ROWS rows.  A non-finite difference restarts the tableau (jumping to
h = |x|/2 if h > |x|/2).  The error reported is the larger of the winner's estimate and FACTOR
times ``post``, the largest move of the winner's level in the rows computed after it.  At |x| > 1 a
second, relative sequence runs when the first one's relative estimate stays above ``retry``.

:func:`rich_sequence` is the one driver of all that.  It asks a *difference helper* for the
difference at a step; the helpers differ only in what they perturb:

* ``diff_point``: the elementwise derivative (n = 1 or 2) at a point;
* ``diff_param``: a partial derivative of f: R^N -> R;
* ``diff_entry``: a Hessian entry (the second difference, or the four-point formula with both
  steps shrinking together);
* ``diff_component``: one component of a Jacobian column, with the evaluations of f at each
  step shared by all components through a small cache.

A helper returns ``(d, |f| largest, nfev, scale, rounding weight)``; ``scale`` is the step (0 if
it vanished next to x) and the rounding floor is ``RC * eps * max|f| * weight``, with max|f|
over the row and the two rows before it (see ``rich_sequence``).  The bodies
(``deriv_body`` ...) run with the drivers of :mod:`fdkit.engine.kernels`, serial or parallel.
A sequence's result is the tuple (error estimate, value, step, level); the tableau state is kept
in scalars (registers), not arrays: 3x faster, measured.
"""

from __future__ import annotations

import numpy as np

from ..steps import RICH_FACTOR, RICH_H0, RICH_NOISE, RICH_PATIENCE, RICH_RATIO, RICH_ROUNDING, RICH_ROWS, RICH_SAFE
from .kernels import hess_cross, hess_diag, jit, jit_cached, like

__all__ = ["rich_sequence", "deriv_body", "grad_body", "jac_body", "hess_prep", "hess_body", "ROWS"]

ROWS = RICH_ROWS
_R_H0, _R_RATIO, _R_ROWS = RICH_H0, RICH_RATIO, RICH_ROWS
_R_SAFE, _R_PATIENCE, _R_RC, _R_FACTOR, _R_NOISE = RICH_SAFE, RICH_PATIENCE, RICH_ROUNDING, RICH_FACTOR, RICH_NOISE
_NONE = (np.inf, np.nan, np.nan, -1)  # no estimate yet
_VANISHED = (0.0, 0.0, 0, 0.0, 0.0)  # a helper's answer when the step vanished next to x


@jit_cached(inline="always")
def _push(d, hh, rnd, calm, m, T, t, best, val, hstep, level, bad, post):
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
        if tr <= rnd and m >= 2 and j < m:  # truncation below rounding: smaller steps cannot help
            stop = True  # (j < m: an entry also checked against its level one row up; the
            # newest diagonal alone can agree with its two parents by chance, measured)
        last = o
        o = T[j]  # unset for j = m (never read: the loop ends)
        T[j] = cur
        prev = cur
    if improved:
        post = 0.0
    elif 1 <= level <= m:
        post = max(post, abs(T[int(level)] - val))
    if not stop:
        # the newest diagonal jumped while the best estimate is already near the rounding floor,
        # or by less than sqrt(eps) of the value (``calm``): rounding rules (the second case is
        # an f whose own rounding is far above the floor, a sum of terms that cancel).  A jump
        # far above the floor and of the value's own size is truncation: the steps have not yet
        # reached the scale on which f varies, as for tanh(x / 0.001) from h0 = 0.1.
        jump = abs(prev - last)
        if jump >= _R_SAFE * best and (best <= _R_NOISE * rnd or jump <= calm * abs(val)):
            bad += 1
            stop = bad >= _R_PATIENCE
        else:
            bad = 0
    return best, val, hstep, level, bad, post, stop


@jit_cached
def _next_h(hk, x):
    """The step after a non-finite difference: h/r, or |x|/2 if that is smaller (a singularity
    at 0, as for log or sqrt near 0)."""
    hk = hk / _R_RATIO
    ax = abs(x)
    if ax > 0.0 and hk > 0.5 * ax:
        hk = 0.5 * ax
    return hk


@jit_cached
def _h0(h, userh, i, xi, second):
    """First step of sequence 1 (``second`` False) or 2: the user's h, else the policy's."""
    if userh:
        return h[0] if h.size == 1 else h[i]
    return _R_H0 * abs(xi) if second else _R_H0


@jit_cached
def _rel(e, v):
    """e / |v| without dividing by zero: inf where there is no value, 0 for 0/0."""
    a = abs(v)
    if a > 0.0:
        return e / a
    if e == 0.0 and not np.isnan(v):
        return 0.0
    return np.inf


@jit_cached
def _better(a, b):
    """The result (err, val, step, level) with the smaller relative error estimate (a on ties;
    the smaller absolute estimate where neither has a finite relative one)."""
    r1 = _rel(a[0], a[1])
    r2 = _rel(b[0], b[1])
    if r2 < r1 or (r1 == np.inf and r2 == np.inf and b[0] < a[0]):
        return b
    return a


@jit
def rich_sequence(diff, f, ctx, i, j, xi, xj, h, userh, eps, retry, T, t):
    """The value of one element by Richardson extrapolation: sequence 1 from the policy's (or the
    user's) first step, and sequence 2 from 0.1 max(|x_i|, |x_j|) when the first one's relative
    estimate stays above ``retry`` at |x| > 1 (policy steps only).

    ``diff(f, ctx, i, j, a_i, a_j)`` gives the difference at the nominal steps (a_i, a_j) (a_j
    is used by the Hessian's cross entries only).  T and t are the tableau's scratch rows.
    Returns ``(nfev, (err, value, step, level))``.
    """
    cnt = 0
    res = _NONE
    ax = max(abs(xi), abs(xj))
    calm = np.sqrt(eps)
    for seq in range(2):
        if seq == 1 and (userh or ax <= 1.0 or res[0] <= retry * abs(res[1])):
            break
        best, val, hstep, level = _NONE
        bad = 0
        post = 0.0
        m = 0
        ai = _h0(h, userh, i, xi, seq == 1)
        aj = _h0(h, userh, j, xj, seq == 1)
        rnd = 0.0
        f1 = 0.0  # max|f| of the two rows before the newest
        f2 = 0.0
        for _ in range(_R_ROWS):
            d, fnew, c, scale, w = diff(f, ctx, i, j, ai, aj)
            cnt += c
            if scale == 0.0:  # the step vanished next to x
                break
            if not np.isfinite(d):
                m = 0
                ai = _next_h(ai, xi)
                aj = _next_h(aj, xj)
                continue
            ai = ai / _R_RATIO
            aj = aj / _R_RATIO
            # the rounding floor at this row's step: max|f| over this row and the two before it
            # (an f whose evaluation error exceeds a few ulps of its own value, as ndtr(x / s) in
            # its tail, needs the neighbours' larger values: measured), not over every row (far
            # too high where f grows away from x, as the trap energy of two ions does), and
            # never below an earlier row's floor
            rnd = max(rnd, _R_RC * eps * max(fnew, f1, f2) * w)
            f2 = f1
            f1 = fnew
            best, val, hstep, level, bad, post, stop = _push(d, scale, rnd, calm, m, T, t, best, val, hstep, level, bad, post)
            if stop:
                break
            m += 1
        this = (max(best, _R_FACTOR * post), val, hstep, level)  # post is a distance, like tr
        res = _better(res, this) if seq == 1 else this
    return cnt, res


# ------------------------------------------------------------------ difference helpers


@jit
def diff_point(f, ctx, i, j, ai, aj):
    """Elementwise: ctx = (x_i, f(x_i), n); the central first (n = 1) or second (n = 2)
    difference of scalar f at x_i; rounding weight 1/h (n = 1) or 4/h^2."""
    x, f0, n, fa = ctx
    hh = like(x + ai, x) - x
    if hh == 0.0:
        return _VANISHED
    fp = np.float64(f(like(x + hh, x), *fa))
    fm = np.float64(f(like(x - hh, x), *fa))
    if n == 1:
        return (fp - fm) / (2.0 * hh), max(abs(fp), abs(fm)), 2, np.float64(hh), 1.0 / hh
    return ((fp - f0) + (fm - f0)) / (hh * hh), max(abs(fp), abs(fm), abs(f0)), 2, np.float64(hh), 4.0 / (hh * hh)


@jit
def diff_param(f, ctx, i, j, ai, aj):
    """Gradient: ctx = (work,); the central difference of f: R^N -> R in x_i (work is perturbed
    through its flat view and restored exactly).  The view is made here, not passed in the
    tuple: numba takes the arrays of a tuple argument for distinct buffers, and LLVM then drops
    the perturbations and the restore (measured: x came back changed)."""
    work, fa = ctx
    flat = work.reshape(work.size)
    xi = flat[i]
    hh = like(xi + ai, xi) - xi
    if hh == 0.0:
        return _VANISHED
    flat[i] = xi + hh
    fp = np.float64(f(work, *fa))
    flat[i] = xi - hh
    fm = np.float64(f(work, *fa))
    flat[i] = xi  # restore the saved value exactly
    return (fp - fm) / (2.0 * hh), max(abs(fp), abs(fm)), 2, np.float64(hh), 1.0 / hh


@jit
def diff_entry(f, ctx, i, j, ai, aj):
    """Hessian: ctx = (work, f(x)); the second difference (i == j) or the four-point formula
    (i != j, both steps shrinking together: it is even in their common scale sqrt(h_i h_j));
    the flat view is made here (see ``diff_param``)."""
    work, f0, fa = ctx
    flat = work.reshape(work.size)
    xi = flat[i]
    xj = flat[j]
    hi = like(xi + ai, xi) - xi
    hj = like(xj + aj, xj) - xj
    if hi == 0.0 or hj == 0.0:
        return _VANISHED
    if i == j:
        d, fnew = hess_diag(f, work, flat, i, hi, f0, fa)
        return d, max(fnew, abs(f0)), 2, np.float64(hi), 4.0 / (hi * hi)
    d, fnew = hess_cross(f, work, flat, i, j, hi, hj, fa)
    return d, max(fnew, abs(f0)), 4, np.sqrt(np.float64(hi) * hj), 1.0 / (hi * hj)


@jit
def diff_component(f, ctx, i, j, ai, aj):
    """Jacobian: ctx = (work, r, steps, fplus, fminus, ncached); the central difference of
    component r of f: R^N -> R^M in x_i.  f(x +- h e_i) is evaluated once per step and kept in
    the cache (steps[k], fplus[k], fminus[k], k < ncached[0]) for the other components, which
    follow the same step sequence; each value is copied before x is restored (an f that returns
    its input is differentiated correctly).  The flat view is made here (see ``diff_param``)."""
    work, r, steps, fplus, fminus, ncached, fa = ctx
    flat = work.reshape(work.size)
    xi = flat[i]
    hh = like(xi + ai, xi) - xi
    if hh == 0.0:
        return _VANISHED
    k = -1
    for q in range(ncached[0]):
        if steps[q] == hh:
            k = q
            break
    c = 0
    if k < 0:
        k = ncached[0]
        if k == steps.size:  # cache full (components on different paths): reuse the last slot
            k -= 1
        else:
            ncached[0] += 1
        m = fplus.shape[1]
        flat[i] = xi + hh
        fp = np.ravel(f(work, *fa))
        if fp.size != m:
            raise ValueError("jacobian: f returned arrays of different sizes at different points")
        for q in range(m):
            fplus[k, q] = fp[q]
        flat[i] = xi - hh
        fm = np.ravel(f(work, *fa))
        if fm.size != m:
            raise ValueError("jacobian: f returned arrays of different sizes at different points")
        for q in range(m):
            fminus[k, q] = fm[q]
        flat[i] = xi
        steps[k] = hh
        c = 2
    fp_r = fplus[k, r]
    fm_r = fminus[k, r]
    return (fp_r - fm_r) / (2.0 * hh), max(abs(fp_r), abs(fm_r)), c, np.float64(hh), 1.0 / hh


# -------------------------------------------------------------------------------- bodies


@jit
def _store(r, i, out, err, hch, lev):
    err[i] = r[0]
    out[i] = r[1]
    hch[i] = r[2]
    lev[i] = r[3]


@jit
def deriv_body(f, args, shared, lo, hi):
    """Points lo..hi-1: ``args = (x, h, userh, n, eps, retry, out, err, hch, lev)``; writes the
    value, its error estimate, the step and tableau level chosen; nfev (about 6-14 per point
    for n = 1; more where a second sequence runs)."""
    x, h, userh, n, eps, retry, out, err, hch, lev, fa = args
    T = np.empty(_R_ROWS)
    t = np.empty(_R_ROWS)
    cnt = 0
    for i in range(lo, hi):
        xi = x[i]
        f0 = 0.0
        if n == 2:
            f0 = np.float64(f(xi, *fa))
            cnt += 1
        c, r = rich_sequence(diff_point, f, (xi, f0, n, fa), i, i, xi, xi, h, userh, eps, retry, T, t)
        cnt += c
        _store(r, i, out, err, hch, lev)
    return cnt


@jit
def grad_body(f, args, shared, lo, hi):
    """Parameters lo..hi-1 of the gradient: ``args = (x, h, userh, eps, retry, out, err, hch,
    lev)`` (outputs flat); one private work copy of x per call."""
    x, h, userh, eps, retry, out, err, hch, lev, fa = args
    work = x.copy()
    flat = work.reshape(work.size)
    T = np.empty(_R_ROWS)
    t = np.empty(_R_ROWS)
    cnt = 0
    for i in range(lo, hi):
        xi = flat[i]
        c, r = rich_sequence(diff_param, f, (work, fa), i, i, xi, xi, h, userh, eps, retry, T, t)
        cnt += c
        _store(r, i, out, err, hch, lev)
    return cnt


@jit
def jac_body(f, args, shared, lo, hi):
    """Columns lo..hi-1 of the Jacobian: ``args = (x, h, userh, eps, retry, jac, err, hch, lev)``,
    outputs (M, N); a tableau per component, the evaluations of a column shared."""
    x, h, userh, eps, retry, jac, err, hch, lev, fa = args
    m = jac.shape[0]
    work = x.copy()
    flat = work.reshape(work.size)
    T = np.empty(_R_ROWS)
    t = np.empty(_R_ROWS)
    steps = np.empty(2 * _R_ROWS)
    fplus = np.empty((2 * _R_ROWS, m))
    fminus = np.empty((2 * _R_ROWS, m))
    ncached = np.zeros(1, dtype=np.int64)
    cnt = 0
    for i in range(lo, hi):
        ncached[0] = 0
        xi = flat[i]
        for r in range(m):
            ctx = (work, r, steps, fplus, fminus, ncached, fa)
            c, res = rich_sequence(diff_component, f, ctx, i, i, xi, xi, h, userh, eps, retry, T, t)
            cnt += c
            err[r, i], jac[r, i], hch[r, i], lev[r, i] = res
    return cnt


@jit
def hess_prep(f, args):
    """f(x) once: ``(f0, 1)``."""
    return np.float64(f(args[0], *args[-1])), 1


@jit
def _hess_row(f, work, flat, i, f0, h, userh, eps, retry, T, t, out, err, hch, lev, fa):
    cnt = 0
    for j in range(i + 1):
        c, r = rich_sequence(diff_entry, f, (work, f0, fa), i, j, flat[i], flat[j], h, userh, eps, retry, T, t)
        cnt += c
        err[i, j], out[i, j], hch[i, j], lev[i, j] = r
        err[j, i], out[j, i], hch[j, i], lev[j, i] = r
    return cnt


@jit
def hess_body(f, args, f0, lo, hi):
    """Row pairs lo..hi-1 (``kernels.hess_items``) of the Hessian: ``args = (x, h, userh, eps,
    retry, out, err, hch, lev)``, outputs (N, N); every entry i >= j extrapolated and mirrored
    (exactly symmetric).  About 10 evaluations per diagonal and 20 per off-diagonal entry."""
    x, h, userh, eps, retry, out, err, hch, lev, fa = args
    n = x.size
    work = x.copy()
    flat = work.reshape(n)
    T = np.empty(_R_ROWS)
    t = np.empty(_R_ROWS)
    cnt = 0
    for k in range(lo, hi):
        cnt += _hess_row(f, work, flat, k, f0, h, userh, eps, retry, T, t, out, err, hch, lev, fa)
        if n - 1 - k != k:
            cnt += _hess_row(f, work, flat, n - 1 - k, f0, h, userh, eps, retry, T, t, out, err, hch, lev, fa)
    return cnt
