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
from numba import prange

from .._progress import bar
from ..steps import RICH_FACTOR, RICH_H0, RICH_NOISE, RICH_PATIENCE, RICH_RATIO, RICH_ROUNDING, RICH_ROWS, RICH_SAFE
from .kernels import alive, borrowed, hess_cross, hess_diag, jit, jit_cached, jit_outer_cached, jit_par_cached, like

__all__ = ["rich_sequence", "deriv_body", "grad_prep", "grad_body", "jac_body", "hess_prep", "hess_body", "ROWS",
           "CONVERGED", "ROUNDING", "MAXITER", "NONFINITE", "rows_run", "rows_update", "rows_init",
           "point_row", "point_diffs", "ROWS_BLOCK"]

ROWS = RICH_ROWS
_R_H0, _R_RATIO, _R_ROWS = RICH_H0, RICH_RATIO, RICH_ROWS
_R_SAFE, _R_PATIENCE, _R_RC, _R_FACTOR, _R_NOISE = RICH_SAFE, RICH_PATIENCE, RICH_ROUNDING, RICH_FACTOR, RICH_NOISE
_NONE = (np.inf, np.nan, np.nan, -1)  # no estimate yet
#: a one-sided sequence's rounding weight, relative to its stencil's sum|w|: extrapolating in h,
#: h^2, h^3, ... (ratios 2, 4, 8, ...) sums the rows' rounding with weights up to
#: prod (q + 1) / (q - 1) = 7.3 at level 4, against 2.0 for the central tableau in h^2 (ratios
#: 4, 16, ...), which the rounding constant was set on (float32: 1 of 301 points of a cubic was
#: 1.3x above its estimate with weight 1)
ONE_SIDED = 4.0
_VANISHED = (0.0, 0.0, 0, 0.0, 0.0)  # a helper's answer when the step vanished next to x


@jit_cached(inline="always")
def _push(d, hh, rnd, calm, m, T, t, r, best, val, hstep, level, bad, post, even):
    """Add row m (the difference d at step hh, rounding floor rnd) to the tableau, kept as its
    newest row T[r] (updated in place) and the steps t[r] (rows of 2-D arrays indexed here, not
    views: a view's reference count costs two atomic operations, measured 45 ns per row).  ``post`` is the largest move of the best
    entry's level in the rows after it (noise the min over entries would hide).  ``even``: the
    difference is even in h (central; the tableau eliminates h^2, h^4, ...), else one-sided
    (h, h^2, h^3, ...).  Returns the updated (best, val, hstep, level, bad, post, stop) with stop
    0 (go on), 1 (converged: truncation below the rounding floor) or 2 (rounding took over)."""
    t[r, m] = hh
    o = T[r, 0]  # the previous row's entry j-1 as the loop reaches j
    T[r, 0] = d
    if m == 0:
        return best, val, hstep, level, bad, post, 0
    stop = 0
    improved = False
    prev = d
    last = o
    for j in range(1, m + 1):
        q = t[r, m - j] / hh
        cur = prev + (prev - o) / ((q * q if even else q) - 1.0)
        tr = max(abs(cur - prev), abs(cur - o))
        if j < m:  # and the same level one row up
            tr = max(tr, abs(cur - T[r, j]))
        e = max(_R_FACTOR * tr, rnd)
        if e <= best:
            best, val, hstep, level = e, cur, hh, j
            improved = True
        if tr <= rnd and m >= 2 and j < m:  # truncation below rounding: smaller steps cannot help
            stop = 1  # (j < m: an entry also checked against its level one row up; the
            # newest diagonal alone can agree with its two parents by chance, measured)
        last = o
        o = T[r, j]  # unset for j = m (never read: the loop ends)
        T[r, j] = cur
        prev = cur
    if improved:
        post = 0.0
    elif 1 <= level <= m:
        post = max(post, abs(T[r, int(level)] - val))
    if stop == 0:
        # the newest diagonal jumped while the best estimate is already near the rounding floor,
        # or by less than sqrt(eps) of the value (``calm``): rounding rules (the second case is
        # an f whose own rounding is far above the floor, a sum of terms that cancel).  A jump
        # far above the floor and of the value's own size is truncation: the steps have not yet
        # reached the scale on which f varies, as for tanh(x / 0.001) from h0 = 0.1.
        jump = abs(prev - last)
        if jump >= _R_SAFE * best and (best <= _R_NOISE * rnd or jump <= calm * abs(val)):
            bad += 1
            if bad >= _R_PATIENCE:
                stop = 2
        else:
            bad = 0
    return best, val, hstep, level, bad, post, stop


