"""Numba kernels for the fixed stencils: one loop body per quantity, run serial or parallel.

Layout
------
* One *body* per quantity: ``deriv_body`` (elementwise derivative), ``grad_body``,
  ``jac_body``, ``hess_body``.  A body does the work for the items [lo, hi) (points, parameters,
  columns, row pairs) and returns the evaluations of f it made.  A *prep* function does what is
  shared by every item before the loop (f(x) for a stencil that uses the base point, the steps
  of the Hessian) and returns ``(shared, nfev)``.
* One driver runs any (prep, body) (:func:`driver`, built from one source per number of
  arguments): serial, it calls the body once for all items; parallel (``parallel=True``,
  prange), once per chunk, one chunk per thread.  A loop body exists once; its parallel build
  is the driver's, not a copy.
* ``f`` is the first argument: a numba dispatcher (numba specialises the driver, prep and body on
  it and inlines it), or numba's first-class function value for f's compiled code (the shared,
  disk-cached kernels of :mod:`fdkit.engine.entries`, one per signature of f).  The last element of every body's ``args`` is ``fa``, the tuple of f's extra
  arguments (the API's ``args=``): f is called as ``f(x, *fa)``.  The public API calls them through a small jitted entry point kept per
  (driver, prep, body, f) (see :mod:`fdkit.engine.runner`), so no dispatcher is boxed per call.

Precision
---------
Kernels are generic in the dtype of x (float64 or float32; float16 in the Python twins that run a
plain f).  The helpers :func:`like`, :func:`taken`, :func:`part` and :func:`work_copy` are plain Python functions with numba overloads that pick the type at compile
time, so the same source serves every precision and the Python twin:

* a point ``x + o*hh`` is rounded to x's precision (``like``), so f sees exactly the point the
  kernel divides for; the step actually taken is ``hh = like(x + h, x) - x``, exact, and the
  result is divided by ``hh**n``, never by the nominal h;
* the complex step is the stencil with the single offset ``1j`` (point ``x + i hh``, in
  complex64 for a float32 x), ``hh = h`` and the imaginary part of each value (``part``; a
  complex accumulator is 40 % slower, measured);
* stencil sums accumulate in float64 and are rounded once into ``out`` (x's dtype).

Conventions
-----------
Steps ``h`` are a 1-D float64 array of length 1 or x.size; with ``rel`` the step of element i is
``h * max(1, |x_i|)``.  A negative step mirrors a one-sided stencil (forward with -h is backward);
the gradient and Jacobian bodies skip a parameter whose step is 0 (with ``bounds``, the API runs
the central and the one-sided stencil over disjoint sets of parameters).  Bodies perturb a private work copy (per chunk) and restore the saved
value exactly; x itself is only read.  No fastmath anywhere: it would fold ``(x + h) - x`` into
h.  Kernels trust their inputs (the API validates); NaN propagates.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array

# Kernels that take a dispatcher are specialised per f and miss numba's disk cache in every
# new process (numba 0.68, measured), so they are not cached; helpers without f are.  Functions
# only ever called from jitted code get no CPython or cfunc wrapper: generating those is part of
# compiling every function, and the first answer waits for it.  The precision helpers are
# overloads that numba compiles out of line (an IR-inlined overload costs compile time; LLVM
# inlines them anyway: the elementwise loop still vectorises, measured).
_INNER = dict(no_cpython_wrapper=True, no_cfunc_wrapper=True)
jit = functools.partial(numba.njit, cache=False, error_model="numpy", **_INNER)
jit_cached = functools.partial(numba.njit, cache=True, error_model="numpy", **_INNER)
jit_outer = functools.partial(numba.njit, cache=False, error_model="numpy")
jit_outer_cached = functools.partial(numba.njit, cache=True, error_model="numpy")
jit_par = functools.partial(numba.njit, cache=False, error_model="numpy", parallel=True)
jit_par_cached = functools.partial(numba.njit, cache=True, error_model="numpy", parallel=True)

__all__ = [
    "count_nonfinite", "count_nonfinite2", "like", "taken", "part", "reference", "work_copy", "step", "borrowed",
    "alive",
    "driver", "no_prep",
    "deriv_body", "grad_prep", "grad_body", "jac_body", "hess_steps", "hess_prep", "hess_body", "hess_items",
]


# ------------------------------------------------------------------- borrowed arrays


def borrowed(arr):
    """In jitted code, a view of the array arr without its reference count (a null meminfo):
    passing it to an inlined helper costs no atomic increments and decrements.  Every array a
    helper takes is counted on entry and exit; in Richardson's tableau loop that was 4-6 atomic
    operations per row and most of the bookkeeping's time (runge over 10^5 points: 44 -> 17 ms
    in a test loop, the same numbers, measured).  The caller keeps arr alive while the view is
    used: an argument of the calling function is, a local array needs :func:`alive` after the
    view's last use.  In Python (the plain-f twins), arr itself."""
    return arr


