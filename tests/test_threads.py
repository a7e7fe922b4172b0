"""fdkit.engine.threads: OpenBLAS's worker threads stopped before a long parallel kernel, numba's
OpenMP threads paused after it.

The threads are counted in /proc/self/task (Linux); the products after a stop are checked
against einsum (which does not call BLAS), the gradients against their closed forms."""

import io
import os
import sys
import threading

import numba
import numpy as np
import pytest

import fdkit
from fdkit.engine import runner, threads

from oracles import slow_sum_cubes, sum_cubes

threadpoolctl = pytest.importorskip("threadpoolctl")


def _openblas_threads() -> int:
    """Worker threads the loaded pthreads OpenBLAS libraries may keep (their thread counts - 1)."""
    return sum(c.num_threads - 1 for c in threads.libraries()
               if c.internal_api == "openblas" and c.threading_layer == "pthreads")


def _tasks() -> int:
    return len(os.listdir("/proc/self/task"))


needs_threads = pytest.mark.skipif(
    not sys.platform.startswith("linux") or _openblas_threads() < 1,
    reason="needs Linux and a pthreads OpenBLAS with more than one thread")


@needs_threads
def test_quiet_stops_openblas_threads_and_blas_starts_them_again(monkeypatch):
    monkeypatch.setattr(threads, "QUIET_BLAS", "always")
    a = np.random.default_rng(0).standard_normal((300, 300))
    a @ a  # OpenBLAS's threads run (and spin for a while)
    before = _tasks()
    assert threads.quiet_blas() >= 1
    stopped = _tasks()
    assert stopped < before
    assert threads.quiet_blas() >= 1 and _tasks() == stopped  # a second stop finds nothing to stop
    np.testing.assert_allclose(a @ a, np.einsum("ij,jk->ik", a, a), rtol=1e-12, atol=1e-10)
    assert _tasks() > stopped  # the threaded product started them again


@needs_threads
def test_auto_leaves_blas_alone_beside_another_thread(monkeypatch):
    monkeypatch.setattr(threads, "QUIET_BLAS", "auto")
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    try:
        a = np.random.default_rng(1).standard_normal((300, 300))
        a @ a
        before = _tasks()
        assert threads.quiet_blas() == 0
        assert _tasks() == before
    finally:
        done.set()
        other.join()


@needs_threads
def test_auto_stops_blas_beside_tqdm_monitor(monkeypatch):
    """tqdm's monitor thread (left running after a progress bar) never calls BLAS: "auto" still
    stops OpenBLAS's threads beside it."""
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setattr(threads, "QUIET_BLAS", "auto")
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 10)
    list(tqdm.tqdm(range(3), file=io.StringIO()))
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    if any(type(t).__name__ != "TMonitor" for t in others) or not others:
        pytest.skip(f"other threads run beside the test: {others}")
    a = np.random.default_rng(3).standard_normal((300, 300))
    a @ a
    before = _tasks()
    assert threads.quiet_blas() >= 1
    assert _tasks() < before


def test_never_stops_nothing_and_an_unknown_setting_is_named(monkeypatch):
    monkeypatch.setattr(threads, "QUIET_BLAS", "never")
    assert threads.quiet_blas() == 0
    monkeypatch.setattr(threads, "QUIET_BLAS", "sometimes")
    with pytest.raises(ValueError, match="QUIET_BLAS must be 'auto', 'always' or 'never', got 'sometimes'"):
        threads.quiet_blas()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_parallel_runs_stop_blas_first_and_stay_right(monkeypatch, dtype):
    """A parallel run of more than PARALLEL_ALWAYS items stops OpenBLAS's threads first (the real
    stop, right after a matmul); a serial run and a short parallel one do not."""
    calls = []
    real = threads.quiet_blas
    monkeypatch.setattr(threads, "QUIET_BLAS", "always")
    monkeypatch.setattr(threads, "quiet_blas", lambda: calls.append(1) or real())
    monkeypatch.setattr(runner, "PARALLEL_ALWAYS", 16)
    x = np.linspace(-1.0, 1.0, 40, dtype=dtype)
    rtol = 1e-3 if dtype == np.float32 else 1e-8
    a = np.random.default_rng(2).standard_normal((300, 300))
    for parallel, n, stops in ((False, 40, 0), (True, 10, 0), (True, 40, 1)):
        calls.clear()
        a @ a
        g = fdkit.gradient(sum_cubes, x[:n], parallel=parallel)
        assert g.dtype == dtype
        np.testing.assert_allclose(g, 3 * x[:n].astype(np.float64) ** 2, rtol=rtol, atol=rtol)
        assert len(calls) == stops, (parallel, n)