@jit_cached
def _next_h(hk, x, ratio):
    """The step after a non-finite difference: h/r, or |x|/2 if that is smaller (a singularity
    at 0, as for log or sqrt near 0)."""
    hk = hk / ratio
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


#: a sequence's status (scipy.differentiate's codes): converged (the tolerance met, or truncation
#: below the rounding floor), rounding took over (or the step vanished next to x), every row spent
#: (``maxiter``), the value is not finite
CONVERGED, ROUNDING, MAXITER, NONFINITE = 0, -1, -2, -3


# inlined in numba IR: a difference helper passed as an argument of a call that LLVM does not
# inline stays a pointer to the Python dispatcher object in the machine code, which keeps
# numba from caching the shared entries of fdkit.engine.entries (a "dynamic global")
@jit(inline="always")
def rich_sequence(diff, f, ctx, i, j, xi, xj, h, userh, eps, retry, ctl, even, T, t):
    """The value of one element by Richardson extrapolation: sequence 1 from the policy's (or the
    user's) first step, and sequence 2 from 0.1 max(|x_i|, |x_j|) when the first one's relative
    estimate stays above ``retry`` at |x| > 1 (policy steps only).

    ``diff(f, ctx, i, j, a_i, a_j)`` gives the difference at the nominal steps (a_i, a_j) (a_j
    is used by the Hessian's cross entries only).  ``ctl = (atol, rtol, rows, ratio)``: a
    sequence also stops once its estimate is at most ``atol + rtol |value|`` on two rows in a
    row, and has at most
    ``rows`` rows, the steps shrinking by ``ratio``.  ``even``: the difference is central (else
    one-sided).  T and t are the tableau's scratch rows, shape (1, at least ``rows``).
    Returns ``(nfev, (err, value, step, level), status)``.
    """
    atol, rtol, rows, ratio = ctl
    cnt = 0
    res = _NONE
    status = MAXITER
    ax = max(abs(xi), abs(xj))
    calm = np.sqrt(eps)
    for seq in range(2):
        if seq == 1 and (userh or ax <= 1.0 or res[0] <= retry * abs(res[1])
                         or res[0] <= atol + rtol * abs(res[1])):
            break
        best, val, hstep, level = _NONE
        bad = 0
        met = 0
        post = 0.0
        m = 0
        st = MAXITER
        ai = _h0(h, userh, i, xi, seq == 1)
        aj = _h0(h, userh, j, xj, seq == 1)
        rnd = 0.0
        f1 = 0.0  # max|f| of the two rows before the newest
        f2 = 0.0
        for _ in range(rows):
            d, fnew, c, scale, w = diff(f, ctx, i, j, ai, aj)
            cnt += c
            if scale == 0.0:  # the step vanished next to x
                st = ROUNDING
                break
            if not np.isfinite(d):
                m = 0
                ai = _next_h(ai, xi, ratio)
                aj = _next_h(aj, xj, ratio)
                continue
            ai = ai / ratio
            aj = aj / ratio
            # the rounding floor at this row's step: max|f| over this row and the two before it
            # (an f whose evaluation error exceeds a few ulps of its own value, as ndtr(x / s) in
            # its tail, needs the neighbours' larger values: measured), not over every row (far
            # too high where f grows away from x, as the trap energy of two ions does), and
            # never below an earlier row's floor
            rnd = max(rnd, _R_RC * eps * max(fnew, f1, f2) * w)
            f2 = f1
            f1 = fnew
            best, val, hstep, level, bad, post, stop = _push(d, scale, rnd, calm, m, T, t, 0, best, val, hstep, level,
                                                             bad, post, even)
            if stop == 1:
                st = CONVERGED
                break
            if stop == 2:
                st = ROUNDING
                break
            # the tolerance met on two rows in a row (met once, the newest diagonal can agree with
            # its parents by chance: measured, 2 of 10^5 points of runge with rtol = sqrt(eps)
            # stopped 2x above their estimate)
            if m >= 1 and max(best, _R_FACTOR * post) <= atol + rtol * abs(val):
                met += 1
                if met >= 2:
                    st = CONVERGED
                    break
            else:
                met = 0
            m += 1
        this = (max(best, _R_FACTOR * post), val, hstep, level)  # post is a distance, like tr
        if seq == 0:
            res, status = this, st
        else:
            won = _better(res, this)
            if won[0] != res[0] or won[1] != res[1]:
                status = st
            res = won
    if not np.isfinite(res[1]):
        status = NONFINITE
    return cnt, res, status


