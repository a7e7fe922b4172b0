"""method='richardson': accuracy, honest error estimates, the large-|x| trap, cost, API.

Oracles: closed forms evaluated in mpmath at 40 digits (so the oracle's own rounding cannot
decide a comparison at the 1e-16 level), scipy's rosen_der, and counted evaluations.
"""

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fdkit
from oracles import jexp, jlog, jsin, jsinc, rosen, squire_trapp, sum_cubes, vec_f, vec_f_jac

mp.mp.dps = 40


def _mp_array(fn, xs):
    return [fn(mp.mpf(float(v))) for v in np.ravel(xs)]


def _abs_err(values, exact_mp):
    """|value - exact| in mpmath, as floats (exact where value == exact)."""
    return np.array([float(abs(mp.mpf(float(v)) - e)) for v, e in zip(np.ravel(values), exact_mp)])


# f, its derivative in mpmath, and the test points: the smooth functions
SINC_PRIME = lambda t: (t * mp.cos(t) - mp.sin(t)) / t**2  # noqa: E731
ST = lambda t: mp.exp(t) / mp.sqrt(mp.sin(t) ** 3 + mp.cos(t) ** 3)  # noqa: E731
CASES = {
    "exp": (jexp, mp.exp, np.linspace(-5.0, 5.0, 101)),
    "sin": (jsin, mp.cos, np.linspace(-10.0, 10.0, 101)),
    "squire_trapp": (squire_trapp, lambda t: mp.diff(ST, t), np.linspace(0.0, 1.5, 31)),
    "sinc": (jsinc, SINC_PRIME, np.linspace(-10.0, 10.0, 100)),  # even count: 0 is not a point
    "log": (jlog, lambda t: 1 / t, np.geomspace(5e-4, 2e-3, 51)),
}


@pytest.fixture(scope="module")
def results():
    out = {}
    for name, (f, fprime, xs) in CASES.items():
        r = fdkit.derivative(f, xs, method="richardson", full_output=True)
        exact = _mp_array(fprime, xs)
        out[name] = (xs, r, exact, _abs_err(r.value, exact))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_accuracy_1e12(results, name):
    """Relative error <= 1e-12, measured against max(1, |f'|) where f' crosses zero."""
    xs, r, exact, err = results[name]
    scale = np.maximum(1.0, np.abs(np.array([float(e) for e in exact])))
    worst = np.max(err / scale)
    assert worst <= 1e-12, f"{name}: worst relative error {worst:.2e}"


def test_squire_trapp_at_1_5():
    """The complex-step paper's example: f'(1.5) = 4.05342789389876... (mpmath, 40 digits)."""
    exact = mp.diff(ST, mp.mpf(1.5))
    r = fdkit.derivative(squire_trapp, 1.5, method="richardson", full_output=True)
    rel = float(abs(mp.mpf(r.value) - exact) / exact)
    assert rel <= 1e-12
    assert abs(r.value - float(exact)) <= r.error


def test_error_estimate_is_honest(results):
    """Over all points (a few hundred): the true error is below the estimate for >= 95 % of
    them, and the estimate is at most 1000x the true error in the median."""
    errs = np.concatenate([results[k][3] for k in CASES])
    ests = np.concatenate([np.ravel(results[k][1].error) for k in CASES])
    assert errs.size >= 300
    below = np.mean(errs <= ests)
    assert below >= 0.95, f"true error below the estimate for only {below:.1%}"
    nz = errs > 0
    ratio = np.median(ests[nz] / errs[nz])
    assert 1.0 <= ratio <= 1000.0, f"median estimate / true error = {ratio:.1f}"


def test_cost_is_counted_and_modest(results):
    """nfev is counted; about 6-14 evaluations per point for these smooth functions."""
    for name in ("exp", "sin", "sinc"):
        xs, r, _, _ = results[name]
        per_point = r.nfev / xs.size
        assert 6 <= per_point <= 16, f"{name}: {per_point:.1f} evaluations per point"


