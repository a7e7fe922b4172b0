"""Public API: validate -> kernel -> reshape -> result.

Order of work in every function: type checks (TypeError) -> value checks (ValueError) ->
f checked (a jitted f by compiling it for the argument type, no evaluation spent; a plain f
on the evaluations the stencil makes anyway) -> kernel -> reshape -> result.
"""

from __future__ import annotations

import warnings
from typing import Callable, Literal

import numpy as np
from numba import types
from numpy.typing import ArrayLike, NDArray

from . import kernels as K
from ._callable import checked_array_f, checked_scalar_f, deriv_numpy, is_jitted, python_kernel, run_jitted
from ._result import DerivativeResult, GradientCheck
from ._validate import as_real_array, check_callable, check_flag, check_h, raise_nonfinite_x, warn_tiny_h
from .stencils import Stencil, check_method, get_stencil
from .steps import step_factor

__all__ = ["derivative", "gradient", "jacobian", "hessian", "check_gradient"]

Method = Literal["forward", "backward", "central", "complex", "richardson"]

_STENCILS: dict = {}
_DEFAULT_H: dict = {}
_ARRAY_TYPES: dict = {}
# stacklevel for warnings raised two frames below the public function (helper -> _steps -> api -> user)
_SL = 4


def _stencil(method, order, n) -> Stencil:
    try:
        st = _STENCILS.get((method, order, n))
    except TypeError:  # unhashable method/order: let get_stencil say what is wrong
        st = None
    if st is None:
        st = get_stencil(method, order, n)
        _STENCILS[(method, order, n)] = st
        _DEFAULT_H[st] = np.array([step_factor(st.method, st.order, st.n)])
    return st


def _method(method, order, n) -> Stencil | None:
    """The stencil of a fixed method, or None for 'richardson' (n = 1 or 2, no order)."""
    if isinstance(method, str) and check_method(method, adaptive=True) == "richardson":
        get_stencil("central", None, n)  # the same n rules (and messages) as central
        if order is not None:
            raise ValueError(
                f"order={order!r} is not used by method='richardson': it raises the order itself, "
                "per element, until its error estimate stops falling; leave order=None"
            )
        return None
    return _stencil(method, order, n)


def _rich_steps(h, x: np.ndarray) -> tuple[np.ndarray, bool]:
    """(first steps, user-given?) for method='richardson': the user's h is the first (largest)
    step of a single sequence; without one the policy of :data:`fdkit.steps.RICHARDSON` runs."""
    if h is None:
        return np.zeros(1), False
    return check_h(h, x.shape), True


def _rich_outputs(size: int):
    return np.empty(size), np.empty(size), np.empty(size), np.empty(size, dtype=np.int64)


def _py_kernel(kernel, *args):
    """A kernel's Python twin for a plain f, with numba's float semantics (no warnings)."""
    with np.errstate(all="ignore"):
        return python_kernel(kernel)(*args)


def _array_type(dtype, ndim: int):
    key = (dtype, ndim)
    t = _ARRAY_TYPES.get(key)
    if t is None:
        t = _ARRAY_TYPES[key] = types.Array(dtype, ndim, "C")
    return t


def _steps(h, st: Stencil, x: np.ndarray) -> tuple[np.ndarray, bool]:
    """(h vector, relative?) for the kernels: the default steps are relative to max(1, |x|)."""
    if h is None:
        return _DEFAULT_H[st], True
    hv = check_h(h, x.shape)
    if st.method != "complex":
        warn_tiny_h(hv, x.reshape(-1), stacklevel=_SL)
    return hv, False


def _h_used(hvec: np.ndarray, rel: bool, x: np.ndarray):
    """The nominal steps, in x's shape (a float for a 0-d x)."""
    if rel:
        h = hvec[0] * np.maximum(1.0, np.abs(x))
    else:
        h = np.broadcast_to(hvec, (x.size,)).reshape(x.shape).copy() if hvec.size > 1 or x.ndim else np.array(hvec[0])
    return float(h) if np.ndim(h) == 0 else h


def _private_copy(x, what: str) -> np.ndarray:
    """A C-contiguous float64 copy of x that the kernels may perturb; the caller's x is never touched."""
    xa = as_real_array(x)
    xw = np.array(xa, dtype=np.float64, order="C")
    if K.count_nonfinite(xw):
        raise_nonfinite_x(xa)
    return xw


