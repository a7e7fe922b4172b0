"""Elementwise derivatives over 10^6 points, and the Python-layer cost of small calls."""

import json
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

import fdkit

from _functions import bump, bump_np, bump_prime, rosen, runge, runge_np, runge_prime, start

M = 1_000_000


@pytest.fixture(scope="module")
def points():
    return np.linspace(-5.0, 5.0, M)


# two kinds of f: one whose cost is transcendental functions (where numpy's SIMD sin/exp
# compete with numba's scalar libm calls), one of plain arithmetic (where numpy's temporaries
# dominate); the speed-up of a fused loop depends on which kind f is.
FUNCS = {
    "bump": (bump, bump_np, bump_prime),  # sin(x) exp(-x^2/10)
    "runge": (runge, runge_np, runge_prime),  # x / (1 + x^2)
}


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("fname", list(FUNCS))
def test_fdkit_central_1e6(benchmark, points, fname, parallel):
    f, _, fprime = FUNCS[fname]
    benchmark.group = f"derivative-central-1e6-{fname}"
    benchmark.extra_info.update(points=M, method="central", parallel=parallel, nfev=2 * M)
    fdkit.derivative(f, points[:10], parallel=parallel)  # compile
    d = benchmark(fdkit.derivative, f, points, parallel=parallel)
    np.testing.assert_allclose(d, fprime(points), atol=1e-9)


@pytest.mark.parametrize("fname", list(FUNCS))
def test_numpy_central_expression_1e6(benchmark, points, fname):
    _, f_np, fprime = FUNCS[fname]
    benchmark.group = f"derivative-central-1e6-{fname}"
    h = fdkit.optimal_step("central", points)  # the same steps fdkit takes by default
    benchmark.extra_info.update(points=M, method="numpy (f(x+h)-f(x-h))/(2h)", nfev=2 * M)
    d = benchmark(lambda: (f_np(points + h) - f_np(points - h)) / (2 * h))
    np.testing.assert_allclose(d, fprime(points), atol=1e-9)


@pytest.mark.parametrize("fname", list(FUNCS))
def test_scipy_differentiate_1e6(benchmark, points, fname):
    differentiate = pytest.importorskip("scipy.differentiate")
    _, f_np, fprime = FUNCS[fname]
    benchmark.group = f"derivative-central-1e6-{fname}"
    res = benchmark.pedantic(differentiate.derivative, args=(f_np, points), rounds=3, iterations=1)
    benchmark.extra_info.update(points=M, method="scipy.differentiate.derivative", nfev=int(res.nfev.sum()))
    np.testing.assert_allclose(res.df, fprime(points), atol=1e-9)


@pytest.mark.parametrize("tier", ["pointer", "baked"])
@pytest.mark.parametrize("method", ["forward", "central", "complex"])
def test_api_overhead_n10(benchmark, method, tier, monkeypatch):
    """A repeated default gradient at N = 10: through the shared kernel's compiled overload
    (the first ~200 000 calls), and once its kernel is baked (runner.INLINE_AFTER seconds of
    calls later; reached here by calling until it is)."""
    from fdkit import api
    from fdkit.engine import runner

    benchmark.group = "gradient-api-n10"
    f = numba.njit(rosen.py_func)  # its own fdkit caches: the tiers of one test do not meet
    x = start(10)
    for _ in range(2):
        fdkit.gradient(f, x, method=method)  # the full path, then the fast one
    rec = api._FAST[(id(f), method, x.dtype.char, x.shape)]
    if tier == "baked":
        while rec[9] is None:  # then the baked kernel, or False if it lost its timed trial
            fdkit.gradient(f, x, method=method)
    else:
        monkeypatch.setattr(runner, "INLINE_AFTER", None)  # stays on the shared kernel while timed
    benchmark.extra_info.update(n=10, method=method, tier=tier if rec[9] is not False else "baking rejected")
    benchmark(fdkit.gradient, f, x, method=method)


FIRST_CALL = textwrap.dedent(
    """
    import json, sys, time, numba, numpy as np
    import fdkit
    kind = sys.argv[1]
    t = time.perf_counter()
    numba.njit(lambda v: v + 1.0)(1.0)  # numba's one-time start-up, paid by any first compilation
    startup = time.perf_counter() - t
    @numba.njit
    def f(x):
        s = 0.0
        for i in range(x.size - 1):
            s += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
        return s
    @numba.njit
    def g(x):
        return np.exp(x) / np.sqrt(np.sin(x) ** 3 + np.cos(x) ** 3)
    x = np.linspace(-1.0, 1.0, 10)
    if kind == "derivative":
        call = lambda: fdkit.derivative(g, x)
    elif kind == "parallel":  # above the cut-off, so the threads run
        xp = np.linspace(-1.0, 1.0, 5000)
        call = lambda: fdkit.gradient(f, xp, parallel=True)
    else:
        call = lambda: fdkit.gradient(f, x, method=kind)
    seen = []
    for _ in range(2):
        t = time.perf_counter()
        call()
        seen.append(time.perf_counter() - t)
    print(json.dumps([startup, *seen]))
    """
)


@pytest.mark.parametrize("kind", ["forward", "central", "complex", "richardson", "derivative", "parallel"])
def test_first_call_fresh_process(benchmark, kind):
    """Seconds to the first and the second answer for a new jitted f (not yet compiled), in a
    fresh process with numba and fdkit imported and numba's one-time start-up already paid
    (it is recorded apart): the first answer includes compiling f and compiling (or loading from
    numba's disk cache) the kernel."""
    benchmark.group = "first-call"
    seen = []

    def run():
        out = subprocess.run([sys.executable, "-c", FIRST_CALL, kind], capture_output=True, text=True, check=True)
        seen.append(json.loads(out.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(run, rounds=3, iterations=1)  # the timing includes interpreter start-up
    benchmark.extra_info.update(method=kind, numba_startup_seconds=[s[0] for s in seen],
                                first_call_seconds=[s[1] for s in seen], second_call_seconds=[s[2] for s in seen])