@pytest.mark.parametrize("x", [1e8, 1e8 + 1.0, 3e7, 1e10, 1e12])
def test_sin_at_large_x(x):
    """The relative-step trap: d/dx sin at 1e8 (scipy's 3-point is off by 0.36 there)."""
    exact = mp.cos(mp.mpf(x))
    r = fdkit.derivative(jsin, x, method="richardson", full_output=True)
    rel = float(abs(mp.mpf(r.value) - exact) / abs(exact))
    assert rel <= 1e-6
    assert rel <= 1e-12  # and in fact to full precision
    assert abs(r.value - float(exact)) <= r.error


@pytest.mark.parametrize(
    ("f", "x", "fprime"),
    [
        (jlog, 1e6, lambda t: 1 / t),  # absolute steps alone: rounding of |log| ~ 14 would cost 4 digits
        (jlog, 1e200, lambda t: 1 / t),  # 0.1 is below half an ulp of 1e200: only relative steps exist
        (lambda t: t * t, 1e8, lambda t: 2 * t),  # |f| = 1e16 against f' = 2e8
        (jexp, 300.0, mp.exp),
    ],
)
def test_large_x_relative_fallback(f, x, fprime):
    exact = fprime(mp.mpf(x))
    r = fdkit.derivative(f, x, method="richardson", full_output=True)
    rel = float(abs(mp.mpf(r.value) - exact) / abs(exact))
    assert rel <= 1e-12, rel
    assert abs(r.value - float(exact)) <= r.error


def test_singularity_at_zero_jumps_to_relative_step():
    """log and sqrt are not finite at x - h for h > x: the sequence jumps to h = x/2 instead of
    halving 0.1 down to x, so it stays cheap."""
    for f, fp, x in [(np.log, lambda t: 1 / t, 1e-6), (np.sqrt, lambda t: 0.5 / mp.sqrt(t), 1e-9)]:
        r = fdkit.derivative(f, x, method="richardson", full_output=True)
        exact = fp(mp.mpf(x))
        assert float(abs(mp.mpf(r.value) - exact) / exact) <= 1e-12
        assert r.h < x
        assert r.nfev <= 30


@pytest.mark.parametrize(("f", "fpp", "xs"), [
    (jsin, lambda t: -mp.sin(t), np.linspace(-3.0, 3.0, 13)),
    (jexp, mp.exp, np.linspace(-2.0, 2.0, 9)),
])
def test_second_derivative(f, fpp, xs):
    r = fdkit.derivative(f, xs, method="richardson", n=2, full_output=True)
    exact = _mp_array(fpp, xs)
    err = _abs_err(r.value, exact)
    scale = np.maximum(1.0, np.abs([float(e) for e in exact]))
    assert np.max(err / scale) <= 1e-9
    assert np.all(err <= r.error)
    assert r.n == 2


def test_gradient_rosenbrock_against_scipy():
    optimize = pytest.importorskip("scipy.optimize")
    x = np.array([1.3, 0.7, -0.8, 1.9, 1.2, 0.25, -1.7])
    r = fdkit.gradient(rosen, x, method="richardson", full_output=True)
    g = optimize.rosen_der(x)
    assert r.value.shape == r.error.shape == r.level.shape == x.shape
    assert np.max(np.abs(r.value - g) / np.maximum(1.0, np.abs(g))) <= 1e-12
    assert np.all(np.abs(r.value - g) <= r.error)


def test_gradient_parallel_and_plain_callable_agree():
    x = np.linspace(-2.0, 2.0, 40).reshape(5, 8)  # a matrix W: the gradient has W's shape
    serial = fdkit.gradient(sum_cubes, x, method="richardson", full_output=True)
    par = fdkit.gradient(sum_cubes, x, method="richardson", parallel=True, full_output=True)
    plain = fdkit.gradient(sum_cubes.py_func, x, method="richardson", full_output=True)
    assert serial.value.shape == serial.error.shape == x.shape
    np.testing.assert_array_equal(par.value, serial.value)
    assert par.nfev == serial.nfev
    # numpy's pairwise sum rounds differently from numba's loop: both agree with 3 w^2
    for r in (serial, plain):
        np.testing.assert_allclose(r.value, 3 * x**2, rtol=1e-12, atol=1e-12)