# ------------------------------------------------------------------ difference helpers


@jit
def diff_point(f, ctx, i, j, ai, aj):
    """Elementwise: ctx = (x_i, f(x_i), n, s); the central (s = 0) or one-sided (s = +-1: the
    points x_i, x_i + s h, x_i + 2 s h) first (n = 1) or second (n = 2) difference of scalar f
    at x_i; rounding weight sum|w| / h^n."""
    x, f0, n, s, fa = ctx
    if s != 0:
        return _one_sided_point(f, x, f0, n, s * ai, fa)
    hh = np.float64(like(x + ai, x) - x)  # exact; float64 so that hh * hh is not rounded to float32
    if hh == 0.0:
        return _VANISHED
    fp = np.float64(f(like(x + hh, x), *fa))
    fm = np.float64(f(like(x - hh, x), *fa))
    if n == 1:
        return (fp - fm) / (2.0 * hh), max(abs(fp), abs(fm)), 2, np.float64(hh), 1.0 / hh
    return ((fp - f0) + (fm - f0)) / (hh * hh), max(abs(fp), abs(fm), abs(f0)), 2, np.float64(hh), 4.0 / (hh * hh)


@jit
def _one_sided_point(f, x, f0, n, a, fa):
    """The one-sided difference at the signed nominal step a (points rounded to x's precision,
    the steps actually taken as divisors; n = 2 from three points, exact for unequal steps)."""
    h1 = np.float64(like(x + a, x) - x)
    if h1 == 0.0:
        return _VANISHED
    f1 = np.float64(f(like(x + h1, x), *fa))
    if n == 1:
        return (f1 - f0) / h1, max(abs(f1), abs(f0)), 1, np.float64(abs(h1)), ONE_SIDED * 2.0 / abs(h1)
    h2 = np.float64(like(x + 2.0 * a, x) - x)
    f2 = np.float64(f(like(x + h2, x), *fa))
    d = 2.0 * ((f1 - f0) / h1 - (f2 - f0) / h2) / (h1 - h2)
    return d, max(abs(f1), abs(f2), abs(f0)), 2, np.float64(abs(h1)), ONE_SIDED * 4.0 / (h1 * h1)


@jit
def diff_param(f, ctx, i, j, ai, aj):
    """Gradient: ctx = (work, f(x), s); the central (s = 0) or one-sided (s = +-1) difference of
    f: R^N -> R in x_i (work is perturbed
    through its flat view and restored exactly).  The view is made here, not passed in the
    tuple: numba takes the arrays of a tuple argument for distinct buffers, and LLVM then drops
    the perturbations and the restore (measured: x came back changed)."""
    work, f0, s, fa = ctx
    flat = work.reshape(work.size)
    xi = flat[i]
    hh = like(xi + s * ai if s != 0 else xi + ai, xi) - xi
    if hh == 0.0:
        return _VANISHED
    if s != 0:  # one-sided: f(x + s h e_i) - f(x)
        flat[i] = xi + hh
        fp = np.float64(f(work, *fa))
        flat[i] = xi
        return (fp - f0) / hh, max(abs(fp), abs(f0)), 1, np.float64(abs(hh)), ONE_SIDED * 2.0 / abs(hh)
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
def _into(f, work, fa, dest, k):
    """f(work) copied into row k of dest (a copy before x is restored: f may return its input)."""
    v = np.ravel(f(work, *fa))
    if v.size != dest.shape[1]:
        raise ValueError("jacobian: f returned arrays of different sizes at different points")
    for q in range(v.size):
        dest[k, q] = v[q]


