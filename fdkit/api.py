"""Public API: validate -> plan (working precision, steps) -> engine -> reshape -> result.

Order of work in every function: type checks (TypeError) -> value checks (ValueError) ->
the working precision (a jitted f by compiling it for x's type, no evaluation spent; a plain f
by one probe at x, counted in nfev and reused where the stencil needs f(x)) -> steps ->
engine (:mod:`fdkit.engine`) -> reshape -> result.
"""

from __future__ import annotations

import time
import warnings
import weakref
from dataclasses import dataclass
from typing import Callable, Literal

import numba
import numpy as np
from numba import types
from numpy.typing import ArrayLike, NDArray

from ._result import DerivativeResult
from ._validate import (as_real_array, check_bounds, check_callable, check_direction, check_flag, check_h, check_maxiter,
                        check_nonneg, check_ratio, raise_nonfinite_x, warn_tiny_h)
from .engine import kernels as K
from .engine import richardson as R
from .engine import batch as B
from .engine import runner as RN
from ._progress import check_progress
from .engine.workers import Workers
from .engine.evaluate import elementwise_caller, is_elementwise, stencil_derivative
from .engine.runner import (COMPLEX_HINT, array_f, as_scalar, bind, direct, fname, is_jitted, jitted_result, probe,
                            python_kernel, result_dtype, run, scalar_f)
from .methods import check_method
from .stencils import Stencil, get_stencil
from .steps import RICH_RATIO, RICH_ROWS, eps_of, fit_to_bounds, richardson_retry, working_dtype
from .steps import step_factor as _step_factor

__all__ = ["derivative", "gradient", "jacobian", "hessian"]

Method = Literal["forward", "backward", "central", "complex", "richardson"]

_ARRAY_TYPES: dict = {}
_ARG_TYPES: dict = {}
_DEFAULT_H: dict = {}
_NUMBA_FLOAT = {np.dtype(np.float64): types.float64, np.dtype(np.float32): types.float32}
_NUMBA_COMPLEX = {np.dtype(np.float64): types.complex128, np.dtype(np.float32): types.complex64}


_STENCILS: dict = {}
_ADAPTIVE = object()
_UNKNOWN = np.zeros(0)  # f(x) not given (the kernels' f0known of size 0); never written
_UNKNOWN.flags.writeable = False
_GROUPS: dict = {}  # (stencil, working dtype) -> the default steps' one group
# a jitted f's default gradients: (id(f), method, x's dtype char, shape) -> what the kernel needs,
# recorded by a first call that took the full path (see _fast_gradient); f's entries are removed
# when f dies (weakref.finalize), so an id found here is a live jitted f's
_FAST: dict = {}


def _stencil(method, order, n, what: str) -> Stencil | None:
    """The stencil of a fixed method, or None for an adaptive one (n = 1 or 2, no order)."""
    try:
        st = _STENCILS.get((method, order, type(order), n, type(n), what))
    except TypeError:  # unhashable method/order/n: the checks below say what is wrong
        st = None
    if st is not None:
        return None if st is _ADAPTIVE else st
    st = _check_stencil(method, order, n, what)
    _STENCILS[(method, order, type(order), n, type(n), what)] = _ADAPTIVE if st is None else st
    return st


def _check_stencil(method, order, n, what: str) -> Stencil | None:
    m = check_method(method, what)
    if m.adaptive:
        get_stencil("central", None, n)  # the same type rules (and messages) as central
        if n not in m.derivatives:
            raise ValueError(f"n={n} is not available for method={method!r}; use n=1 or n=2 "
                             "(method='central' offers n up to 4)")
        if order is not None:
            raise ValueError(
                f"order={order!r} is not used by method={method!r}: it raises the order itself, "
                "per element, until its error estimate stops falling; leave order=None"
            )
        return None
    return get_stencil(method, order, n)


def _array_type(dtype, ndim: int):
    key = (dtype, ndim)
    t = _ARRAY_TYPES.get(key)
    if t is None:
        t = _ARRAY_TYPES[key] = types.Array(dtype, ndim, "C")
    return t


@dataclass
class _Plan:
    """What one call works with: x in its own precision, the working precision, and f ready to
    run (the user's jitted f, or a plain f wrapped so that each value is checked)."""

    what: str
    x: np.ndarray  # C-contiguous, x's dtype (integers -> float64); only read by the kernels
    wd: np.dtype  # working precision: the coarser of x's dtype and f's result dtype
    f: Callable  # the jitted f, or the checking wrapper of a plain f
    jitted: bool
    f0: object = None  # a plain f's probe value at x (a float, or a flat float64 array)
    nprobe: int = 0  # evaluations spent on the probe
    parallel: bool = False
    fa: tuple = ()  # f's extra arguments, passed by the kernels (a plain f has them bound)
    raw: Callable | None = None  # a plain f itself (its extra arguments bound), for whole-array calls
    ncalls: int = 0  # calls of a batched f so far
    vectorized: bool = False  # a plain f declared elementwise (derivative) or batched
    batch: Callable | None = None  # a batched f's checking caller: stack (k, *x.shape) -> (k,) or (k, M)
    batch_bytes: int | None = None  # the bound on one chunk of stacked points
    workers: Workers | None = None  # where f runs (workers=); None: here
    progress: bool | None = False  # a progress bar over chunks (batched f, workers)
    fsig: tuple | None = None  # a jitted f: (key, argument types) of the overload the kernels call

    @property
    def eps(self) -> float:
        return eps_of(self.wd)

    def result(self, value, nfev, **kw) -> DerivativeResult:
        kw.setdefault("ncalls", self.ncalls if self.vectorized else int(nfev))
        if "status" not in kw:  # a fixed stencil: 0 where the value is finite, -3 where not
            fin = np.isfinite(value)
            kw["status"] = np.where(fin, 0, -3) if np.ndim(fin) else (0 if fin else -3)
            kw["success"] = fin if np.ndim(fin) else bool(fin)
        return DerivativeResult(value=value, nfev=int(nfev), precision=self.wd.name, **kw)


def _x_dtype(xa: np.ndarray) -> np.dtype:
    """x's precision: float64, float32 or float16 as given; integers (and longdouble) -> float64."""
    d = xa.dtype
    return d if d.kind == "f" and d.itemsize <= 8 else np.dtype(np.float64)


def _check_args(args, kwargs) -> tuple[tuple, dict]:
    if isinstance(args, list):
        args = tuple(args)
    if not isinstance(args, tuple):
        raise TypeError(f"args must be a tuple of f's extra arguments, got {type(args).__name__} {args!r}; "
                        "for one argument write args=(a,)")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise TypeError(f"kwargs must be a dict of f's keyword arguments or None, got {type(kwargs).__name__}")
    return args, kwargs


def _plan(f, x, what: str, *, complex_step: bool = False, parallel: bool = False, copy: bool = True,
          args=(), kwargs=None, vectorized: bool = False, workers=None, adaptive: bool = False, f0=None,
          progress: bool | None = False) -> _Plan:
    """Check x, learn f's precision and wrap a plain f (see the module docstring); ``progress``
    for the chunked paths (a batched f, workers, richardson's rows)."""
    plan = _make_plan(f, x, what, complex_step, parallel, copy, args, kwargs, vectorized, workers, adaptive, f0,
                      progress)
    if progress is not False:
        plan.progress = progress
    return plan


