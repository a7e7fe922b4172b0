"""A batched f (``vectorized=True``): stacks of points, shape (k, *x.shape), one call per chunk.

Oracles: scipy's rosen_der and rosen_hess, closed-form Jacobians, and the same f called point by
point (the kernels' path), which must give the same numbers.
"""

import numba
import numpy as np
import pytest

import fdkit
from fdkit.engine import richardson
from fdkit.study.problems import get_problem, mlp_loss_batch, mlp_loss_np, rosen_batch

optimize = pytest.importorskip("scipy.optimize")

FIXED = [("forward", 1), ("forward", 2), ("backward", 1), ("central", 2), ("central", 4), ("complex", 2)]


def rosen_b(X):  # handles complex input too (no in-place tricks)
    return np.sum(100.0 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1.0 - X[:, :-1]) ** 2, axis=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method,order", FIXED)
def test_gradient_batched_equals_point_by_point_and_the_oracle(method, order, dtype):
    x = np.random.default_rng(1).uniform(-1.2, 1.2, size=40).astype(dtype)
    x0 = x.copy()
    r = fdkit.gradient(rosen_b, x, method=method, order=order, vectorized=True, full_output=True,
                       batch_bytes=10 * x.itemsize * x.size)
    one = fdkit.gradient(lambda v: rosen_b(v[None])[0], x, method=method, order=order, full_output=True)
    np.testing.assert_array_equal(x, x0)
    assert r.value.dtype == dtype and r.nfev == one.nfev  # the same points, counted alike
    per = 10 if method != "complex" else 5  # points in batch_bytes (complex points take twice the bytes)
    assert r.ncalls == 1 + -(-(r.nfev - 1) // per)  # the probe, then chunks of `per` points
    np.testing.assert_allclose(r.value, one.value, rtol=1e-12 if dtype == np.float64 else 1e-5, atol=1e-9)
    exact = optimize.rosen_der(x.astype(np.float64))
    tol = {np.float64: 1e-4 if method in ("forward", "backward") and order == 1 else 1e-6, np.float32: 0.5}[dtype]
    np.testing.assert_allclose(r.value, exact, rtol=tol, atol=tol * np.abs(exact).max())


def test_counts_are_the_stencils():
    x = np.linspace(-1, 1, 30)
    for method, count in (("forward", 31), ("central", 61), ("complex", 31)):
        r = fdkit.gradient(rosen_b, x, method=method, vectorized=True, full_output=True)
        assert r.nfev == count  # the probe (f(x), reused by forward) and the stencil's points
        assert r.ncalls < 5  # a few chunks, never one call per point


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_jacobian_and_hessian_batched(dtype):
    def F(X):  # (k, 2) -> (k, 3)
        return np.stack([X[:, 0] * X[:, 1], np.sin(X[:, 0]), X[:, 1] ** 3], axis=1)

    x = np.array([0.7, -1.3], dtype=dtype)
    Jx = np.array([[x[1], x[0]], [np.cos(x[0]), 0.0], [0.0, 3 * x[1] ** 2]], dtype=np.float64)
    tol = 1e-8 if dtype == np.float64 else 2e-3
    for method in ("forward", "central", "complex"):
        J = fdkit.jacobian(F, x, method=method, vectorized=True, full_output=True)
        assert J.value.shape == (3, 2) and J.value.dtype == dtype
        np.testing.assert_allclose(J.value, Jx, rtol=tol * 100 if method == "forward" else tol, atol=tol * 100)
    xr = np.random.default_rng(2).uniform(-1, 1, 6).astype(dtype)
    H = fdkit.hessian(rosen_b, xr, vectorized=True, full_output=True)
    assert H.nfev == 1 + 2 * xr.size**2 and H.ncalls < H.nfev
    ex = optimize.rosen_hess(xr.astype(np.float64))
    np.testing.assert_allclose(H.value, ex, rtol=1e-5 if dtype == np.float64 else 0.1, atol=1e-5 if dtype == np.float64 else 2.0)
    np.testing.assert_array_equal(H.value, H.value.T)


def test_wrong_shapes_name_the_expected_one():
    x = np.ones(5)
    with pytest.raises(ValueError, match=r"stack of 1 points, shape \(1, 5\).*shape \(1,\); .* returned shape \(\)"):
        fdkit.gradient(lambda X: np.sum(X), x, vectorized=True)
    with pytest.raises(ValueError, match=r"one array per point, shape \(1, M\)"):
        fdkit.jacobian(lambda X: X[:, 0], x, vectorized=True)
    calls = []

    def shifty(X):  # right on the probe, wrong on the first chunk
        calls.append(len(X))
        return np.zeros(len(X)) if len(calls) == 1 else np.zeros(len(X) + 1)

    with pytest.raises(ValueError, match=r"must return one number per point, shape \(\d+,\)"):
        fdkit.gradient(shifty, x, vectorized=True)
    with pytest.raises(TypeError, match="imaginary part"):
        fdkit.gradient(lambda X: np.real(rosen_b(X)), x, method="complex", vectorized=True)
    with pytest.raises(ValueError, match="batch_bytes must be positive"):
        fdkit.gradient(rosen_b, x, vectorized=True, batch_bytes=0)


def test_richardson_and_bounds_with_a_batched_f():
    x = np.array([0.5, 1.5, -0.5])
    r = fdkit.gradient(rosen_b, x, method="richardson", vectorized=True, full_output=True)
    ex = optimize.rosen_der(x)
    assert np.all(np.abs(r.value - ex) <= r.error)
    g = fdkit.gradient(rosen_b, x, vectorized=True, bounds=(-0.5, 1.5))
    np.testing.assert_allclose(g, ex, rtol=1e-7)


@pytest.mark.parametrize("name,batch", [("rosenbrock", rosen_batch), ("mlp", mlp_loss_batch)])
def test_batched_problems(name, batch):
    p = get_problem(name)
    assert p.f_batch is batch
    x = p.x0(60)
    X = np.stack([x, 2 * x, -x])
    np.testing.assert_allclose(batch(X), [p.f_np(v) for v in X], rtol=1e-13)
    g = fdkit.gradient(batch, x, method="central", vectorized=True)
    np.testing.assert_allclose(g, p.grad_np(x), rtol=1e-6, atol=1e-8 * np.abs(p.grad_np(x)).max())
    assert mlp_loss_np is not None


def cubic(t):  # no float constants: float32 stays float32 in numpy and in numba alike
    return t * t * t - t * t


cubic_jit = numba.njit(cubic)


@pytest.mark.parametrize("threads", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,direction", [(1, 0), (2, 0), (1, 1), (1, -1), (2, 1)])
def test_richardson_rows_are_the_sequences(monkeypatch, n, direction, dtype, threads):
    # the row-batched driver (one call of f per tableau row) and the per-point sequences give the
    # same numbers: the same differences, the same tableau, the same stops; with the rows'
    # bookkeeping on numba's threads too
    monkeypatch.setattr(richardson, "ROWS_PARALLEL_MIN", 1 if threads else 0)
    x = np.linspace(-3.0, 3.0, 301).astype(dtype)
    kw = dict(method="richardson", n=n, step_direction=direction, full_output=True)
    rows = fdkit.derivative(cubic, x, vectorized=True, **kw)
    each = fdkit.derivative(cubic_jit, x, **kw)  # the compiled sequences (the same float arithmetic)
    for a in ("value", "error", "h", "level", "status", "element_nfev"):
        np.testing.assert_array_equal(getattr(rows, a), getattr(each, a), err_msg=a)
    assert rows.nfev == each.nfev + 1 and rows.ncalls < 40 < each.ncalls  # (+1: the plain f's probe)
    x64 = x.astype(np.float64)
    exact = 3 * x64**2 - 2 * x64 if n == 1 else 6 * x64 - 2
    assert np.all(np.abs(rows.value - exact) <= rows.error)


def test_richardson_rows_with_tolerances_and_a_ufunc():
    x = np.linspace(0.1, 3.0, 1000)
    r = fdkit.derivative(np.log, x, method="richardson", rtol=1e-8, full_output=True)  # a ufunc: rows
    assert r.ncalls < 50
    assert np.all(np.abs(r.value - 1 / x) <= r.error) and np.all(r.error <= 1e-8 * np.abs(r.value))
    assert np.all(r.status == 0)


def test_richardson_gradient_rows_with_a_batched_f():
    x = np.random.default_rng(3).uniform(-1, 1, 50)
    r = fdkit.gradient(rosen_b, x, method="richardson", vectorized=True, full_output=True,
                       step_direction=np.where(np.arange(50) % 3 == 0, 1, 0))
    ex = optimize.rosen_der(x)
    assert np.all(np.abs(r.value - ex) <= r.error)
    assert r.ncalls < 40 and r.nfev == r.element_nfev.sum() + 1
    each = fdkit.gradient(lambda v: rosen_b(v[None])[0], x, method="richardson", full_output=True,
                          step_direction=np.where(np.arange(50) % 3 == 0, 1, 0))
    np.testing.assert_allclose(r.value, each.value, rtol=1e-10)