def _warn_nonfinite(value, what: str, stacklevel: int = 3) -> None:
    value = np.asarray(value)
    bad = K.count_nonfinite(value)
    if bad:
        warnings.warn(
            f"{what}: f returned NaN or inf at or near x ({bad} of {value.size} entries of the result are "
            "not finite); check f at x, or a smaller h if f is undefined nearby",
            RuntimeWarning,
            stacklevel=stacklevel,  # 3: _warn_nonfinite -> public function -> the caller
        )


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
) -> float | NDArray[np.float64] | DerivativeResult:
    """Elementwise n-th derivative of a scalar function f: R -> R at every point of x.

    Parameters
    ----------
    f : callable
        A numba ``@njit`` function of one float (compiled into fdkit's kernel: fastest), or a
        plain Python callable (vectorised over x in numpy if it accepts arrays, else looped).
    x : float or array_like
        Point(s); any shape.  Integers are promoted to float64.
    method : {'central', 'forward', 'backward', 'complex', 'richardson'}, optional
        Stencil family; 'complex' is the complex step (n = 1 only, f must accept complex input).
        'richardson' is adaptive: central differences on a sequence of steps, extrapolated to
        h = 0, with an error estimate per point (see Notes).
    h : float or array_like, optional
        Absolute step, a scalar or an array broadcastable to x.  Default
        ``optimal_step(method, x, order=order, n=n)``.  For 'richardson': the first (largest)
        step of the sequence, replacing the step policy.
    order : int, optional
        Accuracy order p: forward/backward 1 or 2 (default 1), central 2, 4 or 6 (default 2).
        Not used by 'richardson' (its order grows per point).
    n : int, optional
        Derivative order, 1 or 2.
    parallel : bool, optional
        Split the points over threads (jitted f only; a plain callable runs serially).
    full_output : bool, optional
        Return a :class:`~fdkit.DerivativeResult` (value, h, nfev, method, order, n; with
        'richardson' also ``error``, an estimate of each element's absolute error, and
        ``level``; h is then the step of the entry chosen).

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
    ``hh = (x + h) - x``, the step actually taken.  Truncation error is O(h^p); cost is one
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
    st = _method(method, order, n)
    parallel = check_flag(parallel, "parallel")
    full_output = check_flag(full_output, "full_output")
    xa = as_real_array(x)
    xf = np.asarray(xa, dtype=np.float64, order="C")  # only read, never written
    xflat = xf.reshape(-1)
    if K.count_nonfinite(xflat):
        raise_nonfinite_x(xa)
    if st is None:
        return _derivative_richardson(f, xa, xflat, h, int(n), parallel, full_output)
    hvec, rel = _steps(h, st, xf)
    cs = st.method == "complex"
    if is_jitted(f):
        out = np.empty(xflat.size)
        argtype = types.complex128 if cs else types.float64
        if cs:
            kern = K.deriv_complex_par if parallel else K.deriv_complex
            args = (xflat, hvec, rel, out)
        else:
            kern = K.deriv_stencil_par if parallel else K.deriv_stencil
            args = (xflat, hvec, rel, st.offsets_t, st.weights_t, st.n, out)
        nfev = run_jitted(kern, f, args, argtype, "scalar", "derivative", cs)
        value = out.reshape(xa.shape)
    else:
        hb = hvec[0] if hvec.size == 1 else hvec.reshape(xa.shape)
        value, nfev = deriv_numpy(f, xf, hb, rel, st)
    _warn_nonfinite(value, "derivative")
    if xa.ndim == 0:
        value = float(value)
    if full_output:
        return DerivativeResult(value, _h_used(hvec, rel, xf), int(nfev), st.method, st.order, st.n)
    return value


def _rich_result(value, err, hch, lev, shape: tuple, nfev, n: int) -> DerivativeResult:
    """A richardson run's result: error, step and level in the value's shape (scalars for a 0-d x)."""
    if shape:
        e, hc, lv = err.reshape(shape), hch.reshape(shape), lev.reshape(shape)
    else:
        e, hc, lv = float(err.flat[0]), float(hch.flat[0]), int(lev.flat[0])
    return DerivativeResult(value, hc, int(nfev), "richardson", None, n, e, lv)


def _derivative_richardson(f, xa, xflat, h, n, parallel, full_output):
    hvec, userh = _rich_steps(h, xflat.reshape(xa.shape))
    out, err, hch, lev = _rich_outputs(xflat.size)
    args = (xflat, hvec, userh, n, out, err, hch, lev)
    if is_jitted(f):
        kern = K.deriv_richardson_par if parallel else K.deriv_richardson
        nfev = run_jitted(kern, f, args, types.float64, "scalar", "derivative")
    else:
        nfev = _py_kernel(K.deriv_richardson, checked_scalar_f(f, "derivative"), *args)
    value = out.reshape(xa.shape)
    _warn_nonfinite(value, "derivative", 4)  # one frame deeper than the public function
    value = float(value) if xa.ndim == 0 else value
    if full_output:
        return _rich_result(value, err, hch, lev, xa.shape, nfev, n)
    return value


def _gradient_kernel(f, xw, hvec, rel, st: Stencil, parallel: bool, what: str):
    """Run the gradient kernel for (jitted or plain) f on the private copy xw; (flat out, nfev)."""
    out = np.empty(xw.size)
    cs = st.method == "complex"
    if is_jitted(f):
        argtype = _array_type(types.complex128 if cs else types.float64, xw.ndim)
        if cs:
            kern, args = (K.grad_complex_par if parallel else K.grad_complex), (xw, hvec, rel, out)
        else:
            kern = K.grad_stencil_par if parallel else K.grad_stencil
            args = (xw, hvec, rel, st.offsets, st.weights, out)
        nfev = run_jitted(kern, f, args, argtype, "scalar", what, cs)
    else:
        g = checked_scalar_f(f, what, cs)
        if cs:
            nfev = K.grad_complex.py_func(g, xw, hvec, rel, out)
        else:
            nfev = K.grad_stencil.py_func(g, xw, hvec, rel, st.offsets, st.weights, out)
    return out, nfev


def _gradient_richardson(f, xw, h, parallel, full_output):
    hvec, userh = _rich_steps(h, xw)
    out, err, hch, lev = _rich_outputs(xw.size)
    args = (xw, hvec, userh, out, err, hch, lev)
    if is_jitted(f):
        kern = K.grad_richardson_par if parallel else K.grad_richardson
        nfev = run_jitted(kern, f, args, _array_type(types.float64, xw.ndim), "scalar", "gradient")
    else:
        nfev = _py_kernel(K.grad_richardson, checked_scalar_f(f, "gradient"), *args)
    _warn_nonfinite(out, "gradient", 4)
    shape = xw.shape
    value = out.reshape(shape) if xw.ndim else float(out[0])
    if full_output:
        return _rich_result(value, err, hch, lev, shape, nfev, 1)
    return value


def gradient(
    f: Callable,
    x: ArrayLike,
    *,
    method: Method = "central",
    h: float | ArrayLike | None = None,
    order: int | None = None,
    parallel: bool = False,
    full_output: bool = False,
) -> float | NDArray[np.float64] | DerivativeResult:
    """Gradient of a scalar function f: R^N -> R at x, in x's shape.

    Parameters
    ----------
    f : callable
        ``f(x) -> float`` where x has the shape of the x given here (a weight matrix W is
        passed as a matrix).  A numba ``@njit`` function is compiled into fdkit's kernel; a
        plain Python callable runs the same stencil in a Python loop.
    x : array_like
        Parameters, any shape (a weight matrix W gets a gradient of W's shape).  Never modified.
    method : {'central', 'forward', 'backward', 'complex', 'richardson'}, optional
        'forward' costs exactly 1+N evaluations of f (f(x) once), 'central' 2N, 'complex'
        N evaluations at complex points (f must accept complex input).  'richardson'
        extrapolates central differences per parameter as in :func:`derivative` (about 6-14
        evaluations per parameter) and estimates each partial's error.
    h : float or array_like, optional
        Absolute step, a scalar or broadcastable to x.  Default ``optimal_step(method, x)``;
        for 'richardson' the first step of each parameter's sequence.
    order : int, optional
        Accuracy order (forward/backward 1 or 2, central 2, 4 or 6); default as in
        :func:`optimal_step`.  Higher orders cost more evaluations.
    parallel : bool, optional
        Split the parameters over threads (prange, one work copy of x per thread).  Pays off
        for large N and a jitted f; a plain callable runs serially.
    full_output : bool, optional
        Return a :class:`~fdkit.DerivativeResult` with value, h, nfev (counted), method (and
        for 'richardson' ``error`` and ``level``, of x's shape).

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
    check_callable(f, "gradient")
    st = _method(method, order, 1)
    parallel = check_flag(parallel, "parallel")
    full_output = check_flag(full_output, "full_output")
    xw = _private_copy(x, "gradient")
    if st is None:
        return _gradient_richardson(f, xw, h, parallel, full_output)
    hvec, rel = _steps(h, st, xw)
    out, nfev = _gradient_kernel(f, xw, hvec, rel, st, parallel, "gradient")
    _warn_nonfinite(out, "gradient")
    value = out.reshape(xw.shape) if xw.ndim else float(out[0])
    if full_output:
        return DerivativeResult(value, _h_used(hvec, rel, xw), int(nfev), st.method, st.order, 1)
    return value


def jacobian(
    f: Callable,
    x: ArrayLike,
    *,
    method: Method = "central",
    h: float | ArrayLike | None = None,
    order: int | None = None,
    full_output: bool = False,
) -> NDArray[np.float64] | DerivativeResult:
    """Jacobian of a vector function f: R^N -> R^M at x, of shape (M, N).

    Parameters
    ----------
    f : callable
        ``f(x) -> array`` (any shape; M is its size), x of the shape given here.  A numba
        ``@njit`` function is compiled into fdkit's kernel; a plain callable is looped.
    x : array_like
        Parameters, any shape; N = x.size (column j belongs to ``x.flat[j]``).
    method : {'central', 'forward', 'backward', 'complex', 'richardson'}, optional
        forward: 1+N evaluations, central 2N, complex N.  'richardson': one sequence of
        steps per column (as in :func:`derivative`), a tableau and an error estimate per
        entry; a column runs until all its entries have stopped.
    h : float or array_like, optional
        Absolute step, scalar or broadcastable to x.  Default ``optimal_step(method, x)``;
        for 'richardson' the first step of each column's sequence.
    order : int, optional
        Accuracy order, as in :func:`gradient`.
    full_output : bool, optional
        Return a :class:`~fdkit.DerivativeResult` (for 'richardson' with ``error``,
        ``level`` and ``h`` of the Jacobian's shape).

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
    st = _method(method, order, 1)
    full_output = check_flag(full_output, "full_output")
    xw = _private_copy(x, "jacobian")
    if st is None:
        hvec, userh = _rich_steps(h, xw)
        if is_jitted(f):
            argtype = _array_type(types.float64, xw.ndim)
            res = run_jitted(K.jac_richardson, f, (xw, hvec, userh), argtype, "array", "jacobian")
        else:
            res = _py_kernel(K.jac_richardson, checked_array_f(f, "jacobian"), xw, hvec, userh)
        jac, err, hch, lev, nfev = res
        _warn_nonfinite(jac, "jacobian")
        if full_output:
            return _rich_result(jac, err, hch, lev, jac.shape, nfev, 1)
        return jac
    hvec, rel = _steps(h, st, xw)
    cs = st.method == "complex"
    if is_jitted(f):
        argtype = _array_type(types.complex128 if cs else types.float64, xw.ndim)
        if cs:
            kern, args = K.jac_complex, (xw, hvec, rel)
        else:
            kern, args = K.jac_stencil, (xw, hvec, rel, st.offsets, st.weights)
        jac, nfev = run_jitted(kern, f, args, argtype, "array", "jacobian", cs)
    else:
        g = checked_array_f(f, "jacobian", cs)
        if cs:
            jac, nfev = K.jac_complex.py_func(g, xw, hvec, rel)
        else:
            jac, nfev = K.jac_stencil.py_func(g, xw, hvec, rel, st.offsets, st.weights)
    _warn_nonfinite(jac, "jacobian")
    if full_output:
        return DerivativeResult(jac, _h_used(hvec, rel, xw), int(nfev), st.method, st.order, 1)
    return jac


def hessian(
    f: Callable,
    x: ArrayLike,
    *,
    method: Literal["central", "richardson"] = "central",
    h: float | ArrayLike | None = None,
    full_output: bool = False,
) -> NDArray[np.float64] | DerivativeResult:
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
        ``optimal_step('central', x, n=2)`` = eps^(1/4) * max(1, |x|); for 'richardson' the
        first step of each entry's sequence (default: its step policy).
    full_output : bool, optional
        Return a :class:`~fdkit.DerivativeResult` (for 'richardson' with ``error``, ``level``
        and ``h`` per entry, each (N, N)).

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
    if isinstance(method, str) and method not in ("central", "richardson"):
        check_method(method, adaptive=True)  # an unknown name gets the usual message
        raise ValueError(f"hessian supports method='central' or 'richardson', got method={method!r}")
    st = _method(method, None, 2)
    full_output = check_flag(full_output, "full_output")
    xw = _private_copy(x, "hessian")
    if st is None:
        hvec, userh = _rich_steps(h, xw)
        n = xw.size
        out, err, hch = np.empty((n, n)), np.empty((n, n)), np.empty((n, n))
        lev = np.empty((n, n), dtype=np.int64)
        args = (xw, hvec, userh, out, err, hch, lev)
        if is_jitted(f):
            nfev = run_jitted(K.hess_richardson, f, args, _array_type(types.float64, xw.ndim), "scalar", "hessian")
        else:
            nfev = _py_kernel(K.hess_richardson, checked_scalar_f(f, "hessian"), *args)
        _warn_nonfinite(out, "hessian")
        if full_output:
            return _rich_result(out, err, hch, lev, out.shape, nfev, 2)
        return out
    hvec, rel = _steps(h, st, xw)
    out = np.empty((xw.size, xw.size))
    if is_jitted(f):
        argtype = _array_type(types.float64, xw.ndim)
        nfev = run_jitted(K.hess_central, f, (xw, hvec, rel, out), argtype, "scalar", "hessian")
    else:
        nfev = python_kernel(K.hess_central)(checked_scalar_f(f, "hessian"), xw, hvec, rel, out)
    _warn_nonfinite(out, "hessian")
    if full_output:
        return DerivativeResult(out, _h_used(hvec, rel, xw), int(nfev), "central", 2, 2)
    return out


def check_gradient(
    f: Callable,
    grad: Callable | ArrayLike,
    x: ArrayLike,
    *,
    method: Method = "central",
    rtol: float = 1e-6,
) -> GradientCheck:
    """Compare an analytical gradient (e.g. hand-written backprop) with a finite-difference one.

    Parameters
    ----------
    f : callable
        The scalar function, as for :func:`gradient`.
    grad : callable or array_like
        The analytical gradient: a function of x (called with a copy of x) or its value at x,
        in x's shape (or flat, with x.size entries).
    x : array_like
        Where to compare; never modified.
    method : str, optional
        Finite-difference method for the reference ('central' by default; 'complex' is the
        most accurate when f accepts complex input).
    rtol : float, optional
        Tolerance on the per-parameter error ``|g - fd| / max(1, |fd|)``.

    Returns
    -------
    GradientCheck
        ``rel_error`` (x's shape), ``max_error``, ``worst_index``, ``ok``, both gradients.

    Examples
    --------
    >>> import numpy as np, fdkit
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> fdkit.check_gradient(lambda v: np.sum(v**2), lambda v: 2 * v, x).ok
    True
    >>> bad = fdkit.check_gradient(lambda v: np.sum(v**2), lambda v: 2 * v * [1, 1, 1.01], x)
    >>> bad.ok, bad.worst_index
    (False, (2,))
    """
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating, np.integer)):
        raise TypeError(f"rtol must be a positive float, got {type(rtol).__name__} {rtol!r}")
    if not (rtol > 0 and np.isfinite(rtol)):
        raise ValueError(f"rtol must be positive and finite, got rtol={rtol!r}")
    xw = _private_copy(x, "check_gradient")
    fd = np.asarray(gradient(f, xw, method=method), dtype=np.float64)
    ga = grad(xw.copy()) if callable(grad) else grad
    ga = as_real_array(ga, "grad").astype(np.float64)
    if ga.shape != xw.shape:
        if ga.size != xw.size:
            raise ValueError(f"grad has shape {ga.shape}, but x has shape {xw.shape}; the gradient must have x's shape")
        ga = ga.reshape(xw.shape)
    rel = np.abs(ga - fd) / np.maximum(1.0, np.abs(fd))
    if rel.size == 0:
        worst, max_err = (), 0.0
    else:
        flat_i = int(np.nanargmax(rel)) if not np.isnan(rel).all() else 0
        worst = tuple(int(i) for i in np.unravel_index(flat_i, rel.shape))
        max_err = float(np.max(rel)) if not np.isnan(rel).any() else float("nan")
    ok = bool(max_err <= rtol)
    return GradientCheck(rel, max_err, worst, ok, ga, fd, float(rtol), method)
