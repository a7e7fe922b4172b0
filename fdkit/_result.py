"""The result object returned with ``full_output=True`` (``check_gradient``'s is in :mod:`fdkit.check`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DerivativeResult:
    """What a finite-difference call computed, and what it cost.

    Attributes
    ----------
    value : float or ndarray
        The derivative, gradient (x's shape), Jacobian (M, N) or Hessian (N, N).
    h : float or ndarray
        The nominal steps used, broadcast to x's shape (a float for a scalar x).  For
        ``method='richardson'``: the step of the tableau entry chosen, per element.
    nfev : int
        Evaluations of f actually made, counted where f is called (for an elementwise
        derivative, one per point per stencil point), including the one probe of a plain f
        at x that tells fdkit its result's dtype (reused where the stencil needs f(x)).
    method : str
        The method used.
    order : int or None
        Accuracy order p of the stencil (truncation error O(h^p)); None for 'richardson',
        whose order varies per element (``2 * level + 2``).
    n : int
        Derivative order.
    error : float or ndarray or None
        An estimate of the absolute error of each element, of value's shape.  For
        ``method='richardson'``: Ridders' tableau differences, never below the rounding floor.
        For a fixed stencil of accuracy p: ``|D(h) - D(h/2)| / (1 - 2^-p)`` from the same
        stencil at half the step (its evaluations are counted in nfev: full_output doubles the
        cost of a fixed method); an estimate, not a bound.
    level : int or ndarray or None
        ``method='richardson'`` only: the tableau level j chosen per element (the terms
        h^2 .. h^2j eliminated); -1 where no estimate was found.
    status : int or ndarray or None
        Per element, as ``scipy.differentiate``: 0 converged, -1 rounding took over (the error
        estimate stopped falling; for 'richardson', also a step that vanished next to x), -2
        every step spent (``maxiter``), -3 a value that is not finite.  For 'richardson',
        "converged" means the estimate met ``atol + rtol |value|`` or the truncation fell below
        the rounding floor; a fixed stencil reports 0 where the value is finite and -3 where not.
    success : bool or ndarray or None
        ``status == 0`` per element.
    ncalls : int or None
        Calls of f made: nfev, except for a batched f (``vectorized=True``), which evaluates a
        chunk of points per call.
    element_nfev : int or ndarray or None
        ``method='richardson'`` only: the evaluations of f made for each element (for a
        Jacobian entry: those of its column, which its components share; the probe of a plain f
        and f(x) of a one-sided gradient are counted in ``nfev`` only).
    precision : str
        The working precision the steps (and Richardson's rounding floor) were sized for: the
        coarser of x's dtype and the dtype of f's result ('float64', 'float32', 'float16').
        The value itself has x's dtype: a float64 x with an f that returns float32 gives
        float64 values computed with float32-sized steps.
    """

    value: float | np.ndarray
    h: float | np.ndarray
    nfev: int
    method: str
    order: int | None
    n: int = 1
    error: float | np.ndarray | None = None
    level: int | np.ndarray | None = None
    precision: str = "float64"
    status: int | np.ndarray | None = None
    success: bool | np.ndarray | None = None
    element_nfev: int | np.ndarray | None = None
    ncalls: int | None = None
