"""Gradient checks that need no tolerance tuning: each element decided by its error estimate.

:func:`check_gradient` compares an analytical gradient with finite differences element by
element.  The numeric side is ``method='richardson'`` by default, which estimates each
element's error; an element **agrees** when ``|analytic - numeric|`` is within ``AGREE`` times
that estimate plus the rounding floor of the working precision (the analytic side has rounding
error too), so the same call works in float32 and float64, and **disagrees** otherwise.  Every
element is also differentiated from the right (one-sided Richardson): where the right derivative
differs from the central one beyond their estimates, f has a kink, a jump or noise at x and the
element is **unreliable** whatever the analytic value says (|x| at 0).  That doubles the cost
(about 20-30 evaluations per element); ``directions=k`` is the cheap mode for large N.

``directions=k`` checks k random directional derivatives instead of N partials (each one
Richardson derivative of t -> f(x + t v), about 10 evaluations), and :func:`taylor_test` measures
the rate at which ``|f(x + eps v) - f(x) - eps grad.v|`` falls: 2 for a right gradient, 1 for a
wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ._validate import as_real_array
from .api import derivative, gradient, jacobian
from .steps import eps_of

__all__ = ["check_gradient", "check_jacobian", "taylor_test", "GradientCheck", "TaylorTest", "AGREE", "FLOOR"]

#: an element agrees when |analytic - numeric| <= AGREE * (estimate + floor)
AGREE = 4.0
#: the rounding floor of the comparison, in units of eps * (|analytic| + |numeric| + max|numeric|
#: / sqrt(N)): the analytic side is computed in the working precision too (a float32 backprop
#: sums terms of the size of the largest partials)
FLOOR = 16.0

AGREES, DISAGREES, UNRELIABLE = "agree", "disagree", "unreliable"


@dataclass(frozen=True)
class GradientCheck:
    """An analytical gradient (or Jacobian) against finite differences, element by element.

    Attributes
    ----------
    verdict : ndarray of str
        Per element: 'agree', 'disagree' or 'unreliable' (f is not differentiable enough at x
        for finite differences to settle the element: a kink, a jump, noise).
    analytic, numeric, estimate : ndarray
        The two values and the finite differences' error estimate, in the value's shape.
    abs_error : ndarray
        ``|analytic - numeric|``.
    rel_error : ndarray
        ``|analytic - numeric| / max(1, |numeric|)``.
    tolerance : ndarray
        What each element was allowed: ``AGREE * (estimate + floor)``, or the user's
        ``atol + rtol * max(1, |numeric|)``.
    max_error : float
        The largest ``rel_error``.
    worst_index : tuple of int
        Index (in the value's shape) of the element furthest outside its tolerance.
    ok : bool
        No element disagrees (unreliable ones are reported, not failed).
    method : str
        The finite-difference method.
    rtol : float or None
        The user's tolerance, if any.
    nfev : int
        Evaluations of f spent.
    taylor : TaylorTest or None
        The Taylor test, when asked for.
    suspects : list of tuple
        With ``directions``: the parameter a disagreement points to, when one stands out.
    """

    verdict: np.ndarray
    analytic: np.ndarray
    numeric: np.ndarray
    estimate: np.ndarray
    abs_error: np.ndarray
    rel_error: np.ndarray
    tolerance: np.ndarray
    max_error: float
    worst_index: tuple
    ok: bool
    method: str
    rtol: float | None = None
    nfev: int = 0
    taylor: "TaylorTest | None" = None
    suspects: list = field(default_factory=list)
    rows: int = field(default=8, repr=False)

    def __bool__(self) -> bool:
        return bool(self.ok)

    @property
    def counts(self) -> dict:
        return {v: int(np.count_nonzero(self.verdict == v)) for v in (AGREES, DISAGREES, UNRELIABLE)}

    def summary(self) -> str:
        """The one-line verdict."""
        c = self.counts
        n = self.verdict.size
        head = "OK" if self.ok else "MISMATCH"
        s = f"{head}: {c[AGREES]} of {n} elements agree, {c[DISAGREES]} disagree, {c[UNRELIABLE]} unreliable"
        if self.taylor is not None:
            s += f"; Taylor rate {self.taylor.rate:.2f} (2 for a right gradient)"
        if self.suspects:
            s += f"; the disagreement points to parameter {self.suspects[0]}"
        return s + f" ({self.method}, {self.nfev} evaluations of f)"

    def table(self, rows: int | None = None) -> str:
        """The worst elements (furthest outside their tolerance first), with their indices."""
        rows = self.rows if rows is None else rows
        over = self.abs_error / np.where(self.tolerance > 0, self.tolerance, np.inf)
        over = np.where(np.isnan(over), np.inf, over)
        order = np.argsort(-over.reshape(-1), kind="stable")[:rows]
        lines = [f"{'index':>12} {'verdict':>10} {'analytic':>13} {'numeric':>13} {'estimate':>10} "
                 f"{'abs error':>10} {'rel error':>10}"]
        for k in order:
            idx = tuple(int(i) for i in np.unravel_index(k, self.verdict.shape))
            lines.append(f"{str(idx):>12} {self.verdict.flat[k]:>10} {self.analytic.flat[k]:>13.6g} "
                         f"{self.numeric.flat[k]:>13.6g} {self.estimate.flat[k]:>10.2e} {self.abs_error.flat[k]:>10.2e} "
                         f"{self.rel_error.flat[k]:>10.2e}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary() + "\n" + self.table()


@dataclass(frozen=True)
class TaylorTest:
    """``r(eps) = |f(x + eps v) - f(x) - eps grad.v|`` over a range of eps: falls as eps^2 for a
    right gradient and as eps for a wrong one.

    Attributes
    ----------
    eps, residual : ndarray
        The steps and the residuals.
    rate : float
        The slope of log r against log eps over the steps where r is above rounding (NaN if
        none is).
    ok : bool
        ``rate > 1.5``.
    """

    eps: np.ndarray
    residual: np.ndarray
    rate: float
    ok: bool


def _analytic(grad, x: np.ndarray, shape: tuple, name: str) -> np.ndarray:
    ga = grad(x.copy()) if callable(grad) else grad
    ga = as_real_array(ga, name).astype(np.float64)
    if ga.shape != shape:
        if ga.size != int(np.prod(shape)):
            raise ValueError(f"{name} has shape {ga.shape}, but the finite differences have shape {shape}; the "
                             f"{'gradient must have x' if name == 'grad' else 'Jacobian must have (M, N)'}'s shape")
        ga = ga.reshape(shape)
    return ga


def _tolerances(rtol, atol) -> tuple[float | None, float]:
    for name, v in (("rtol", rtol), ("atol", atol)):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise TypeError(f"{name} must be a positive float, got {type(v).__name__} {v!r}")
        if not (v >= 0 and np.isfinite(v)) or (name == "rtol" and v == 0):
            raise ValueError(f"{name} must be positive and finite, got {name}={v!r}")
    return (None if rtol is None else float(rtol)), (0.0 if atol is None else float(atol))


def _verdicts(ga, num, est, eps, rtol, atol):
    """(verdict, tolerance) per element from the estimate (or the user's tolerance)."""
    scale = np.max(np.abs(num)) if num.size else 0.0
    floor = FLOOR * eps * (np.abs(ga) + np.abs(num) + scale / np.sqrt(max(num.size, 1)))
    if rtol is None and atol == 0.0:
        tol = AGREE * (np.nan_to_num(est, nan=np.inf, posinf=np.inf) + floor)
    else:
        tol = atol + (rtol or 0.0) * np.maximum(1.0, np.abs(num))
    diff = np.abs(ga - num)
    verdict = np.where(diff <= tol, AGREES, DISAGREES).astype(object)
    return verdict, tol, diff


def check_gradient(
    f: Callable,
    grad: Callable | np.ndarray,
    x,
    *,
    method: str = "richardson",
    rtol: float | None = None,
    atol: float | None = None,
    directions: int | None = None,
    taylor: bool = False,
    seed: int | None = 0,
    args: tuple = (),
    kwargs: dict | None = None,
) -> GradientCheck:
    """Check an analytical gradient against finite differences, element by element, with no
    tolerance to tune.

    Parameters
    ----------
    f : callable
        The scalar function, as for :func:`fdkit.gradient` (jitted or plain).
    grad : callable or array_like
        The analytical gradient: a function of x (called with a copy) or its value at x, in x's
        shape (or flat).
    x : array_like
        Where to compare; never modified.
    method : str, optional
        The finite differences: 'richardson' (default: an honest error estimate per element),
        or a fixed stencil with its step-halving estimate (``estimate_error=True``).
    rtol, atol : float, optional
        A tolerance of your own instead of the estimate: an element agrees when
        ``|analytic - numeric| <= atol + rtol * max(1, |numeric|)``.
    directions : int, optional
        Check this many random directional derivatives instead of N partials (for large N):
        each is one Richardson derivative of ``t -> f(x + t v)`` (about 10 evaluations) against
        ``grad(x) . v``.  The result then has one element per direction; a disagreement points
        to the parameters whose v entries correlate with the residuals (``suspects``).
    taylor : bool, optional
        Also run :func:`taylor_test` (a rate of 2 for a right gradient, 1 for a wrong one).
    seed : int, optional
        Seed of the random directions.
    args, kwargs :
        f's extra arguments, as in :func:`fdkit.gradient` (grad gets the same).

    Returns
    -------
    GradientCheck
        Per element the verdict (agree, disagree, unreliable), both values, the estimate, the
        absolute and relative errors; ``str()`` prints the worst elements and a one-line verdict.

    Examples
    --------
    >>> import numpy as np, fdkit
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> fdkit.check_gradient(lambda v: np.sum(v**2), lambda v: 2 * v, x).ok
    True
    >>> bad = fdkit.check_gradient(lambda v: np.sum(v**2), lambda v: 2 * v * [1, 1, 1.01], x)
    >>> bad.ok, bad.worst_index, bad.verdict.tolist()
    (False, (2,), ['agree', 'agree', 'disagree'])
    """
    rtol, atol = _tolerances(rtol, atol)
    xa = as_real_array(x)
    xw = np.array(xa, dtype=xa.dtype if xa.dtype.kind == "f" and xa.dtype.itemsize <= 8 else np.float64, order="C")
    kwargs = dict(kwargs or {})
    kw = dict(args=args, kwargs=kwargs or None)
    g = (lambda v: grad(v, *args, **kwargs)) if callable(grad) else grad
    if directions is not None:
        res = _check_directions(f, g, xw, directions, seed, rtol, atol, kw)
    else:
        if method == "richardson":
            r = gradient(f, xw, method="richardson", full_output=True, **kw)
        else:
            r = gradient(f, xw, method=method, estimate_error=True, **kw)
        num = np.asarray(r.value, dtype=np.float64).reshape(xw.shape)
        est = np.asarray(r.error, dtype=np.float64).reshape(xw.shape)
        ga = _analytic(g, xw, xw.shape, "grad")
        eps = eps_of(r.precision)
        verdict, tol, diff = _verdicts(ga, num, est, eps, rtol, atol)
        nfev = r.nfev
        if method == "richardson":  # a kink, a jump or noise: the right derivative differs from the central one
            right = gradient(f, xw, method="richardson", step_direction=1, full_output=True, **kw)
            nfev += right.nfev
            rv = np.asarray(right.value, dtype=np.float64).reshape(xw.shape)
            re = np.asarray(right.error, dtype=np.float64).reshape(xw.shape)
            kink = np.abs(rv - num) > AGREE * (est + re) + FLOOR * eps * (np.abs(rv) + np.abs(num))
            verdict[kink] = UNRELIABLE
        res = _result(verdict, ga, num, est, diff, tol, method, rtol, nfev)
    if taylor:
        t = taylor_test(f, g, xw, seed=seed, args=args, kwargs=kwargs or None)
        res = GradientCheck(**{**res.__dict__, "taylor": t, "nfev": res.nfev + int(t.eps.size) + 1})
    return res


def _result(verdict, ga, num, est, diff, tol, method, rtol, nfev) -> GradientCheck:
    verdict = np.asarray(verdict, dtype=object)
    rel = diff / np.maximum(1.0, np.abs(num))
    if rel.size == 0:
        worst, max_err = (), 0.0
    else:
        over = diff / np.where(tol > 0, tol, np.inf)
        over = np.where(np.isnan(over), np.inf, over)
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(over)), rel.shape))
        max_err = float(np.max(rel)) if not np.isnan(rel).any() else float("nan")
    ok = not bool(np.any(verdict == DISAGREES))
    return GradientCheck(verdict.astype(str), ga, num, est, diff, rel, tol, max_err, worst, ok, method, rtol, int(nfev))