@overload(borrowed)
def _borrowed_jit(arr):
    if isinstance(arr, types.Array):
        return lambda arr: _null_meminfo_view(arr)


@intrinsic
def _null_meminfo_view(typingctx, arr):
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        src = make_array(arr)(context, builder, value=args[0])
        dst = make_array(arr)(context, builder)
        for name in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(dst, name, getattr(src, name))
        dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
        dst.parent = cgutils.get_null_value(dst.parent.type)
        return dst._getvalue()

    return arr(arr), codegen


@jit_cached
def alive(*arrays):
    """0; a use of the arrays, so that numba keeps them (and so their :func:`borrowed` views)
    alive up to here."""
    return 0


# ------------------------------------------------------------------- precision helpers


def _is_complex_seq(t) -> bool:
    """numba type of a stencil's offsets (tuple or array): complex for the complex step."""
    return isinstance(getattr(t, "dtype", None), types.Complex)


def _single(t) -> bool:
    return isinstance(t, types.Float) and t.bitwidth == 32


def like(v, ref):
    """v rounded to the precision of ref (a number of x's dtype); a complex v stays complex."""
    if isinstance(v, (complex, np.complexfloating)):
        return np.result_type(ref, np.complex64).type(v)
    return type(ref)(v)


@overload(like)
def _like_jit(v, ref):
    if isinstance(v, types.Complex):
        return (lambda v, ref: np.complex64(v)) if _single(ref) else (lambda v, ref: np.complex128(v))
    return (lambda v, ref: np.float32(v)) if _single(ref) else (lambda v, ref: np.float64(v))


def taken(xi, hi, offsets):
    """The step actually taken at xi: ``like(xi + hi, xi) - xi`` (exact); the complex step
    perturbs only the imaginary part, so there it is hi itself (in xi's precision)."""
    if isinstance(offsets[0], (complex, np.complexfloating)):
        return like(hi, xi)
    return like(xi + hi, xi) - xi


@overload(taken)
def _taken_jit(xi, hi, offsets):
    if _is_complex_seq(offsets):
        return lambda xi, hi, offsets: like(hi, xi)
    return lambda xi, hi, offsets: like(xi + hi, xi) - xi


def part(v):
    """The part of a stencil sum that carries the derivative: Im for the complex step."""
    return v.imag if isinstance(v, (complex, np.complexfloating)) else v


@overload(part)
def _part_jit(v):
    if isinstance(v, types.Complex):
        return lambda v: v.imag
    return lambda v: v


def reference(v, offsets):
    """The value every stencil term is taken relative to: ``sum_k w_k f_k = sum_k w_k (f_k - r)``
    because the weights of a derivative sum to 0, and differences of equal values are exactly 0,
    so an f that does not change gives exactly 0 (a sparsity pattern stays sparse).  r is the
    first value of the stencil; 0 for a one-point stencil (the complex step; f itself, with
    offset 0 and n = 0, which the API uses for f's values) where nothing is subtracted."""
    if len(offsets) == 1 or isinstance(offsets[0], (complex, np.complexfloating)):
        return 0.0
    return v


@overload(reference)
def _reference_jit(v, offsets):
    if _is_complex_seq(offsets) or (isinstance(offsets, types.UniTuple) and offsets.count == 1):
        return lambda v, offsets: 0.0  # one point (the complex step, or f itself): no subtraction
    return lambda v, offsets: v


def work_copy(x, offsets):
    """A private copy of x for a body to perturb: complex (complex64 for float32 and float16 x)
    for the complex step."""
    if isinstance(offsets[0], (complex, np.complexfloating)):
        return x.astype(np.result_type(x.dtype, np.complex64))
    return x.copy()