@jit
def diff_component(f, ctx, i, j, ai, aj):
    """Jacobian: ctx = (work, r, steps, fplus, fminus, ncached, f(x), s); the central (s = 0) or
    one-sided (s = +-1) difference of component r of f: R^N -> R^M in x_i.  f(x +- h e_i) is evaluated once per step and kept in
    the cache (steps[k], fplus[k], fminus[k], k < ncached[0]) for the other components, which
    follow the same step sequence; each value is copied before x is restored (an f that returns
    its input is differentiated correctly).  The flat view is made here (see ``diff_param``)."""
    work, r, steps, fplus, fminus, ncached, f0, s, fa = ctx
    flat = work.reshape(work.size)
    xi = flat[i]
    hh = like(xi + s * ai if s != 0 else xi + ai, xi) - xi
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
        flat[i] = xi + hh
        _into(f, work, fa, fplus, k)
        c = 1
        if s == 0:
            flat[i] = xi - hh
            _into(f, work, fa, fminus, k)
            c = 2
        flat[i] = xi
        steps[k] = hh
    fp_r = fplus[k, r]
    if s != 0:
        return (fp_r - f0[r]) / hh, max(abs(fp_r), abs(f0[r])), c, np.float64(abs(hh)), ONE_SIDED * 2.0 / abs(hh)
    fm_r = fminus[k, r]
    return (fp_r - fm_r) / (2.0 * hh), max(abs(fp_r), abs(fm_r)), c, np.float64(hh), 1.0 / hh


# -------------------------------------------------------------------------------- bodies


@jit(inline="always")
def _scratch(rows, h):
    """A body's tableau scratch: (T0, t0, T, t, h) with T0 and t0 one tableau row and its steps
    (2-D: _push indexes T[r, j]), T, t and h their :func:`~fdkit.engine.kernels.borrowed` views
    and h's, which the sequences take without reference counting.  The body ends with
    ``alive(T0, t0)``, which keeps the rows alive while the views are used."""
    T0 = np.empty((1, rows))
    t0 = np.empty((1, rows))
    return T0, t0, borrowed(T0), borrowed(t0), borrowed(h)


@jit
def _store(r, status, c, i, out, err, hch, lev, stat, nfe):
    err[i] = r[0]
    out[i] = r[1]
    hch[i] = r[2]
    lev[i] = r[3]
    stat[i] = status
    nfe[i] = c


@jit
def _sign(dirs, i):
    """The step direction of element i: -1, 0 (central) or +1 (dirs of size 1 or of the items)."""
    d = dirs[0] if dirs.size == 1 else dirs[i]
    return 1 if d > 0 else (-1 if d < 0 else 0)


@jit
def deriv_body(f, args, shared, lo, hi):
    """Points lo..hi-1: ``args = (x, h, userh, n, eps, retry, ctl, dirs, out, err, hch, lev, stat,
    nfe)``; writes the value, its error estimate, the step and tableau level chosen, the status
    and the evaluations per point; returns nfev (about 6-14 per point for n = 1; more where a
    second sequence runs)."""
    x, h, userh, n, eps, retry, ctl, dirs, out, err, hch, lev, stat, nfe, fa = args
    T0, t0, T, t, h = _scratch(ctl[2], h)
    cnt = 0
    for i in range(lo, hi):
        xi = x[i]
        s = _sign(dirs, i)
        f0 = 0.0
        c0 = 0
        if n == 2 or s != 0:
            f0 = np.float64(f(xi, *fa))
            c0 = 1
        c, r, status = rich_sequence(diff_point, f, (xi, f0, n, s, fa), i, i, xi, xi, h, userh, eps, retry, ctl,
                                     s == 0, T, t)
        cnt += c + c0
        _store(r, status, c + c0, i, out, err, hch, lev, stat, nfe)
    return cnt + alive(T0, t0)


@jit
def grad_prep(f, args):
    """f(x) once if some parameter is stepped one-sidedly: ``(f0, nfev)``."""
    x, dirs, fa = args[0], args[6], args[-1]
    for k in range(dirs.size):
        if dirs[k] != 0:
            return np.float64(f(x, *fa)), 1
    return 0.0, 0


@jit
def grad_body(f, args, f0, lo, hi):
    """Parameters lo..hi-1 of the gradient: ``args = (x, h, userh, eps, retry, ctl, dirs, out, err,
    hch, lev, stat, nfe)`` (outputs flat); f0 = f(x) from ``grad_prep``; one private work copy of
    x per call."""
    x, h, userh, eps, retry, ctl, dirs, out, err, hch, lev, stat, nfe, fa = args
    work0 = x.copy()
    work = borrowed(work0)  # the helpers take it without reference counting (kernels.borrowed)
    flat = work.reshape(work.size)
    T0, t0, T, t, h = _scratch(ctl[2], h)
    cnt = 0
    for i in range(lo, hi):
        xi = flat[i]
        s = _sign(dirs, i)
        c, r, status = rich_sequence(diff_param, f, (work, f0, s, fa), i, i, xi, xi, h, userh, eps, retry, ctl,
                                     s == 0, T, t)
        cnt += c
        _store(r, status, c, i, out, err, hch, lev, stat, nfe)
    return cnt + alive(T0, t0, work0)