def _check_directions(f, g, x: np.ndarray, k, seed, rtol, atol, kw) -> GradientCheck:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"directions must be a positive integer (how many random directions), got {k!r}")
    rng = np.random.default_rng(seed)
    n = x.size
    ga = _analytic(g, x, x.shape, "grad").reshape(-1)
    V = rng.choice([-1.0, 1.0], size=(int(k), n)) / np.sqrt(n)  # Rademacher, unit length
    xf = x.reshape(-1).astype(np.float64)
    args, kwargs = kw["args"], kw["kwargs"] or {}
    dt = x.dtype

    def phi_of(v):
        def phi(t):
            return f((xf + t * v).astype(dt).reshape(x.shape), *args, **kwargs)
        return phi

    num = np.empty(int(k))
    est = np.empty(int(k))
    nfev = 0
    prec = "float64"
    for j in range(int(k)):
        r = derivative(phi_of(V[j]), 0.0, method="richardson", full_output=True)
        num[j], est[j], nfev = r.value, r.error, nfev + r.nfev
        prec = r.precision
    proj = V @ ga
    eps = max(eps_of(prec), eps_of(dt))
    terms = np.abs(V) @ np.abs(ga)  # the size of the terms the dot product sums
    floor_est = est + FLOOR * eps * terms
    if rtol is None and atol == 0.0:
        tol = AGREE * floor_est
    else:
        tol = atol + (rtol or 0.0) * np.maximum(1.0, np.abs(num))
    diff = np.abs(proj - num)
    verdict = np.where(diff <= tol, AGREES, DISAGREES).astype(object)
    res = _result(verdict, proj, num, est, diff, tol, "richardson, directions", rtol, nfev)
    return _with_suspects(res, V, proj - num, x.shape)


