import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import fdkit
from fdkit.stencils import stencils

from oracles import (
    POWER_RULE_AT_2,
    cube,
    ident,
    jexp,
    jsin,
    mp_derivative,
    poly_3x2_5x,
    recip,
    sq,
    squire_trapp,
    two_x2,
)

ALL = [(m, p, n) for m, n, p, _ in stencils()]


# ------------------------------------------------------------------ the teaching examples


def test_forward_step_0001_on_w2_at_3_gives_6001():
    # ((3 + 0.001)^2 - 3^2) / 0.001 = 6.001 (the forward difference is f' + h, exactly for w^2)
    assert fdkit.derivative(sq, 3.0, method="forward", h=0.001) == pytest.approx(6.001, abs=1e-9)
    assert fdkit.derivative(lambda w: w**2, 3.0, method="forward", h=0.001) == pytest.approx(6.001, abs=1e-9)


@pytest.mark.parametrize("method", ["forward", "central", "complex"])
def test_power_rule_at_2(method):
    fs = {"w**2": sq, "w**3": cube, "w": ident, "1/w": recip}
    for name, f in fs.items():
        tol = 1e-7 if method == "forward" else 1e-10
        assert fdkit.derivative(f, 2.0, method=method) == pytest.approx(POWER_RULE_AT_2[name], rel=tol, abs=tol)


def test_classic_polynomials_over_many_points():
    x = np.linspace(-5, 5, 101)
    np.testing.assert_allclose(fdkit.derivative(two_x2, x), 4 * x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fdkit.derivative(poly_3x2_5x, x), 6 * x + 5, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fdkit.derivative(poly_3x2_5x, x, n=2), np.full_like(x, 6.0), rtol=1e-6)


# ------------------------------------------------------------------ transcendental: mpmath


@pytest.mark.parametrize("method,p,n", ALL)
def test_every_stencil_on_squire_trapp_at_1_5(method, p, n):
    exact = mp_derivative("squire_trapp", 1.5, n)
    got = fdkit.derivative(squire_trapp, 1.5, method=method, order=p, n=n)
    # default steps balance truncation and rounding: errors ~ eps^(p/(p+n)) times the
    # function's scale (derivatives of this f reach ~1e2); complex step is at machine precision
    # (and ~10x more per derivative order beyond the second: f^(n+p) of this f grows fast)
    tol = 1e-14 if method == "complex" else 50 * np.finfo(float).eps ** (p / (p + n)) * 100 * 10 ** max(0, n - 2)
    assert abs(got - exact) / abs(exact) < tol


def test_complex_step_machine_precision_for_tiny_h():
    exact = mp_derivative("squire_trapp", 1.5)
    for h in [1e-8, 1e-20, 1e-100, 1e-300]:
        got = fdkit.derivative(squire_trapp, 1.5, method="complex", h=h)
        assert abs(got - exact) / exact <= 1e-15


@pytest.mark.parametrize("x", [-3.0, 0.1, 1.0, 7.5])
def test_sin_exp_against_mpmath(x):
    # truncation (1/140) h^6 |f^(7)| with the relative default step h = eps^(1/7) max(1, |x|)
    h = np.finfo(float).eps ** (1 / 7) * max(1.0, abs(x))
    tol = 4 * (h**6 / 140 + 1e-14)
    assert fdkit.derivative(jsin, x, order=6) == pytest.approx(mp_derivative("sin", x), abs=tol)
    assert fdkit.derivative(jexp, x, order=4, n=2) == pytest.approx(mp_derivative("exp", x, 2), rel=1e-8)
    assert fdkit.derivative(jexp, x, method="complex") == pytest.approx(math.exp(x), rel=2e-16)


# ------------------------------------------------------------------ convergence order


# the one-sided orders 3, 4 and the central n = 3, 4 have tests of their own (below), with steps
# suited to them
BASIC = [(m, p, n) for m, p, n in ALL if n <= 2 and (m == "central" or p <= 2)]


@pytest.mark.parametrize("method,p,n", [c for c in BASIC if c[0] != "complex"])
def test_error_falls_like_h_to_the_p(method, p, n):
    # halve h three times, with h large enough that truncation dominates: the log-log slope is p
    x = 0.7
    exact = mp_derivative("exp", x, n)
    hs = np.array([0.4, 0.2, 0.1, 0.05]) if p < 6 else np.array([0.8, 0.4, 0.2, 0.1])
    err = [abs(fdkit.derivative(jexp, x, method=method, order=p, n=n, h=h) - exact) for h in hs]
    slope = np.polyfit(np.log(hs), np.log(err), 1)[0]
    assert slope == pytest.approx(p, abs=0.25)


def test_complex_step_error_falls_like_h_squared():
    exact = math.cos(1.0)
    hs = np.array([0.4, 0.2, 0.1, 0.05])
    err = [abs(fdkit.derivative(jsin, 1.0, method="complex", h=h) - exact) for h in hs]
    assert np.polyfit(np.log(hs), np.log(err), 1)[0] == pytest.approx(2.0, abs=0.1)