@jit
def jac_body(f, args, shared, lo, hi):
    """Columns lo..hi-1 of the Jacobian: ``args = (x, f0, h, userh, eps, retry, ctl, dirs, jac, err,
    hch, lev, stat, nfe)``, outputs (M, N), f0 = f(x) flat; a tableau per component, the
    evaluations of a column shared (``nfe`` holds the column's count in each of its entries)."""
    x, f0, h, userh, eps, retry, ctl, dirs, jac, err, hch, lev, stat, nfe, fa = args
    m = jac.shape[0]
    rows = ctl[2]
    work0 = x.copy()
    work = borrowed(work0)  # it and the cache go to the helpers without reference counting
    flat = work.reshape(work.size)
    T0, t0, T, t, h = _scratch(rows, h)
    steps0 = np.empty(2 * rows)
    fplus0 = np.empty((2 * rows, m))
    fminus0 = np.empty((2 * rows, m))
    ncached0 = np.zeros(1, dtype=np.int64)
    steps, fplus, fminus, ncached = borrowed(steps0), borrowed(fplus0), borrowed(fminus0), borrowed(ncached0)
    cnt = 0
    for i in range(lo, hi):
        ncached[0] = 0
        xi = flat[i]
        s = _sign(dirs, i)
        col = 0
        for r in range(m):
            ctx = (work, r, steps, fplus, fminus, ncached, f0, s, fa)
            c, res, status = rich_sequence(diff_component, f, ctx, i, i, xi, xi, h, userh, eps, retry, ctl, s == 0,
                                           T, t)
            col += c
            err[r, i], jac[r, i], hch[r, i], lev[r, i] = res
            stat[r, i] = status
        for r in range(m):
            nfe[r, i] = col
        cnt += col
    return cnt + alive(T0, t0, work0, steps0, fplus0, fminus0, ncached0)


@jit
def hess_prep(f, args):
    """f(x) once: ``(f0, 1)``."""
    return np.float64(f(args[0], *args[-1])), 1


@jit
def _hess_row(f, work, flat, i, f0, h, userh, eps, retry, ctl, T, t, out, err, hch, lev, stat, nfe, fa):
    cnt = 0
    for j in range(i + 1):
        c, r, status = rich_sequence(diff_entry, f, (work, f0, fa), i, j, flat[i], flat[j], h, userh, eps, retry,
                                     ctl, True, T, t)
        cnt += c
        err[i, j], out[i, j], hch[i, j], lev[i, j] = r
        err[j, i], out[j, i], hch[j, i], lev[j, i] = r
        stat[i, j] = stat[j, i] = status
        nfe[i, j] = nfe[j, i] = c
    return cnt


@jit
def hess_body(f, args, f0, lo, hi):
    """Row pairs lo..hi-1 (``kernels.hess_items``) of the Hessian: ``args = (x, h, userh, eps,
    retry, ctl, out, err, hch, lev, stat, nfe)``, outputs (N, N); every entry i >= j extrapolated
    and mirrored (exactly symmetric).  About 10 evaluations per diagonal and 20 per off-diagonal
    entry."""
    x, h, userh, eps, retry, ctl, out, err, hch, lev, stat, nfe, fa = args
    n = x.size
    work0 = x.copy()
    work = borrowed(work0)  # the helpers take it without reference counting (kernels.borrowed)
    flat = work.reshape(n)
    T0, t0, T, t, h = _scratch(ctl[2], h)
    cnt = 0
    for k in range(lo, hi):
        cnt += _hess_row(f, work, flat, k, f0, h, userh, eps, retry, ctl, T, t, out, err, hch, lev, stat, nfe, fa)
        if n - 1 - k != k:
            cnt += _hess_row(f, work, flat, n - 1 - k, f0, h, userh, eps, retry, ctl, T, t, out, err, hch, lev, stat,
                             nfe, fa)
    return cnt + alive(T0, t0, work0)


# ------------------------------------------------------------- row-batched driver (batched f)
#
# For an f that takes many points per call (``vectorized=True``, or a numpy ufunc in
# ``derivative``), every element still open takes its next step together: the API evaluates the
# differences of a whole tableau row in one batch (:func:`rows_run`), and :func:`rows_update`
# advances each element exactly as one pass of ``rich_sequence``'s loop does (the same ``_push``,
# ``_next_h``, ``_h0`` and ``_better``; a test checks that both give the same numbers).  The
# state of each element's sequence lives in arrays instead of registers.