@overload(work_copy)
def _work_copy_jit(x, offsets):
    if _is_complex_seq(offsets):
        if x.dtype.bitwidth == 32:
            return lambda x, offsets: x.astype(np.complex64)
        return lambda x, offsets: x.astype(np.complex128)
    return lambda x, offsets: x.copy()


@jit_cached(inline="always")  # inlined in numba IR: an out-of-line call stops LLVM vectorising
def step(h, rel, i, xi):
    """The nominal step of element i: h[i] (or h[0]), times max(1, |x_i|) if ``rel``."""
    hi = h[0] if h.size == 1 else h[i]
    if rel:
        hi = hi * max(1.0, abs(xi))
    return hi


@jit_cached(inline="always")
def _power(hh, n):
    """hh**n (n >= 0) by multiplication (a call of pow stops LLVM vectorising the loop over points;
    so does starting the product from 1.0 instead of hh: measured 2.4 against 4.8 ms)."""
    p = hh
    for _ in range(n - 1):
        p = p * hh
    return p if n > 0 else 1.0


@jit_outer_cached
def count_nonfinite(x):
    """Number of NaN/inf entries of a float array (any shape)."""
    c = 0
    for v in x.flat:
        if not np.isfinite(v):
            c += 1
    return c


@jit_outer_cached
def count_nonfinite2(a, b):
    """NaN/inf entries of two float arrays together (one call from Python instead of two)."""
    return count_nonfinite(a) + count_nonfinite(b)


# -------------------------------------------------------------------------- drivers


_DRIVER_SRC = """
def run(f, prep, body, n, {a}):
    args = ({a},)
    shared, cnt = prep(f, args)
{loop}
"""
_SERIAL_LOOP = "    return cnt + body(f, args, shared, 0, n)"
# prange hands the variables its loop uses to a gufunc, which cannot take a tuple nested in a
# tuple (a stencil tuple inside args): the loop builds args from the spelled-out arguments
_PARALLEL_LOOP = """    nchunk = min(get_num_threads(), max(n, 1))
    counts = np.zeros(nchunk, dtype=np.int64)
    for c in prange(nchunk):
        counts[c] = body(f, ({a},), shared, c * n // nchunk, (c + 1) * n // nchunk)
    return cnt + counts.sum()"""


@functools.lru_cache(maxsize=None)
def driver(nargs: int, parallel: bool = False, jitted: bool = True):
    """The driver of every (prep, body) with nargs arguments: ``run(f, prep, body, n, *args)``
    calls ``prep`` once, then ``body`` over all n items (serial) or over one chunk of them per
    thread (``parallel``: prange; each call of the body makes its own work copy, so chunks share
    nothing they write but disjoint parts of the outputs).  Returns nfev.  Both are built from
    one source; ``jitted=False`` gives the plain Python serial driver for a plain f.
    """
    a = ", ".join(f"a{i}" for i in range(nargs))
    loop = (_PARALLEL_LOOP if parallel else _SERIAL_LOOP).format(a=a)
    ns = {"np": np, "prange": prange, "get_num_threads": numba.get_num_threads}
    exec(_DRIVER_SRC.format(a=a, loop=loop), ns)  # noqa: S102 - fixed template, no user text
    fn = ns["run"]
    fn.__doc__ = driver.__doc__
    if not jitted:
        return fn
    return (jit_par if parallel else jit_outer)(fn)


@jit
def no_prep(f, args):
    """Nothing shared: ``(0, 0)``."""
    return 0, 0


# ------------------------------------------------------------------------ derivative


@jit
def deriv_body(f, args, shared, lo, hi):
    """Elementwise n-th derivative of a scalar f at the points lo..hi-1 of x (1-D).

    ``args = (x, h, rel, offsets, weights, n, out)``;
    ``out[i] = sum_k w_k (part(f(x_i + o_k hh_i)) - r) / hh_i**n`` with r the first value
    (``reference``).  One fused loop, no temporaries; the stencil is a tuple, so LLVM unrolls it
    and vectorises the loop over points.  nfev = len(offsets) per point.
    """
    x, h, rel, offsets, weights, n, out, fa = args
    for i in range(lo, hi):
        xi = x[i]
        hh = taken(xi, step(h, rel, i, xi), offsets)
        v = part(f(like(xi + offsets[0] * hh, xi), *fa))
        r = reference(v, offsets)
        acc = weights[0] * (v - r)
        for k in range(1, len(offsets)):
            acc += weights[k] * (part(f(like(xi + offsets[k] * hh, xi), *fa)) - r)
        out[i] = acc / _power(hh, n)
    return (hi - lo) * len(offsets)


