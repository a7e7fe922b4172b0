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


def check_nonneg(v, name: str) -> float:
    """A tolerance: a non-negative finite real number (None -> 0)."""
    if v is None:
        return 0.0
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a non-negative float, got {type(v).__name__} {v!r}")
    v = float(v)
    if not (v >= 0.0 and np.isfinite(v)):
        raise ValueError(f"{name} must be non-negative and finite, got {name}={v!r}")
    return v


def check_maxiter(v, default: int) -> int:
    """Richardson's rows per sequence: an integer >= 1 (None -> default)."""
    if v is None:
        return default
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"maxiter must be a positive integer, got {type(v).__name__} {v!r}")
    if not 1 <= int(v) <= 100:
        raise ValueError(f"maxiter must be between 1 and 100 (steps shrinking by step_factor each time), got {v}")
    return int(v)


def check_ratio(v, default: float) -> float:
    """Richardson's step_factor: a real number > 1 (None -> default)."""
    if v is None:
        return default
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"step_factor must be a float above 1, got {type(v).__name__} {v!r}")
    v = float(v)
    if not (v > 1.0 and np.isfinite(v)):
        raise ValueError(f"step_factor must be above 1 and finite (each step is the previous one divided by it), "
                         f"got step_factor={v!r}")
    return v


def check_direction(d, shape: tuple) -> np.ndarray:
    """step_direction: -1 (steps below x), 0 (central) or +1 (steps above x), a scalar or
    broadcastable to ``shape``; the sign of each value counts.  Returns a flat int8 array of
    length 1 or the number of elements."""
    da = np.asarray(d)
    if da.dtype.kind not in "iuf" or da.dtype.kind == "b":
        raise TypeError(f"step_direction must be -1, 0, +1 or an array of them, got {type(d).__name__} "
                        f"of dtype {da.dtype}")
    if not np.all(np.isfinite(da)):
        raise ValueError("step_direction must be finite (-1, 0 or +1)")
    s = np.sign(da).astype(np.int8)
    if s.size == 1:
        return s.reshape(1)
    try:
        sb = np.broadcast_to(s, shape)
    except ValueError:
        raise ValueError(f"step_direction of shape {s.shape} cannot be broadcast to x's shape {shape}") from None
    return np.ascontiguousarray(sb).reshape(-1)


def check_bounds(bounds, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``bounds=(lb, ub)``: each a scalar or broadcastable to x, lb < ub, x within them (scipy's
    ``approx_derivative`` convention; +-inf for no bound).  Returns flat float64 (lb, ub) of
    x.size, or None when there are no bounds (None, or (-inf, inf) everywhere)."""
    if bounds is None:
        return None
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise TypeError(f"bounds must be a pair (lb, ub), got {type(bounds).__name__} {bounds!r}")
    out = []
    for name, b in zip(("lb", "ub"), bounds):
        ba = np.asarray(-np.inf if b is None and name == "lb" else (np.inf if b is None else b))
        if ba.dtype.kind not in "iuf" or ba.dtype.kind == "b":
            raise TypeError(f"bounds: {name} must be real numbers, got dtype {ba.dtype}")
        try:
            out.append(np.ascontiguousarray(np.broadcast_to(ba.astype(np.float64), x.shape)).reshape(-1))
        except ValueError:
            raise ValueError(f"bounds: {name} of shape {ba.shape} cannot be broadcast to x's shape {x.shape}") from None
    lb, ub = out
    if np.any(np.isnan(lb)) or np.any(np.isnan(ub)):
        raise ValueError("bounds must not be NaN (use -inf or inf for no bound)")
    if np.any(lb >= ub):
        i = int(np.argmax(lb >= ub))
        raise ValueError(f"bounds: lb must be below ub everywhere, got lb={lb[i]!r} >= ub={ub[i]!r} at flat index {i}")
    xf = x.reshape(-1).astype(np.float64)
    outside = (xf < lb) | (xf > ub)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"x must lie within bounds: x={xf[i]!r} at flat index {i} is outside [{lb[i]!r}, {ub[i]!r}]")
    if np.all(np.isneginf(lb)) and np.all(np.isposinf(ub)):
        return None
    return lb, ub
