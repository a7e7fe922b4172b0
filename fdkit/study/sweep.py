"""The error-versus-h sweep: why the step of a finite difference cannot simply be made small.

:func:`run_sweep` evaluates every stencil (forward and backward of accuracy 1 and 2, central
of accuracy 2, 4 and 6, and the complex step) of fdkit's :mod:`fdkit.stencils` at each step h of
a log grid, with that step given explicitly, and records the value, the absolute and the relative
error against a known derivative. Beside the measurement it puts the classical error model:

- truncation ``|C| |f^(m)(x)| h^(m-1)``, with C and m from the stencil's leading error term
  (``Stencil.error_coefficient``) and ``f^(m)(x)`` from a closed form where one is given, else
  estimated numerically (a Cauchy integral on a circle in the complex plane when f takes complex
  input; Fornberg weights otherwise);
- rounding ``eps |f(x)| sum|w_i| / h`` (eps of the sweep's dtype);
- their sum's minimum: the model's optimal h and error; for the complex step, which subtracts
  nothing, the rounding term is ``eps |f'(x)|`` at every h and the model's "optimum" is the largest
  h at which truncation falls below it (every smaller h is as good).

and the measured optimum (the h where a running median of the log error over five grid
neighbours is smallest, so that one lucky point does not decide it, and the smallest error
seen) and the error at fdkit's default step in the sweep's precision
(:func:`fdkit.optimal_step` with ``dtype``, as fdkit's functions choose it for f in that dtype).
The model's optimum is :func:`fdkit.steps.model_optimum`, the same function the library's
step rule is the classical form of.

The adaptive ``method='richardson'`` has no single step: its row sweeps the *first* step of its
sequence (the ``h`` a user may pass) over the same grid, and its default is its own step policy,
reported with the step it chose, its error estimate and its evaluations (in the sweep's
precision: x in that dtype, f called through fdkit). Every difference is divided by the step
actually taken, ``(x + h) - x``; where that step vanishes (h below half an ulp of x) the value is
NaN and ``step_vanished`` is set.

Functions are evaluated vectorised in numpy by fdkit's own stencil evaluator
(:func:`fdkit.engine.evaluate.stencil_derivative`), in the sweep's dtype: a function must accept an
array (and a complex array, for the complex step) and keep its dtype.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np

from ..api import derivative
from ..engine.evaluate import stencil_derivative
from ..methods import ADAPTIVE
from ..stencils import fornberg_weights, get_stencil, stencils
from ..steps import eps_of, model_optimum, optimal_step

#: (method, accuracy order) swept by default, in plotting order: the first-derivative stencils of
#: the method table (one-sided of accuracy 1 and 2, central 2, 4, 6, the complex step), then the
#: adaptive methods (no fixed order).
SWEEP_METHODS = tuple((m, p) for m, n, p, _ in stencils() if n == 1 and (m == "central" or p <= 2)) + tuple(
    (m, None) for m in ADAPTIVE)
COLUMNS = ("function", "x", "dtype", "method", "order", "h", "value", "abs_error", "rel_error", "step_vanished",
           "error_estimate", "nfev")


def label(method: str, order: int | None) -> str:
    if method == "richardson":
        return "richardson (adaptive; h = first step)"
    return "complex step" if method == "complex" else f"{method} (p={order})"


@dataclass(frozen=True)
class SweepFunction:
    """A function with a known derivative for the sweep.

    ``f`` takes and returns arrays (complex too); ``fprime(x)`` is the exact first derivative
    (a float); ``deriv(m, x)``, if given, is the exact m-th derivative, used by the error model.
    """

    name: str
    f: Callable
    fprime: Callable[[float], float]
    x: float
    title: str
    deriv: Callable[[int, float], float] | None = None


def _squire_trapp(x):
    return np.exp(x) / np.sqrt(np.sin(x) ** 3 + np.cos(x) ** 3)


def _squire_trapp_prime(x):
    s, c = math.sin(x), math.cos(x)
    g = s**3 + c**3
    return math.exp(x) / math.sqrt(g) * (1.0 - (3 * s * s * c - 3 * c * c * s) / (2 * g))


def _poly(coeffs):
    """f, f' and f^(m) of sum coeffs[k] x^k."""
    def f(x):
        return sum(c * x**k for k, c in enumerate(coeffs))

    def deriv(m, x):
        return float(sum(c * math.perm(k, m) * x ** (k - m) for k, c in enumerate(coeffs) if k >= m))

    return f, (lambda x: deriv(1, x)), deriv


