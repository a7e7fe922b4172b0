"""The engine's kernels against naive reference twins (tests/naive.py: plain Python loops).

Every quantity (elementwise derivative, gradient, Jacobian, Hessian) and every fixed method,
serial and parallel, float64 and float32, jitted f (compiled into the kernels) and plain f (the
kernels' Python twins).  Steps are given explicitly, so kernel and twin take the same steps; the
two evaluate f in different code (numba against numpy), which may round f differently by an ulp,
so they agree to ``tol``: a few ulps of f divided by h^n, far below any indexing mistake.
"""

import numba
import numpy as np
import pytest

import fdkit
from fdkit.engine import kernels as K
from fdkit.stencils import get_stencil, stencils

from naive import naive_derivative, naive_gradient, naive_hessian, naive_jacobian
from oracles import slow_sum_cubes


@numba.njit
def jbump(t):
    return np.sin(t) * np.exp(-0.1 * t * t)


@numba.njit
def jsum(x):
    return np.sum(np.sin(x) * x) + np.sum(x) ** 2


@numba.njit
def jvec(x):
    return np.sin(x) * np.sum(x)


H = {np.float64: 1e-3, np.float32: 3e-2}
FIRST = [(m, p) for m, n, p, _ in stencils() if n == 1]
DTYPES = [np.float64, np.float32]


def tol(dtype, fmax, stencil, h):
    eps = np.finfo(dtype).eps
    if stencil.method == "complex":
        return 8 * eps * fmax
    return 8 * eps * fmax * float(np.abs(stencil.weights).sum()) / h**stencil.n


@pytest.mark.parametrize("method,p,n", [(m, p, n) for m, n, p, _ in stencils()])
def test_derivative_every_stencil_float64(method, p, n):
    st = get_stencil(method, p, n)
    x = np.linspace(-2.0, 2.5, 11)
    h = H[np.float64]
    expect = naive_derivative(jbump.py_func, x, h, st)
    for f in (jbump, jbump.py_func):
        got = fdkit.derivative(f, x, method=method, order=p, n=n, h=h)
        np.testing.assert_allclose(got, expect, rtol=0, atol=tol(np.float64, 1.0, st, h))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("method,p,n", [("forward", 1, 1), ("central", 2, 1), ("central", 4, 2), ("complex", 2, 1)])
def test_derivative_serial_parallel_and_precision(method, p, n, parallel, dtype):
    st = get_stencil(method, p, n)
    x = np.linspace(-2.0, 2.5, 1001).astype(dtype)
    h = H[dtype] if method != "complex" else 1e-20
    expect = naive_derivative(jbump.py_func, x, h, st)
    got = fdkit.derivative(jbump, x, method=method, order=p, n=n, h=h, parallel=parallel)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expect, rtol=0, atol=tol(dtype, 1.0, st, h))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("method,p", FIRST)
def test_gradient_of_a_matrix(method, p, parallel, dtype):
    st = get_stencil(method, p)
    W = np.random.default_rng(1).uniform(-1, 1, (3, 4)).astype(dtype)
    h = H[dtype] if method != "complex" else 1e-20
    expect = naive_gradient(jsum.py_func, W, h, st)
    fmax = abs(float(jsum.py_func(W.astype(float)))) + 4
    for f in (jsum, jsum.py_func):
        kw = {"parallel": parallel} if f is jsum else {}
        r = fdkit.gradient(f, W, method=method, order=p, h=h, full_output=True, **kw)
        assert r.value.shape == W.shape and r.value.dtype == dtype
        np.testing.assert_allclose(r.value, expect, rtol=0, atol=tol(dtype, fmax, st, h))
        probe = 0 if f is jsum or st.uses_base_point else 1
        base = 1 if st.uses_base_point else 0
        assert r.nfev == W.size * (st.nfev_per_point - base) + base + probe


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("method,p", FIRST)
def test_jacobian(method, p, parallel, dtype):
    st = get_stencil(method, p)
    x = np.random.default_rng(2).uniform(-1, 1, 7).astype(dtype)
    h = H[dtype] if method != "complex" else 1e-20
    expect = naive_jacobian(jvec.py_func, x, h, st)
    for f in (jvec, jvec.py_func):
        kw = {"parallel": parallel} if f is jvec else {}
        J = fdkit.jacobian(f, x, method=method, order=p, h=h, **kw)
        assert J.shape == (7, 7) and J.dtype == dtype
        np.testing.assert_allclose(J, expect, rtol=0, atol=tol(dtype, 8.0, st, h))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_hessian(n, parallel, dtype):
    st = get_stencil("central", 2, 2)
    x = np.random.default_rng(3).uniform(-1, 1, n).astype(dtype)
    h = H[dtype] * 3
    expect = naive_hessian(jsum.py_func, x, h)
    fmax = abs(float(jsum.py_func(x.astype(float)))) + n
    for f in (jsum, jsum.py_func):
        kw = {"parallel": parallel} if f is jsum else {}
        r = fdkit.hessian(f, x, h=h, full_output=True, **kw)
        assert r.value.dtype == dtype and np.array_equal(r.value, r.value.T)
        np.testing.assert_allclose(r.value, expect, rtol=0, atol=tol(dtype, fmax, st, h) * 2)
        assert r.nfev == 1 + 2 * n * n


