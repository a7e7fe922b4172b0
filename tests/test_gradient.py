import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fdkit

from oracles import rosen, rosen_np, sum_cubes, vec_f, vec_f_jac

optimize = pytest.importorskip("scipy.optimize")


def start(n, seed=0):
    return np.random.default_rng(seed).uniform(-1.5, 1.5, n)


# ------------------------------------------------------------------ gradient vs rosen_der


@pytest.mark.parametrize("n", [2, 10, 100, 1000])
@pytest.mark.parametrize("method,rtol", [("forward", 2e-5), ("backward", 2e-5), ("central", 1e-8), ("complex", 1e-14)])
def test_rosenbrock_gradient_matches_rosen_der(n, method, rtol):
    x = start(n)
    exact = optimize.rosen_der(x)
    g = fdkit.gradient(rosen, x, method=method)
    np.testing.assert_allclose(g, exact, rtol=rtol, atol=rtol * np.max(np.abs(exact)))


@pytest.mark.parametrize("method", ["forward", "central", "complex"])
def test_parallel_gradient_matches_serial_and_rosen_der(method):
    x = start(1000, seed=1)
    a = fdkit.gradient(rosen, x, method=method, full_output=True)
    b = fdkit.gradient(rosen, x, method=method, parallel=True, full_output=True)
    np.testing.assert_array_equal(a.value, b.value)
    assert a.nfev == b.nfev
    # forward's rounding error is ~eps |f(x)| / h ~ 2e-16 * 1e5 / 1.5e-8 ~ 1e-3 here
    atol = 10 * np.finfo(float).eps * abs(rosen(x)) / fdkit.optimal_step(method)
    np.testing.assert_allclose(b.value, optimize.rosen_der(x), rtol=3e-5, atol=atol)


@pytest.mark.parametrize("method,order,cost", [
    ("forward", 1, lambda n: n + 1),
    ("backward", 1, lambda n: n + 1),
    ("central", 2, lambda n: 2 * n),
    ("complex", 2, lambda n: n),
    ("forward", 2, lambda n: 2 * n + 1),
    ("central", 4, lambda n: 4 * n),
])
@pytest.mark.parametrize("n", [1, 7, 300])
def test_nfev_is_counted_exactly(method, order, cost, n):
    x = start(n, seed=n)
    r = fdkit.gradient(rosen, x, method=method, order=order, full_output=True)
    assert r.nfev == cost(n)
    calls = []

    def counted(v):
        calls.append(1)
        return rosen_np(v) if method != "complex" else rosen.py_func(v)

    rp = fdkit.gradient(counted, x, method=method, order=order, full_output=True)
    # a plain f is probed once at x (its result's dtype); a stencil with the base point reuses it
    probe = 0 if fdkit.get_stencil(method, order).uses_base_point else 1
    assert len(calls) == rp.nfev == cost(n) + probe


def test_plain_and_jitted_paths_agree():
    x = start(50, seed=3)
    for method in ["forward", "central", "complex"]:
        a = fdkit.gradient(rosen, x, method=method)
        b = fdkit.gradient(rosen.py_func, x, method=method)
        # an ulp of difference in f(x) becomes eps |f| / h in a difference quotient
        atol = 4 * np.finfo(float).eps * abs(rosen(x)) / fdkit.optimal_step(method) if method != "complex" else 1e-12
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=atol)


def test_weight_matrix_gets_gradient_of_its_shape():
    W = np.random.default_rng(4).normal(size=(3, 5))
    for method in ["forward", "central", "complex"]:
        g = fdkit.gradient(sum_cubes, W, method=method)
        assert g.shape == W.shape
        np.testing.assert_allclose(g, 3 * W**2, rtol=1e-5 if method == "forward" else 1e-9, atol=1e-6)
    g = fdkit.gradient(sum_cubes, W, parallel=True)
    np.testing.assert_allclose(g, 3 * W**2, rtol=1e-9, atol=1e-9)
    W3 = W.reshape(3, 5, 1)
    assert fdkit.gradient(lambda w: float(np.sum(w**3)), W3).shape == (3, 5, 1)


def test_caller_x_untouched_readonly_and_integer_accepted():
    x = start(20)
    x.flags.writeable = False
    before = x.copy()
    for method in ["forward", "central", "complex"]:
        fdkit.gradient(rosen, x, method=method)
        fdkit.gradient(rosen, x, method=method, parallel=True)
        fdkit.jacobian(vec_f, x[:2], method=method)
    fdkit.hessian(rosen, x[:5])
    np.testing.assert_array_equal(x, before)
    xi = np.array([1, 2, 3])
    np.testing.assert_allclose(fdkit.gradient(rosen, xi), optimize.rosen_der(xi.astype(float)), rtol=1e-8)
    assert xi.dtype.kind == "i"


def test_user_h_scalar_and_array():
    x = start(4)
    r = fdkit.gradient(rosen, x, method="forward", h=1e-7, full_output=True)
    np.testing.assert_array_equal(r.h, np.full(4, 1e-7))
    hv = np.array([1e-6, 2e-6, 3e-6, 4e-6])
    r = fdkit.gradient(rosen, x, method="central", h=hv, full_output=True)
    np.testing.assert_array_equal(r.h, hv)
    np.testing.assert_allclose(r.value, optimize.rosen_der(x), rtol=1e-7)


