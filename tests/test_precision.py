"""float32 (and float16, complex64) as first-class precisions, against closed forms.

The working precision of a call is the coarser of x's dtype and f's result dtype; the default
steps use its eps.  The error model of a stencil of accuracy p for the n-th derivative balances
truncation ~h^p against rounding ~eps/h^n, so at the optimal step the error is about
eps^(p/(p+n)) times the scale of f and its derivatives: forward (p=1) sqrt(eps), central (p=2)
eps^(2/3), the second central difference eps^(1/2), the complex step eps.  Every method and
quantity, jitted and plain f, must land within a small factor of that in float32.
"""

import numba
import numpy as np
import pytest

import fdkit

EPS32 = float(np.finfo(np.float32).eps)
# error-model optimum per (method, n) in units of eps32-based scale
OPTIMUM = {
    ("forward", 1): EPS32 ** 0.5, ("backward", 1): EPS32 ** 0.5, ("central", 1): EPS32 ** (2 / 3),
    ("complex", 1): EPS32, ("richardson", 1): EPS32 ** (2 / 3), ("central", 2): EPS32 ** 0.5,
    ("richardson", 2): EPS32 ** 0.5,
}
FACTOR = 8  # "a small factor": the model's constants (sum|w|, C, |f|, |f^(p+n)|) are O(1) here


# closed-form test functions, f and its derivatives of order one (f = sin, exp scaled)
@numba.njit
def j_sin(t):
    return np.sin(t)


@numba.njit
def j_sin32(t):  # computes and returns float32 whatever it is given
    return np.float32(np.sin(np.float32(t)))


@numba.njit
def j_loss(w):  # sum sin(w_i) + w_0 w_1 / 2: gradient cos(w) + (w_1, w_0, 0..)/2
    return np.sum(np.sin(w)) + 0.5 * w[0] * w[1]


@numba.njit
def j_vec(w):  # (sin w_i) * w_0: Jacobian diag(cos w) w_0 + e_0 column sin w
    return np.sin(w) * w[0]


def grad_loss(w):
    g = np.cos(w.astype(np.float64))
    g[0] += 0.5 * w[1]
    g[1] += 0.5 * w[0]
    return g


def jac_vec(w):
    w = w.astype(np.float64)
    J = np.diag(np.cos(w) * w[0])
    J[:, 0] += np.sin(w)
    return J


def hess_loss(w):
    H = np.diag(-np.sin(w.astype(np.float64)))
    H[0, 1] += 0.5
    H[1, 0] += 0.5
    return H


def plain(f):
    return f.py_func


X = np.linspace(0.2, 1.4, 7)
W = np.array([0.3, -0.7, 0.9, 0.1])


@pytest.mark.parametrize("jit", [True, False], ids=["jitted", "plain"])
@pytest.mark.parametrize("method", ["forward", "backward", "central", "complex", "richardson"])
def test_float32_derivative_near_the_model_optimum(method, jit):
    f = j_sin if jit else np.sin
    x = X.astype(np.float32)
    r = fdkit.derivative(f, x, method=method, full_output=True)
    assert r.value.dtype == np.float32 and r.precision == "float32"
    err = np.abs(r.value.astype(float) - np.cos(x.astype(float))).max()
    assert err <= FACTOR * OPTIMUM[(method, 1)]
    # and in float64 the same call is float64-accurate: the precision is not a global setting
    r64 = fdkit.derivative(f, X, method=method)
    assert np.abs(r64 - np.cos(X)).max() <= FACTOR * float(np.finfo(float).eps) ** 0.5


@pytest.mark.parametrize("jit", [True, False], ids=["jitted", "plain"])
@pytest.mark.parametrize("method", ["central", "richardson"])
def test_float32_second_derivative(method, jit):
    f = j_sin if jit else np.sin
    r = fdkit.derivative(f, X.astype(np.float32), method=method, n=2)
    assert np.abs(r.astype(float) + np.sin(X)).max() <= FACTOR * OPTIMUM[("central", 2)]


@pytest.mark.parametrize("jit", [True, False], ids=["jitted", "plain"])
@pytest.mark.parametrize("method", ["forward", "backward", "central", "complex", "richardson"])
def test_float32_gradient_and_jacobian(method, jit):
    w = W.astype(np.float32)
    g = fdkit.gradient(j_loss if jit else plain(j_loss), w, method=method)
    assert g.dtype == np.float32
    scale = 1 + abs(float(j_loss.py_func(W)))  # rounding scales with |f|
    assert np.abs(g - grad_loss(w)).max() <= FACTOR * OPTIMUM[(method, 1)] * scale
    J = fdkit.jacobian(j_vec if jit else plain(j_vec), w, method=method)
    assert J.dtype == np.float32 and J.shape == (4, 4)
    assert np.abs(J - jac_vec(w)).max() <= FACTOR * OPTIMUM[(method, 1)] * scale


@pytest.mark.parametrize("jit", [True, False], ids=["jitted", "plain"])
@pytest.mark.parametrize("method", ["central", "richardson"])
def test_float32_hessian(method, jit):
    w = W.astype(np.float32)
    H = fdkit.hessian(j_loss if jit else plain(j_loss), w, method=method)
    assert H.dtype == np.float32 and np.array_equal(H, H.T)
    scale = 1 + abs(float(j_loss.py_func(W)))
    assert np.abs(H - hess_loss(w)).max() <= FACTOR * OPTIMUM[("central", 2)] * scale