@pytest.mark.parametrize("dtype,quantities", [(np.float64, ("gradient", "jacobian", "hessian")), (np.float32, ("gradient",))])
def test_richardson_parallel_serial_and_plain_agree(dtype, quantities):
    # one body, two drivers, and the Python twin: the same steps and the same arithmetic
    # (float32 for one quantity only: each (quantity, dtype, driver) is a compilation of its own)
    x = np.random.default_rng(4).uniform(-1, 1, 6).astype(dtype)
    for what, f in ((q, {"jacobian": jvec}.get(q, jsum)) for q in quantities):
        fn = getattr(fdkit, what)
        a = fn(f, x, method="richardson", full_output=True)
        b = fn(f, x, method="richardson", full_output=True, parallel=True)
        assert np.array_equal(a.value, b.value) and np.array_equal(a.error, b.error) and a.nfev == b.nfev
        c = fn(f.py_func, x, method="richardson", full_output=True)
        np.testing.assert_allclose(c.value, a.value, rtol=0, atol=max(a.error.max(), c.error.max()) * 2)


def test_richardson_gradient_is_the_derivative_of_each_slice():
    # the gradient kernel against the elementwise kernel on the one-parameter slices of f
    x = np.random.default_rng(5).uniform(-1, 1, 4)
    g = fdkit.gradient(jsum, x, method="richardson", full_output=True)
    for i in range(x.size):
        def slice_i(t, i=i):
            v = x.copy()
            v[i] = t
            return jsum.py_func(v)
        d = fdkit.derivative(slice_i, x[i], method="richardson", full_output=True)
        assert abs(d.value - g.value[i]) <= d.error + g.error[i]


def test_the_callers_array_is_never_modified():
    W = np.random.default_rng(6).uniform(-1, 1, (3, 4))
    x = np.random.default_rng(6).uniform(-1, 1, 6)
    keep, keep_x = W.copy(), x.copy()
    for method in ("forward", "central", "complex"):
        fdkit.gradient(jsum, W, method=method, parallel=True)
        fdkit.gradient(jsum.py_func, W, method=method)
        fdkit.jacobian(jvec, x, method=method, parallel=True)
    for fn, f in ((fdkit.gradient, jsum), (fdkit.jacobian, jvec), (fdkit.hessian, jsum)):
        fn(f, x, method="richardson", parallel=True)
    fdkit.hessian(jsum, x, parallel=True)
    assert np.array_equal(W, keep) and np.array_equal(x, keep_x)


def test_parallel_cut_off_runs_small_work_serially(monkeypatch):
    from fdkit.engine import runner

    # 1 ms: far from both sides (a single timed run decides, and a loaded CI machine once took
    # the cheap f's ~5 us gradient past 50 us)
    monkeypatch.setattr(runner, "PARALLEL_MIN_SECONDS", 1e-3)

    @numba.njit
    def f(v):
        return np.sum(v**3)

    x = np.linspace(-1.0, 1.0, 10)
    for _ in range(3):  # compile, then time the serial run once and decide
        g = fdkit.gradient(f, x, parallel=True)
    np.testing.assert_allclose(g, 3 * x**2, rtol=1e-8, atol=1e-10)
    timed = [v for k, v in runner._PARALLEL[f].items() if k[3] == x.size]
    assert len(timed) == 1 and timed[0] < 1e-3  # 10 parameters of a cheap f: serial
    # a slow f (100 000 sums per call, 6-9 ms per gradient here) is worth the threads
    for _ in range(3):
        fdkit.gradient(slow_sum_cubes, x, parallel=True)
    timed = [v for k, v in runner._PARALLEL[slow_sum_cubes].items() if k[3] == x.size]
    assert len(timed) == 1 and timed[0] >= 1e-3


def test_parallel_cut_off_does_not_time_large_work_serially(monkeypatch):
    from fdkit.engine import runner

    monkeypatch.setattr(runner, "PARALLEL_MIN_SECONDS", 50e-6)
    monkeypatch.setattr(runner, "PARALLEL_ALWAYS", 16)

    @numba.njit
    def f(v):
        return np.sum(v**3)

    x = np.linspace(-1.0, 1.0, 40)  # more items than PARALLEL_ALWAYS: straight to the threads
    for _ in range(3):
        np.testing.assert_allclose(fdkit.gradient(f, x, parallel=True), 3 * x**2, rtol=1e-8, atol=1e-10)
    assert f not in runner._PARALLEL  # no decision was timed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_borrowed_view_writes_through_and_python_gets_the_array_itself(dtype):
    """kernels.borrowed: a view without reference counting (Richardson's tableau rows); writes
    through it land in the array, which alive() keeps; in Python it is the array itself."""

    @numba.njit
    def fill(a):
        b = K.borrowed(a)
        for i in range(b.size):
            b[i] = 2 * i + 1
        return K.alive(a)

    a = np.zeros(5, dtype=dtype)
    assert fill(a) == 0
    np.testing.assert_array_equal(a, np.array([1, 3, 5, 7, 9], dtype=dtype))
    assert K.borrowed(a) is a