_S_AI, _S_RND, _S_F1, _S_F2, _S_BEST, _S_VAL, _S_HSTEP, _S_POST = range(8)  # float state columns
_I_M, _I_LEVEL, _I_BAD, _I_MET, _I_SEQ, _I_ROW, _I_CNT, _I_OPEN = range(8)  # integer state columns


@jit_cached
def _rows_begin(fs, ist, e, a0):
    """Start a sequence of element e at the nominal step a0."""
    fs[e, _S_AI] = a0
    fs[e, _S_RND] = 0.0
    fs[e, _S_F1] = 0.0
    fs[e, _S_F2] = 0.0
    fs[e, _S_BEST] = np.inf
    fs[e, _S_VAL] = np.nan
    fs[e, _S_HSTEP] = np.nan
    fs[e, _S_POST] = 0.0
    ist[e, _I_M] = 0
    ist[e, _I_LEVEL] = -1
    ist[e, _I_BAD] = 0
    ist[e, _I_MET] = 0
    ist[e, _I_ROW] = 0


@jit_outer_cached
def rows_init(x, h, userh, fs, ist):
    """Every element open, in sequence 1 at its first step."""
    for e in range(x.size):
        _rows_begin(fs, ist, e, _h0(h, userh, e, x[e], False))
        ist[e, _I_SEQ] = 0
        ist[e, _I_CNT] = 0
        ist[e, _I_OPEN] = 1


@jit_cached
def _rows_finish(e, st, x, h, userh, retry, ctl, fs, ist, res, rstat, out, err, hch, lev, stat, nfe):
    """Element e's sequence ended with status st: keep its result, start sequence 2 where
    ``rich_sequence`` would, else close the element and write its outputs."""
    atol, rtol = ctl[0], ctl[1]
    this = (max(fs[e, _S_BEST], _R_FACTOR * fs[e, _S_POST]), fs[e, _S_VAL], fs[e, _S_HSTEP],
            np.int64(ist[e, _I_LEVEL]))
    if ist[e, _I_SEQ] == 0:
        r, status = this, st
        ax = abs(x[e])
        if not (userh or ax <= 1.0 or r[0] <= retry * abs(r[1]) or r[0] <= atol + rtol * abs(r[1])):
            res[e, 0], res[e, 1], res[e, 2], res[e, 3] = r[0], r[1], r[2], np.float64(r[3])
            rstat[e] = status
            ist[e, _I_SEQ] = 1
            _rows_begin(fs, ist, e, _h0(h, userh, e, x[e], True))
            return
    else:
        first = (res[e, 0], res[e, 1], res[e, 2], np.int64(res[e, 3]))
        won = _better(first, this)
        status = rstat[e]
        if won[0] != first[0] or won[1] != first[1]:
            status = st
        r = won
    if not np.isfinite(r[1]):
        status = NONFINITE
    err[e], out[e], hch[e], lev[e] = r
    stat[e] = status
    nfe[e] += ist[e, _I_CNT]
    ist[e, _I_OPEN] = 0