# -------------------------------------------------------------------------- gradient


@jit
def grad_prep(f, args):
    """f(x) once, for a stencil that uses the base point: ``(f0, 1)``, or ``(f0, 0)`` when the
    caller knows it (``f0known``, the body's second-last argument, holds it: size 1; size 0 when
    unknown).  A stencil without the base point, as the complex step, runs with ``no_prep``."""
    known = args[-2]
    if known.size == 1:
        return np.float64(known[0]), 0
    return np.float64(f(args[0], *args[-1])), 1


@jit
def grad_body(f, args, f0, lo, hi):
    """Partial derivatives lo..hi-1 of a scalar f: R^N -> R (x of any shape, e.g. a matrix W).

    ``args = (x, h, rel, offsets, weights, out, f0known)``; ``out[i] = sum_k w_k (part(f(x + o_k hh_i e_i))
    - r) / hh_i`` (r: ``reference``) (out flat, of size N), with f0 = f(x) for the base point.  Forward costs 1+N
    evaluations in all (f(x) once, in ``grad_prep``), central (p=2) 2N, complex N.
    """
    x, h, rel, offsets, weights, out, f0known, fa = args
    work = work_copy(x, offsets)
    flat = work.reshape(work.size)
    xr = x.reshape(x.size)
    cnt = 0
    for i in range(lo, hi):
        xi = xr[i]
        hh = taken(xi, step(h, rel, i, xi), offsets)
        if hh == 0.0:  # a step of 0: this parameter is another stencil's (``bounds``)
            continue
        acc = 0.0
        r = 0.0
        for k in range(len(offsets)):
            o = offsets[k]
            if o == 0.0:
                v = np.float64(f0)
            else:
                flat[i] = like(xi + o * hh, xi)
                v = np.float64(part(f(work, *fa)))
                cnt += 1
            if k == 0:
                r = reference(v, offsets)
            acc += weights[k] * (v - r)
        flat[i] = xi  # restore the saved value exactly
        out[i] = acc / hh
    return cnt


# -------------------------------------------------------------------------- Jacobian


@jit
def jac_body(f, args, shared, lo, hi):
    """Columns lo..hi-1 of the Jacobian (M, N) of f: R^N -> R^M (f returns any shape; M its size).

    ``args = (x, h, rel, offsets, weights, f0, jac)``: f0 = ravel(f(x)) (the API's probe, used
    for the base point), jac (M, N) float64 zeros.  Column i is
    ``sum_k w_k (part(f(x + o_k hh_i e_i)) - r) / hh_i`` (r: ``reference``), accumulated before
    the one division: a component that does not change gives exactly 0.  Each f(x) is read before x is restored, so an f that returns its
    input (or a view of it) is differentiated correctly.
    """
    x, h, rel, offsets, weights, f0, jac, fa = args
    m = jac.shape[0]
    work = work_copy(x, offsets)
    flat = work.reshape(work.size)
    xr = x.reshape(x.size)
    ref = np.zeros(m)  # the first value of each component's stencil (``reference``)
    cnt = 0
    for i in range(lo, hi):
        xi = xr[i]
        hh = taken(xi, step(h, rel, i, xi), offsets)
        if hh == 0.0:  # a step of 0: this column is another stencil's (``bounds``)
            continue
        for k in range(len(offsets)):
            o = offsets[k]
            if o == 0.0:
                for r in range(m):
                    if k == 0:
                        ref[r] = reference(f0[r], offsets)
                    jac[r, i] += weights[k] * (f0[r] - ref[r])
            else:
                flat[i] = like(xi + o * hh, xi)
                fk = np.ravel(f(work, *fa))
                cnt += 1
                if fk.size != m:
                    raise ValueError("jacobian: f returned arrays of different sizes at different points")
                for r in range(m):
                    v = np.float64(part(fk[r]))
                    if k == 0:
                        ref[r] = reference(v, offsets)
                    jac[r, i] += weights[k] * (v - ref[r])
                flat[i] = xi
        for r in range(m):
            jac[r, i] = jac[r, i] / hh
    return cnt