# ------------------------------------------------------------------ shapes, cost, paths


def test_shapes_and_scalar_in_scalar_out():
    assert isinstance(fdkit.derivative(jsin, 0.3), float)
    assert isinstance(fdkit.derivative(np.sin, 0.3), float)
    x = np.linspace(0, 1, 12).reshape(3, 4)
    assert fdkit.derivative(jsin, x).shape == (3, 4)
    assert fdkit.derivative(jsin, [1, 2, 3]).shape == (3,)  # integers promoted
    np.testing.assert_allclose(fdkit.derivative(jsin, np.arange(3)), np.cos(np.arange(3)), rtol=1e-9)


@pytest.mark.parametrize("method,p,n", ALL)
def test_nfev_counted_per_point(method, p, n):
    x = np.linspace(0.5, 1.5, 7)
    r = fdkit.derivative(jexp, x, method=method, order=p, n=n, full_output=True)
    assert r.nfev == 7 * fdkit.get_stencil(method, p, n).nfev_per_point
    assert (r.method, r.order, r.n) == (method, p, n)
    r2 = fdkit.derivative(np.exp, x, method=method, order=p, n=n, full_output=True)
    assert r2.nfev == r.nfev + 1  # a plain f is probed once at x for its result dtype


@pytest.mark.parametrize("method,p,n", ALL)
def test_jitted_plain_and_parallel_agree(method, p, n):
    x = np.linspace(-2, 2, 50)
    a = fdkit.derivative(jsin, x, method=method, order=p, n=n)
    b = fdkit.derivative(np.sin, x, method=method, order=p, n=n)
    c = fdkit.derivative(jsin, x, method=method, order=p, n=n, parallel=True)
    d = fdkit.derivative(math.sin if method != "complex" else np.sin, x, method=method, order=p, n=n)  # loop path
    scale = np.finfo(float).eps ** (p / (p + n)) if method != "complex" else 1e-16
    np.testing.assert_array_equal(a, c)
    np.testing.assert_allclose(a, b, rtol=0, atol=50 * scale)
    np.testing.assert_allclose(b, d, rtol=0, atol=50 * scale)


def test_parallel_over_many_points():
    x = np.linspace(-10, 10, 200_001)
    np.testing.assert_allclose(fdkit.derivative(jsin, x, parallel=True), np.cos(x), atol=1e-9)


def test_array_h_broadcasts():
    x = np.linspace(1, 2, 6).reshape(2, 3)
    h = np.array([1e-3, 1e-4, 1e-5])
    r = fdkit.derivative(jexp, x, h=h, full_output=True)
    assert r.h.shape == x.shape
    np.testing.assert_array_equal(r.h, np.broadcast_to(h, x.shape))
    np.testing.assert_allclose(r.value, np.exp(x), rtol=2e-7)


def test_caller_x_not_modified_and_readonly_accepted():
    x = np.linspace(0, 1, 9)
    x.flags.writeable = False
    before = x.copy()
    fdkit.derivative(jsin, x)
    fdkit.derivative(np.sin, x, method="complex")
    np.testing.assert_array_equal(x, before)


# ------------------------------------------------------------------ properties (hypothesis)

finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(
    case=st.sampled_from([c for c in ALL if c[0] != "complex"]),
    coeffs=st.lists(st.integers(-5, 5), min_size=1, max_size=8),
    x0=st.integers(-4, 4),
)
def test_stencil_exact_on_polynomials_of_degree_below_n_plus_p(case, coeffs, x0):
    # truncation error is C h^p f^(n+p): a polynomial of degree <= n+p-1 is differentiated exactly
    method, p, n = case
    deg = min(len(coeffs) - 1, n + p - 1)
    c = np.array(coeffs[: deg + 1], dtype=float)
    exact = np.polynomial.polynomial.polyval(x0, np.polynomial.polynomial.polyder(c, n))
    got = fdkit.derivative(lambda t: np.polynomial.polynomial.polyval(t, c), float(x0), method=method, order=p, n=n, h=0.25)
    scale = np.sum(np.abs(c)) * 5.0**deg
    assert abs(got - exact) <= 1e-12 * scale / 0.25**n


@settings(max_examples=30, deadline=None)
@given(x=arrays(np.float64, array_shapes(min_dims=0, max_dims=3, max_side=4), elements=finite))
def test_shape_preserved_and_input_unchanged(x):
    before = x.copy()
    d = fdkit.derivative(jsin, x)
    assert np.shape(d) == x.shape
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(d, np.cos(x), atol=1e-8)


@settings(max_examples=30, deadline=None)
@given(a=st.floats(-10, 10), b=st.floats(-10, 10), x=finite)
def test_linearity(a, b, x):
    fa = fdkit.derivative(jsin, x, method="complex")
    fb = fdkit.derivative(jexp, x / 10, method="complex")
    both = fdkit.derivative(lambda t: a * np.sin(t) + b * np.exp(t / 10) * 10, x, method="complex")
    assert both == pytest.approx(a * fa + b * fb, rel=1e-12, abs=1e-12 * (abs(a) + abs(b) + 1))