def _make_plan(f, x, what, complex_step, parallel, copy, args, kwargs, vectorized, workers, adaptive, f0,
               progress) -> _Plan:
    args, kwargs = _check_args(args, kwargs)
    given = f0 is not None
    xa = as_real_array(x)
    xd = _x_dtype(xa)
    xk = np.array(xa, dtype=xd, order="C") if copy else np.asarray(xa, dtype=xd, order="C")
    if _count_nonfinite(xk):
        raise_nonfinite_x(xa)
    expect = "array" if what == "jacobian" else "scalar"
    if workers is not None:
        if adaptive:
            raise ValueError(f"{what}: workers= runs the fixed stencils (every point known in advance); "
                             "method='richardson' decides its next step from the last one and runs here")
        w = Workers(workers, what, progress)
        if is_jitted(f):  # a numba f runs as a Python callable in the workers
            f = _PlainCall(f)
        if args or kwargs:
            f = bind(f, args, kwargs)
        w.check_picklable(f)
        plan = (_batched_plan(f, xk, xd, what, complex_step, (), None, False) if vectorized and what != "derivative"
                else _plan(f, xk, what, complex_step=complex_step, vectorized=vectorized))
        plan.workers, plan.raw, plan.vectorized = w, f, vectorized
        plan.batch = plan.batch or (lambda pts: None)  # the points path (see _batched_at)
        return plan
    if vectorized and what != "derivative":
        return _batched_plan(f, xk, xd, what, complex_step, args, kwargs, parallel, f0)
    if is_jitted(f):
        if xd not in _NUMBA_FLOAT:
            raise TypeError(f"{what}: numba computes in float32 or float64, not {xd}; pass x as float32 "
                            "(or use a plain Python f, which fdkit runs in float16 too)")
        if kwargs:
            raise TypeError(f"{what}: a numba @njit f takes its extra arguments positionally: pass "
                            f"args=({', '.join(kwargs)},) in f's order instead of kwargs")
        akey = (xd.char, xk.ndim, complex_step, what == "derivative")
        argtype = _ARG_TYPES.get(akey)
        if argtype is None:  # (hashing numba types on every call costs a microsecond)
            scalar = (_NUMBA_COMPLEX if complex_step else _NUMBA_FLOAT)[xd]
            argtype = _ARG_TYPES[akey] = scalar if what == "derivative" else _array_type(scalar, xk.ndim)
        extra = tuple(numba.typeof(a) for a in args) if args else ()
        rd = jitted_result(f, argtype, expect, what, complex_step, key=(xd.char, xk.ndim, extra), extra=extra)
        plan = _Plan(what, xk, working_dtype(xd, rd), f, True, parallel=parallel, fa=args,
                     fsig=((akey, extra), (argtype, *extra)))
        if given:  # f(x) known to the caller: the stencils that use the base point reuse it
            plan.f0 = np.asarray(f0, dtype=np.float64).ravel() if what == "jacobian" else float(f0)
        return plan
    if args or kwargs:
        f = bind(f, args, kwargs)
    if parallel:
        warnings.warn(f"{what}: parallel=True runs serially for a plain Python f ({fname(f)}): threads cannot "
                      "run Python code in parallel; use a numba @njit f for threads", RuntimeWarning, stacklevel=4)
    if what == "derivative" and (vectorized or is_elementwise(f)):
        x0 = xk.reshape(-1)[:1] if xk.size else np.zeros(1, dtype=xd)
        call, _ = elementwise_caller(scalar_f(f, what, complex_step), f, what, False, True)
        r0 = call(x0)  # checks the shape (one value per point)
        rd = result_dtype(np.asarray(r0))
        f0 = float(np.real(r0[0])) if xk.size else None
        g = scalar_f(f, what, complex_step)
    elif what == "derivative":
        x0 = xk.reshape(-1)[0] if xk.size else xd.type(0)
        r0, rd = probe(f, x0, what)
        f0 = as_scalar(r0, what, fname(f)) if xk.size else None
        g = scalar_f(f, what, complex_step)
    elif what == "jacobian":
        g = array_f(f, what, complex_step)
        r0, rd = (f0, result_dtype(f0)) if f0 is not None else probe(f, xk.copy(), what)
        f0 = array_f(lambda v: r0, what)(None)
    else:
        g = scalar_f(f, what, complex_step)
        r0, rd = (f0, result_dtype(f0)) if f0 is not None else probe(f, xk.copy(), what)
        f0 = as_scalar(r0, what, fname(f))
    elementwise = what == "derivative" and (vectorized or is_elementwise(f))
    nprobe = 0 if given else (1 if xk.size or what != "derivative" else 0)
    plan = _Plan(what, xk, working_dtype(xd, rd), g, False, f0, nprobe, raw=f, vectorized=vectorized or elementwise)
    plan.ncalls = plan.nprobe
    return plan


class _PlainCall:
    """A numba f called as a plain Python function (for workers=): picklable if f is."""

    def __init__(self, f):
        self.f = f
        self.__name__ = fname(f)

    def __call__(self, x):
        return self.f(x)


def _batched_plan(f, xk, xd, what, complex_step, args, kwargs, parallel, known=None) -> _Plan:
    """A batched f (``vectorized=True``): probed with a stack of one point (its result's shape
    and dtype checked), and wrapped per point for the methods that walk point by point."""
    if args or kwargs:
        f = bind(f, args, kwargs)
    if parallel:
        warnings.warn(f"{what}: parallel=True does not apply to a batched f (vectorized=True), which gets the "
                      "points in stacks; it runs as given", RuntimeWarning, stacklevel=4)
    name = fname(f)
    probe_call = B.batched_caller(f, what, name, () if what != "jacobian" else None)
    r0 = probe_call(xk[None].copy()) if known is None else np.asarray(known)[None]
    call = B.batched_caller(f, what, name, () if what != "jacobian" else r0.shape[1:])

    def one(v):  # a single point, for the per-point walks (richardson)
        return call(np.asarray(v)[None])[0]

    if what == "jacobian":
        f0 = np.asarray(np.real(r0[0]), dtype=np.float64).ravel()
        g = array_f(one, what, complex_step)
    else:
        f0 = float(np.real(r0[0]))
        g = scalar_f(one, what, complex_step)
    probed = int(known is None)
    plan = _Plan(what, xk, working_dtype(xd, result_dtype(r0)), g, False, f0, probed, raw=f, vectorized=True,
                 batch=call)
    plan.ncalls = probed
    return plan


def _step_array(g: "_Group", xflat: np.ndarray) -> np.ndarray:
    """A group's nominal steps for every element (absolute, signed with bounds)."""
    if g.rel:
        return g.h[0] * np.maximum(1.0, np.abs(xflat.astype(np.float64)))
    return np.broadcast_to(g.h, xflat.shape).astype(np.float64)