def test_gradient_estimate_honest_for_a_sum():
    """A sum of 200 positive terms: the estimate covers the true error (>= 95 %).

    (Where the terms cancel, f ~ 0 while they are large, f's rounding is far above the floor's
    eps * max|f| and the estimate can fall short: documented in ``gradient``'s Notes.)"""
    x = np.random.default_rng(7).uniform(0.5, 2.0, 200)
    for f in (sum_cubes, sum_cubes.py_func):
        r = fdkit.gradient(f, x, method="richardson", full_output=True)
        err = _abs_err(r.value, [3 * mp.mpf(float(v)) ** 2 for v in x])
        assert np.mean(err <= r.error) >= 0.95
        assert np.max(err / (3 * x**2)) <= 1e-10  # |f| ~ 400 against f' ~ 1-12: rounding costs digits


def test_derivative_parallel_matches_serial():
    xs = np.linspace(-10.0, 10.0, 1001)
    a = fdkit.derivative(jsin, xs, method="richardson", full_output=True)
    b = fdkit.derivative(jsin, xs, method="richardson", parallel=True, full_output=True)
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(a.error, b.error)
    assert a.nfev == b.nfev


def test_jacobian_closed_form_and_estimate():
    x = np.array([0.7, -1.3])
    r = fdkit.jacobian(vec_f, x, method="richardson", full_output=True)
    J = vec_f_jac(x)
    assert r.value.shape == r.error.shape == r.level.shape == (3, 2)
    assert np.max(np.abs(r.value - J) / np.maximum(1.0, np.abs(J))) <= 1e-12
    assert np.all(np.abs(r.value - J) <= r.error)
    plain = fdkit.jacobian(lambda v: np.array([v[0] * v[1], np.sin(v[0]), v[1] ** 2 * np.exp(v[0])]), x,
                           method="richardson", full_output=True)
    np.testing.assert_allclose(plain.value, r.value, rtol=1e-13, atol=1e-14)


def test_nfev_is_the_number_of_calls():
    calls = []

    def f(t):
        calls.append(t)
        return np.exp(t) * np.sin(t)

    r = fdkit.derivative(f, [0.3, 2.5, 40.0], method="richardson", full_output=True)
    assert r.nfev == len(calls)

    calls.clear()
    g = fdkit.gradient(lambda w: f(w[0]) + w[1] ** 2, np.array([0.3, 7.0]), method="richardson", full_output=True)
    assert g.nfev == len(calls)


def test_user_h_is_the_first_step():
    r = fdkit.derivative(jsin, 1.0, method="richardson", h=1e-3, full_output=True)
    assert r.h <= 1e-3
    assert abs(r.value - np.cos(1.0)) <= max(r.error, 1e-13)
    hs = fdkit.derivative(jsin, [1.0, 2.0], method="richardson", h=[1e-2, 1e-3], full_output=True).h
    assert hs[0] <= 1e-2 and hs[1] <= 1e-3


def test_check_gradient_with_richardson():
    x = np.array([0.5, -1.5, 2.0])
    assert fdkit.check_gradient(sum_cubes, lambda w: 3 * w**2, x, method="richardson", rtol=1e-12).ok


def test_caller_array_unchanged():
    x = np.array([1.3, 0.7, -0.8, 1.9])
    x0 = x.copy()
    fdkit.gradient(rosen, x, method="richardson")
    fdkit.gradient(rosen, x, method="richardson", parallel=True)
    fdkit.derivative(jsin, x, method="richardson")
    fdkit.jacobian(vec_f, x[:2], method="richardson")
    np.testing.assert_array_equal(x, x0)


def test_scalar_in_scalar_out():
    r = fdkit.derivative(jsin, 0.5, method="richardson", full_output=True)
    assert isinstance(r.value, float) and isinstance(r.error, float) and isinstance(r.level, int)
    assert isinstance(fdkit.derivative(jsin, 0.5, method="richardson"), float)