def _with_suspects(res: GradientCheck, V: np.ndarray, resid: np.ndarray, shape: tuple) -> GradientCheck:
    """Attach ``suspects``: the parameters whose direction entries correlate with the residuals
    of the disagreeing directions (the residual is (g_analytic - g_true) . v), when one stands
    out (its score at least twice the next)."""
    suspects: list = []
    if not res.ok and V.shape[0] >= 2:
        score = np.abs(V.T @ resid) * np.sqrt(V.shape[1]) / V.shape[0]
        order = np.argsort(-score)
        if score[order[0]] >= 2.0 * score[order[1]]:  # one parameter stands out
            suspects = [tuple(int(i) for i in np.unravel_index(int(order[0]), shape))]
    return GradientCheck(**{**res.__dict__, "suspects": suspects})


def check_jacobian(f: Callable, jac: Callable | np.ndarray, x, *, method: str = "richardson",
                   rtol: float | None = None, atol: float | None = None, args: tuple = (),
                   kwargs: dict | None = None) -> GradientCheck:
    """:func:`check_gradient` for a vector f: the analytical Jacobian (M, N) against the
    finite-difference one, entry by entry (``worst_index`` is (row, column))."""
    rtol, atol = _tolerances(rtol, atol)
    xa = as_real_array(x)
    xw = np.array(xa, dtype=np.float64 if xa.dtype.kind != "f" else xa.dtype, order="C")
    kw = dict(args=args, kwargs=kwargs)
    if method == "richardson":
        r = jacobian(f, xw, method="richardson", full_output=True, **kw)
    else:
        r = jacobian(f, xw, method=method, estimate_error=True, **kw)
    num = np.asarray(r.value, dtype=np.float64)
    est = np.asarray(r.error, dtype=np.float64)
    J = (lambda v: jac(v, *args, **(kwargs or {}))) if callable(jac) else jac
    ga = _analytic(J, xw, num.shape, "jac")
    verdict, tol, diff = _verdicts(ga, num, est, eps_of(r.precision), rtol, atol)
    return _result(verdict, ga, num, est, diff, tol, method, rtol, r.nfev)


