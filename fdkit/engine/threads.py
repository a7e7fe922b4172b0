"""Idle threads that spin: OpenBLAS's before a long parallel kernel, numba's OpenMP ones after it.

Both thread pools spin-wait on their cores for a while after their work, so that the next job
starts at once; on a machine with few cores the other pool's work then shares its cores with
them.

**OpenBLAS, before.** After a BLAS call (numpy's matmul, ``np.linalg``), OpenBLAS's worker
threads (its pthreads build, the one in numpy's and scipy's wheels) spin for up to 2^28 cycles
(0.1-0.3 s measured here) before they sleep; setting OpenBLAS's thread count (threadpoolctl's
``threadpool_limits``) does not stop a thread that already spins.  A ``parallel=True`` kernel
that starts in that window shares its cores with them: Rosenbrock at N = 10^4 ran at 0.71-0.75
of serial right after a 400 x 400 matmul, against 0.53-0.57 with the threads stopped (9
interleaved rounds each, 2 vCPUs).  :func:`quiet_blas` stops them with
``blas_thread_shutdown_``, the function OpenBLAS exports for its own fork handler; the next BLAS
call that wants threads starts them again (OpenBLAS's lazy start in ``exec_blas``).  Measured:
11-43 us while they spin, 0.2 ms if they sleep, ~1 us once stopped; the next matmul was no
slower (400 x 400: 1.5 ms after, 1.8 ms before).  It is safe only while no other thread can be
inside BLAS (the shutdown frees the threads' buffers), so by default (``QUIET_BLAS = "auto"``)
fdkit calls it only when the caller is the process's only Python thread (but for tqdm's monitor
and IPython's history thread); ``"always"`` calls it whatever runs beside (for a notebook, whose
kernel keeps threads that never call BLAS), ``"never"`` turns it off.

**OpenMP, after.** With numba's ``omp`` threading layer (GNU libgomp), the kernel's worker
threads spin for ~10 ms after it (measured: 7-10 ms of CPU time in a 20 ms sleep after a parallel
gradient).  A 400 x 400 matmul right after a parallel gradient took 4.3-5.2 ms against 2.3 ms
after a serial one.  :func:`rest_openmp` ends them with OpenMP 5's ``omp_pause_resource_all``
(a soft pause: the calling thread's pool is released, the settings stay, the next parallel
region starts a new pool): the matmul then took 2.3-2.4 ms.  A pause costs 36-125 us and the next
parallel run ~140 us or more, so it follows only runs of at least ``REST_OPENMP_MIN_SECONDS``.  It
touches only the calling thread's pool (OpenMP keeps one per thread that starts parallel
regions), so it needs no guard; ``REST_OPENMP = False`` turns it off.

The libraries are found with threadpoolctl (the ``threads`` extra); without it nothing is done.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import warnings

import numba

__all__ = ["quiet_blas", "rest_openmp", "libraries", "QUIET_BLAS", "QUIET_BLAS_MIN_SECONDS", "REST_OPENMP",
           "REST_OPENMP_MIN_SECONDS"]

#: "auto": stop OpenBLAS's threads before a long parallel kernel when the caller is the only Python
#: thread (see :func:`_alone`); "always": whatever threads run beside (only if none of them can be
#: inside BLAS then); "never": leave them
QUIET_BLAS = "auto"
#: only before a parallel run whose serial run took at least this long (seconds), or of more than
#: ``runner.PARALLEL_ALWAYS`` items: stopping costs up to 0.2 ms, spinning threads cost a quarter
#: of the run
QUIET_BLAS_MIN_SECONDS = 1e-3
#: pause numba's OpenMP threads after a long parallel run (``omp`` layer only)
REST_OPENMP = True
#: only after a parallel run of at least this long (seconds): a pause and the next run's new
#: pool cost 0.2-0.4 ms together (measured, Rosenbrock's central gradient at N = 3000, 14 ms:
#: +0.43 ms; at N = 10^4, 78-152 ms: +0.25-1.0 ms, within the noise)
REST_OPENMP_MIN_SECONDS = 20e-3
_OMP_PAUSE_SOFT = 1  # omp_pause_resource_t: omp_pause_soft

_FOUND: dict = {"modules": -1, "blas": (), "openmp": ()}
#: threads known never to call BLAS, by (module, class): tqdm's monitor (left running after a
#: progress bar, fdkit's own among them) and IPython's history writer
_HARMLESS = {("tqdm._monitor", "TMonitor"), ("IPython.core.history", "HistorySavingThread")}


def _alone() -> bool:
    """Whether no other Python thread could be inside BLAS now: the caller is the only one, but
    for threads of :data:`_HARMLESS`."""
    if threading.active_count() == 1:
        return True
    me = threading.current_thread()
    return all(t is me or (type(t).__module__, type(t).__qualname__) in _HARMLESS for t in threading.enumerate())


def libraries() -> list | None:
    """threadpoolctl's controllers of the thread-pool libraries loaded now (BLAS, OpenMP), or None
    without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    with warnings.catch_warnings():  # threadpoolctl's own (two OpenMP runtimes loaded) are not ours
        warnings.simplefilter("ignore")
        return ThreadpoolController().lib_controllers


def _found() -> dict:
    """``blas_thread_shutdown_`` of every loaded pthreads OpenBLAS ("blas") and
    ``omp_pause_resource_all`` of every loaded OpenMP runtime ("openmp"), looked up again
    whenever the set of imported modules has changed (a new extension may bring its own library:
    scipy's OpenBLAS)."""
    if len(sys.modules) != _FOUND["modules"]:
        blas, omp = [], []
        for c in libraries() or []:
            if c.internal_api == "openblas" and c.threading_layer == "pthreads":
                fn = getattr(c.dynlib, "blas_thread_shutdown_", None)
                if fn is not None:
                    blas.append(fn)
            elif c.internal_api == "openmp":
                fn = getattr(c.dynlib, "omp_pause_resource_all", None)
                if fn is not None:
                    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
                    omp.append(fn)
        _FOUND.update(modules=len(sys.modules), blas=tuple(blas), openmp=tuple(omp))
    return _FOUND


def quiet_blas() -> int:
    """Stop the worker threads of every loaded OpenBLAS (pthreads build) if ``QUIET_BLAS`` allows
    it; OpenBLAS starts them again at its next threaded call.  Returns how many libraries were
    told."""
    if QUIET_BLAS not in ("auto", "always"):
        if QUIET_BLAS != "never":
            raise ValueError(f"fdkit.engine.threads.QUIET_BLAS must be 'auto', 'always' or 'never', got {QUIET_BLAS!r}")
        return 0
    if QUIET_BLAS == "auto" and not _alone():
        return 0
    stops = _found()["blas"]
    for stop in stops:
        stop()
    return len(stops)


def rest_openmp() -> int:
    """Release the calling thread's OpenMP thread pool (a soft pause) if numba's threading layer is
    ``omp`` and ``REST_OPENMP`` is on, so its threads stop spinning; the next parallel region
    starts a new one.  Returns how many runtimes paused."""
    if not REST_OPENMP:
        return 0
    try:
        if numba.threading_layer() != "omp":
            return 0
    except ValueError:  # no parallel region has run yet: nothing spins
        return 0
    return sum(pause(_OMP_PAUSE_SOFT) == 0 for pause in _found()["openmp"])