def _mlp_weight(k: int = 0, n: int = 49):
    """One gradient component of the mlp problem: f(w) = loss with weight k set to w."""
    from .problems import mlp_grad, mlp_loss_np, mlp_x0

    theta = mlp_x0(n)

    def f(w):
        w = np.asarray(w)
        out = np.empty(w.shape, dtype=np.result_type(w, theta))
        for i, wi in np.ndenumerate(w):
            t = theta.astype(out.dtype)
            t[k] = wi
            out[i] = mlp_loss_np(t)
        return out

    exact = float(mlp_grad(theta)[k])
    return f, (lambda x: exact), float(theta[k])


def builtin_functions() -> dict[str, SweepFunction]:
    """The built-in functions: the complex-step test function, exp, sin, the teaching
    polynomials, 1/x and one weight of the mlp problem."""
    two_x2 = _poly([0.0, 0.0, 2.0])
    quad = _poly([0.0, 5.0, 3.0])
    mlp_f, mlp_prime, mlp_x = _mlp_weight()
    fns = [
        SweepFunction("squire_trapp", _squire_trapp, _squire_trapp_prime, 1.5,
                      "e^x / sqrt(sin^3 x + cos^3 x)"),
        SweepFunction("exp", np.exp, math.exp, 1.0, "exp(x)", lambda m, x: math.exp(x)),
        SweepFunction("sin", np.sin, math.cos, 1.0, "sin(x)", lambda m, x: math.sin(x + m * math.pi / 2)),
        SweepFunction("2x^2", two_x2[0], two_x2[1], 2.0, "2x^2", two_x2[2]),
        SweepFunction("3x^2+5x", quad[0], quad[1], 2.0, "3x^2 + 5x", quad[2]),
        SweepFunction("1/x", lambda x: 1.0 / x, lambda x: -1.0 / x**2, 2.0, "1/x",
                      lambda m, x: (-1) ** m * math.factorial(m) / x ** (m + 1)),
        SweepFunction("mlp_weight", mlp_f, mlp_prime, mlp_x,
                      "mlp loss as a function of its first weight (N=49)"),
    ]
    return {s.name: s for s in fns}


def _eval(f: Callable, X: np.ndarray) -> np.ndarray:
    try:
        Y = np.asarray(f(X))
    except Exception:  # noqa: BLE001 - a scalar-only f: evaluate point by point
        Y = None
    if Y is None or Y.shape != X.shape:
        Y = np.array([f(v) for v in X.ravel()]).reshape(X.shape)
    return Y


def higher_derivative(fn: SweepFunction, m: int) -> tuple[float, str]:
    """``f^(m)(x)`` and how it was obtained: ``closed form``, ``cauchy`` or ``fornberg``."""
    x = fn.x
    if fn.deriv is not None:
        return float(fn.deriv(m, x)), "closed form"
    r = 0.25 * max(1.0, abs(x))
    K = 64
    th = 2 * np.pi * np.arange(K) / K
    try:
        with np.errstate(all="ignore"):
            F = _eval(fn.f, x + r * np.exp(1j * th))
        coef = lambda k: float(np.real(np.mean(F * np.exp(-1j * k * th)))) * math.factorial(k) / r**k  # noqa: E731
        d1 = coef(1)
        ok = np.all(np.isfinite(F)) and np.iscomplexobj(F) and abs(d1 - fn.fprime(x)) <= 1e-6 * max(1.0, abs(d1))
    except Exception:  # noqa: BLE001 - f does not take complex input
        ok = False
    if ok:
        return coef(m), "cauchy"
    k = m // 2 + 2
    grid = list(range(-k, k + 1))
    w = np.array([float(v) for v in fornberg_weights(grid, m)])
    h = np.finfo(float).eps ** (1.0 / (m + 4)) * max(1.0, abs(x))
    vals = _eval(fn.f, x + np.array(grid, dtype=float) * h).astype(float)
    return float(vals @ w / h**m), "fornberg"


def _leading_order(st) -> int:
    """m such that the stencil's leading error term is C h^(m-n) f^(m)."""
    if st.method == "complex":
        return 3
    for q in range(st.order, st.order + 3):
        c = sum((w * Fraction(o) ** (st.n + q) for o, w in zip(st.exact_offsets, st.exact_weights)), Fraction(0))
        if c != 0:
            return st.n + q
    return st.n + st.order


