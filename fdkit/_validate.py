"""Input rules of the public API: one small function per rule, returning normalised values.

Messages name the parameter, show the value, state the rule and suggest a fix.
"""

from __future__ import annotations

import numbers

import numpy as np

def check_callable(f, what: str) -> None:
    if not callable(f):
        raise TypeError(f"{what} needs a callable f (a function or a numba @njit function), got {type(f).__name__} {f!r}")


def check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def as_real_array(x, name: str = "x") -> np.ndarray:
    """x as an ndarray of a real numeric dtype (not yet float64, not copied)."""
    xa = x if isinstance(x, np.ndarray) else np.asarray(x)
    kind = xa.dtype.kind
    if kind not in "iuf":
        if kind == "c":
            raise TypeError(f"{name} must be real, got complex dtype {xa.dtype}; the complex step adds its own imaginary part")
        if kind == "b":
            raise TypeError(f"{name} must be a real number or array of real numbers, got booleans")
        raise TypeError(f"{name} must be a real number or array of real numbers, got {type(x).__name__} of dtype {xa.dtype}")
    return xa


def raise_nonfinite_x(xa: np.ndarray, name: str = "x") -> None:
    """Raise the ValueError for a non-finite x (call after a count found one)."""
    bad = np.argwhere(~np.isfinite(xa))
    idx = tuple(int(i) for i in bad[0]) if bad.size else ()
    where = f" at index {idx}" if xa.ndim else ""
    val = xa[idx] if xa.ndim else xa[()]
    raise ValueError(f"{name} must be finite, got {val}{where}; derivatives are taken at finite points only")


def check_h(h, x_shape: tuple, name: str = "h") -> np.ndarray:
    """A user-given step: positive and finite, a scalar or broadcastable to x's shape.

    Returns a 1-D float64 array of length 1 (one step for all) or x's size (C order).
    """
    if isinstance(h, (bool, np.bool_)):
        raise TypeError(f"{name} must be a positive float or array of floats, got {h!r}")
    if isinstance(h, numbers.Real):
        hv = float(h)
        if not (hv > 0.0 and np.isfinite(hv)):
            raise ValueError(f"{name} must be positive and finite, got {name}={h!r}")
        return np.array([hv])
    ha = np.asarray(h)
    if ha.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a positive float or array of floats, got {type(h).__name__} of dtype {ha.dtype}")
    ha = ha.astype(np.float64)
    bad = ~(np.isfinite(ha) & (ha > 0))
    if bad.any():
        raise ValueError(f"{name} must be positive and finite, got {name}={ha[bad].flat[0]!r} in {name}")
    try:
        hb = np.broadcast_to(ha, x_shape)
    except ValueError:
        raise ValueError(f"{name} of shape {ha.shape} cannot be broadcast to x's shape {x_shape}; give a scalar or an array of x's shape") from None
    if hb.size == 1:
        return hb.reshape(1).copy()
    return np.ascontiguousarray(hb).reshape(-1)


def warn_tiny_h(hvec: np.ndarray, xflat: np.ndarray, dtype, stacklevel: int) -> None:
    """ValueError when a step vanishes next to x (``(x + h) - x == 0`` in x's precision);
    RuntimeWarning when it is below eps * max(1, |x|) with the eps of the working precision
    ``dtype`` (legal, but the difference then keeps no bits of f's change: all rounding)."""
    import warnings

    eps = float(np.finfo(dtype).eps)
    with np.errstate(over="ignore"):
        vanished = (xflat + hvec).astype(xflat.dtype) - xflat == 0.0
    if vanished.any():
        i = int(np.argmax(vanished))
        hv, xv = float(hvec[i if hvec.size > 1 else 0]), float(xflat[i])
        raise ValueError(
            f"h={hv:g} vanishes next to x={xv:g}: (x + h) - x == 0 in {xflat.dtype}; use h=None for the "
            "default step, a larger h, or method='complex'"
        )
    small = hvec < eps * np.maximum(1.0, np.abs(xflat))
    if small.any():
        i = int(np.argmax(small))
        hv = float(hvec[i if hvec.size > 1 else 0])
        xv = float(xflat[i])
        warnings.warn(
            f"h={hv:g} is below eps*max(1, |x|)={eps * max(1.0, abs(xv)):g} at x={xv:g} in the working "
            f"precision {np.dtype(dtype)}: the difference is dominated by rounding; use h=None for the "
            "default step or method='complex'",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