@jit_cached(inline="always")
def _row_step(k, idx, d, fnew, c, scale, w, even, x, h, userh, eps, retry, ctl, fs, ist, T, t, res, rstat,
              out, err, hch, lev, stat, nfe, calm):
    """One pass of ``rich_sequence``'s loop for the open element idx[k] (see :func:`rows_update`),
    its state loaded into locals and stored back; touches element idx[k]'s state only."""
    rows, ratio, atol, rtol = ctl[2], ctl[3], ctl[0], ctl[1]
    e = idx[k]
    ist[e, _I_CNT] += c[k]
    row = ist[e, _I_ROW] + 1
    ist[e, _I_ROW] = row
    st = 1  # 1: go on
    dk = d[k]
    if scale[k] == 0.0:
        st = ROUNDING
    elif not np.isfinite(dk):
        ist[e, _I_M] = 0
        fs[e, _S_AI] = _next_h(fs[e, _S_AI], x[e], ratio)
    else:
        fs[e, _S_AI] = fs[e, _S_AI] / ratio
        f1 = fs[e, _S_F1]
        fn = fnew[k]
        rnd = max(fs[e, _S_RND], _R_RC * eps * max(fn, f1, fs[e, _S_F2]) * w[k])
        fs[e, _S_RND] = rnd
        fs[e, _S_F2] = f1
        fs[e, _S_F1] = fn
        m = ist[e, _I_M]
        ev = even[e] if even.size > 1 else even[0]
        best, val, hstep, level, bad, post, stop = _push(
            dk, scale[k], rnd, calm, m, T, t, e, fs[e, _S_BEST], fs[e, _S_VAL], fs[e, _S_HSTEP],
            ist[e, _I_LEVEL], ist[e, _I_BAD], fs[e, _S_POST], ev)
        fs[e, _S_BEST] = best
        fs[e, _S_VAL] = val
        fs[e, _S_HSTEP] = hstep
        fs[e, _S_POST] = post
        ist[e, _I_LEVEL] = level
        ist[e, _I_BAD] = bad
        if stop == 1:
            st = CONVERGED
        elif stop == 2:
            st = ROUNDING
        else:
            if m >= 1 and max(best, _R_FACTOR * post) <= atol + rtol * abs(val):
                ist[e, _I_MET] += 1
                if ist[e, _I_MET] >= 2:
                    st = CONVERGED
            else:
                ist[e, _I_MET] = 0
            if st == 1:
                ist[e, _I_M] = m + 1
    if st == 1 and row >= rows:
        st = MAXITER
    if st != 1:
        _rows_finish(e, st, x, h, userh, retry, ctl, fs, ist, res, rstat, out, err, hch, lev, stat, nfe)


@jit_outer_cached
def rows_update(idx, d, fnew, c, scale, w, even, x, h, userh, eps, retry, ctl, fs, ist, T, t, res, rstat,
                out, err, hch, lev, stat, nfe):
    """Advance the open elements idx by one row: d, fnew, c, scale, w are their differences at
    this row's steps (as a difference helper returns them), even[e] their stencil's symmetry
    (one value for all, or one per element).  One pass of ``rich_sequence``'s loop per element
    (:func:`_row_step`)."""
    calm = np.sqrt(eps)
    for k in range(idx.size):
        _row_step(k, idx, d, fnew, c, scale, w, even, x, h, userh, eps, retry, ctl, fs, ist, T, t, res, rstat,
                  out, err, hch, lev, stat, nfe, calm)


@jit_par_cached
def rows_update_parallel(idx, d, fnew, c, scale, w, even, x, h, userh, eps, retry, ctl, fs, ist, T, t, res, rstat,
                         out, err, hch, lev, stat, nfe):
    """:func:`rows_update` with the elements split over numba's threads (each touches only its
    own element's state, so the result is the same to the bit)."""
    calm = np.sqrt(eps)
    for k in prange(idx.size):
        _row_step(k, idx, d, fnew, c, scale, w, even, x, h, userh, eps, retry, ctl, fs, ist, T, t, res, rstat,
                  out, err, hch, lev, stat, nfe, calm)


#: open elements from which a row's bookkeeping runs on numba's threads (``rows_update_parallel``):
#: with a numpy f the tableau work, not f, took most of the time (bump over 10^5 points: 46 of
#: 80 ms); 0 turns it off
ROWS_PARALLEL_MIN = 512


#: elements per block of the row-batched driver: a block's tableaux (block x rows x 8 bytes, twice)
#: stay in cache while its rows run (all 10^5 points at once streamed 19 MB per row: measured
#: 2x slower)
ROWS_BLOCK = 2048