@pytest.mark.parametrize("jit", [True, False], ids=["jitted", "plain"])
def test_float64_x_with_a_float32_f_uses_float32_steps(jit):
    # the example: forward with float64-sized steps gave 4.0 for cos(1) = 0.5403
    f = j_sin32 if jit else (lambda t: np.sin(np.asarray(t, np.float32)).astype(np.float32))
    r = fdkit.derivative(f, 1.0, method="forward", full_output=True)
    assert isinstance(r.value, float) and r.precision == "float32"
    assert r.h == pytest.approx(EPS32 ** 0.5)
    assert abs(r.value - np.cos(1.0)) <= FACTOR * OPTIMUM[("forward", 1)]
    x = np.linspace(0.1, 3, 50)
    for method in ("forward", "central"):
        v = fdkit.derivative(f, x, method=method)
        assert v.dtype == np.float64 and np.all(v != 0)  # no step vanishes in f's precision
        assert np.abs(v - np.cos(x)).max() <= FACTOR * OPTIMUM[(method, 1)]


def test_complex64_step():
    @numba.njit
    def f(z):
        return np.exp(z) * np.sin(z)

    x = X.astype(np.float32)
    exact = np.exp(X) * (np.sin(X) + np.cos(X))
    for fn in (f, f.py_func):
        r = fdkit.derivative(fn, x, method="complex", full_output=True)
        assert r.value.dtype == np.float32 and r.precision == "float32"
        np.testing.assert_allclose(r.value, exact, rtol=8 * EPS32)
    g = fdkit.gradient(j_loss, W.astype(np.float32), method="complex")
    np.testing.assert_allclose(g, grad_loss(W.astype(np.float32)), rtol=8 * EPS32, atol=8 * EPS32)


def test_float16_with_a_plain_f():
    x = np.linspace(0.2, 1.4, 7).astype(np.float16)
    eps16 = float(np.finfo(np.float16).eps)
    r = fdkit.derivative(np.sin, x, method="central", full_output=True)
    assert r.value.dtype == np.float16 and r.precision == "float16"
    assert np.abs(r.value.astype(float) - np.cos(x.astype(float))).max() <= FACTOR * eps16 ** (2 / 3)
    with pytest.raises(TypeError, match="numba computes in float32 or float64"):
        fdkit.derivative(j_sin, x)


def test_richardson_estimate_is_honest_in_float32():
    # the true error below the estimate at >= 95 % of 400 points (here: all of them)
    x = np.linspace(-3, 3, 400).astype(np.float32)

    @numba.njit
    def g(t):
        return np.exp(t) / np.sqrt(np.sin(t) ** 2 + 1.5)

    def g_prime(t):
        s, c = np.sin(t), np.cos(t)
        return np.exp(t) / np.sqrt(s**2 + 1.5) * (1 - s * c / (s**2 + 1.5))

    for f in (g, g.py_func, j_sin):
        r = fdkit.derivative(f, x, method="richardson", full_output=True)
        exact = g_prime(x.astype(float)) if f is not j_sin else np.cos(x.astype(float))
        err = np.abs(r.value.astype(float) - exact)
        assert np.mean(err <= r.error) >= 0.95
        assert np.median(err / np.maximum(1, np.abs(exact))) < 10 * OPTIMUM[("central", 1)]


def test_user_steps_are_checked_in_the_working_precision():
    x32 = np.float32(1.0)
    with pytest.raises(ValueError, match="vanishes next to x=1: .* in float32"):
        fdkit.derivative(j_sin, np.array([x32]), h=1e-8)
    with pytest.warns(RuntimeWarning, match="below eps.*float32"):
        fdkit.derivative(j_sin, np.array([x32]), h=1e-7)
    # a float64 x and a float32 f: the step does not vanish, but keeps no bits of f's change
    with pytest.warns(RuntimeWarning, match="working precision float32"):
        fdkit.derivative(j_sin32, 1.0, h=1e-8)
    fdkit.derivative(j_sin, 1.0, h=1e-8)  # float64 throughout: legal and quiet


@numba.njit
def j_weighted(w, a, b):  # sum a_i w_i^2 + b: gradient 2 a w
    return np.sum(a * w**2) + b


@numba.njit
def j_squares(w):  # w^2 elementwise: Jacobian diag(2 w), off-diagonal exactly 0
    return w**2


def test_float32_args_error_estimates_and_exact_zeros():
    w = W.astype(np.float32)
    a = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    exact = 2 * a.astype(float) * w.astype(float)
    for f, kw in ((j_weighted, {"args": (a, np.float32(1.0))}), (j_weighted, {"args": (a, np.float32(1.0)), "parallel": True}),
                  (lambda v, a, b=0.0: np.sum(a * v**2) + b, {"args": (a,), "kwargs": {"b": 1.0}})):
        g = fdkit.gradient(f, w, **kw)
        assert g.dtype == np.float32
        assert np.abs(g - exact).max() <= FACTOR * OPTIMUM[("central", 1)] * 10
    for f in (j_sin, np.sin):
        r = fdkit.derivative(f, X.astype(np.float32), method="forward", estimate_error=True)
        err = np.abs(r.value.astype(float) - np.cos(X))
        assert r.error.dtype == np.float32 and np.all(err <= 3 * r.error)
    for f in (j_squares, j_squares.py_func):
        J = fdkit.jacobian(f, np.ones(4, dtype=np.float32), method="forward", order=2)
        assert np.all(J[~np.eye(4, dtype=bool)] == 0.0)