def model(fn: SweepFunction, method: str, order: int, eps: float, derivs: dict) -> dict:
    """The error model of one stencil at fn.x (see the module docstring)."""
    st = get_stencil(method, order)
    m = _leading_order(st)
    if m not in derivs:
        derivs[m] = higher_derivative(fn, m)
    dm, source = derivs[m]
    fx = abs(float(np.real(_eval(fn.f, np.array([fn.x]))[0])))
    fp = abs(fn.fprime(fn.x))
    A = abs(float(st.error_coefficient)) * abs(dm)
    q = m - 1
    if method == "complex":
        B = eps * fp  # one rounding of Im f(x + ih), no subtraction: constant in h
        h_opt = math.sqrt(B / A) if A > 0 else None
        e_opt = B
    else:
        B = eps * fx * float(np.sum(np.abs(st.weights)))
        h_opt, e_opt = model_optimum(A, B, q)
    scale = fp if fp > 0 else 1.0
    return dict(
        truncation_coefficient=float(st.error_coefficient), truncation_power=q, derivative_order=m,
        derivative_value=dm, derivative_source=source, truncation_A=A, rounding_B=B,
        rounding_power=0 if method == "complex" else 1, sum_abs_weights=float(np.sum(np.abs(st.weights))),
        model_h_opt=h_opt, model_min_abs_error=e_opt,
        model_min_rel_error=None if e_opt is None else e_opt / scale,
    )


