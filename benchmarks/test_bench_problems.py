"""The 1+N comparison with pytest-benchmark: finite-difference gradients against analytical ones.

Run: pytest benchmarks/test_bench_problems.py --benchmark-only --benchmark-json=FILE
then draw it: fdkit bench --from-json FILE. One group per (problem, N) holds one evaluation of f
and the analytical gradient (both timed in a jitted loop of ``calls`` calls: extra_info says how
many), fdkit's forward/central/complex gradients (serial and parallel) and, with scipy installed
(the optional ``bench`` extra), scipy.optimize.approx_fprime and approx_derivative (2-point,
3-point, cs) on the numpy twin of the same loss. Every gradient is asserted against the
analytical one. Environment: FDKIT_BENCH_PROBLEMS (default mlp,rosenbrock) and
FDKIT_BENCH_SIZES (default 10,100,1000,10000).
"""

import os

import numpy as np
import pytest

import fdkit
from fdkit.study import harness
from fdkit.study.problems import get_problem

PROBLEMS = os.environ.get("FDKIT_BENCH_PROBLEMS", "mlp,rosenbrock").split(",")
SIZES = [int(s) for s in os.environ.get("FDKIT_BENCH_SIZES", "10,100,1000,10000").split(",")]
TOL = {"forward": 1e-5, "central": 1e-8, "complex": 1e-13, "scipy.approx_fprime": 1e-5, "scipy.2-point": 1e-5,
       "scipy.3-point": 1e-8, "scipy.cs": 1e-13}
NFEV = {"forward": lambda n: n + 1, "central": lambda n: 2 * n, "complex": lambda n: n}


def _rounds(n):
    return 3 if n >= 10000 else (5 if n >= 1000 else 20)


def _setup(benchmark, name, n, kind, method, parallel=False):
    p = get_problem(name)
    x = p.x0(n)
    benchmark.group = f"{name}-n{x.size}"
    benchmark.extra_info.update(problem=name, n=x.size, kind=kind, method=method, parallel=parallel)
    return p, x


def _rel_error(g, exact):
    return float(np.max(np.abs(np.asarray(g).reshape(exact.shape) - exact)) / np.max(np.abs(exact)))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", PROBLEMS)
def test_f(benchmark, name, n):
    p, x = _setup(benchmark, name, n, "f", "f")
    calls = max(1, 100_000 // x.size)
    harness.repeat_f(p.f, x, 1)  # compile
    benchmark.extra_info.update(calls=calls, nfev=1)
    s = benchmark(harness.repeat_f, p.f, x, calls)
    assert s == pytest.approx(calls * p.f_np(x), rel=1e-12)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", PROBLEMS)
def test_analytic(benchmark, name, n):
    p, x = _setup(benchmark, name, n, "analytic", "analytic")
    calls = max(1, 100_000 // x.size)
    harness.repeat_grad(p.grad, x, 1)  # compile
    benchmark.extra_info.update(calls=calls, max_rel_error=0.0)
    s = benchmark(harness.repeat_grad, p.grad, x, calls)
    assert s == pytest.approx(calls * p.grad_np(x)[0], rel=1e-12)


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("method", ["forward", "central", "complex"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", PROBLEMS)
def test_fdkit(benchmark, name, n, method, parallel):
    p, x = _setup(benchmark, name, n, "fdkit", method, parallel)
    r = fdkit.gradient(p.f, p.x0(8), method=method, parallel=parallel, full_output=True)  # compile, small
    r = fdkit.gradient(p.f, x, method=method, parallel=parallel, full_output=True)
    assert r.nfev == NFEV[method](x.size)
    exact = p.grad(x)
    err = _rel_error(r.value, exact)
    benchmark.extra_info.update(nfev=r.nfev, max_rel_error=err)
    tol = TOL[method] + _rounding(method, p.f(x), exact)
    assert err < tol
    g = benchmark.pedantic(fdkit.gradient, args=(p.f, x), kwargs=dict(method=method, parallel=parallel),
                           rounds=_rounds(x.size), iterations=1, warmup_rounds=0)
    assert _rel_error(g, exact) < tol


def _rounding(method, fx, exact):
    """The rounding of f over the smallest default step, relative to max|g|: f grows with N
    (Rosenbrock at N = 10^4: |f| ~ 10^4 times its terms), so at large N the central difference's
    relative error (1.1e-8 there) is rounding, not a defect.  The complex step has none."""
    if method == "complex":
        return 0.0
    return 4 * np.finfo(float).eps * abs(float(fx)) / (fdkit.optimal_step(method, 1.0) * np.max(np.abs(exact)))


@pytest.mark.parametrize("method", ["scipy.approx_fprime", "scipy.2-point", "scipy.3-point", "scipy.cs"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", PROBLEMS)
def test_scipy_peer(benchmark, name, n, method):
    pytest.importorskip("scipy.optimize", reason="the scipy peers need the optional 'bench' extra")
    from scipy.optimize import approx_fprime
    from scipy.optimize._numdiff import approx_derivative

    p, x = _setup(benchmark, name, n, "peer", method)
    count = [0]

    def counted(v):
        count[0] += 1
        return p.f_np(v)

    if method == "scipy.approx_fprime":
        run, args, kwargs = approx_fprime, (x, p.f_np), {}
        approx_fprime(x, counted)
    else:
        scheme = method.split(".")[1]
        run, args, kwargs = approx_derivative, (p.f_np, x), dict(method=scheme)
        approx_derivative(counted, x, method=scheme)
    exact = p.grad(x)
    benchmark.extra_info.update(nfev=count[0])
    g = benchmark.pedantic(run, args=args, kwargs=kwargs, rounds=_rounds(x.size), iterations=1)
    err = _rel_error(g, exact)
    benchmark.extra_info.update(max_rel_error=err)
    assert err < TOL[method]