def taylor_test(f: Callable, grad: Callable | np.ndarray, x, *, eps=None, seed: int | None = 0, args: tuple = (),
                kwargs: dict | None = None) -> TaylorTest:
    """The Taylor test of a gradient: the rate at which ``|f(x + e v) - f(x) - e grad.v|`` falls
    with e, along a random unit direction v (2 for a right gradient, 1 for a wrong one).

    The rate is the slope of log residual against log e over the steps whose residual stays
    above the rounding of f (100 eps |f(x)|).
    """
    xa = as_real_array(x)
    xw = np.array(xa, dtype=np.float64 if xa.dtype.kind != "f" else xa.dtype, order="C")
    kwargs = kwargs or {}
    ga = _analytic((lambda v: grad(v, *args, **kwargs)) if callable(grad) else grad, xw, xw.shape, "grad")
    rng = np.random.default_rng(seed)
    v = rng.normal(size=xw.shape)
    v /= np.linalg.norm(v)
    scale = max(1.0, float(np.max(np.abs(xw)))) if xw.size else 1.0
    es = np.asarray(eps if eps is not None else scale * np.geomspace(1e-1, 1e-6, 11), dtype=np.float64)
    f0 = float(f(xw.copy(), *args, **kwargs))
    slope = float(np.sum(ga * v))
    res = np.array([abs(float(f((xw + e * v).astype(xw.dtype), *args, **kwargs)) - f0 - e * slope) for e in es])
    noise = 100.0 * eps_of(xw.dtype) * max(abs(f0), 1e-300)
    keep = res > noise
    if keep.sum() >= 2:
        rate = float(np.polyfit(np.log(es[keep]), np.log(res[keep]), 1)[0])
    else:
        rate = float("nan") if keep.sum() < 2 and not np.all(res <= noise) else 2.0
    return TaylorTest(es, res, rate, bool(rate > 1.5))
