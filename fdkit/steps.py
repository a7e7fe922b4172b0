"""Default step sizes: the classical near-optimal h for each stencil.

For a stencil of accuracy p for the n-th derivative, the truncation error is ~C h^p and
the rounding error ~eps/h^n, so the total is smallest near h ~ eps^(1/(p+n)) (Numerical
Recipes, 3rd ed., section 5.7).  fdkit scales it by max(1, |x|) so that the step stays
representable relative to x, and near x = 0 stays absolute.  The complex step has no
subtraction, hence no rounding error to balance: any tiny step works, and fdkit uses
1e-20 * max(1, |x|).

``method="richardson"`` has its own policy (``RICHARDSON``): steps are *absolute*, not relative
to |x|, because the scale on which f varies belongs to f, not to x; a step proportional to |x|
steps over whole periods of sin at x = 1e8.  The sequence 0.1, 0.05, ... is central-differenced
and extrapolated (see :mod:`fdkit.engine.kernels`).  Where it cannot reach full precision at |x| > 1
(rounding of a large |f| swamps it, as for log or x**2 at x = 1e6) a second sequence starting at
0.1 |x| is tried and the estimate with the smaller relative error estimate wins.  Where f is not
finite at x +- h and h > |x| / 2, the sequence jumps to h = |x| / 2 (a singularity at 0, as for
log or sqrt near 0).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .stencils import get_stencil

__all__ = ["optimal_step", "step_factor", "eps_of", "working_dtype", "model_optimum", "richardson_retry", "fit_to_bounds",
           "COMPLEX_STEP", "RICHARDSON", "PRECISIONS"]

EPS = float(np.finfo(np.float64).eps)
#: the working precisions fdkit computes in, finest first
PRECISIONS = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.float16))


def _real_dtype(dtype) -> np.dtype:
    """The real floating dtype behind dtype: complex64 -> float32, integers and bool -> float64."""
    d = np.dtype(dtype)
    if d.kind == "c":
        return np.dtype(np.finfo(d).dtype)
    if d.kind != "f" or d.itemsize > 8:  # integers compute in float64; longdouble is not a kernel type
        return np.dtype(np.float64)
    return d


_EPS: dict = {}
_WORKING: dict = {}


def eps_of(dtype: DTypeLike = np.float64) -> float:
    """Machine epsilon of a working precision (float64, float32, float16; complex -> its real part)."""
    e = _EPS.get(dtype)
    if e is None:
        e = _EPS[dtype] = float(np.finfo(_real_dtype(dtype)).eps)
    return e


def working_dtype(*dtypes) -> np.dtype:
    """The working precision of a call: the coarsest of the dtypes given (x's and f's result's).

    Integers (and None) count as float64; complex dtypes count as their real part.

    >>> working_dtype(np.float64, np.float32), working_dtype(np.int64, None)
    (dtype('float32'), dtype('float64'))
    """
    w = _WORKING.get(dtypes)
    if w is None:
        ds = [_real_dtype(d) for d in dtypes if d is not None]
        w = _WORKING[dtypes] = max(ds, key=eps_of) if ds else np.dtype(np.float64)
    return w


def model_optimum(A: float, B: float, q: int) -> tuple[float | None, float | None]:
    """Step and error where the model ``A h^q + B / h`` (truncation + rounding) is smallest.

    ``h* = (B / (q A))^(1/(q+1))``; (None, None) where either term vanishes.  The sweep's error
    model uses it with the function's own derivatives; :func:`step_factor` is its classical form
    for f and its derivatives of order one, ``eps^(1/(p+n))``.
    """
    if not (A > 0 and B > 0):
        return None, None
    h = (B / (q * A)) ** (1.0 / (q + 1))
    return h, A * h**q + B / h
#: relative step of the complex-step method
COMPLEX_STEP = 1e-20

# --- the step policy of method="richardson" (adaptive: extrapolation over a step sequence) ---
#: first (largest) step of the absolute sequence h0, h0/r, h0/r^2, ...
RICH_H0 = 0.1
#: ratio r between successive steps
RICH_RATIO = 2.0
#: most central differences (tableau rows) per sequence
RICH_ROWS = 24
#: stop a sequence when the newest diagonal moves by >= SAFE times the best error estimate ...
RICH_SAFE = 8.0
#: ... on this many consecutive rows (rounding has taken over) ...
RICH_PATIENCE = 2
#: ... while the best estimate is within this factor of the rounding floor (a jump far above the
#: floor is truncation: the steps have not reached the scale on which f varies)
RICH_NOISE = 100.0
#: a second, relative sequence (h0 * |x|) is tried at |x| > 1 when the first one's error
#: estimate is above this fraction of |value| (in float64; ``richardson_retry`` scales it to
#: other precisions as eps^(2/3))
RICH_RETRY = 1e-10
#: the rounding floor of an error estimate, in units of eps * max|f| * sum|w| / h^n
RICH_ROUNDING = 8.0
#: the error estimate is this many times the distance of the chosen tableau entry to its
#: neighbours (differences of noisy entries are samples of the noise, not bounds on it)
RICH_FACTOR = 2.0

#: the policy in one place, for the docs and the reports
RICHARDSON = {
    "h0": RICH_H0, "ratio": RICH_RATIO, "rows": RICH_ROWS, "safe": RICH_SAFE,
    "patience": RICH_PATIENCE, "noise": RICH_NOISE, "retry": RICH_RETRY, "rounding": RICH_ROUNDING, "factor": RICH_FACTOR,
}


def richardson_retry(dtype: DTypeLike = np.float64) -> float:
    """The relative estimate above which a second (relative) Richardson sequence is tried:
    ``RICH_RETRY`` in float64, scaled by (eps / eps64)^(2/3) in a coarser precision."""
    return RICH_RETRY * (eps_of(dtype) / EPS) ** (2.0 / 3.0)


def step_factor(method: str, order: int | None = None, n: int = 1, dtype: DTypeLike = np.float64) -> float:
    """The constant c in ``h = c * max(1, |x|)`` for a stencil: eps^(1/(p+n)) with the eps of the
    working precision dtype, or 1e-20 for the complex step (which subtracts nothing)."""
    s = get_stencil(method, order, n)
    if s.method == "complex":
        return COMPLEX_STEP
    return eps_of(dtype) ** (1.0 / (s.order + s.n))


def optimal_step(method: str, x: ArrayLike = 1.0, *, order: int | None = None, n: int = 1,
                 dtype: DTypeLike = np.float64) -> float | NDArray[np.float64]:
    """Classical near-optimal step for a finite-difference stencil at x.

    Parameters
    ----------
    method : {'forward', 'backward', 'central', 'complex'}
        The stencil family.
    x : float or array_like, optional
        Point(s) at which the derivative is taken; the step scales with max(1, |x|).
    order : int, optional
        Accuracy order p of the stencil (default: 1 for forward/backward, 2 for central/complex).
    n : int, optional
        Derivative order (1 to 4 for central, 1 or 2 for one-sided stencils).
    dtype : dtype, optional
        The working precision (float64 by default; float32, float16): its eps sets the step.
        fdkit's functions pass the coarser of x's dtype and f's result dtype.

    Returns
    -------
    float or ndarray
        ``eps**(1/(p+n)) * max(1, |x|)`` (``1e-20 * max(1, |x|)`` for complex); a float for a
        scalar x, else an array of x's shape.

    Raises
    ------
    ValueError
        Unknown method or unsupported order/n.

    Notes
    -----
    forward/backward, p=1, n=1: sqrt(eps) ~ 1.5e-8; central p=2, n=1: eps^(1/3) ~ 6.1e-6;
    central p=2, n=2: eps^(1/4) ~ 1.2e-4 (float64).  In float32 (eps = 1.2e-7) forward is
    3.5e-4 and central 4.9e-3.  These balance truncation against rounding for a function and
    derivatives of order one; they are the defaults of every fdkit function.

    References
    ----------
    W. H. Press et al., Numerical Recipes, 3rd ed., section 5.7.

    Examples
    --------
    >>> import numpy as np
    >>> bool(optimal_step("forward") == np.sqrt(np.finfo(float).eps))
    True
    >>> bool(np.isclose(optimal_step("central", 100.0), 100 * np.finfo(float).eps ** (1 / 3)))
    True
    >>> bool(optimal_step("forward", dtype=np.float32) == np.sqrt(np.finfo(np.float32).eps))
    True
    """
    c = step_factor(method, order, n, dtype)
    xa = np.asarray(x, dtype=np.float64) if not isinstance(x, (float, int)) else None
    if xa is None:
        return c * max(1.0, abs(float(x)))
    h = c * np.maximum(1.0, np.abs(xa))
    return float(h) if h.ndim == 0 else h


def fit_to_bounds(x: np.ndarray, h: np.ndarray, lb: np.ndarray, ub: np.ndarray, span: int, one_span: int,
                  two_sided: bool) -> tuple[np.ndarray, np.ndarray]:
    """Steps that keep a stencil's points inside [lb, ub] (scipy's ``approx_derivative`` rule).

    Parameters
    ----------
    x, h, lb, ub : ndarray
        Points, positive nominal steps and bounds (flat, float64, x within the bounds).
    span : int
        The stencil's reach in steps: max |offset| (central p = 2: 1; forward p = 2: 2).
    one_span : int
        The reach of the one-sided stencil that replaces a central one (``two_sided``).
    two_sided : bool
        A central stencil (else a forward one; a backward one is passed as forward with -h).

    Returns
    -------
    h : ndarray
        Signed steps: a one-sided stencil steps downwards where h < 0.  Where a full step fits
        on neither side, the step shrinks to the room on the roomier side.
    one_sided : ndarray of bool
        Where a central stencil is replaced by the one-sided one (always False for one-sided).

    Examples
    --------
    >>> x = np.array([0.0, 0.5, 1.0]); one = np.ones(3)
    >>> fit_to_bounds(x, 0.1 * one, 0 * one, one, 1, 2, True)
    (array([ 0.1,  0.1, -0.1]), array([ True, False,  True]))
    """
    lower = x - lb
    upper = ub - x
    hs = h.astype(np.float64).copy()
    if not two_sided:
        reach = np.abs(hs) * span
        fits = np.where(hs > 0, upper >= reach, lower >= reach)
        flips = ~fits & np.where(hs > 0, lower >= reach, upper >= reach)
        hs[flips] *= -1.0
        cramped = ~fits & ~flips
        up = cramped & (upper >= lower)
        hs[up] = upper[up] / span
        down = cramped & (upper < lower)
        hs[down] = -lower[down] / span
        return hs, np.zeros(x.shape, dtype=bool)
    central = (lower >= span * hs) & (upper >= span * hs)
    one = ~central
    up = one & (upper >= lower)
    hs[up] = np.minimum(hs[up], upper[up] / one_span)
    down = one & (upper < lower)
    hs[down] = -np.minimum(hs[down], lower[down] / one_span)
    # a one-sided step squeezed below what a central stencil fits: central with that room
    room = np.minimum(upper, lower) / span
    back = one & (np.abs(hs) <= room)
    hs[back] = room[back]
    one[back] = False
    return hs, one
