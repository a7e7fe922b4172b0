"""Default step sizes: the classical near-optimal h for each stencil.

For a stencil of accuracy p for the n-th derivative, the truncation error is ~C h^p and
the rounding error ~eps/h^n, so the total is smallest near h ~ eps^(1/(p+n)) (Numerical
Recipes, 3rd ed., section 5.7).  fdkit scales it by max(1, |x|) so that the step stays
representable relative to x, and near x = 0 stays absolute.  The complex step has no
subtraction, hence no rounding error to balance: any tiny step works, and fdkit uses
1e-20 * max(1, |x|).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .stencils import get_stencil

__all__ = ["optimal_step", "step_factor", "COMPLEX_STEP"]

EPS = float(np.finfo(np.float64).eps)
#: relative step of the complex-step method
COMPLEX_STEP = 1e-20


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
