"""Gradient cost on the N-dimensional Rosenbrock function, against the evaluation floor.

Run: pytest benchmarks --benchmark-only --benchmark-json=reports/bench.json
Groups compare, at one N, fdkit's methods with the floor (N+1 jitted evaluations of f in a
jitted loop) and with scipy.optimize.approx_fprime on a numpy Rosenbrock (optional peer).
"""

import threading

import numpy as np
import pytest

import fdkit
from fdkit.engine import threads

from fdkit.study.problems import rosen_grad_np as _rosen_der  # closed form, checked against scipy in tests

from _functions import rosen, rosen_floor, rosen_np, start

SIZES = [10, 100, 1000, 10000]
NFEV = {"forward": lambda n: n + 1, "central": lambda n: 2 * n, "complex": lambda n: n}


@pytest.mark.parametrize("n", SIZES)
def test_floor(benchmark, n):
    benchmark.group = f"rosen-gradient-n{n}"
    benchmark.extra_info.update(n=n, method="floor", nfev=n + 1)
    x = start(n)
    rosen_floor(x, 1e-8)  # compile
    benchmark(rosen_floor, x, 1e-8)


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("method", ["forward", "central", "complex"])
@pytest.mark.parametrize("n", SIZES)
def test_fdkit_gradient(benchmark, n, method, parallel):
    if parallel and n < 1000:
        pytest.skip("parallel pays only for large N")
    benchmark.group = f"rosen-gradient-n{n}"
    x = start(n)
    r = fdkit.gradient(rosen, x, method=method, parallel=parallel, full_output=True)  # compile
    benchmark.extra_info.update(n=n, method=method, parallel=parallel, nfev=r.nfev)
    assert r.nfev == NFEV[method](n)
    g = benchmark(fdkit.gradient, rosen, x, method=method, parallel=parallel)
    exact = _rosen_der(x)
    tol = {"forward": 1e-4, "central": 1e-7, "complex": 1e-12}[method]
    np.testing.assert_allclose(g, exact, rtol=tol, atol=tol * np.abs(exact).max() * max(1, n / 100))


@pytest.mark.parametrize("mode", ["serial", "parallel", "parallel-blas-spinning"])
@pytest.mark.parametrize("n", [1000, 10000])
def test_fdkit_gradient_after_matmul(benchmark, monkeypatch, n, mode):
    """Forward gradient right after numpy's BLAS work (a 400 x 400 matmul before every round), when
    OpenBLAS's worker threads still spin: parallel=True stops them first (fdkit.engine.threads, on
    by default when the caller is the only Python thread: recorded as python_threads);
    "parallel-blas-spinning" leaves them spinning (threads.QUIET_BLAS = "never") to show what they
    cost."""
    benchmark.group = f"rosen-gradient-after-matmul-n{n}"
    if mode == "parallel-blas-spinning":
        monkeypatch.setattr(threads, "QUIET_BLAS", "never")
    parallel = mode != "serial"
    x = start(n)
    a = np.random.default_rng(0).standard_normal((400, 400))

    def matmul():
        a @ a

    fdkit.gradient(rosen, x, method="forward", parallel=parallel)  # compile
    benchmark.extra_info.update(n=n, method="forward", parallel=parallel, quiet_blas=threads.QUIET_BLAS,
                                python_threads=threading.active_count())
    g = benchmark.pedantic(fdkit.gradient, args=(rosen, x), kwargs={"method": "forward", "parallel": parallel},
                           setup=matmul, rounds=9, iterations=1)
    exact = _rosen_der(x)
    np.testing.assert_allclose(g, exact, rtol=1e-4, atol=1e-4 * np.abs(exact).max() * max(1, n / 100))


@pytest.mark.parametrize("mode", ["serial", "parallel", "parallel-openmp-spinning"])
def test_matmul_after_gradient(benchmark, monkeypatch, mode):
    """A 400 x 400 matmul right after a central gradient at N = 5000 (the gradient before every
    round; 30-60 ms serially here): numba's OpenMP threads spin for ~10 ms after a parallel
    kernel, on the cores BLAS needs; parallel=True pauses them after a run of 20 ms or more
    (fdkit.engine.threads);
    "parallel-openmp-spinning" leaves them spinning (threads.REST_OPENMP = False)."""
    benchmark.group = "matmul-after-gradient"
    if mode == "parallel-openmp-spinning":
        monkeypatch.setattr(threads, "REST_OPENMP", False)
    parallel = mode != "serial"
    x = start(5000)
    a = np.random.default_rng(0).standard_normal((400, 400))

    def gradient():
        fdkit.gradient(rosen, x, method="central", parallel=parallel)

    gradient()  # compile
    benchmark.extra_info.update(n=5000, method="central", parallel=parallel, rest_openmp=threads.REST_OPENMP)
    c = benchmark.pedantic(np.matmul, args=(a, a), setup=gradient, rounds=15, iterations=1)
    np.testing.assert_allclose(c, np.einsum("ij,jk->ik", a, a), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", [10, 100, 1000, 10000])
def test_scipy_approx_fprime(benchmark, n):
    optimize = pytest.importorskip("scipy.optimize")
    benchmark.group = f"rosen-gradient-n{n}"
    benchmark.extra_info.update(n=n, method="scipy.approx_fprime", nfev=n + 1)
    x = start(n)
    g = benchmark.pedantic(optimize.approx_fprime, args=(x, rosen_np), rounds=3 if n >= 10000 else 10, iterations=1)
    np.testing.assert_allclose(g, _rosen_der(x), rtol=1e-3, atol=1e-2 * max(1, n / 100))
