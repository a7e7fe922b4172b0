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

__all__ = ["stencil_derivative", "elementwise_caller"]


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


def elementwise_caller(scalar_f: Callable, f: Callable, what: str, complex_step: bool):
    """``call(points) -> values`` for :func:`stencil_derivative` from a plain f, and a counter.

    f is called on whole arrays while it maps them elementwise (same shape back, a number
    dtype); after the first call that raises or returns another shape it is called point by
    point through ``scalar_f`` (which checks each value).  Returns ``(call, counter)`` where
    ``counter[0]`` is the number of points evaluated.
    """
    counter = [0]
    state = {"vector": True}

    def call(pts):
        if state["vector"] and pts.ndim > 0:
            try:
                r = np.asarray(f(pts))
            except Exception:  # noqa: BLE001 - a scalar-only f (math.sin on an array): loop instead
                r = None
            if r is not None and r.shape == pts.shape and r.dtype.kind in "iufc":
                counter[0] += pts.size
                if complex_step and r.dtype.kind != "c":
                    scalar_f(pts.flat[0])  # raises the TypeError that says why
                if not complex_step and r.dtype.kind == "c":
                    raise TypeError(f"{what} needs a real-valued f, but f(x) returned dtype {r.dtype}")
                return r
            state["vector"] = False
        out = np.empty(pts.shape, dtype=np.complex128 if complex_step else np.float64)
        for idx in np.ndindex(pts.shape):
            out[idx] = scalar_f(pts[idx])
            counter[0] += 1
        return out

    return call, counter
