"""OpenBLAS's idle worker threads against numba's: stop them before a long parallel kernel.

After a BLAS call (numpy's matmul, ``np.linalg``), OpenBLAS's worker threads (its pthreads build,
the one in numpy's and scipy's wheels) spin on their cores for up to 2^28 cycles (0.1-0.3 s
measured here) before they sleep; setting OpenBLAS's thread count (threadpoolctl's
``threadpool_limits``) does not stop a thread that already spins.  A ``parallel=True`` kernel that
starts in that window shares its cores with them: Rosenbrock at N = 10^4 ran at 0.71-0.75 of
serial right after a 400 x 400 matmul against 0.53-0.57 with the threads stopped (9 interleaved
rounds each, 2 vCPUs).

:func:`quiet` stops them with ``blas_thread_shutdown_``, the function OpenBLAS exports for its own
fork handler; the next BLAS call that wants threads starts them again (OpenBLAS's lazy start in
``exec_blas``).  Measured: 11-43 us while they spin, 0.2 ms if they sleep, ~1 us once stopped; the
next matmul was no slower (400 x 400: 1.5 ms after, 1.8 ms before).

It is safe only while no other thread can be inside BLAS (the shutdown frees the threads'
buffers), so by default (``QUIET = "auto"``) fdkit calls it only when the caller is the process's
only Python thread (but for tqdm's monitor and IPython's history thread); ``"always"`` calls it whatever runs beside (for a notebook, whose kernel keeps
threads that never call BLAS), ``"never"`` turns it off.  The libraries are found with
threadpoolctl (the ``threads`` extra); without it nothing is stopped.
"""

from __future__ import annotations

import sys
import threading
import warnings

__all__ = ["quiet", "QUIET", "QUIET_MIN_SECONDS"]

#: "auto": stop OpenBLAS's threads before a long parallel kernel when the caller is the only Python
#: thread (see :func:`_alone`); "always": whatever threads run beside (only if none of them can be inside BLAS then);
#: "never": leave them
QUIET = "auto"
#: only before a parallel run whose serial run took at least this long (seconds), or of more than
#: ``runner.PARALLEL_ALWAYS`` items: stopping costs up to 0.2 ms, spinning threads cost a quarter
#: of the run
QUIET_MIN_SECONDS = 1e-3

_FOUND: dict = {"modules": -1, "stops": ()}
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


def _stops() -> tuple:
    """``blas_thread_shutdown_`` of every loaded pthreads OpenBLAS, looked up again whenever the
    set of imported modules has changed (a new extension may bring its own OpenBLAS: scipy's)."""
    n = len(sys.modules)
    if n != _FOUND["modules"]:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            stops = ()
        else:
            with warnings.catch_warnings():  # threadpoolctl's own (two OpenMP runtimes loaded) are not ours
                warnings.simplefilter("ignore")
                found = ThreadpoolController().lib_controllers
            stops = tuple(
                fn for c in found
                if c.internal_api == "openblas" and c.threading_layer == "pthreads"
                and (fn := getattr(c.dynlib, "blas_thread_shutdown_", None)) is not None
            )
        _FOUND.update(modules=len(sys.modules), stops=stops)
    return _FOUND["stops"]


def quiet() -> int:
    """Stop the worker threads of every loaded OpenBLAS (pthreads build) if ``QUIET`` allows it;
    OpenBLAS starts them again at its next threaded call.  Returns how many libraries were told."""
    if QUIET not in ("auto", "always"):
        if QUIET != "never":
            raise ValueError(f"fdkit.engine.blas.QUIET must be 'auto', 'always' or 'never', got {QUIET!r}")
        return 0
    if QUIET == "auto" and not _alone():
        return 0
    stops = _stops()
    for stop in stops:
        stop()
    return len(stops)