def rows_run(diffs, x, h, userh, eps, retry, ctl, even, outs, block: int = ROWS_BLOCK, progress=False) -> int:
    """Richardson over every element of x (flat, float64 view of the points or parameters) with
    the differences of each row computed by ``diffs(idx, a) -> (d, fnew, c, scale, w)`` for the
    open elements idx (flat indices into x) at their nominal steps a: one batch of f per row and
    block of elements.  ``outs`` = (value, error, step, level, status, nfev) arrays of x's size
    (nfev holds what was counted before).  Returns the evaluations made."""
    n = x.size
    total = 0
    k = min(n, block)
    # one set of state arrays for every block (fresh ones fault their pages in again: measured,
    # the first row of each block took 5x the others)
    state = (np.empty((k, 8)), np.zeros((k, 8), dtype=np.int64), np.empty((k, ctl[2])), np.empty((k, ctl[2])),
             np.empty((k, 4)), np.zeros(k, dtype=np.int64))
    with bar(-(-n // block), "richardson blocks", progress) as b:
        for lo in range(0, n, block):
            total += _rows_block(diffs, x, h, userh, eps, retry, ctl, even, outs, lo, min(n, lo + block), state)
            b.update(1)
    return total


def _rows_block(diffs, x, h, userh, eps, retry, ctl, even, outs, lo: int, hi: int, state) -> int:
    """:func:`rows_run` for the elements lo..hi-1, with the state arrays ``state``."""
    total = 0
    k = hi - lo
    fs, ist, T, t, res, rstat = (a[:k] for a in state)
    xb = x[lo:hi]
    hb = h if h.size == 1 else h[lo:hi]
    ob = tuple(o[lo:hi] for o in outs)
    eb = even if even.size == 1 else even[lo:hi]
    rows_init(xb, hb, userh, fs, ist)
    while True:
        idx = np.flatnonzero(ist[:, _I_OPEN])
        if idx.size == 0:
            return total
        d, fnew, c, scale, w = diffs(idx + lo, fs[idx, _S_AI].copy())
        total += int(np.sum(c))
        upd = rows_update_parallel if 0 < ROWS_PARALLEL_MIN <= idx.size else rows_update
        upd(idx, d, fnew, c, scale, w, eb, xb, hb, userh, eps, retry, ctl, fs, ist, T, t, res, rstat, *ob)


@jit_outer_cached
def point_row(x, x64, idx, a, s, n):
    """The points of one row of ``diff_point`` for the open points idx at nominal steps a (s:
    their directions): returns (points in x's dtype, h1, h2, start of each point's values,
    how many).  Central: x + h, x - h; one-sided: x + h (and x + 2h for n = 2)."""
    k = idx.size
    pts = np.empty(2 * k, dtype=x.dtype)
    h1 = np.empty(k)
    h2 = np.zeros(k)
    start = np.empty(k, dtype=np.int64)
    cnt = np.zeros(k, dtype=np.int64)
    q = 0
    for j in range(k):
        e = idx[j]
        xi = x[e]
        sa = s[e] * a[j] if s[e] != 0 else a[j]
        hh = np.float64(like(x64[e] + sa, xi) - xi)
        h1[j] = hh
        start[j] = q
        if hh == 0.0:
            continue
        pts[q] = like(x64[e] + hh, xi)
        q += 1
        if s[e] == 0:
            pts[q] = like(x64[e] - hh, xi)
            q += 1
        elif n == 2:
            hh2 = np.float64(like(x64[e] + 2.0 * sa, xi) - xi)
            h2[j] = hh2
            pts[q] = like(x64[e] + hh2, xi)
            q += 1
        cnt[j] = q - start[j]
    return pts[:q], h1, h2, start, cnt


@jit_outer_cached
def point_diffs(v, idx, s, n, f0, h1, h2, start, cnt):
    """``diff_point``'s answers (d, fnew, c, scale, w) from the values v of :func:`point_row`."""
    k = idx.size
    d = np.zeros(k)
    fnew = np.zeros(k)
    scale = np.zeros(k)
    w = np.zeros(k)
    for j in range(k):
        if cnt[j] == 0:
            continue
        e = idx[j]
        hh = h1[j]
        f1 = v[start[j]]
        g0 = f0[e]
        if s[e] == 0:
            f2 = v[start[j] + 1]
            if n == 1:
                d[j] = (f1 - f2) / (2.0 * hh)
                fnew[j] = max(abs(f1), abs(f2))
                w[j] = 1.0 / hh
            else:
                d[j] = ((f1 - g0) + (f2 - g0)) / (hh * hh)
                fnew[j] = max(abs(f1), abs(f2), abs(g0))
                w[j] = 4.0 / (hh * hh)
            scale[j] = hh
        elif n == 1:
            d[j] = (f1 - g0) / hh
            fnew[j] = max(abs(f1), abs(g0))
            scale[j] = abs(hh)
            w[j] = ONE_SIDED * 2.0 / abs(hh)
        else:
            f2 = v[start[j] + 1]
            hb = h2[j]
            d[j] = 2.0 * ((f1 - g0) / hh - (f2 - g0) / hb) / (hh - hb)
            fnew[j] = max(abs(f1), abs(f2), abs(g0))
            scale[j] = abs(hh)
            w[j] = ONE_SIDED * 4.0 / (hh * hh)
    return d, fnew, cnt, scale, w