# --------------------------------------------------------------------------- Hessian


@jit
def hess_diag(f, xw, flat, i, hi, f0, fa):
    """``(f(x + hi e_i) - 2 f(x) + f(x - hi e_i)) / hi**2`` (f0 = f(x)) and the larger |f| of the
    two new points; xw is perturbed through flat and restored exactly.  2 evaluations."""
    xi = flat[i]
    flat[i] = xi + hi
    fp = np.float64(f(xw, *fa))
    flat[i] = xi - hi
    fm = np.float64(f(xw, *fa))
    flat[i] = xi
    return ((fp - f0) + (fm - f0)) / (hi * hi), max(abs(fp), abs(fm))


@jit
def hess_cross(f, xw, flat, i, j, hi, hj, fa):
    """The four-point formula ``(f(++) - f(+-) - f(-+) + f(--)) / (4 hi hj)`` in (x_i, x_j) and
    the largest |f| of its points; xw restored exactly.  4 evaluations."""
    xi = flat[i]
    xj = flat[j]
    flat[i] = xi + hi
    flat[j] = xj + hj
    fpp = np.float64(f(xw, *fa))
    flat[j] = xj - hj
    fpm = np.float64(f(xw, *fa))
    flat[i] = xi - hi
    fmm = np.float64(f(xw, *fa))
    flat[j] = xj + hj
    fmp = np.float64(f(xw, *fa))
    flat[i] = xi
    flat[j] = xj
    return ((fpp - fpm) - (fmp - fmm)) / (4.0 * hi * hj), max(abs(fpp), abs(fpm), abs(fmm), abs(fmp))


def hess_items(n: int) -> int:
    """Work items of a Hessian body: item k holds rows k and n-1-k, so every item costs about
    N+1 entries and chunks of items balance over threads."""
    return (n + 1) // 2


@jit_outer_cached
def hess_steps(x, h, rel):
    """The steps actually taken for every element of x (float64 array)."""
    xr = x.reshape(x.size)
    hh = np.empty(x.size)
    for i in range(x.size):
        hh[i] = taken(xr[i], step(h, rel, i, xr[i]), (1.0,))
    return hh


@jit
def hess_prep(f, args):
    """f(x) and the steps actually taken: ``((f0, hh), 1)``."""
    x, h, rel, out, fa = args
    return (np.float64(f(x, *fa)), hess_steps(x, h, rel)), 1


@jit
def _hess_row(f, work, flat, i, hh, f0, out, fa):
    """Row i of the Hessian up to the diagonal, mirrored; nfev."""
    out[i, i] = hess_diag(f, work, flat, i, hh[i], f0, fa)[0]
    for j in range(i):
        v = hess_cross(f, work, flat, i, j, hh[i], hh[j], fa)[0]
        out[i, j] = v
        out[j, i] = v
    return 2 + 4 * i


@jit
def hess_body(f, args, shared, lo, hi):
    """Row pairs lo..hi-1 (see ``hess_items``) of the Hessian (N, N) of a scalar f, central, O(h^2).

    ``args = (x, h, rel, out)``.  Diagonal: ``(f(x + hh_i e_i) - 2 f(x) + f(x - hh_i e_i)) /
    hh_i**2``; off it (j < i) the four-point formula, written to (i, j) and (j, i): exactly
    symmetric.  nfev = 1 + 2N + 4 N(N-1)/2 = 1 + 2N^2 in all.
    """
    x, h, rel, out, fa = args
    f0, hh = shared
    n = x.size
    # the helpers take the work copy without reference counting: 1.4 against 1.6 times the floor
    # of 2N^2 + 1 evaluations at N = 30 (rosen, measured)
    work0 = x.copy()
    work = borrowed(work0)
    flat = work.reshape(n)
    cnt = 0
    for k in range(lo, hi):
        cnt += _hess_row(f, work, flat, k, hh, f0, out, fa)
        if n - 1 - k != k:
            cnt += _hess_row(f, work, flat, n - 1 - k, hh, f0, out, fa)
    return cnt + alive(work0)
