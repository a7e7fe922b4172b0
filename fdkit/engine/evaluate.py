"""The one numpy stencil evaluator: elementwise derivatives of a plain f, and the error-vs-h sweep.

:func:`stencil_derivative` computes ``part(sum_k w_k f(x + o_k hh)) / hh**n`` for arrays x and h
(broadcast together) with one call of f per stencil point, exactly as the jitted ``deriv_body``
does per element: points rounded to x's precision, ``hh = (x + h) - x`` the step actually taken
(h itself for the complex step), sums accumulated in float64 relative to the first value
(the weights sum to 0, so an f that does not change gives exactly 0).  The sweep calls it with one x and
a grid of steps; :func:`fdkit.derivative` with a plain f calls it with x's points and their steps.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..stencils import Stencil

__all__ = ["stencil_derivative", "elementwise_caller", "is_elementwise"]


def stencil_derivative(call: Callable[[np.ndarray], np.ndarray], x, h, stencil: Stencil, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The stencil's n-th derivative at x with steps h, evaluated by ``call`` on whole arrays.

    Parameters
    ----------
    call : callable
        ``call(points) -> values`` of the points' shape (real, or complex for the complex step).
    x, h : array_like
        Points and nominal steps, broadcast together.
    stencil : Stencil
    dtype : dtype
        x's precision: every point is rounded to it (complex64 for float32 with the complex step).

    Returns
    -------
    value : ndarray of float64
        NaN where the step vanished next to x.
    hh : ndarray
        The steps actually taken, in dtype (0 where the step vanished).
    """
    dt = np.dtype(dtype)
    x = np.asarray(x, dtype=dt)
    h = np.asarray(h, dtype=np.float64)
    x, h = np.broadcast_arrays(x, h)
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        if stencil.method == "complex":
            hh = h.astype(dt)
            ct = np.result_type(dt, np.complex64)
            vals = np.asarray(call((x64 + 1j * hh.astype(np.float64)).astype(ct)))
            return np.imag(vals).astype(np.float64) / hh.astype(np.float64), hh
        hh = (x64 + h).astype(dt) - x  # the step actually taken, exact in dt
        hh64 = hh.astype(np.float64)
        acc = np.zeros(x.shape)
        ref = None  # every term relative to the first value: equal values cancel exactly
        for o, w in zip(stencil.offsets, stencil.weights):
            pts = (x64 + o * hh64).astype(dt)
            v = np.asarray(call(pts)).astype(np.float64)
            ref = v if ref is None else ref
            acc = acc + w * (v - ref)
        value = acc / hh64**stencil.n
    value = np.where(hh64 == 0.0, np.nan, value)
    return value, hh


def is_elementwise(f) -> bool:
    """True for a numpy ufunc (np.sin, scipy.special.ndtr, ...): elementwise by definition, so
    fdkit calls it on whole arrays without being told."""
    return isinstance(f, np.ufunc)


def elementwise_caller(scalar_f: Callable, f: Callable, what: str, complex_step: bool, vectorized: bool):
    """``call(points) -> values`` for :func:`stencil_derivative` from a plain f, and a counter.

    The contract of a plain f in ``derivative``: it is called with one number at a time
    (``scalar_f``, which checks each value), so any f gets the derivative of f: R -> R at each
    point, whatever it does with arrays.  An f declared elementwise (``vectorized=True``) or a
    numpy ufunc is called on whole 1-D arrays of points instead and must return one value per
    point (a ValueError names the expected shape).  Returns ``(call, counter)``, ``counter[0]``
    the number of points evaluated; ``counter[1]`` the number of calls of f.
    """
    counter = [0, 0]
    name = getattr(f, "__name__", type(f).__name__)

    def call_array(pts):
        flat = pts.reshape(-1)
        try:
            r = np.asarray(f(flat))
        except TypeError:
            if complex_step:
                scalar_f(flat[0])  # raises the TypeError that says why f cannot take complex input
            raise
        counter[0] += flat.size
        counter[1] += 1
        if r.shape != flat.shape:
            raise ValueError(f"{what}: f is called with vectorized=True on an array of {flat.size} points, shape "
                             f"{flat.shape}, and must return one value per point, shape {flat.shape}; "
                             f"{name} returned shape {r.shape}. An f that is not elementwise needs vectorized=False")
        if r.dtype.kind not in "iufc":
            raise TypeError(f"{what} needs f to return numbers, but {name} returned dtype {r.dtype}")
        if complex_step and r.dtype.kind != "c":
            scalar_f(pts.flat[0])  # raises the TypeError that says why
        if not complex_step and r.dtype.kind == "c":
            raise TypeError(f"{what} needs a real-valued f, but f(x) returned dtype {r.dtype}")
        return r.reshape(pts.shape)

    def call_points(pts):
        out = np.empty(pts.shape, dtype=np.complex128 if complex_step else np.float64)
        for idx in np.ndindex(pts.shape):
            out[idx] = scalar_f(pts[idx])
            counter[0] += 1
            counter[1] += 1
        return out

    return (call_array if vectorized or is_elementwise(f) else call_points), counter
