"""The engine's second way of evaluating f: lists of perturbed points, evaluated in chunks.

The kernels (:mod:`fdkit.engine.kernels`) perturb one element of x at a time and call f on each
point.  Here the points of a whole stencil are listed first, as *perturbations* of x:

    point r = x + A[r] e_I[r] + B[r] e_J[r]     (J[r] = -1: one element only)

rounded to x's precision, and evaluated in chunks: by one call of a batched f on a stack of
points (``vectorized=True``: f takes shape (k, *x.shape) and returns (k,) or (k, M)), or point by
point somewhere else (a process pool, an executor, a dask cluster: :mod:`fdkit.engine.workers`).
:func:`stencil_sums` turns the values back into derivatives exactly as the kernels do (the steps
actually taken as divisors, every stencil sum relative to its first value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .._progress import bar
from ..stencils import Stencil
from .kernels import jit_outer_cached

__all__ = ["Perturbations", "taken_steps", "stencil_points", "hessian_points", "stack", "batched_caller",
           "chunk_rows", "DEFAULT_BATCH_BYTES", "stencil_sums", "hessian_sums", "evaluate"]

#: the default bound on the memory of one chunk of stacked points (bytes): chunks that stay in
#: cache; numpy Rosenbrock at N = 1000 took 3.9 ms per forward gradient in chunks of 256 KiB,
#: 10.8 ms in one chunk of 8 MB (measured on this 2-core machine)
DEFAULT_BATCH_BYTES = 256 * 2**10


@dataclass
class Perturbations:
    """Points ``x + A e_I + B e_J`` (J = -1: no second element); ``I`` also names the parameter
    (or point) a failure is reported for, and ``A`` its step."""

    I: np.ndarray  # noqa: E741 - the conventional index names
    A: np.ndarray
    J: np.ndarray
    B: np.ndarray

    def __len__(self) -> int:
        return self.I.size

    def rows(self, lo: int, hi: int) -> "Perturbations":
        return Perturbations(self.I[lo:hi], self.A[lo:hi], self.J[lo:hi], self.B[lo:hi])


def taken_steps(xflat: np.ndarray, h: np.ndarray, complex_step: bool) -> np.ndarray:
    """The steps actually taken, ``(x + h) - x`` in x's precision (h itself for the complex step),
    as float64; h broadcast to x."""
    h = np.broadcast_to(np.asarray(h, dtype=np.float64), xflat.shape)
    if complex_step:
        return h.astype(xflat.dtype).astype(np.float64)
    with np.errstate(over="ignore"):
        return ((xflat.astype(np.float64) + h).astype(xflat.dtype) - xflat).astype(np.float64)


def stencil_points(st: Stencil, hh: np.ndarray, items: np.ndarray) -> Perturbations:
    """The points of stencil st for the parameters ``items`` (one row per parameter and offset
    other than 0, parameter-major), with the steps hh (of x's size)."""
    offs = [complex(o) if st.method == "complex" else float(o) for o in st.offsets if o != 0]
    k = len(offs)
    idx = np.repeat(items, k)
    o = np.tile(np.asarray(offs), items.size)
    A = o * hh[idx]
    none = np.full(idx.size, -1, dtype=np.int64)
    return Perturbations(idx.astype(np.int64), A, none, np.zeros(idx.size))


def hessian_points(hh: np.ndarray) -> tuple[Perturbations, np.ndarray, np.ndarray]:
    """The points of the central Hessian: x +- h_i e_i for every i, then for every pair i > j the
    four points (+,+), (+,-), (-,+), (-,-).  Returns the perturbations and the pairs (i, j)."""
    n = hh.size
    d = np.arange(n)
    di = np.repeat(d, 2)
    dA = np.tile([1.0, -1.0], n) * hh[di]
    ii, jj = np.tril_indices(n, -1)
    ci = np.repeat(ii, 4)
    cj = np.repeat(jj, 4)
    si = np.tile([1.0, 1.0, -1.0, -1.0], ii.size)
    sj = np.tile([1.0, -1.0, 1.0, -1.0], ii.size)
    I = np.concatenate([di, ci]).astype(np.int64)  # noqa: E741
    A = np.concatenate([dA, si * hh[ci]])
    J = np.concatenate([np.full(di.size, -1), cj]).astype(np.int64)
    B = np.concatenate([np.zeros(di.size), sj * hh[cj]])
    return Perturbations(I, A, J, B), ii, jj


def stack(x: np.ndarray, p: Perturbations, dtype) -> np.ndarray:
    """The points of p as one array of shape (len(p), *x.shape) in dtype (x's precision, or its
    complex type); each perturbed element is ``x_i + a`` rounded once, as the kernels do."""
    k = len(p)
    flat = np.empty((k, x.size), dtype=dtype)
    xf = x.reshape(-1)
    if flat.dtype.kind == "f" and xf.dtype == flat.dtype and np.result_type(p.A).kind == "f":
        _fill(flat, xf, p.I, p.A, p.J, p.B)  # one pass, compiled (float32/float64)
        return flat.reshape((k,) + x.shape)
    flat[...] = x.reshape(1, -1)
    r = np.arange(k)
    flat[r, p.I] = xf[p.I].astype(np.result_type(np.float64, dtype)) + p.A
    m = p.J >= 0
    if m.any():
        flat[r[m], p.J[m]] = xf[p.J[m]].astype(np.float64) + p.B[m]
    return flat.reshape((k,) + x.shape)


@jit_outer_cached
def _fill(flat, xf, I, A, J, B):  # noqa: E741
    """Row r of flat: xf with element I[r] at xf[I[r]] + A[r] (and J[r] at xf[J[r]] + B[r] where
    J[r] >= 0), each sum in float64 and rounded once to flat's dtype (the kernels' ``like``).
    One pass over the stack: numpy's broadcast copy and fancy indexing took 1-1.5 ms for the
    1001 x 1000 points of a forward gradient, in 63 chunks."""
    n = xf.size
    for r in range(flat.shape[0]):
        for c in range(n):
            flat[r, c] = xf[c]
        i = I[r]
        flat[r, i] = np.float64(xf[i]) + A[r]
        j = J[r]
        if j >= 0:
            flat[r, j] = np.float64(xf[j]) + B[r]


def chunk_rows(n_points: int, point_bytes: int, batch_bytes: int | None) -> int:
    """Points per call of a batched f: as many as fit ``batch_bytes`` (at least 1)."""
    bound = DEFAULT_BATCH_BYTES if batch_bytes is None else batch_bytes
    return max(1, min(n_points, bound // max(1, point_bytes)))


def batched_caller(f: Callable, what: str, name: str, value_shape: tuple | None):
    """``call(points) -> values`` for a batched f (``vectorized=True``): f(points) must have shape
    (k,) for a scalar f (``value_shape`` ()) or (k, *value_shape) for a vector one (None: any
    shape of at least one dimension after k, learned from the first call)."""

    def call(points: np.ndarray) -> np.ndarray:
        k = points.shape[0]
        r = np.asarray(f(points))
        if value_shape == ():
            if r.shape != (k,):
                raise ValueError(f"{what}: with vectorized=True f receives a stack of {k} points, shape {points.shape}, "
                                 f"and must return one number per point, shape ({k},); {name} returned shape {r.shape}")
        elif r.ndim < 2 or r.shape[0] != k or (value_shape is not None and r.shape[1:] != value_shape):
            want = f"({k}, {', '.join(map(str, value_shape))})" if value_shape else f"({k}, M)"
            raise ValueError(f"{what}: with vectorized=True f receives a stack of {k} points, shape {points.shape}, "
                             f"and must return one array per point, shape {want}; {name} returned shape {r.shape}")
        if r.dtype.kind not in "iufc":
            raise TypeError(f"{what} needs f to return numbers, but {name} returned dtype {r.dtype}")
        return r.reshape(k, -1) if value_shape != () else r

    return call


def stencil_sums(st: Stencil, values: np.ndarray, f0, hh: np.ndarray) -> np.ndarray:
    """Derivatives from a stencil's values: ``values`` of shape (n_items, k[, M]) in the order of
    :func:`stencil_points` (offsets other than 0), f0 = f(x) for the offset 0, hh the items'
    steps.  Returns (n_items[, M]) float64: ``sum_k w_k (v_k - r) / hh`` with r the first value
    (exact zeros where f does not change), or ``Im(v) / hh`` for the complex step."""
    if st.method == "complex":
        v = np.imag(values[:, 0])
        return v / (hh if v.ndim == 1 else hh[:, None])
    vals = np.real(values).astype(np.float64)
    k = 0
    terms = []
    for o in st.offsets:
        if o == 0:
            terms.append(np.broadcast_to(np.asarray(f0, dtype=np.float64), vals.shape[:1] + vals.shape[2:]))
        else:
            terms.append(vals[:, k])
            k += 1
    ref = terms[0]
    acc = np.zeros(ref.shape)
    for w, t in zip(st.weights, terms):
        acc = acc + float(w) * (t - ref)
    return acc / (hh if acc.ndim == 1 else hh[:, None])


def hessian_sums(values: np.ndarray, f0: float, hh: np.ndarray, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
    """The central Hessian from the values of :func:`hessian_points` (as the kernels compute it:
    the diagonal from the second difference, the rest from the four-point formula, mirrored)."""
    n = hh.size
    v = np.asarray(values, dtype=np.float64)
    d = v[: 2 * n].reshape(n, 2)
    H = np.empty((n, n))
    H[np.arange(n), np.arange(n)] = ((d[:, 0] - f0) + (d[:, 1] - f0)) / (hh * hh)
    c = v[2 * n:].reshape(-1, 4)
    cross = ((c[:, 0] - c[:, 1]) - (c[:, 2] - c[:, 3])) / (4.0 * hh[ii] * hh[jj])
    H[ii, jj] = cross
    H[jj, ii] = cross
    return H


def evaluate(x: np.ndarray, p: Perturbations, dtype, call: Callable, per_call: int,
             progress: bool | None = False) -> tuple[np.ndarray, int]:
    """f at every point of p, ``per_call`` points per call of the batched ``call``: (values of
    shape (len(p),) or (len(p), M), number of calls); a progress bar over the calls."""
    parts = []
    calls = 0
    with bar(-(-len(p) // per_call), "batches of f", progress) as b:
        for lo in range(0, len(p), per_call):
            parts.append(call(stack(x, p.rows(lo, min(lo + per_call, len(p))), dtype)))
            calls += 1
            b.update(1)
    if not parts:
        return np.zeros(0), 0
    return np.concatenate(parts), calls