def model_error(mod: dict, h: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Relative truncation and rounding errors of the model at steps h."""
    h = np.asarray(h, dtype=float)
    trunc = mod["truncation_A"] * h ** mod["truncation_power"] / scale
    if mod["rounding_power"] == 0:
        rnd = np.full_like(h, mod["rounding_B"] / scale)
    else:
        rnd = mod["rounding_B"] / h / scale
    return trunc, rnd


def _values(fn: SweepFunction, method: str, order: int, h: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The stencil's derivative at each h (x, h, f and the points in dtype; fdkit's own numpy
    stencil evaluator), and where the step vanished."""
    st = get_stencil(method, order)
    with np.errstate(all="ignore"):
        val, hh = stencil_derivative(lambda pts: _eval(fn.f, pts), fn.x, h, st, dtype)
    vanished = np.zeros(h.shape, bool) if method == "complex" else (hh == 0)
    return val, vanished


def _robust_argmin(err: np.ndarray, half: int = 2) -> int | None:
    """Index of the smallest running median of ``log10(err)`` over 2*half+1 neighbours.

    Rounding makes the error jump by orders of magnitude from one h to the next (and hit 0
    exactly at lucky h), so the single smallest point is a poor estimate of where the error
    is smallest; the running median is not fooled by one lucky point.
    """
    ok = np.isfinite(err)
    if not ok.any():
        return None
    with np.errstate(divide="ignore"):
        le = np.log10(np.maximum(err, 1e-300))
    le[~ok] = np.nan
    med = np.array([np.nanmedian(le[max(0, i - half): i + half + 1]) if ok[i] else np.nan for i in range(le.size)])
    return int(np.nanargmin(med))


def _richardson(fn: SweepFunction, grid: np.ndarray, exact: float, scale: float, hmin: float, dtype: str):
    """The adaptive method: its error against the first step h of its sequence (the user's ``h``)
    on the grid, and its default policy (the step it chose, its error, estimate and cost), with
    x in dtype (the working precision follows x's and f's dtype)."""
    rec = []
    x = np.dtype(dtype).type(fn.x)
    with warnings.catch_warnings():  # at tiny first steps f's differences vanish: NaN is the record
        warnings.simplefilter("ignore", RuntimeWarning)
        for hi in grid:
            if (x + np.dtype(dtype).type(hi)) - x == 0:  # the first step vanishes next to x
                rec.append(dict(function=fn.name, x=fn.x, dtype=dtype, method="richardson", order=None,
                                h=float(hi), value=np.nan, abs_error=np.nan, rel_error=np.nan, step_vanished=True,
                                error_estimate=np.nan, nfev=0))
                continue
            r = derivative(fn.f, x, method="richardson", h=float(hi), full_output=True)
            a = abs(r.value - exact)
            rec.append(dict(function=fn.name, x=fn.x, dtype=dtype, method="richardson", order=None,
                            h=float(hi), value=r.value, abs_error=a, rel_error=a / scale, step_vanished=False,
                            error_estimate=r.error, nfev=r.nfev))
        r = derivative(fn.f, x, method="richardson", full_output=True)
    err = np.array([q["rel_error"] for q in rec])
    hs = np.array([q["h"] for q in rec])
    ok = np.isfinite(err) & (hs >= hmin)
    i_best = _robust_argmin(np.where(ok, err, np.nan))
    row = dict(
        function=fn.name, x=fn.x, dtype=dtype, method="richardson", order=None,
        label=label("richardson", None), exact=exact,
        measured_h_opt=None if i_best is None else float(hs[i_best]),
        measured_min_rel_error=float(np.nanmin(err[ok])) if ok.any() else None,
        default_h=float(r.h), default_rel_error=float(abs(r.value - exact) / scale),
        default_error_estimate=float(r.error / scale), default_nfev=int(r.nfev), default_level=int(r.level),
    )
    return rec, row


def h_grid(hmin: float = 1e-16, hmax: float = 1.0, per_decade: int = 8) -> np.ndarray:
    """Log grid from hmin to hmax with ``per_decade`` points per decade (ends included)."""
    if not (np.isfinite(hmin) and np.isfinite(hmax) and 0 < hmin < hmax):
        raise ValueError(f"need 0 < hmin < hmax, both finite; got hmin={hmin!r}, hmax={hmax!r}")
    if per_decade < 1:
        raise ValueError(f"per_decade must be >= 1, got {per_decade}")
    k = max(2, int(math.ceil(math.log10(hmax / hmin) * per_decade)) + 1)
    return np.geomspace(hmin, hmax, k)


def run_sweep(
    fn: SweepFunction | str,
    *,
    methods=SWEEP_METHODS,
    hmin: float = 1e-16,
    hmax: float = 1.0,
    per_decade: int = 8,
    complex_hmin: float | None = None,
    dtype: str = "float64",
) -> dict:
    """Sweep h for one function; returns ``{"records", "table", "function", ...}``.

    Parameters
    ----------
    fn : SweepFunction or str
        A :class:`SweepFunction` or the name of a built-in one (:func:`builtin_functions`).
    methods : iterable of (method, order)
    hmin, hmax, per_decade : float, float, int
        The grid of steps (at least 8 points per decade by default).
    complex_hmin : float, optional
        The complex step continues below hmin, one point per decade, down to this
        (default 1e-300 in float64, 1e-37 in float32, above the dtype's smallest normal).
    dtype : "float64" or "float32"
        The precision of x, h, f's evaluations and the stencil sums; the model uses its eps.
    """
    if isinstance(fn, str):
        fns = builtin_functions()
        if fn not in fns:
            raise ValueError(f"unknown function {fn!r}; choose one of {', '.join(fns)}")
        fn = fns[fn]
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    dt = np.float64 if dtype == "float64" else np.float32
    probe = np.asarray(_eval(fn.f, np.array([fn.x], dtype=dt)))
    if probe.dtype != dt:
        raise TypeError(f"the function {fn.name!r} returns {probe.dtype} for {dtype} input; "
                        f"a {dtype} sweep needs f to keep the dtype")
    eps = eps_of(dt)
    if complex_hmin is None:
        complex_hmin = 1e-300 if dt == np.float64 else 1e-37
    grid = h_grid(hmin, hmax, per_decade)
    exact = float(fn.fprime(fn.x))
    scale = abs(exact) if exact != 0 else 1.0
    records, table, derivs = [], [], {}
    for method, order in methods:
        if method in ADAPTIVE:
            rec, row = _richardson(fn, grid, exact, scale, hmin, dtype)
            records += rec
            table.append(row)
            continue
        h = grid
        if method == "complex" and complex_hmin < hmin:
            low = np.geomspace(complex_hmin, hmin, int(round(math.log10(hmin / complex_hmin))) + 1)[:-1]
            h = np.concatenate([low, grid])
        val, vanished = _values(fn, method, order, h, dt)
        abs_err = np.abs(val - exact)
        rel_err = abs_err / scale
        for hi, v, a, r, z in zip(h, val, abs_err, rel_err, vanished):
            records.append(dict(function=fn.name, x=fn.x, dtype=dtype, method=method, order=order, h=float(hi),
                                value=float(v), abs_error=float(a), rel_error=float(r), step_vanished=bool(z)))
        mod = model(fn, method, order, eps, derivs)
        ok = np.isfinite(rel_err)
        in_grid = ok & (h >= hmin)
        i_best = _robust_argmin(np.where(in_grid, rel_err, np.nan))
        best_err = float(np.nanmin(rel_err[in_grid])) if in_grid.any() else None
        h_def = float(optimal_step(method, fn.x, order=order, dtype=dt))  # fdkit's default in this precision
        v_def, _ = _values(fn, method, order, np.array([h_def]), dt)
        row = dict(
            function=fn.name, x=fn.x, dtype=dtype, method=method, order=order, label=label(method, order),
            exact=exact, **mod,
            measured_h_opt=None if i_best is None else float(h[i_best]),
            measured_min_rel_error=best_err,
            default_h=h_def, default_rel_error=float(abs(v_def[0] - exact) / scale),
            default_nfev=get_stencil(method, order).nfev_per_point,
        )
        if row["model_h_opt"] and row["measured_h_opt"] and method != "complex":
            row["h_ratio_measured_to_model"] = row["measured_h_opt"] / row["model_h_opt"]
        table.append(row)
    return dict(function=fn.name, title=fn.title, x=fn.x, dtype=dtype, eps=eps, exact=exact,
                hmin=hmin, hmax=hmax, records=records, table=table)


__all__ = ["run_sweep", "builtin_functions", "SweepFunction", "h_grid", "model", "model_error",
           "higher_derivative", "SWEEP_METHODS", "COLUMNS", "label"]
