"""Adaptive (Richardson) derivatives over 10^5 points: fdkit against scipy.differentiate and
numdifftools on the same functions, each at its defaults.

Every benchmark records, beside the time, what it bought: evaluations of f per point, the
largest and the median absolute error against the closed-form derivative, and how honest the
error estimate is (the share of points whose true error is below it, and the median of
estimate / true error).  ``benchmarks/ratios.py`` prints the within-run speed ratios next to
them.  The peers are the optional ``bench`` extra; without them their benchmarks skip.
"""

import os

import numpy as np
import pytest

import fdkit

from _functions import bump, bump_np, bump_prime, runge, runge_np, runge_prime

P = int(os.environ.get("FDKIT_BENCH_RICH_POINTS", "100000"))

FUNCS = {
    "bump": (bump, bump_np, bump_prime),  # sin(x) exp(-x^2/10): libm-bound
    "runge": (runge, runge_np, runge_prime),  # x / (1 + x^2): arithmetic only
}


@pytest.fixture(scope="module")
def points():
    return np.linspace(-5.0, 5.0, P)


def _record(benchmark, who, value, error, nfev, exact):
    err = np.abs(value - exact)
    info = {"points": P, "method": who, "nfev_per_point": float(nfev) / P,
            "max_abs_error": float(err.max()), "median_abs_error": float(np.median(err))}
    if error is not None:
        nz = err > 0
        info["estimate_covers_error"] = float(np.mean(err <= error))
        info["median_estimate_over_error"] = float(np.median(error[nz] / err[nz])) if nz.any() else None
    benchmark.extra_info.update(info)
    return err


@pytest.fixture
def specialised(monkeypatch):
    """Timed on the kernel specialised on f, which a kernel tiers up to after
    ``runner.INLINE_AFTER`` seconds of use (the first second runs on the shared kernel that
    calls f by pointer): the steady state, whatever the order and length of the rounds."""
    from fdkit.engine import runner

    monkeypatch.setattr(runner, "INLINE_AFTER", 0)


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("fname", list(FUNCS))
def test_fdkit_richardson(benchmark, points, fname, parallel, specialised):
    f, _, fprime = FUNCS[fname]
    benchmark.group = f"richardson-{fname}"
    for _ in range(2):  # compile the kernel, then the cached entry point
        fdkit.derivative(f, points[:10], method="richardson", parallel=parallel)
    r = benchmark(fdkit.derivative, f, points, method="richardson", parallel=parallel, full_output=True)
    exact = fprime(points)
    err = _record(benchmark, f"fdkit richardson ({'parallel' if parallel else 'serial'})", r.value, r.error, r.nfev, exact)
    assert np.max(err / np.maximum(1.0, np.abs(exact))) <= 1e-12
    assert np.mean(err <= r.error) >= 0.95


@pytest.mark.parametrize("fname", list(FUNCS))
def test_fdkit_richardson_at_scipys_tolerance(benchmark, points, fname, specialised):
    """The same stopping rule as scipy.differentiate's defaults (rtol = sqrt(eps), atol = the
    smallest normal float): evaluations per point at equal demands."""
    f, _, fprime = FUNCS[fname]
    benchmark.group = f"richardson-{fname}"
    kw = dict(method="richardson", rtol=float(np.sqrt(np.finfo(float).eps)), atol=float(np.finfo(float).tiny))
    for _ in range(2):
        fdkit.derivative(f, points[:10], **kw)
    r = benchmark(fdkit.derivative, f, points, full_output=True, **kw)
    exact = fprime(points)
    err = _record(benchmark, "fdkit richardson (scipy's rtol)", r.value, r.error, r.nfev, exact)
    assert np.all(err <= r.error)
    assert np.all(r.error <= kw["rtol"] * np.abs(r.value) + kw["atol"])


@pytest.mark.parametrize("fname", list(FUNCS))
def test_fdkit_richardson_numpy_f(benchmark, points, fname):
    """The numpy f that scipy.differentiate gets, declared elementwise: one call per tableau row
    and block of points."""
    _, f_np, fprime = FUNCS[fname]
    benchmark.group = f"richardson-{fname}"
    fdkit.derivative(f_np, points[:10], method="richardson", vectorized=True, progress=False)
    r = benchmark(fdkit.derivative, f_np, points, method="richardson", vectorized=True, full_output=True,
                  progress=False)
    exact = fprime(points)
    err = _record(benchmark, "fdkit richardson (numpy f, vectorized)", r.value, r.error, r.nfev, exact)
    benchmark.extra_info["ncalls"] = r.ncalls
    assert np.max(err / np.maximum(1.0, np.abs(exact))) <= 1e-12
    assert np.all(err <= r.error)


@pytest.mark.parametrize("fname", list(FUNCS))
def test_scipy_differentiate_default(benchmark, points, fname):
    differentiate = pytest.importorskip("scipy.differentiate")
    _, f_np, fprime = FUNCS[fname]
    benchmark.group = f"richardson-{fname}"
    res = benchmark.pedantic(differentiate.derivative, args=(f_np, points), rounds=3, iterations=1)
    err = _record(benchmark, "scipy.differentiate.derivative", res.df, res.error, res.nfev.sum(), fprime(points))
    assert np.max(err) <= 1e-8


@pytest.mark.parametrize("fname", list(FUNCS))
def test_numdifftools_derivative(benchmark, points, fname):
    nd = pytest.importorskip("numdifftools")
    _, f_np, fprime = FUNCS[fname]
    benchmark.group = f"richardson-{fname}"
    calls = [0]

    def counted(x):
        calls[0] += np.size(x)
        return f_np(x)

    d = nd.Derivative(counted, full_output=True)
    res = benchmark.pedantic(d, args=(points,), rounds=1, iterations=1)
    err = _record(benchmark, "numdifftools.Derivative", res.estimate, res.error_estimate, calls[0], fprime(points))
    assert np.max(err) <= 1e-8
