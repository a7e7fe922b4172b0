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
and extrapolated (see :mod:`fdkit.kernels`).  Where it cannot reach full precision at |x| > 1
(rounding of a large |f| swamps it, as for log or x**2 at x = 1e6) a second sequence starting at
0.1 |x| is tried and the estimate with the smaller relative error estimate wins.  Where f is not
finite at x +- h and h > |x| / 2, the sequence jumps to h = |x| / 2 (a singularity at 0, as for
log or sqrt near 0).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .stencils import get_stencil

__all__ = ["optimal_step", "step_factor", "COMPLEX_STEP", "RICHARDSON"]

EPS = float(np.finfo(np.float64).eps)
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
#: ... on this many consecutive rows (rounding has taken over)
RICH_PATIENCE = 2
#: a second, relative sequence (h0 * |x|) is tried at |x| > 1 when the first one's error
#: estimate is above this fraction of |value|
RICH_RETRY = 1e-10
#: the rounding floor of an error estimate, in units of eps * max|f| * sum|w| / h^n
RICH_ROUNDING = 4.0
#: the error estimate is this many times the distance of the chosen tableau entry to its
#: neighbours (differences of noisy entries are samples of the noise, not bounds on it)
RICH_FACTOR = 2.0

#: the policy in one place, for the docs and the reports
RICHARDSON = {
    "h0": RICH_H0, "ratio": RICH_RATIO, "rows": RICH_ROWS, "safe": RICH_SAFE,
    "patience": RICH_PATIENCE, "retry": RICH_RETRY, "rounding": RICH_ROUNDING, "factor": RICH_FACTOR,
}


def step_factor(method: str, order: int | None = None, n: int = 1) -> float:
    """The constant c in ``h = c * max(1, |x|)`` for a stencil (eps^(1/(p+n)), or 1e-20 for complex)."""
    s = get_stencil(method, order, n)
    if s.method == "complex":
        return COMPLEX_STEP
    return EPS ** (1.0 / (s.order + s.n))


def optimal_step(method: str, x: ArrayLike = 1.0, *, order: int | None = None, n: int = 1) -> float | NDArray[np.float64]:
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
        Derivative order (1 or 2).

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
    central p=2, n=2: eps^(1/4) ~ 1.2e-4.  These balance truncation against rounding for a
    function and derivatives of order one; they are the defaults of every fdkit function.

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
    """
    c = step_factor(method, order, n)
    xa = np.asarray(x, dtype=np.float64) if not isinstance(x, (float, int)) else None
    if xa is None:
        return c * max(1.0, abs(float(x)))
    h = c * np.maximum(1.0, np.abs(xa))
    return float(h) if h.ndim == 0 else h