# ------------------------------------------------------------------ Jacobian and Hessian


@pytest.mark.parametrize("method,rtol", [("forward", 1e-6), ("central", 1e-9), ("complex", 1e-14), ("backward", 1e-6)])
def test_jacobian_closed_form(method, rtol):
    v = np.array([0.3, -1.2])
    exact = vec_f_jac(v)
    for f in (vec_f, vec_f.py_func):
        r = fdkit.jacobian(f, v, method=method, full_output=True)
        assert r.value.shape == (3, 2)
        np.testing.assert_allclose(r.value, exact, rtol=rtol, atol=rtol)
        # f(x) once for M (the size of f's result); forward and backward use it as their base point
        assert r.nfev == {"forward": 3, "backward": 3, "central": 5, "complex": 3}[method]


def test_jacobian_of_linear_map_is_the_matrix():
    A = np.random.default_rng(5).normal(size=(4, 6))
    J = fdkit.jacobian(lambda v: A @ v, np.ones(6))
    np.testing.assert_allclose(J, A, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("n", [2, 10, 100])
def test_hessian_matches_rosen_hess(n):
    x = start(n, seed=6)
    r = fdkit.hessian(rosen, x, full_output=True)
    H = r.value
    exact = optimize.rosen_hess(x)
    np.testing.assert_allclose(H, exact, rtol=2e-6, atol=2e-5 * np.max(np.abs(exact)))
    np.testing.assert_array_equal(H, H.T)
    assert r.nfev == 1 + 2 * n * n


def test_hessian_n1000_jitted():
    x = start(1000, seed=7)
    H = fdkit.hessian(rosen, x)
    exact = optimize.rosen_hess(x)
    np.testing.assert_allclose(H, exact, rtol=2e-6, atol=2e-5 * np.max(np.abs(exact)))
    assert (H == H.T).all()


@settings(max_examples=25, deadline=None)
@given(x=arrays(np.float64, st.integers(1, 6), elements=st.floats(-2, 2)))
def test_hessian_symmetric_and_plain_agrees(x):
    H = fdkit.hessian(rosen, x)
    Hp = fdkit.hessian(rosen.py_func, x)
    np.testing.assert_array_equal(H, H.T)
    # an ulp of f amplified by the second difference: eps |f| / h^2 with h = eps^(1/4) max(1, |x|)
    h = fdkit.optimal_step("central", np.max(np.abs(x)), n=2)
    np.testing.assert_allclose(H, Hp, rtol=1e-12, atol=1e-9 + 8 * np.finfo(float).eps * abs(rosen(x)) / h**2)


@settings(max_examples=25, deadline=None)
@given(x=arrays(np.float64, st.integers(2, 30), elements=st.floats(-2, 2)))
def test_complex_gradient_is_rosen_der_to_rounding(x):
    before = x.copy()
    g = fdkit.gradient(rosen, x, method="complex")
    exact = optimize.rosen_der(x)
    np.testing.assert_allclose(g, exact, rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(x, before)


# ------------------------------------------------------------------ check_gradient


def test_check_gradient_accepts_correct_and_finds_the_wrong_entry():
    x = start(30, seed=8)
    good = fdkit.check_gradient(rosen, optimize.rosen_der, x)
    assert good.ok and good.max_error < 1e-8 and good.rel_error.shape == x.shape

    def broken(v):
        g = optimize.rosen_der(v)
        g[17] += 1e-3
        return g

    bad = fdkit.check_gradient(rosen, broken, x, method="complex")
    assert not bad.ok and not bad
    assert bad.worst_index == (17,)
    assert bad.max_error == pytest.approx(1e-3 / max(1.0, abs(optimize.rosen_der(x)[17])), rel=1e-6)


def test_check_gradient_with_matrix_and_array_grad():
    W = np.random.default_rng(9).normal(size=(2, 3))
    res = fdkit.check_gradient(sum_cubes, 3 * W**2, W, method="complex", rtol=1e-12)
    assert res.ok and res.rel_error.shape == (2, 3)
    wrong = 3 * W**2
    wrong[1, 2] *= 1.01
    res = fdkit.check_gradient(sum_cubes, wrong, W)
    assert res.worst_index == (1, 2) and not res.ok


# ------------------------------------------------------------------ the compiled-f machinery


def test_user_f_called_from_python_first_still_gives_exact_answers():
    # fdkit compiles a private copy of a jitted f into its kernels (numba does not inline a
    # dispatcher already compiled for Python callers); the answers must not depend on that
    import numba

    from fdkit.engine.runner import kernel_copy

    @numba.njit
    def quad(v):
        return np.sum(v * v * v) + v[0] * v[-1]

    x = np.array([0.5, -1.0, 2.0])
    quad(x)  # the user tries f first
    exact = 3 * x**2 + np.array([x[-1], 0.0, x[0]])
    first = fdkit.gradient(quad, x, method="complex")  # direct kernel call
    second = fdkit.gradient(quad, x, method="complex")  # through the cached entry point
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, exact, rtol=1e-15)
    assert kernel_copy(quad) is kernel_copy(quad) and kernel_copy(quad) is not quad