@settings(max_examples=30, deadline=None)
@given(x=st.floats(-50, 50), e=st.integers(-300, -20))
def test_complex_step_within_a_few_eps_at_tiny_h(x, e):
    d = fdkit.derivative(jsin, x, method="complex", h=10.0**e)
    assert d == pytest.approx(math.cos(x), rel=4e-16, abs=4e-16)


# ------------------------------------------------ higher derivatives and one-sided accuracy 3, 4


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("p", [2, 4, 6])
def test_central_third_and_fourth_derivatives(n, p):
    # d^n/dx^n of exp is exp and of sin is sin(x + n pi/2) (closed forms); the error model at the
    # default step eps^(1/(p+n)) is about eps^(p/(p+n)) (times |f|, |f^(n+p)| of order one)
    x = np.linspace(-1.0, 1.0, 9)
    bound = 30 * np.finfo(float).eps ** (p / (p + n))
    for f, exact in ((jexp, np.exp(x)), (np.sin, np.sin(x + n * np.pi / 2))):
        np.testing.assert_allclose(fdkit.derivative(f, x, n=n, order=p), exact, rtol=0, atol=bound)


@pytest.mark.parametrize("method", ["forward", "backward"])
@pytest.mark.parametrize("p", [3, 4])
@pytest.mark.parametrize("n", [1, 2])
def test_one_sided_accuracy_3_and_4(method, p, n):
    x = np.linspace(-1.0, 1.0, 9)
    bound = 30 * np.finfo(float).eps ** (p / (p + n))
    np.testing.assert_allclose(fdkit.derivative(jexp, x, method=method, order=p, n=n), np.exp(x), rtol=0, atol=bound)
    # halving an explicit step divides the truncation error by about 2^p
    h = 0.05
    e1 = abs(fdkit.derivative(jexp, 0.3, method=method, order=p, n=n, h=h) - np.exp(0.3))
    e2 = abs(fdkit.derivative(jexp, 0.3, method=method, order=p, n=n, h=h / 2) - np.exp(0.3))
    assert 2 ** (p - 0.5) < e1 / e2 < 2 ** (p + 0.5)


# --------------------------------------------------- error estimates of the fixed stencils


@pytest.mark.parametrize("method,p", [("forward", 1), ("backward", 2), ("central", 2), ("central", 4), ("complex", 2)])
def test_fixed_methods_estimate_their_error_by_halving(method, p):
    # full_output=True reruns the stencil at h/2: |D(h) - D(h/2)| / (1 - 2^-p) estimates the
    # error of D(h); at a step where truncation dominates it matches the true error (closed
    # form) within a few percent, and the extra evaluations are counted
    x = np.linspace(0.2, 1.2, 11)
    h = 1e-2 if method != "complex" else 1e-2  # truncation-dominated for every method here
    assert fdkit.derivative(jexp, x, method=method, order=p, h=h, full_output=True).error is None
    r = fdkit.derivative(jexp, x, method=method, order=p, h=h, estimate_error=True)
    err = np.abs(r.value - np.exp(x))
    assert r.error.shape == x.shape
    np.testing.assert_allclose(r.error, err, rtol=0.2)
    # the stencil at h and at h/2, and f at x for the rounding floor (not needed by the complex step)
    assert r.nfev == 2 * x.size * fdkit.get_stencil(method, p).nfev_per_point + (0 if method == "complex" else x.size)
    # at the default step the estimate is of the order of the true error (rounding included)
    r = fdkit.derivative(jexp, x, method=method, order=p, estimate_error=True)
    err = np.abs(r.value - np.exp(x))
    assert np.all(err <= 3 * r.error) and np.all(r.error <= 1e3 * err + 1e-13)


def test_gradient_jacobian_hessian_error_estimates():
    x = np.array([0.3, 0.9, -0.4])
    g = fdkit.gradient(lambda v: np.sum(np.exp(v)), x, method="forward", h=1e-3, estimate_error=True)
    np.testing.assert_allclose(g.error, np.abs(g.value - np.exp(x)), rtol=0.2)
    J = fdkit.jacobian(lambda v: np.exp(v), x, method="central", h=1e-2, estimate_error=True)
    np.testing.assert_allclose(np.diag(J.error), np.abs(np.diag(J.value) - np.exp(x)), rtol=0.2)
    H = fdkit.hessian(lambda v: np.sum(np.exp(v)), x, h=1e-2, estimate_error=True)
    np.testing.assert_allclose(np.diag(H.error), np.abs(np.diag(H.value) - np.exp(x)), rtol=0.2)
    assert H.nfev == 1 + 2 * (2 * 9)  # the probe (|f(x)| for the floor too), then 2N^2 at h and at h/2