def _points(plan: _Plan, pts, dt) -> tuple[np.ndarray, int]:
    """f at the perturbations pts: over the workers (in chunks of about 4 per worker), or by a
    batched f here in chunks under batch_bytes.  Returns (values, calls or tasks); checks shapes."""
    if plan.workers is None:
        per = B.chunk_rows(len(pts), plan.x.size * np.dtype(dt).itemsize, plan.batch_bytes)
        return B.evaluate(plan.x, pts, dt, plan.batch, per, plan.progress)
    per = None
    if plan.vectorized:
        per = max(1, min(B.chunk_rows(len(pts), plan.x.size * np.dtype(dt).itemsize, plan.batch_bytes),
                         -(-len(pts) // (4 * plan.workers.n))))
    vals, tasks = plan.workers.evaluate(plan.raw, plan.x, pts, dt, plan.vectorized, per)
    want = (len(pts),) if plan.what != "jacobian" else (len(pts), np.size(plan.f0))
    if plan.what == "jacobian" and vals.ndim > 2:
        vals = vals.reshape(len(pts), -1)
    if vals.shape != want:
        raise ValueError(f"{plan.what}: f's results on the workers have shape {vals.shape[1:]} per point; expected "
                         f"{want[1:] or 'a number'}, as at x")
    return vals, tasks


def _batched_at(plan: _Plan, groups: list, scale: float, cs: bool, out: np.ndarray) -> int:
    """A fixed stencil's gradient (out of shape (N,)) or Jacobian (out (M, N)) from a batched f:
    every group's points listed, stacked in chunks under ``batch_bytes`` and evaluated one chunk
    per call.  Returns the points evaluated; counts the calls in plan.ncalls."""
    xf = plan.x.reshape(-1)
    dt = np.result_type(plan.x.dtype, np.complex64) if cs else plan.x.dtype
    nfev = 0
    for g in groups:
        items = np.arange(xf.size) if g.mask is None else np.flatnonzero(g.mask)
        hh = B.taken_steps(xf, _step_array(g, xf) * scale, cs)
        pts = B.stencil_points(g.st, hh, items)
        vals, calls = _points(plan, pts, dt)
        if cs and vals.dtype.kind != "c":
            raise TypeError(f"{plan.what}: {fname(plan.raw)} returned dtype {vals.dtype} for complex input, so the "
                            f"imaginary part that carries the derivative is lost; {COMPLEX_HINT}")
        plan.ncalls += calls
        nfev += len(pts)
        d = B.stencil_sums(g.st, vals.reshape((items.size, -1) + vals.shape[1:]), plan.f0, hh[items])
        if out.ndim == 1:
            out[items] = d
        else:
            out[:, items] = d.T
    return nfev


def _steps(h, st: Stencil, plan: _Plan, n: int) -> tuple[np.ndarray, bool]:
    """(h vector, relative?) for the kernels: the default steps are relative to max(1, |x|),
    sized for the working precision; a user h is checked in it."""
    if h is None:
        key = (st, plan.wd)
        hv = _DEFAULT_H.get(key)
        if hv is None:
            hv = _DEFAULT_H[key] = np.array([_step_factor(st.method, st.order, n, plan.wd)])
        return hv, True
    hv = check_h(h, plan.x.shape)
    if st.method != "complex":
        warn_tiny_h(hv, plan.x.reshape(-1), plan.wd, stacklevel=4)
    return hv, False


def _h_used(hvec: np.ndarray, rel: bool, x: np.ndarray):
    """The nominal steps, in x's shape (a float for a 0-d x)."""
    xa = np.abs(x.astype(np.float64))
    if rel:
        h = hvec[0] * np.maximum(1.0, xa)
    else:
        h = hvec.reshape(x.shape).copy() if hvec.size > 1 else np.full(x.shape, hvec[0])
    return float(h) if np.ndim(h) == 0 else h


def _count_nonfinite(a: np.ndarray) -> int:
    """NaN and inf entries: jitted in float32/float64, numpy in float16 (numba has no float16)."""
    if a.dtype in _NUMBA_FLOAT:  # 0.2 us, no temporary; numpy's isfinite costs 1-1.5 us at N = 10
        return int(K.count_nonfinite(a))
    return int(np.count_nonzero(~np.isfinite(a)))


def _warn_nonfinite(value, what: str, stacklevel: int = 3) -> None:
    value = np.asarray(value)
    bad = _count_nonfinite(value)
    if bad:
        warnings.warn(
            f"{what}: f returned NaN or inf at or near x ({bad} of {value.size} entries of the result are "
            "not finite); check f at x, or a smaller h if f is undefined nearby",
            RuntimeWarning,
            stacklevel=stacklevel,  # 3: _warn_nonfinite -> public function -> the caller
        )


def _shaped(out: np.ndarray, plan: _Plan):
    """A flat result in x's shape and dtype (a float for a 0-d x)."""
    return _like_x(out, plan.x)


def _like_x(out: np.ndarray, x: np.ndarray):
    v = out.reshape(x.shape).astype(x.dtype, copy=False)
    return float(v) if x.ndim == 0 else v


def _check_batch_bytes(v) -> int | None:
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"batch_bytes must be a positive integer (bytes), got {type(v).__name__} {v!r}")
    if v <= 0:
        raise ValueError(f"batch_bytes must be positive, got {v}")
    return int(v)


def _rich_controls(st, atol, rtol, maxiter, step_factor, step_direction, bounds) -> tuple | None:
    """The adaptive method's controls ``(atol, rtol, rows, ratio)`` for 'richardson' (None for a
    fixed stencil, which refuses them: one stencil at one step has nothing to control)."""
    if (st is not None and atol is None and rtol is None and maxiter is None and step_factor is None
            and type(step_direction) is int and step_direction == 0):  # the per-call fast path
        return None
    given = [k for k, v in (("atol", atol), ("rtol", rtol), ("maxiter", maxiter), ("step_factor", step_factor))
             if v is not None]
    if not (isinstance(step_direction, (int, float)) and step_direction == 0):
        given.append("step_direction")
    if st is not None:
        if given:
            raise ValueError(f"{', '.join(given)} control method='richardson'; method={st.method!r} is one stencil "
                             "at one step: give h (and bounds to keep its points inside f's domain)")
        return None
    if bounds is not None:
        raise ValueError("bounds apply to the fixed stencils; with method='richardson' give step_direction=+1 or -1 "
                         "where x is next to the edge of f's domain (and h for the first, largest step)")
    return (check_nonneg(atol, "atol"), check_nonneg(rtol, "rtol"), check_maxiter(maxiter, RICH_ROWS),
            check_ratio(step_factor, RICH_RATIO))


def _rich(h, plan: _Plan, shape: tuple, ctl: tuple, dirs: np.ndarray | None = None):
    """(common arguments, outputs) of a richardson body: the user's h is the first (largest)
    step of a single sequence; without one the policy of :data:`fdkit.steps.RICHARDSON` runs.
    common = (first steps, user-given?, eps, retry, ctl[, dirs]); outputs = value, error, step,
    level, status and nfev arrays of ``shape``."""
    if h is None:
        hvec, userh = np.zeros(1), False
    else:
        hvec, userh = check_h(h, plan.x.shape), True
    outs = (np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.int64),
            np.empty(shape, dtype=np.int64), np.empty(shape, dtype=np.int64))
    common = (hvec, userh, plan.eps, richardson_retry(plan.wd), ctl)
    return (common if dirs is None else (*common, dirs)), outs


def _rich_result(plan: _Plan, value, outs, nfev, n: int, shape: tuple | None = None) -> DerivativeResult:
    """A richardson run's result: error, step, level, status and nfev per element in the value's
    shape (scalars for a 0-d x)."""
    _, err, hch, lev, stat, nfe = outs
    shape = plan.x.shape if shape is None else shape
    if shape:
        e, hc, lv, sv, nv = (a.reshape(shape) for a in (err, hch, lev, stat, nfe))
        ok = sv == 0
    else:
        e, hc, lv, sv, nv = float(err.flat[0]), float(hch.flat[0]), int(lev.flat[0]), int(stat.flat[0]), int(nfe.flat[0])
        ok = sv == 0
    return plan.result(value, nfev, h=hc, method="richardson", order=None, n=n, error=e, level=lv, status=sv,
                       success=ok, element_nfev=nv)


@dataclass
class _Group:
    """The elements one fixed stencil runs over: all of them (``mask`` None; steps ``h`` of length
    1 or N, relative with ``rel``), or with ``bounds`` a part (absolute signed steps of length N,
    0 where another group's)."""

    st: Stencil
    h: np.ndarray
    rel: bool
    mask: np.ndarray | None = None


def _fixed_groups(plan: _Plan, st: Stencil, h, bounds, n: int) -> list[_Group]:
    """The stencil(s) and steps of a fixed method; with ``bounds`` every point stays inside them:
    a central stencil that does not fit becomes the forward stencil of the same accuracy (at most
    4) with steps up or down, a one-sided one flips side, and where neither fits the step shrinks
    (:func:`fdkit.steps.fit_to_bounds`, scipy's rule).  The complex step never leaves x."""
    if h is None and bounds is None:  # the common call: one group, cached per stencil and precision
        g = _GROUPS.get((st, plan.wd))
        if g is None:
            hvec, rel = _steps(h, st, plan, n)
            g = _GROUPS[(st, plan.wd)] = [_Group(st, hvec, rel)]
        return g
    hvec, rel = _steps(h, st, plan, n)
    b = check_bounds(bounds, plan.x)
    if b is None or st.method == "complex":
        return [_Group(st, hvec, rel)]
    if n > 2:
        raise ValueError(f"bounds: n={n} has no one-sided stencil (forward and backward give n = 1, 2); "
                         "use bounds=None or a smaller n")
    lb, ub = b
    xf = plan.x.reshape(-1).astype(np.float64)
    habs = np.abs(np.reshape(_h_used(hvec, rel, plan.x), -1)).astype(np.float64)
    span = int(round(max(abs(o) for o in st.offsets)))
    if st.method == "central":
        one = get_stencil("forward", min(st.order, 4), n)
        ospan = int(round(max(one.offsets)))
        hs, side = fit_to_bounds(xf, habs, lb, ub, span, ospan, True)
        if h is None and one.order != st.order:  # the one-sided stencil's own default step (p = 6 -> 4)
            hone = _step_factor("forward", one.order, n, plan.wd) * np.maximum(1.0, np.abs(xf))
            hs = np.where(side, fit_to_bounds(xf, np.where(hs > 0, hone, -hone), lb, ub, ospan, ospan, False)[0], hs)
        groups = [_Group(st, np.where(side, 0.0, hs), False, ~side), _Group(one, np.where(side, hs, 0.0), False, side)]
    else:
        sign = 1.0 if st.method == "forward" else -1.0
        hs, _ = fit_to_bounds(xf, sign * habs, lb, ub, span, span, False)
        groups = [_Group(get_stencil("forward", st.order, n), hs, False, np.ones(xf.size, dtype=bool))]
    with np.errstate(over="ignore"):
        vanished = (xf + hs).astype(plan.x.dtype) - plan.x.reshape(-1) == 0.0
    if vanished.any():
        i = int(np.argmax(vanished))
        raise ValueError(f"bounds: at flat index {i} the room between x={xf[i]!r} and its bounds [{lb[i]!r}, {ub[i]!r}] "
                         f"is below the resolution of {plan.x.dtype}: no step fits")
    return [g for g in groups if g.mask.any()]


def _groups_h(groups: list[_Group], plan: _Plan):
    """The nominal steps of the groups in x's shape (signed with bounds; a float for a 0-d x)."""
    if len(groups) == 1 and groups[0].mask is None:
        return _h_used(groups[0].h, groups[0].rel, plan.x)
    h = sum(g.h for g in groups).reshape(plan.x.shape)
    return float(h) if plan.x.ndim == 0 else h


def _groups_floor(plan: _Plan, groups: list[_Group], fabs, h, value) -> tuple[np.ndarray, np.ndarray | int]:
    """The rounding floor (``_floor``) and the accuracy order of each element (the last axis of
    value is the element's) under its group's stencil."""
    if len(groups) == 1:
        return _floor(plan, groups[0].st, fabs, h, value), groups[0].st.order
    floor = np.zeros(np.shape(value))
    order = np.zeros(np.shape(value)[-1])
    for g in groups:
        floor = np.where(g.mask, _floor(plan, g.st, fabs, h, value), floor)
        order[g.mask] = g.st.order
    return floor, order


#: the parameters every quantity shares, written once and put into each docstring at import
_SHARED_PARAMETERS = """    estimate_error : bool, optional
        For a fixed stencil, also estimate each element's error (implies ``full_output``): the
        same stencil at h/2 gives the truncation, ``|D(h) - D(h/2)| / (1 - 2^-p)``, plus the
        rounding floor ``4 eps |f(x)| sum|w| / h^n``.  Costs a second pass (and f at x), all
        counted in nfev.  'richardson' always estimates its error.
    args : tuple, optional
        Extra positional arguments of f: ``f(x, *args, **kwargs)`` (scipy's convention).  A
        jitted f receives them inside the compiled kernels.
    kwargs : dict, optional
        Extra keyword arguments of a plain f (a jitted f takes its extra arguments in ``args``).
"""


_VECTORIZED = """    vectorized : bool, optional
        A plain f is called with one number at a time (any f gets the derivative of f: R -> R at
        each point, whatever it would do with an array).  ``vectorized=True`` declares f
        elementwise: it is called with 1-D arrays of points and must return one value per
        point (much faster for numpy code).  A numpy ufunc (np.sin, scipy.special.ndtr) is
        elementwise by definition and always called on arrays.  Ignored for a jitted f.
"""

_BATCHED = """    vectorized : bool, optional
        f is batched: it takes a stack of points, shape (k, *x.shape), and returns shape (k,)
        (a scalar f) or (k, M) (a vector f; any (k, ...) shape).  fdkit lists every perturbed
        point and sends them in chunks, one call of f per chunk (never one call per point);
        a result of another shape is a ValueError naming the expected one.  ``nfev`` counts
        points evaluated, ``ncalls`` the calls of f.  'richardson' walks point by point (stacks
        of one).  A numba f can be batched too (it is then called from Python, not inlined).
    batch_bytes : int, optional
        The most memory one chunk of stacked points may take (default 256 KiB: chunks that
        stay in cache are faster than one large stack, measured).  At least one point per call.
"""

_WORKERS = """    workers : int, Executor, dask Client or callable, optional
        Where f runs (fixed stencils): an int k (fdkit's pool of k spawned processes, kept
        between calls and shut down at exit, or early by ``fdkit.close_pools()``), a
        ``concurrent.futures.Executor``, a ``dask.distributed.Client`` (one task per worker; an
        x of 64 KiB or more is scattered once; ``pip install fdkit[distributed]``), or a
        map-like ``workers(func, iterable)`` (scipy's convention, e.g.
        ``multiprocessing.Pool(4).map``).  Each task evaluates a chunk of points (about 4 tasks
        per worker); nfev stays exact.  f must pickle for processes
        (a module-level function; a dask Client sends closures too).  A failure in f is raised
        here, naming the parameter and step, chained to f's exception; no partial result.
    progress : bool, optional
        A tqdm bar over the tasks of ``workers``, the chunks of a batched f and the blocks of
        'richardson' with a batched f: None (default) on a terminal when tqdm is installed
        (``fdkit[progress]``), True always, False never.  The jitted kernels run as one call.
"""

_BOUNDS = """    bounds : (lb, ub), optional
        Bounds of x for the fixed stencils (scalars or broadcastable to x; -inf/inf or None for
        none): every point f is evaluated at stays inside (scipy's ``approx_derivative`` rule).
        A central stencil that does not fit becomes the forward stencil of the same accuracy
        (at most 4) stepping up or down on the roomier side, a one-sided stencil flips side, and
        where no full step fits the step shrinks to the room there is.  x must lie within the
        bounds.  ``full_output`` reports the signed steps (negative: downwards).  n = 1, 2.
"""

_RICHARDSON = """    atol, rtol : float, optional
        'richardson' only: stop an element's sequence once its error estimate is at most
        ``atol + rtol * |value|`` on two rows in a row (once can be luck: measured) (default 0
        and 0: refine until truncation falls below rounding).
    maxiter : int, optional
        'richardson' only: at most this many steps (tableau rows) per sequence (default 24).
    step_factor : float, optional
        'richardson' only: each step is the previous one divided by it (default 2).
"""

_DIRECTION = """    step_direction : int or array_like, optional
        'richardson' only, per element of x: 0 central differences (default), +1 steps above x
        only, -1 below x only (one-sided differences extrapolated in h, h^2, h^3, ...; for an x
        at the edge of f's domain, as scipy.differentiate's ``step_direction``).
"""


def _shared_doc(fn):
    """Put the shared parameters into fn's docstring (one text, no drift between functions)."""
    doc = fn.__doc__.replace("    <shared parameters>\n", _SHARED_PARAMETERS)
    doc = doc.replace("    <bounds>\n", _BOUNDS).replace("    <batched>\n", _BATCHED)
    doc = doc.replace("    <richardson>\n", _RICHARDSON).replace("    <workers>\n", _WORKERS)
    fn.__doc__ = doc.replace("    <direction>\n", _DIRECTION).replace("    <vectorized>\n", _VECTORIZED)
    return fn


def _halving_error(at: Callable, value: np.ndarray, order, floor) -> tuple[np.ndarray, int]:
    """The error estimate of a fixed stencil's value D(h): truncation from the same stencil at
    h/2, plus the rounding floor.

    Truncation ~C h^p gives ``D(h) - D(h/2) = C h^p (1 - 2^-p)``, so the truncation estimate is
    ``|D(h) - D(h/2)| / (1 - 2^-p)`` (p = ``order``, per element where stencils differ).  The two
    values can round alike (their difference is then 0 where rounding dominates), so the floor
    ``4 eps |f| sum|w| / h^n`` (``floor``, of value's shape; ``4 eps |value|`` for the complex
    step) is added.  ``at(scale)`` reruns the stencil(s) at the steps times scale.  Returns
    (error, nfev of the rerun).
    """
    half, nfev = at(0.5)
    with np.errstate(invalid="ignore"):
        return np.abs(value - half) / (1.0 - 2.0 ** -np.asarray(order, dtype=float)) + floor, nfev


def _floor(plan: _Plan, st: Stencil, fabs, h, value) -> np.ndarray:
    """The rounding floor of a fixed stencil: 4 eps |f| sum|w| / h^n (4 eps |value| for the
    complex step, which subtracts nothing), in the working precision."""
    if st.method == "complex":
        return 4.0 * plan.eps * np.abs(value)
    return 4.0 * plan.eps * np.abs(fabs) * float(np.abs(st.weights).sum()) / np.abs(np.asarray(h, dtype=float)) ** st.n


def _prep_from_probe(plan: _Plan, st_offsets) -> Callable:
    """For a plain f: a prep that serves f(x) from the probe instead of evaluating it again."""
    f0 = plan.f0 if 0.0 in tuple(st_offsets) else 0.0
    return lambda f, args: (f0, 0)


@_shared_doc
def derivative(
    f: Callable,
    x: ArrayLike,
    *,
    method: Method = "central",
    h: float | ArrayLike | None = None,
    order: int | None = None,
    n: int = 1,
    parallel: bool = False,
    full_output: bool = False,
    estimate_error: bool = False,
    args: tuple = (),
    kwargs: dict | None = None,
    vectorized: bool = False,
    workers=None,
    progress: bool | None = None,
    bounds: tuple | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    maxiter: int | None = None,
    step_factor: float | None = None,
    step_direction: int | ArrayLike = 0,
) -> float | NDArray[np.floating] | DerivativeResult:
    """Elementwise n-th derivative of a scalar function f: R -> R at every point of x.

    Parameters
    ----------
    f : callable
        A numba ``@njit`` function of one float (run inside fdkit's compiled kernel: fastest), or a
        plain Python callable, called with one number at a time (with ``vectorized=True``, or
        for a numpy ufunc, with arrays of points).
    x : float or array_like
        Point(s); any shape.  Integers are promoted to float64.
    method : {'central', 'forward', 'backward', 'complex', 'richardson'}, optional
        Stencil family; 'complex' is the complex step (n = 1 only, f must accept complex input).
        'richardson' is adaptive: central differences on a sequence of steps, extrapolated to
        h = 0, with an error estimate per point (see Notes).
    h : float or array_like, optional
        Absolute step, a scalar or an array broadcastable to x.  Default
        ``optimal_step(method, x, order=order, n=n, dtype=wd)`` with wd the working precision
        (the coarser of x's dtype and f's result dtype).  For 'richardson': the first (largest)
        step of the sequence, replacing the step policy.
    order : int, optional
        Accuracy order p: forward/backward 1, 2, 3 or 4 for n = 1, 2 (default 1); central 2, 4
        or 6 (default 2).
        Not used by 'richardson' (its order grows per point).
    n : int, optional
        Derivative order: 1 to 4 for 'central', 1 or 2 for 'forward', 'backward' and
        'richardson', 1 for 'complex'.
    parallel : bool, optional
        Split the points over threads (jitted f only; a plain callable runs serially and warns).
    full_output : bool, optional
        Return a :class:`~fdkit.DerivativeResult` (value, h, nfev, method, order, n; with
        'richardson' also ``error``, an estimate of each element's absolute error, and
        ``level``; h is then the step of the entry chosen).
    <shared parameters>
    <vectorized>
    <workers>
    <bounds>
    <richardson>
    <direction>

    Returns
    -------
    float or ndarray or DerivativeResult
        The derivative in x's shape (a float for a scalar x).

    Raises
    ------
    TypeError
        f not callable, x not real, f returning a non-number, or f unable to take complex
        input with method='complex'.
    ValueError
        Unknown method, unsupported order/n, h not positive and finite, x not finite.

    Warns
    -----
    RuntimeWarning
        A user-given h below ``eps * max(1, |x|)``; f returning NaN/inf at or near x.

    See Also
    --------
    gradient, optimal_step

    Notes
    -----
    The result is ``sum_k w_k f(x + o_k hh) / hh**n`` with exact Fornberg weights and
    ``hh = (x + h) - x``, the step actually taken (points rounded to x's dtype).  The working
    precision is the coarser of x's dtype and f's result dtype (a jitted f's from its compiled
    signature; a plain f's from one evaluation, counted in nfev); values come back in x's dtype.  Truncation error is O(h^p); cost is one
    evaluation per stencil point per element of x (2 for central p=2, 1 for complex).

    ``method='richardson'`` takes central differences D(h) at h = 0.1, 0.05, 0.025, ... (the
    steps actually taken), extrapolates them to h = 0 in a Neville tableau (level j removes
    the terms h^2 .. h^2j) and returns the entry whose error estimate is smallest: twice its
    distance to its tableau neighbours (Ridders 1982), never below the rounding floor
    ``4 eps max|f| sum|w| / h^n``, nor below how far that level moved in the rows after it.
    A point stops when truncation falls below rounding or rounding starts to dominate
    (typically 6-14 evaluations per point for n = 1).  Step policy: steps are absolute,
    because the scale on which f varies belongs to f, not to x (a step proportional to |x|
    misses d/dx sin at x = 1e8 entirely); at |x| > 1, if the estimate is above 1e-10 |value|,
    a second sequence from 0.1 |x| is tried (log or x**2 at x = 1e6) and the result with the
    smaller relative error estimate wins; where f is not finite at x +- h with h > |x|/2, the
    sequence jumps to |x|/2 (log, sqrt near 0).  The estimate assumes f is computed to a few
    ulps of max|f|; an f that cancels (a sum of large terms that is near 0) rounds worse and
    its estimate can be low.  The constants are in :data:`fdkit.steps.RICHARDSON`.

    References
    ----------
    B. Fornberg, Math. Comp. 51 (1988) 699-706; W. Squire and G. Trapp, SIAM Rev. 40 (1998)
    110-112; W. H. Press et al., Numerical Recipes, 3rd ed., sections 5.7 (and dfridr);
    C. J. F. Ridders, Adv. Eng. Software 4 (1982) 75-76.

    Examples
    --------
    >>> import numpy as np, fdkit
    >>> x = np.linspace(0.0, 1.0, 5)
    >>> bool(np.allclose(fdkit.derivative(np.sin, x), np.cos(x), rtol=1e-9))
    True
    >>> round(fdkit.derivative(lambda w: w**2, 3.0, method="forward", h=0.001), 9)
    6.001
    >>> r = fdkit.derivative(np.sin, 1e8, method="richardson", full_output=True)
    >>> bool(abs(r.value - np.cos(1e8)) <= r.error < 1e-12)
    True
    """
    check_callable(f, "derivative")
    st = _stencil(method, order, n, "derivative")
    parallel = check_flag(parallel, "parallel")
    full_output = check_flag(full_output, "full_output")
    estimate_error = check_flag(estimate_error, "estimate_error")
    vectorized = check_flag(vectorized, "vectorized")
    full_output = full_output or estimate_error
    ctl = _rich_controls(st, atol, rtol, maxiter, step_factor, step_direction, bounds)
    cs = st is not None and st.method == "complex"
    plan = _plan(f, x, "derivative", complex_step=cs, parallel=parallel, copy=False, args=args, kwargs=kwargs,
                 vectorized=vectorized, workers=workers, adaptive=st is None,
                 progress=check_progress(progress))
    xflat = plan.x.reshape(-1)
    if st is None:
        common, outs = _rich(h, plan, (xflat.size,), ctl, check_direction(step_direction, plan.x.shape))
        if not plan.jitted and plan.vectorized:
            nfev = _rows_derivative(plan, xflat, int(n), common, outs) + plan.nprobe
        else:
            args = (xflat, *common[:2], int(n), *common[2:], *outs, plan.fa)
            nfev = run(plan.f, K.no_prep, R.deriv_body, args, xflat.size, parallel=parallel, sig=plan.fsig) + plan.nprobe
        value = _shaped(outs[0], plan)
        _warn_nonfinite(value, "derivative")
        return _rich_result(plan, value, outs, nfev, int(n)) if full_output else value
    groups = _fixed_groups(plan, st, h, bounds, st.n)

    def at(scale):
        out = np.empty(xflat.size, dtype=plan.x.dtype)
        cnt = 0
        for g in groups:
            hv = g.h if scale == 1.0 else g.h * scale
            xs, o = xflat, out
            if g.mask is not None:
                xs, hv, o = xflat[g.mask], hv[g.mask], np.empty(int(g.mask.sum()), dtype=plan.x.dtype)
            if plan.jitted:
                args = (xs, hv, g.rel, g.st.offsets_t, g.st.weights_t, g.st.n, o, plan.fa)
                cnt += run(plan.f, K.no_prep, K.deriv_body, args, xs.size, parallel=parallel, sig=plan.fsig)
            else:
                call, counter = elementwise_caller(plan.f, plan.raw, "derivative", cs, plan.vectorized)
                if plan.workers is not None:
                    call = _worker_points(plan, cs, counter)
                hx = hv[0] * np.maximum(1.0, np.abs(xs)) if g.rel else hv
                o[...] = stencil_derivative(call, xs, hx, g.st, plan.x.dtype)[0]
                cnt += counter[0]
                plan.ncalls += counter[1]
            if g.mask is not None:
                out[g.mask] = o
        return out, cnt

    out, nfev = at(1.0)
    value = _shaped(out, plan)
    _warn_nonfinite(value, "derivative")
    if estimate_error:
        fx, nfx = _values_at_x(plan, plan.raw, xflat, cs)
        hu = _groups_h(groups, plan)
        floor, p = _groups_floor(plan, groups, fx, np.reshape(hu, -1), out)
        err, more = _halving_error(at, out, p, floor)
        return plan.result(value, nfev + more + nfx + plan.nprobe, h=hu, method=st.method,
                           order=st.order, n=st.n, error=_shaped(err, plan))
    if full_output:
        return plan.result(value, nfev + plan.nprobe, h=_groups_h(groups, plan), method=st.method,
                           order=st.order, n=st.n)
    return value


def _rows_derivative(plan: _Plan, xflat: np.ndarray, n: int, common: tuple, outs: tuple) -> int:
    """method='richardson' for an elementwise plain f (``vectorized=True`` or a ufunc): every
    open point takes its next step together, one call of f per tableau row
    (:func:`fdkit.engine.richardson.rows_run`).  The differences are ``diff_point``'s: central,
    or one-sided (points x, x + s h, x + 2 s h) where step_direction is +-1."""
    hvec, userh, eps, retry, ctl, dirs = common
    call, counter = elementwise_caller(plan.f, plan.raw, "derivative", False, True)
    x64 = xflat.astype(np.float64)
    s = np.broadcast_to(dirs, xflat.shape).astype(np.int64)
    f0 = np.zeros(xflat.size)
    nfe = outs[5]
    nfe[:] = 0
    need0 = (s != 0) | (n == 2)
    if need0.any():
        f0[need0] = np.asarray(call(xflat[need0].copy()), dtype=np.float64)
        nfe[need0] = 1

    def diffs(idx, a):
        pts, h1, h2, start, cnt = R.point_row(xflat, x64, idx, a, s, n)
        with np.errstate(all="ignore"):
            v = np.asarray(call(pts), dtype=np.float64)
        return R.point_diffs(v, idx, s, n, f0, h1, h2, start, cnt)

    total = R.rows_run(diffs, x64, hvec, userh, eps, retry, ctl, (s == 0), outs, progress=plan.progress)
    plan.ncalls += counter[1]
    return total + int(need0.sum())


def _rows_gradient(plan: _Plan, common: tuple, outs: tuple) -> int:
    """method='richardson' for a batched f: the open parameters take their next step together,
    one stack of points per tableau row (``diff_param``'s differences, central or one-sided)."""
    hvec, userh, eps, retry, ctl, dirs = common
    xf = plan.x.reshape(-1)
    s = np.broadcast_to(dirs, xf.shape).astype(np.int64)
    outs[5][:] = 0

    def diffs(idx, a):
        si = s[idx]
        with np.errstate(all="ignore"):
            h1 = B.taken_steps(xf[idx], np.where(si != 0, si * a, a), False)
            nv = h1 != 0.0
            cen = nv & (si == 0)
            none = np.full(int(nv.sum() + cen.sum()), -1, dtype=np.int64)
            pts = B.Perturbations(np.concatenate([idx[nv], idx[cen]]).astype(np.int64),
                                  np.concatenate([h1[nv], -h1[cen]]), none, np.zeros(none.size))
            v, calls = _points(plan, pts, plan.x.dtype)
            plan.ncalls += calls
            v = np.asarray(v, dtype=np.float64)
            fp = np.zeros(idx.size)
            fm = np.zeros(idx.size)
            fp[nv] = v[: int(nv.sum())]
            fm[cen] = v[int(nv.sum()):]
            ah = np.abs(h1)
            d = np.where(si == 0, (fp - fm) / (2.0 * h1), (fp - plan.f0) / h1)
            fnew = np.where(si == 0, np.maximum(np.abs(fp), np.abs(fm)), np.maximum(np.abs(fp), abs(plan.f0)))
            c = np.where(nv, np.where(si == 0, 2, 1), 0).astype(np.int64)
            w = np.where(si == 0, 1.0 / ah, R.ONE_SIDED * 2.0 / ah)
        return d, fnew, c, np.where(nv, ah, 0.0), w

    return R.rows_run(diffs, xf.astype(np.float64), hvec, userh, eps, retry, ctl, (s == 0), outs,
                      progress=plan.progress)


def _worker_points(plan: _Plan, cs: bool, counter: list) -> Callable:
    """``call(points) -> values`` for an elementwise derivative over the workers (counting the
    points in counter[0] and the tasks in counter[1])."""

    def call(pts):
        vals, tasks = plan.workers.evaluate_points(plan.raw, pts, plan.vectorized)
        if cs and vals.dtype.kind != "c":
            raise TypeError(f"derivative: {fname(plan.raw)} returned dtype {vals.dtype} for complex input, so the "
                            f"imaginary part that carries the derivative is lost; {COMPLEX_HINT}")
        counter[0] += pts.size
        counter[1] += tasks
        return vals

    return call


def _values_at_x(plan: _Plan, f, xflat: np.ndarray, cs: bool) -> tuple[np.ndarray, int]:
    """f at every point of x (for the rounding floor of an error estimate): (values, nfev)."""
    if cs:  # the complex step's floor needs no f
        return np.zeros(xflat.size), 0
    out = np.empty(xflat.size)
    if plan.jitted:
        args = (xflat, np.ones(1), False, (0.0,), (1.0,), 0, out, plan.fa)
        return out, run(plan.f, K.no_prep, K.deriv_body, args, xflat.size, sig=plan.fsig)
    call, counter = elementwise_caller(plan.f, plan.raw, "derivative", False, plan.vectorized)
    out[...] = np.asarray(call(xflat.copy()), dtype=np.float64)
    plan.ncalls += counter[1]
    return out, counter[0]


def _f_at_x(plan: _Plan) -> tuple[float, int]:
    """|f(x)| of a scalar f (the probe of a plain f, else one evaluation): (value, nfev)."""
    if not plan.jitted:
        return abs(plan.f0), 0
    return abs(float(plan.f(plan.x.copy(), *plan.fa))), 1


@_shared_doc
def gradient(
    f: Callable,
    x: ArrayLike,
    *,
    method: Method = "central",
    h: float | ArrayLike | None = None,
    order: int | None = None,
    parallel: bool = False,
    full_output: bool = False,
    estimate_error: bool = False,
    args: tuple = (),
    kwargs: dict | None = None,
    vectorized: bool = False,
    workers=None,
    progress: bool | None = None,
    batch_bytes: int | None = None,
    f0=None,
    bounds: tuple | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    maxiter: int | None = None,
    step_factor: float | None = None,
    step_direction: int | ArrayLike = 0,
) -> float | NDArray[np.floating] | DerivativeResult:
    """Gradient of a scalar function f: R^N -> R at x, in x's shape.

    Parameters
    ----------
    f : callable
        ``f(x) -> float`` where x has the shape of the x given here (a weight matrix W is
        passed as a matrix).  A numba ``@njit`` function runs inside fdkit's compiled kernel; a
        plain Python callable runs the same stencil in a Python loop.
    x : array_like
        Parameters, any shape (a weight matrix W gets a gradient of W's shape).  Never modified.
    method : {'central', 'forward', 'backward', 'complex', 'richardson'}, optional
        'forward' costs exactly 1+N evaluations of f (f(x) once), 'central' 2N, 'complex'
        N evaluations at complex points (f must accept complex input).  'richardson'
        extrapolates central differences per parameter as in :func:`derivative` (about 6-14
        evaluations per parameter) and estimates each partial's error.
    h : float or array_like, optional
        Absolute step, a scalar or broadcastable to x.  Default ``optimal_step(method, x,
        dtype=wd)`` for the working precision wd;
        for 'richardson' the first step of each parameter's sequence.
    order : int, optional
        Accuracy order (forward/backward 1 to 4, central 2, 4 or 6); default as in
        :func:`optimal_step`.  Higher orders cost more evaluations.
    parallel : bool, optional
        Split the parameters over threads (prange, one work copy of x per thread).  Pays off
        for large N and a jitted f; a plain callable runs serially (and warns).  Before a long
        parallel run OpenBLAS's idle worker threads are stopped, as they would spin on the
        threads' cores (the next BLAS call starts them again), and after it numba's OpenMP
        threads are paused, as they would spin on the cores the caller's next work needs
        (:mod:`fdkit.engine.threads`).
    full_output : bool, optional
        Return a :class:`~fdkit.DerivativeResult` with value, h, nfev (counted), method (and
        for 'richardson' ``error`` and ``level``, of x's shape).
    <shared parameters>
    <batched>
    <workers>
    f0 : float or array_like, optional
        f(x), if the caller already has it (scipy's ``approx_derivative`` convention): the
        stencils that use the base point (forward, backward) reuse it instead of evaluating f
        at x, so a forward gradient costs N evaluations; a plain f is then not probed.
        Trusted as given (it is not checked against f).
    <bounds>
    <richardson>
    <direction>

    Returns
    -------
    ndarray or float or DerivativeResult
        The gradient, of x's shape.

    Raises
    ------
    TypeError
        f not callable, x not real, f not returning a scalar number, or f unable to take
        complex input with method='complex'.
    ValueError
        Unknown method, unsupported order, h not positive and finite, x not finite.

    Warns
    -----
    RuntimeWarning
        A user-given h below ``eps * max(1, |x|)``; f returning NaN/inf at or near x.

    See Also
    --------
    derivative, jacobian, check_gradient

    Notes
    -----
    Each partial derivative perturbs one element of a private copy of x, evaluates f and
    restores the saved value; the step actually taken ``(x_i + h_i) - x_i`` is the divisor.
    The number of evaluations is counted where f is called (``full_output=True``).

    Examples
    --------
    >>> import numpy as np, fdkit
    >>> W = np.array([[1.0, -2.0], [0.5, 3.0]])
    >>> g = fdkit.gradient(lambda w: np.sum(w**3), W)
    >>> g.shape, bool(np.allclose(g, 3 * W**2, rtol=1e-8))
    ((2, 2), True)
    """
    c = _FAST.get((id(f), method, x.dtype.char, x.shape)) if type(x) is np.ndarray and type(method) is str else None
    default = (h is None and order is None and parallel is False and full_output is False
               and estimate_error is False and type(args) is tuple and len(args) == 0 and kwargs is None
               and vectorized is False and workers is None and progress is None and batch_bytes is None
               and f0 is None and bounds is None and atol is None and rtol is None and maxiter is None
               and step_factor is None and type(step_direction) is int and step_direction == 0
               and type(x) is np.ndarray)
    if c is not None and default and x.flags.c_contiguous:
        return _fast_gradient(f, x, c)
    check_callable(f, "gradient")
    st = _stencil(method, order, 1, "gradient")
    parallel = check_flag(parallel, "parallel")
    full_output = check_flag(full_output, "full_output")
    estimate_error = check_flag(estimate_error, "estimate_error")
    full_output = full_output or estimate_error
    ctl = _rich_controls(st, atol, rtol, maxiter, step_factor, step_direction, bounds)
    vectorized = check_flag(vectorized, "vectorized")
    plan = _plan(f, x, "gradient", complex_step=st is not None and st.method == "complex", parallel=parallel,
                 args=args, kwargs=kwargs, vectorized=vectorized, workers=workers, adaptive=st is None, f0=f0,
                 progress=check_progress(progress))
    plan.batch_bytes = _check_batch_bytes(batch_bytes)
    size = plan.x.size
    if st is None:
        common, outs = _rich(h, plan, (size,), ctl, check_direction(step_direction, plan.x.shape))
        if plan.batch is not None:
            nfev = _rows_gradient(plan, common, outs) + plan.nprobe
        else:
            args = (plan.x, *common, *outs, plan.fa)
            prep = R.grad_prep if plan.jitted else (lambda g, a: (plan.f0, 0))  # f(x) from the probe
            nfev = run(plan.f, prep, R.grad_body, args, size, parallel=parallel, sig=plan.fsig) + plan.nprobe
        value = _shaped(outs[0], plan)
        _warn_nonfinite(value, "gradient")
        return _rich_result(plan, value, outs, nfev, 1) if full_output else value
    groups = _fixed_groups(plan, st, h, bounds, 1)

    known = np.array([plan.f0]) if plan.jitted and plan.f0 is not None else _UNKNOWN

    def at(scale):
        out = np.empty(size)
        if plan.batch is not None:
            return out, _batched_at(plan, groups, scale, st.method == "complex", out)
        cnt = 0
        for g in groups:
            if not plan.jitted:
                prep = _prep_from_probe(plan, g.st.offsets)
            else:
                prep = K.grad_prep if g.st.uses_base_point else K.no_prep
            hv = g.h if scale == 1.0 else g.h * scale
            args = (plan.x, hv, g.rel, g.st.offsets, g.st.weights, out, known, plan.fa)
            cnt += run(plan.f, prep, K.grad_body, args, size, parallel=parallel, sig=plan.fsig)
        return out, cnt

    out, nfev = at(1.0)
    value = _shaped(out, plan)
    _warn_nonfinite(value, "gradient")
    if (default and plan.jitted and plan.x.dtype == x.dtype and x.flags.c_contiguous and len(groups) == 1
            and plan.batch is None and plan.workers is None):
        g = groups[0]
        _cache_fast(f, x, out, (method, x.dtype.char, x.shape),
                    (K.grad_prep if g.st.uses_base_point else K.no_prep, g.h, g.rel, g.st.offsets, g.st.weights,
                     plan.fsig))
    if estimate_error:
        hu = _groups_h(groups, plan)
        fx, nfx = _f_at_x(plan) if st.method != "complex" else (0.0, 0)
        floor, p = _groups_floor(plan, groups, fx, np.reshape(hu, -1), out)
        err, more = _halving_error(at, out, p, floor)
        return plan.result(value, nfev + more + nfx + plan.nprobe, h=hu, method=st.method,
                           order=st.order, n=1, error=_shaped(err, plan))
    if full_output:
        return plan.result(value, nfev + plan.nprobe, h=_groups_h(groups, plan), method=st.method,
                           order=st.order, n=1)
    return value


def _cache_fast(f, x: np.ndarray, out: np.ndarray, key: tuple, record: tuple) -> None:
    """Record a default gradient's kernel for f under key = (method, dtype char, shape), with the
    compiled check of x and out the fast path calls: loaded here, in the first answer (loading
    it from numba's cache took 3-5 ms, which had made the second call the slow one)."""
    if not any(k[0] == id(f) for k in _FAST):
        weakref.finalize(f, _forget_fast, id(f))
    K.count_nonfinite2(x, out)
    check = _entry_point(K.count_nonfinite2, x, out)
    # then: the bound kernel (set by the first fast call), the check, the number of fast calls,
    # the baked kernel (runner.bake: None not yet, False never), and whether the result is
    # returned as it is (a 1-D float64 x) or reshaped and cast to x's
    _FAST[(id(f), *key)] = [*record, None, check, 0, None, x.ndim == 1 and x.dtype.char == "d"]


def _entry_point(d, *values):
    """The compiled overload of dispatcher d for these values, called without numba's type
    dispatch; d itself if it has none."""
    cres = d.overloads.get(tuple(numba.typeof(v) for v in values))
    return d if cres is None else cres.entry_point


def _forget_fast(fid: int) -> None:
    for k in [k for k in _FAST if k[0] == fid]:
        _FAST.pop(k, None)


#: the fast path bakes a gradient's kernel (runner.bake) for an x of at most this many elements once
#: it has run ``runner.INLINE_AFTER`` seconds at ~``_FAST_CALL_SECONDS`` per call
BAKE_MAX_SIZE = 256
_FAST_CALL_SECONDS = 5e-6


def _fast_gradient(f, x: np.ndarray, c: list):
    """The default gradient of a jitted f at a C-contiguous x whose (method, dtype, shape) a full
    call has seen: that call's kernel and steps, none of the checks it has passed once (f's
    signature, the stencil, the options), the kernel's compiled overload called directly
    (:func:`fdkit.engine.runner.direct`; through run() where the kernel tiers up, as the complex
    step's does); x's finiteness and the result's are still checked, in
    one compiled pass after the kernel.  It skips ~10 us of Python per call (an optimiser calls
    gradient thousands of times at small N).  A small x's kernel is baked (steps and stencil
    frozen into it, f inlined: :func:`fdkit.engine.runner.bake`) once the calls have spent
    ``runner.INLINE_AFTER`` seconds, the tiering of the shared kernels."""
    prep, hv, rel, offsets, weights, fsig, go, check, calls, baked, plain = c
    try:
        out = np.empty(x.size)
        if baked:
            bad = baked(x, out)
        else:
            args = (x.copy(), hv, rel, offsets, weights, out, _UNKNOWN, ())  # f may write to its input: a copy
            if go:
                go(x.size, args)
            else:  # not bound yet, or a kernel that tiers up: run() decides (False)
                run(f, prep, K.grad_body, args, x.size, sig=fsig)
                if go is None:
                    # an x that will be baked binds the shared kernel even where the kernel
                    # tiers up (the complex step): the baked kernel is its specialisation, and
                    # run()'s bookkeeping cost ~5 us per call at N = 10 until then
                    c[6] = direct(f, prep, K.grad_body, args, fsig,
                                  baked_later=_bakes(x, baked) and _FAST_CALL_SECONDS > 0)
            bad = check(x, out)
            c[8] = calls + 1
            if _bakes(x, baked) and calls * _FAST_CALL_SECONDS >= RN.INLINE_AFTER:
                again = c[6] or (lambda n, a: run(f, prep, K.grad_body, a, n, sig=fsig))
                c[9] = _bake(f, prep, args, x, again, c[7])
                if c[9] is False:
                    c[6] = None  # not baked: bound again, through run() where the kernel tiers up
    except Exception:
        if _count_nonfinite(x):  # f raised at a non-finite x: the x is the error
            raise_nonfinite_x(x)
        raise
    if bad:
        if _count_nonfinite(x):
            raise_nonfinite_x(x)
        _warn_nonfinite(out, "gradient", stacklevel=4)
    return out if plain else _like_x(out, x)


def _bakes(x: np.ndarray, baked) -> bool:
    """Whether the fast path bakes this x's kernel once its calls have spent
    ``runner.INLINE_AFTER`` seconds (not tried yet, tiering on, x small)."""
    return baked is None and RN.INLINE_AFTER is not None and x.size <= BAKE_MAX_SIZE


def _bake(f, prep, args: tuple, x: np.ndarray, go, check):
    """The baked kernel of a fast gradient, compiled, checked against the run just made and
    timed against the kernel it would replace (``go(n, args)`` and ``check``, best of 5 alternating runs;
    ``_BAKE_TIMED``), or False: numba cannot build it, its numbers differ, or it is not faster
    (an f inlined into its caller can run slower: measured, the mlp's gradient at N = 1000)."""
    try:
        baked = RN.bake(f, prep, K.grad_body, args, 5)
        out = np.empty(x.size)
        baked(x, out)
    except Exception:  # noqa: BLE001 - an optimisation that cannot be built is not used, the call goes on
        return False
    if not np.array_equal(out, args[5], equal_nan=True):  # the same kernel, the same numbers
        return False
    fast = _entry_point(baked, x, out)
    if _BAKE_TIMED:
        tb = tp = np.inf
        for _ in range(5):
            t0 = time.perf_counter()
            fast(x, out)
            t1 = time.perf_counter()
            go(x.size, (x.copy(), *args[1:5], out, *args[6:]))
            check(x, out)
            t2 = time.perf_counter()
            tb, tp = min(tb, t1 - t0), min(tp, t2 - t1)
        if tb >= tp:
            return False
    return fast


#: whether a baked kernel must beat the shared kernel's call in a timed trial before it is used
_BAKE_TIMED = True


def _jitted_f0(plan: _Plan, complex_step: bool) -> tuple[np.ndarray, int]:
    """A jitted vector f once at x (a copy: f may return its input): the flat f(x) and 1."""
    xw = plan.x.astype(np.result_type(plan.x.dtype, np.complex64)) if complex_step else plan.x.copy()
    r = np.ravel(plan.f(xw, *plan.fa))
    return (r.real if complex_step else r).astype(np.float64), 1


@_shared_doc
def jacobian(
    f: Callable,
    x: ArrayLike,
    *,
    method: Method = "central",
    h: float | ArrayLike | None = None,
    order: int | None = None,
    parallel: bool = False,
    full_output: bool = False,
    estimate_error: bool = False,
    args: tuple = (),
    kwargs: dict | None = None,
    vectorized: bool = False,
    workers=None,
    progress: bool | None = None,
    batch_bytes: int | None = None,
    f0=None,
    bounds: tuple | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    maxiter: int | None = None,
    step_factor: float | None = None,
    step_direction: int | ArrayLike = 0,
) -> NDArray[np.floating] | DerivativeResult:
    """Jacobian of a vector function f: R^N -> R^M at x, of shape (M, N).

    Parameters
    ----------
    f : callable
        ``f(x) -> array`` (any shape; M is its size), x of the shape given here.  A numba
        ``@njit`` function runs inside fdkit's compiled kernel; a plain callable is looped.
    x : array_like
        Parameters, any shape; N = x.size (column j belongs to ``x.flat[j]``).
    method : {'central', 'forward', 'backward', 'complex', 'richardson'}, optional
        forward: 1+N evaluations, central 2N, complex N.  'richardson': one sequence of
        steps per column (as in :func:`derivative`), a tableau and an error estimate per
        entry; a column runs until all its entries have stopped.
    h : float or array_like, optional
        Absolute step, scalar or broadcastable to x.  Default ``optimal_step(method, x,
        dtype=wd)`` for the working precision wd;
        for 'richardson' the first step of each column's sequence.
    order : int, optional
        Accuracy order, as in :func:`gradient`.
    parallel : bool, optional
        Split the columns over threads (jitted f; a plain callable runs serially and warns).
    full_output : bool, optional
        Return a :class:`~fdkit.DerivativeResult` (for 'richardson' with ``error``,
        ``level`` and ``h`` of the Jacobian's shape).
    <shared parameters>
    <batched>
    <workers>
    f0 : float or array_like, optional
        f(x), if the caller already has it (scipy's ``approx_derivative`` convention): the
        stencils that use the base point (forward, backward) reuse it instead of evaluating f
        at x, so a forward gradient costs N evaluations; a plain f is then not probed.
        Trusted as given (it is not checked against f).
    <bounds>
    <richardson>
    <direction>

    Returns
    -------
    ndarray of shape (M, N) or DerivativeResult

    Raises
    ------
    TypeError
        f not returning an array of real numbers, or unable to take complex input with 'complex'.
    ValueError
        Bad method/order/h/x, or f returning arrays of different sizes.

    Examples
    --------
    >>> import numpy as np, fdkit
    >>> J = fdkit.jacobian(lambda v: np.array([v[0] * v[1], np.sin(v[0])]), [1.0, 2.0])
    >>> bool(np.allclose(J, [[2.0, 1.0], [np.cos(1.0), 0.0]], rtol=1e-9, atol=1e-10))
    True
    """
    check_callable(f, "jacobian")
    st = _stencil(method, order, 1, "jacobian")
    parallel = check_flag(parallel, "parallel")
    full_output = check_flag(full_output, "full_output")
    estimate_error = check_flag(estimate_error, "estimate_error")
    full_output = full_output or estimate_error
    ctl = _rich_controls(st, atol, rtol, maxiter, step_factor, step_direction, bounds)
    cs = st is not None and st.method == "complex"
    vectorized = check_flag(vectorized, "vectorized")
    plan = _plan(f, x, "jacobian", complex_step=cs, parallel=parallel, args=args, kwargs=kwargs, vectorized=vectorized,
                 workers=workers, adaptive=st is None, f0=f0, progress=check_progress(progress))
    plan.batch_bytes = _check_batch_bytes(batch_bytes)
    if plan.jitted and plan.f0 is None:
        f0, nprobe = _jitted_f0(plan, cs)
    else:
        f0, nprobe = plan.f0, plan.nprobe
    size = plan.x.size
    shape = (f0.size, size)
    if st is None:
        common, outs = _rich(h, plan, shape, ctl, check_direction(step_direction, plan.x.shape))
        args = (plan.x, f0, *common, *outs, plan.fa)
        nfev = run(plan.f, K.no_prep, R.jac_body, args, size, parallel=parallel, sig=plan.fsig) + nprobe
        jac = outs[0].astype(plan.x.dtype, copy=False)
        _warn_nonfinite(jac, "jacobian")
        return _rich_result(plan, jac, outs, nfev, 1, shape) if full_output else jac
    groups = _fixed_groups(plan, st, h, bounds, 1)

    def at(scale):
        jac = np.zeros(shape)
        if plan.batch is not None:
            return jac, _batched_at(plan, groups, scale, cs, jac)
        cnt = 0
        for g in groups:
            hv = g.h if scale == 1.0 else g.h * scale
            cnt += run(plan.f, K.no_prep, K.jac_body, (plan.x, hv, g.rel, g.st.offsets, g.st.weights, f0, jac, plan.fa),
                       size, parallel=parallel, sig=plan.fsig)
        return jac, cnt

    jac, nfev = at(1.0)
    J = jac.astype(plan.x.dtype, copy=False)
    _warn_nonfinite(J, "jacobian")
    if estimate_error:
        hu = _groups_h(groups, plan)
        floor, p = _groups_floor(plan, groups, np.reshape(f0, (-1, 1)), np.reshape(hu, (1, -1)), jac)
        err, more = _halving_error(at, jac, p, floor)
        return plan.result(J, nfev + more + nprobe, h=hu, method=st.method, order=st.order,
                           n=1, error=err.astype(plan.x.dtype, copy=False))
    if full_output:
        return plan.result(J, nfev + nprobe, h=_groups_h(groups, plan), method=st.method, order=st.order, n=1)
    return J


@_shared_doc
def hessian(
    f: Callable,
    x: ArrayLike,
    *,
    method: Literal["central", "richardson"] = "central",
    h: float | ArrayLike | None = None,
    parallel: bool = False,
    full_output: bool = False,
    estimate_error: bool = False,
    args: tuple = (),
    kwargs: dict | None = None,
    vectorized: bool = False,
    workers=None,
    progress: bool | None = None,
    batch_bytes: int | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    maxiter: int | None = None,
    step_factor: float | None = None,
) -> NDArray[np.floating] | DerivativeResult:
    """Hessian of a scalar function f: R^N -> R at x: a symmetric (N, N) matrix.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``; numba ``@njit`` (compiled in) or a plain callable.
    x : array_like
        Parameters, any shape; N = x.size, rows and columns follow ``x.flat``.
    method : {'central', 'richardson'}, optional
        'central': one step, O(h^2).  'richardson': every entry extrapolated over a step
        sequence as in :func:`derivative`, with an error estimate per entry.
    h : float or array_like, optional
        Absolute step, scalar or broadcastable to x.  Default
        ``optimal_step('central', x, n=2, dtype=wd)`` = eps^(1/4) * max(1, |x|) with the
        working precision's eps; for 'richardson' the
        first step of each entry's sequence (default: its step policy).
    parallel : bool, optional
        Split the rows over threads, paired (k, N-1-k) so that each thread gets the same number
        of entries (jitted f; a plain callable runs serially and warns).
    full_output : bool, optional
        Return a :class:`~fdkit.DerivativeResult` (for 'richardson' with ``error``, ``level``
        and ``h`` per entry, each (N, N)).
    <shared parameters>
    <batched>
    <workers>
    <richardson>

    Returns
    -------
    ndarray of shape (N, N) or DerivativeResult
        Exactly symmetric: ``H[i, j] == H[j, i]``.

    Notes
    -----
    Central differences, O(h^2): the diagonal from ``f(x+h e_i) - 2 f(x) + f(x-h e_i)``, the
    off-diagonal from the four-point formula ``f(++) - f(+-) - f(-+) + f(--)`` over
    ``4 h_i h_j``, computed once per pair.  1 + 2N^2 evaluations of f.  With 'richardson'
    both formulas run over a step sequence (steps h_i and h_j shrinking together, since the
    four-point formula is even in their common scale): about 10 evaluations per diagonal and
    20 per off-diagonal entry, 1 + 10 N^2 in all.

    Examples
    --------
    >>> import numpy as np, fdkit
    >>> H = fdkit.hessian(lambda v: v[0] ** 2 * v[1] + np.exp(v[1]), [1.0, 0.5])
    >>> bool(np.allclose(H, [[1.0, 2.0], [2.0, np.exp(0.5)]], rtol=1e-6))
    True
    """
    check_callable(f, "hessian")
    st = _stencil(method, None, 2, "hessian")
    parallel = check_flag(parallel, "parallel")
    full_output = check_flag(full_output, "full_output")
    estimate_error = check_flag(estimate_error, "estimate_error")
    full_output = full_output or estimate_error
    ctl = _rich_controls(st, atol, rtol, maxiter, step_factor, 0, None)
    vectorized = check_flag(vectorized, "vectorized")
    plan = _plan(f, x, "hessian", parallel=parallel, args=args, kwargs=kwargs, vectorized=vectorized,
                 workers=workers, adaptive=st is None, progress=check_progress(progress))
    plan.batch_bytes = _check_batch_bytes(batch_bytes)
    size = plan.x.size
    items = K.hess_items(size)
    if st is None:
        common, outs = _rich(h, plan, (size, size), ctl)
        args = (plan.x, *common, *outs, plan.fa)
        prep = R.hess_prep if plan.jitted else (lambda g, a: (plan.f0, 0))
        nfev = run(plan.f, prep, R.hess_body, args, items, parallel=parallel, sig=plan.fsig) + plan.nprobe
        H = outs[0].astype(plan.x.dtype, copy=False)
        _warn_nonfinite(H, "hessian")
        return _rich_result(plan, H, outs, nfev, 2, (size, size)) if full_output else H
    hvec, rel = _steps(h, st, plan, 2)

    def at(scale):
        hv = hvec if scale == 1.0 else hvec * scale
        if plan.batch is not None:
            xf = plan.x.reshape(-1)
            hh = B.taken_steps(xf, _step_array(_Group(st, hv, rel), xf), False)
            pts, ii, jj = B.hessian_points(hh)
            vals, calls = _points(plan, pts, plan.x.dtype)
            plan.ncalls += calls
            return B.hessian_sums(vals, plan.f0, hh, ii, jj), len(pts)
        H = np.empty((size, size))
        if plan.jitted:
            prep = K.hess_prep
        else:
            steps = python_kernel(K.hess_steps)(plan.x, hv, rel)
            prep = lambda g, a: ((plan.f0, steps), 0)  # noqa: E731 - f(x) from the probe
        return H, run(plan.f, prep, K.hess_body, (plan.x, hv, rel, H, plan.fa), items, parallel=parallel, sig=plan.fsig)

    out, nfev = at(1.0)
    H = out.astype(plan.x.dtype, copy=False)
    _warn_nonfinite(H, "hessian")
    if estimate_error:
        hu = np.reshape(_h_used(hvec, rel, plan.x), -1)
        fx, nfx = _f_at_x(plan)
        floor = 16.0 * plan.eps * fx / np.outer(hu, hu)  # 4 eps |f| sum|w| / (h_i h_j), sum|w| = 4
        err, more = _halving_error(at, out, st.order, floor)
        nfev += nfx
        return plan.result(H, nfev + more + plan.nprobe, h=_h_used(hvec, rel, plan.x), method="central", order=2,
                           n=2, error=err.astype(plan.x.dtype, copy=False))
    if full_output:
        return plan.result(H, nfev + plan.nprobe, h=_h_used(hvec, rel, plan.x), method="central", order=2, n=2)
    return H