def test_bad_input():
    with pytest.raises(ValueError, match="order=4 is not used by method='richardson'"):
        fdkit.derivative(jsin, 1.0, method="richardson", order=4)
    with pytest.raises(ValueError, match="n=3 is not available"):
        fdkit.derivative(jsin, 1.0, method="richardson", n=3)
    with pytest.raises(ValueError, match="h must be positive and finite"):
        fdkit.gradient(rosen, np.ones(3), method="richardson", h=-1.0)
    with pytest.raises(ValueError, match="x must be finite"):
        fdkit.derivative(jsin, [1.0, np.nan], method="richardson")
    with pytest.raises(TypeError, match="needs f to return a scalar"):
        fdkit.gradient(vec_f, np.ones(2), method="richardson")
    with pytest.raises(ValueError, match="richardson' is adaptive and has no fixed stencil"):
        fdkit.optimal_step("richardson")


def test_nonfinite_result_warns():
    with pytest.warns(RuntimeWarning, match="NaN or inf") as rec:
        r = fdkit.derivative(lambda t: np.log(t) if t > 0 else np.nan, 0.0, method="richardson", full_output=True)
    assert np.isnan(r.value) and r.error == np.inf and r.level == -1
    assert rec[0].filename == __file__  # the warning points at the caller
    with pytest.warns(RuntimeWarning, match="NaN or inf") as rec:
        fdkit.gradient(lambda w: np.nan, np.ones(2), method="richardson")
    assert rec[0].filename == __file__


@settings(max_examples=40, deadline=None)
@given(
    coeffs=st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=8),
    x=st.floats(-3, 3, allow_nan=False),
)
def test_polynomials_exact_to_rounding(coeffs, x):
    """A polynomial of degree <= 7: the tableau is exact up to rounding."""
    p = np.polynomial.Polynomial(coeffs)
    r = fdkit.derivative(lambda t: p(t), x, method="richardson", full_output=True)
    xm = mp.mpf(x)
    exact = sum(k * mp.mpf(c) * xm ** (k - 1) for k, c in enumerate(coeffs) if k)
    err = float(abs(mp.mpf(r.value) - exact))
    scale = max(1.0, float(np.sum(np.abs(coeffs))) * max(1.0, abs(x)) ** 7)
    assert err <= 1e-12 * scale


def test_hessian_rosenbrock_against_scipy():
    optimize = pytest.importorskip("scipy.optimize")
    x = np.array([1.3, 0.7, -0.8, 1.9, 1.2])
    H = optimize.rosen_hess(x)
    r = fdkit.hessian(rosen, x, method="richardson", full_output=True)
    np.testing.assert_array_equal(r.value, r.value.T)
    assert r.value.shape == r.error.shape == r.level.shape == (5, 5)
    assert np.max(np.abs(r.value - H) / np.maximum(1.0, np.abs(H))) <= 1e-10
    assert np.all(np.abs(r.value - H) <= r.error)
    central = fdkit.hessian(rosen, x)  # the one-step O(h^2) Hessian is 1000x less accurate
    assert np.max(np.abs(central - H)) > 100 * np.max(np.abs(r.value - H))
    plain = fdkit.hessian(rosen.py_func, x, method="richardson")
    np.testing.assert_allclose(plain, H, rtol=1e-10, atol=1e-9)


def test_hessian_mixed_scales():
    """exp(a) sin(b) + a log(c) at c = 1e6: the c-column needs the relative sequence."""
    v = np.array([0.3, 1.1, 1e6])
    r = fdkit.hessian(lambda w: np.exp(w[0]) * np.sin(w[1]) + np.log(w[2]) * w[0], v,
                      method="richardson", full_output=True)
    e, s, c = mp.exp(mp.mpf(0.3)), mp.sin(mp.mpf(1.1)), mp.cos(mp.mpf(1.1))
    exact = [[e * s, e * c, mp.mpf(1) / 10**6], [e * c, -e * s, 0], [mp.mpf(1) / 10**6, 0, -mp.mpf(0.3) / 10**12]]
    for i in range(3):
        for j in range(3):
            err = float(abs(mp.mpf(r.value[i, j]) - exact[i][j]))
            assert err <= r.error[i, j]
            assert err <= 1e-10 * max(float(abs(exact[i][j])), 1e-300) or err <= 1e-14


def test_hessian_method_check():
    with pytest.raises(ValueError, match="hessian supports method='central' or 'richardson'"):
        fdkit.hessian(rosen, np.ones(3), method="forward")
    with pytest.raises(ValueError, match="unknown method 'centre'"):
        fdkit.hessian(rosen, np.ones(3), method="centre")
