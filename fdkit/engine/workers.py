"""f evaluated somewhere else: a process pool, any executor, a map-like callable, a dask cluster.

The points of a stencil (:mod:`fdkit.engine.batch`) are cut into chunks; each task takes one chunk
(x, the perturbations of its rows, and f travel with it; with dask, an x of at least
:data:`SCATTER_BYTES` is scattered once) and
evaluates f on each of its points (or once on the stack, for a batched f).  ``workers`` is:

* an int k: fdkit's own pool of k processes, started with spawn (a fork-started pool can hang
  after numba's threads ran), kept for the next call and shut down at exit;
  :func:`close_pools` (``fdkit.close_pools``) shuts it down early;
* a ``concurrent.futures.Executor`` (its ``map``);
* a ``dask.distributed.Client`` (``scatter`` x once, ``map`` the chunks, ``gather``; dask
  reschedules the tasks of a worker it loses);
* any map-like callable ``workers(func, iterable)`` (scipy's convention:
  ``multiprocessing.Pool(4).map``, MPI's ``MPIPoolExecutor().map``).

A task that fails returns the failure (the row, the exception) instead of raising, so the caller
raises one error that names the parameter and the step, chained to f's own exception.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import pickle
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Callable

import numpy as np

from .._progress import bar
from .batch import Perturbations, stack

__all__ = ["close_pools", "Workers", "run_chunk", "SCATTER_BYTES"]

#: with dask, x is scattered to the workers once when it has at least this many bytes; a smaller x
#: travels inside each task (one task per worker, so as often): the scatter's round trip cost
#: 7-12 ms on this 2-core machine, against 28-36 ms for a whole map and gather of two tasks
SCATTER_BYTES = 64 * 2**10

_POOLS: dict[int, ProcessPoolExecutor] = {}
_LOCK = threading.Lock()


def close_pools() -> None:
    """Shut down the process pools fdkit started for ``workers=k`` (they are otherwise kept for
    the next call and shut down at exit)."""
    with _LOCK:
        for pool in _POOLS.values():
            pool.shutdown(wait=True, cancel_futures=True)
        _POOLS.clear()


atexit.register(close_pools)


def _pool(k: int) -> ProcessPoolExecutor:
    with _LOCK:
        p = _POOLS.get(k)
        if p is None:
            p = _POOLS[k] = ProcessPoolExecutor(k, mp_context=multiprocessing.get_context("spawn"))
        return p


def _is_dask_client(w) -> bool:
    return all(hasattr(w, a) for a in ("scatter", "gather", "map", "scheduler_info"))


def run_chunk(f: Callable, x: np.ndarray, rows: tuple, dtype, batched: bool):
    """One task: f at the points ``x + A e_I + B e_J`` of ``rows`` = (I, A, J, B) (x None: rows are
    the points themselves, numbers for an elementwise derivative).  Returns ("ok", values) or
    ("error", row, exception)."""
    pts = np.asarray(rows, dtype=dtype) if x is None else stack(x, Perturbations(*rows), dtype)
    if batched:
        try:
            return "ok", np.asarray(f(pts))
        except Exception as exc:  # noqa: BLE001 - reported in the caller, chained
            return "error", 0, exc
    out = []
    for r in range(pts.shape[0]):
        try:
            out.append(np.asarray(f(pts[r])))
        except Exception as exc:  # noqa: BLE001
            return "error", r, exc
    return "ok", np.stack(out) if out else np.zeros(0)


def _run_payload(payload):
    return run_chunk(*payload)


class Workers:
    """How to map chunks of points over workers (see the module docstring)."""

    def __init__(self, workers, what: str, progress: bool | None = None):
        self.what = what
        self.progress = progress
        self.per_worker = 4  # tasks per worker: balance against scheduling overhead
        self.client = None
        self.pickled = True  # tasks travel to other processes
        if isinstance(workers, (bool, np.bool_)):
            raise TypeError(f"{what}: workers must be an int, an Executor, a dask Client or a map-like callable, "
                            f"got {workers!r}")
        if isinstance(workers, (int, np.integer)):
            if workers < 1:
                raise ValueError(f"{what}: workers must be at least 1, got {workers}")
            self.n = int(workers)
            pool = _pool(self.n)
            self.map = pool.map
            self.label = f"a spawn process pool of {self.n}"
        elif _is_dask_client(workers):
            self.client = workers
            self.n = max(1, len(workers.scheduler_info().get("workers", {})))
            self.per_worker = 1  # a dask task costs milliseconds of scheduling: one per worker
            self.pickled = False  # dask uses cloudpickle: lambdas and closures travel
            self.map = None
            self.label = "a dask cluster"
        elif isinstance(workers, Executor):
            self.n = getattr(workers, "_max_workers", None) or os.cpu_count() or 1
            self.map = workers.map
            self.pickled = not isinstance(workers, ThreadPoolExecutor)
            self.label = type(workers).__name__
        elif callable(workers):
            self.n = os.cpu_count() or 1
            self.map = workers
            self.label = f"the map-like {getattr(workers, '__name__', type(workers).__name__)}"
        else:
            raise TypeError(f"{what}: workers must be an int, an Executor, a dask Client or a map-like callable "
                            f"workers(func, iterable), got {type(workers).__name__}")

    def check_picklable(self, f) -> None:
        """A TypeError that says why and what to do when f cannot travel to a process."""
        if not self.pickled:
            return
        try:
            pickle.dumps(f)
        except Exception as exc:  # noqa: BLE001 - pickle raises many types
            raise TypeError(
                f"{self.what}: f cannot be pickled to send it to {self.label} ({type(exc).__name__}: {exc}); "
                "define f at module level (not a lambda or a closure), or use a dask Client, which sends "
                "closures with cloudpickle"
            ) from None

    def _track(self, results, total: int) -> list:
        """The results of a map, in order, with a progress bar over the tasks."""
        out = []
        with bar(total, f"{self.what} on {self.label}", self.progress) as b:
            for r in results:
                out.append(r)
                b.update(1)
        return out

    def _collect(self, futures, total: int) -> list:
        """dask futures' results, in order, with a progress bar as they complete."""
        from distributed import as_completed

        with bar(total, f"{self.what} on {self.label}", self.progress) as b:
            if getattr(b, "disable", True):  # no bar shown: gather at once, without watching each task
                return self.client.gather(futures)
            for _ in as_completed(futures):
                b.update(1)
        return self.client.gather(futures)

    def evaluate_points(self, f, pts: np.ndarray, batched: bool):
        """f at every number of pts (an elementwise derivative), in chunks: (values, tasks)."""
        flat = pts.reshape(-1)
        n = flat.size
        k = max(1, -(-n // (self.per_worker * self.n)))
        chunks = [flat[lo:lo + k] for lo in range(0, n, k)]
        if self.client is not None:
            futures = self.client.map(run_chunk, [f] * len(chunks), [None] * len(chunks), chunks,
                                      [flat.dtype] * len(chunks), [batched] * len(chunks), pure=False)
            results = self._collect(futures, len(chunks))
        else:
            results = self._track(self.map(_run_payload, [(f, None, c, flat.dtype, batched) for c in chunks]),
                                  len(chunks))
        vals = []
        for i, res in enumerate(results):
            if res[0] == "error":
                r = i * k + res[1]
                raise RuntimeError(f"{self.what}: f raised {type(res[2]).__name__} on {self.label} at point "
                                   f"{flat[r]!r} (flat index {r} of the stencil's points): {res[2]}") from res[2]
            vals.append(np.asarray(res[1]).reshape(-1))
        return np.concatenate(vals).reshape(pts.shape), len(chunks)

    def evaluate(self, f, x: np.ndarray, p: Perturbations, dtype, batched: bool, per_chunk: int | None = None):
        """f at every point of p, in chunks over the workers: (values, number of tasks).  Raises
        a RuntimeError naming the parameter (flat index) and step of the first point that failed,
        chained to f's exception; no partial result."""
        n = len(p)
        if n == 0:
            return np.zeros(0), 0
        k = per_chunk or max(1, -(-n // (self.per_worker * self.n)))  # a few tasks per worker
        bounds = [(lo, min(lo + k, n)) for lo in range(0, n, k)]
        rows = [tuple(a[lo:hi] for a in (p.I, p.A, p.J, p.B)) for lo, hi in bounds]
        if self.client is not None:
            xf = x
            if x.nbytes >= SCATTER_BYTES:
                # a fresh key per call (hash=False): scattering equal data twice reuses the key, and the
                # release of the first call's copy can race the second call's tasks ("lost dependencies")
                xf = self.client.scatter(x, broadcast=True, hash=False)
            futures = self.client.map(run_chunk, [f] * len(rows), [xf] * len(rows), rows, [dtype] * len(rows),
                                      [batched] * len(rows), pure=False)
            results = self._collect(futures, len(rows))
        else:
            results = self._track(self.map(_run_payload, [(f, x, r, dtype, batched) for r in rows]), len(rows))
        vals = []
        for (lo, _), res in zip(bounds, results):
            if res[0] == "error":
                r, exc = lo + res[1], res[2]
                where = f"parameter {int(p.I[r])} (flat index into x), step {p.A[r]!r}"
                if p.J[r] >= 0:
                    where += f", and parameter {int(p.J[r])}, step {p.B[r]!r}"
                if batched:
                    where = f"one of the points {lo}..{lo + len(rows[0][0]) - 1} of a chunk"
                raise RuntimeError(f"{self.what}: f raised {type(exc).__name__} on {self.label} at {where}: "
                                   f"{exc}") from exc
            vals.append(res[1])
        return np.concatenate(vals), len(rows)
