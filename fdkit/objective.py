"""An objective for scipy's optimisers: f with finite-difference derivatives that reuse f(x).

``scipy.optimize.minimize(obj.fun, x0, jac=obj.jac)`` calls ``fun(x)`` and then ``jac(x)`` at
the same x.  :class:`Objective` remembers f at the last x, so a forward gradient spends exactly
N more evaluations there, not N+1 (``approx_fprime`` and a bare ``jac='2-point'`` spend N+1
or re-evaluate).  A vector f (for ``least_squares``) gets a Jacobian from ``jac``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .api import gradient, jacobian
from .engine.runner import is_jitted

__all__ = ["Objective"]


class Objective:
    """f and its finite-difference gradient (or Jacobian), sharing f(x), with counters.

    Parameters
    ----------
    f : callable
        ``f(x, *args, **kwargs)`` -> float (gradient) or array (Jacobian; ``least_squares``).
        A numba ``@njit`` f, a plain callable, or a batched one (``vectorized=True``).
    method : str, optional
        A fixed stencil: 'forward' (default; N evaluations per gradient once f(x) is known),
        'backward', 'central' (2N), 'complex' (N complex).  'richardson' also works (its
        evaluations do not use f(x)).
    h, order, workers, vectorized, bounds, args, kwargs :
        As in :func:`fdkit.gradient`, passed to every gradient.

    Attributes
    ----------
    nfev : int
        Evaluations of f in all (those of ``fun`` and those of every gradient).
    ngev : int
        Gradients (or Jacobians) computed.

    Examples
    --------
    >>> import numpy as np, fdkit
    >>> from scipy.optimize import minimize, rosen
    >>> obj = fdkit.Objective(rosen)
    >>> res = minimize(obj.fun, np.zeros(4), jac=obj.jac, method="BFGS")
    >>> bool(np.allclose(res.x, 1.0, atol=1e-4)), obj.nfev == res.nfev + 4 * res.njev
    (True, True)
    """

    def __init__(self, f: Callable, *, method: str = "forward", h=None, order: int | None = None, workers=None,
                 vectorized: bool = False, bounds=None, args: tuple = (), kwargs: dict | None = None):
        if not callable(f):
            raise TypeError(f"Objective needs a callable f, got {type(f).__name__}")
        self.f = f
        self.options = dict(method=method, h=h, order=order, workers=workers, vectorized=vectorized,
                            bounds=bounds, args=args, kwargs=kwargs)
        if method == "richardson":
            del self.options["order"], self.options["workers"], self.options["bounds"]
        self.args, self.kwargs = tuple(args), dict(kwargs or {})
        self.vectorized = vectorized
        self.nfev = 0
        self.ngev = 0
        self._x = None
        self._fx = None
        self._vector = None

    def _evaluate(self, x: np.ndarray):
        if self.vectorized:
            r = np.asarray(self.f(x[None], *self.args, **self.kwargs))[0]
        elif is_jitted(self.f) or not self.kwargs:
            r = self.f(x, *self.args)
        else:
            r = self.f(x, *self.args, **self.kwargs)
        self.nfev += 1
        r = np.asarray(r)
        if self._vector is None:
            self._vector = r.ndim > 0
        return r.astype(np.float64, copy=True) if self._vector else float(r)

    def _same(self, x: np.ndarray) -> bool:
        return self._x is not None and x.shape == self._x.shape and bool(np.array_equal(x, self._x))

    def fun(self, x) -> float | np.ndarray:
        """f(x), remembered for the gradient at the same x."""
        x = np.array(x, dtype=np.float64)
        if not self._same(x):
            self._fx = self._evaluate(x)
            self._x = x
        return self._fx.copy() if self._vector else self._fx

    def jac(self, x) -> np.ndarray:
        """The finite-difference gradient of f at x (the Jacobian for a vector f), reusing f(x)
        when it is known (from ``fun`` at the same x) or needed (forward and backward)."""
        x = np.array(x, dtype=np.float64)
        base = self.options["method"] in ("forward", "backward")
        if base or self._same(x):
            self.fun(x)  # one evaluation if x is new: the stencil needs f(x) anyway
        known = self._fx if self._same(x) else None
        if self._vector is None:  # the first call is a jac at a new x: learn f's kind
            self.fun(x)
            known = self._fx
        opts = dict(self.options)
        if self.options["method"] != "richardson":
            opts["f0"] = known
        r = (jacobian if self._vector else gradient)(self.f, x, full_output=True, **opts)
        self.nfev += r.nfev
        self.ngev += 1
        return r.value

    def value_and_grad(self, x) -> tuple:
        """(f(x), gradient at x): for ``minimize(obj.value_and_grad, x0, jac=True)``."""
        return self.fun(x), self.jac(x)

    def __repr__(self) -> str:
        return f"Objective({getattr(self.f, '__name__', 'f')}, method={self.options['method']!r}, nfev={self.nfev}, ngev={self.ngev})"