def test_parallel_run_after_a_timed_serial_one_stops_blas_only_if_long(monkeypatch):
    """Below PARALLEL_ALWAYS items the timed serial run decides: threads at 1 ms of work or more
    (QUIET_BLAS_MIN_SECONDS), and only then is BLAS stopped first."""
    calls = []
    monkeypatch.setattr(threads, "quiet_blas", lambda: calls.append(1) or 0)
    monkeypatch.setattr(runner, "PARALLEL_MIN_SECONDS", 50e-6)
    x = np.linspace(-1.0, 1.0, 10)
    for f, stops in ((sum_cubes, 0), (slow_sum_cubes, 1)):
        for _ in range(3):  # compile, time the serial run, then run as decided
            calls.clear()
            np.testing.assert_allclose(fdkit.gradient(f, x, parallel=True), 3 * x**2, rtol=1e-8, atol=1e-10)
        assert len(calls) == stops, f


def _omp_layer() -> bool:
    numba.njit(parallel=True)(_prange_sum)(np.ones(8))  # starts numba's threading layer
    return numba.threading_layer() == "omp"


def _prange_sum(v):
    s = 0.0
    for i in numba.prange(v.size):
        s += v[i]
    return s


needs_omp = pytest.mark.skipif(not sys.platform.startswith("linux") or numba.config.NUMBA_NUM_THREADS < 2
                               or not _omp_layer(), reason="needs Linux, numba's omp layer and two threads")


@needs_omp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rest_openmp_ends_the_pool_and_the_next_parallel_run_starts_one(monkeypatch, dtype):
    monkeypatch.setattr(threads, "REST_OPENMP", True)
    monkeypatch.setattr(runner, "PARALLEL_ALWAYS", 16)
    monkeypatch.setattr(threads, "REST_OPENMP_MIN_SECONDS", 1e9)  # the test pauses, not the runs
    x = np.linspace(-1.0, 1.0, 64, dtype=dtype)
    rtol = 1e-3 if dtype == np.float32 else 1e-8
    fdkit.gradient(sum_cubes, x, parallel=True)
    running = _tasks()
    assert threads.rest_openmp() >= 1
    rested = _tasks()
    assert rested < running  # the pool's worker threads ended
    g = fdkit.gradient(sum_cubes, x, parallel=True)
    assert _tasks() > rested  # a new pool
    np.testing.assert_allclose(g, 3 * x.astype(np.float64) ** 2, rtol=rtol, atol=rtol)


def test_rest_openmp_off_pauses_nothing(monkeypatch):
    monkeypatch.setattr(threads, "REST_OPENMP", False)
    assert threads.rest_openmp() == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_parallel_runs_rest_openmp_after(monkeypatch, dtype):
    """A parallel run of at least REST_OPENMP_MIN_SECONDS pauses OpenMP after it; a serial run,
    a shorter parallel run, a parallel request run serially by the cut-off and a plain f (always
    serial) do not, and none of them stops BLAS."""
    calls, stops = [], []
    monkeypatch.setattr(threads, "rest_openmp", lambda: calls.append(1) or 0)
    monkeypatch.setattr(runner, "PARALLEL_ALWAYS", 16)
    x = np.linspace(-1.0, 1.0, 40, dtype=dtype)
    exact = 3 * x.astype(np.float64) ** 2
    rtol = 1e-3 if dtype == np.float32 else 1e-8
    for parallel, least, rests in ((False, 0.0, 0), (True, 1e9, 0), (True, 0.0, 1)):
        monkeypatch.setattr(threads, "REST_OPENMP_MIN_SECONDS", least)
        calls.clear()
        np.testing.assert_allclose(fdkit.gradient(sum_cubes, x, parallel=parallel), exact, rtol=rtol, atol=rtol)
        assert len(calls) == rests, (parallel, least)
    monkeypatch.setattr(threads, "quiet_blas", lambda: stops.append(1) or 0)
    calls.clear()
    with pytest.warns(RuntimeWarning, match="parallel=True runs serially for a plain Python f"):
        g = fdkit.gradient(lambda v: np.sum(v**3), x, parallel=True)
    np.testing.assert_allclose(g, exact, rtol=rtol, atol=rtol)
    monkeypatch.setattr(runner, "PARALLEL_MIN_SECONDS", 1.0)  # 10 items: below the cut-off, serial
    fdkit.gradient(sum_cubes, x[:10], parallel=True)
    fdkit.gradient(sum_cubes, x[:10], parallel=True)
    assert calls == [] and stops == []


def test_machine_info_names_the_blas_and_the_settings(monkeypatch):
    """The harness's and the report's machine record says which BLAS ran (threadpoolctl's view)
    and what fdkit does with idle threads."""
    from fdkit.study.harness import machine_info

    monkeypatch.setattr(threads, "QUIET_BLAS", "never")
    monkeypatch.setattr(threads, "REST_OPENMP", False)
    info = machine_info()
    for lib in threadpoolctl.threadpool_info():
        if lib["user_api"] == "blas":
            assert f"{lib['internal_api']} {lib['version']}" in info["blas"]
    assert "before long parallel runs: never" in info["idle_threads"]
    assert "paused after them: off" in info["idle_threads"]
