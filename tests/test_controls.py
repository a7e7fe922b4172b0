"""What the peers' tests ask of fdkit beyond the value: the contract of a plain f in derivative,
bounds for the fixed stencils (scipy's approx_derivative convention), and control of the adaptive
method (atol, rtol, maxiter, step_factor, step_direction) with a status per element.

Oracles: closed-form derivatives; scipy's approx_derivative for the bounded steps it takes.
"""

import numba
import numpy as np
import pytest

import fdkit

DTYPES = [np.float64, np.float32]


# ---------------------------------------------------------------- the contract of a plain f


def not_elementwise(t):
    """The issue's f: a function of one number, which does something else with a whole array."""
    return t**2 if np.all(t > 0) else -(t**2)


def test_a_plain_f_is_called_one_number_at_a_time():
    # f(t) = t^2 for t > 0, -t^2 otherwise: f'(-1) = 2, f'(1) = 2 (the array call gave [2, -2])
    for method in ("central", "forward", "richardson"):
        np.testing.assert_allclose(fdkit.derivative(not_elementwise, [-1.0, 1.0], method=method), [2.0, 2.0], rtol=1e-6)
    r = fdkit.derivative(not_elementwise, [-1.0, 1.0], estimate_error=True)
    np.testing.assert_allclose(r.value, [2.0, 2.0], rtol=1e-8)


def test_vectorized_true_calls_f_on_arrays_and_checks_the_shape():
    calls = []

    def f(t):
        calls.append(np.shape(t))
        return np.sin(t)

    x = np.linspace(0.0, 1.0, 50)
    d = fdkit.derivative(f, x, vectorized=True, full_output=True)
    np.testing.assert_allclose(d.value, np.cos(x), rtol=1e-9)
    assert d.nfev == 1 + 2 * x.size  # points evaluated: the probe and two per point
    assert len(calls) == 3 and calls[1:] == [(50,), (50,)]  # probe + one call per stencil point
    calls.clear()
    fdkit.derivative(f, x)  # not declared elementwise: one number at a time
    assert len(calls) == 1 + 2 * x.size and calls[1] == ()
    with pytest.raises(ValueError, match=r"one value per point, shape \(1,\).*returned shape \(\)"):
        fdkit.derivative(lambda t: np.sum(t), x, vectorized=True)
    with pytest.raises(TypeError, match="vectorized must be True or False"):
        fdkit.derivative(np.sin, x, vectorized=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_ufunc_is_elementwise_by_definition(dtype):
    x = np.linspace(0.1, 2.0, 200).astype(dtype)
    for method, tol in (("central", 1e-9), ("forward", 5e-8), ("complex", 1e-14)):
        tol = tol if dtype == np.float64 else 2e-3
        d = fdkit.derivative(np.sin, x, method=method)
        assert d.dtype == dtype
        np.testing.assert_allclose(d, np.cos(x.astype(np.float64)), rtol=tol, atol=tol)


# ------------------------------------------------------------------------------ bounds


def guarded(lo, hi, seen, fn=np.exp):
    """f that records every point and refuses any outside [lo, hi]."""

    def f(v):
        a = np.asarray(v)
        seen.append(a.copy())
        if np.any(a < lo) or np.any(a > hi):
            raise ValueError(f"evaluated outside [{lo}, {hi}]: {a}")
        return fn(v)

    return f


@numba.njit
def bounded_f(v):
    if v[0] < 0.0 or v[1] > 1.0 or v[2] < 0.0:
        return np.nan  # NaN would show in the result
    return np.sqrt(v[0] + 1.0) * v[1] ** 3 + np.log1p(v[2])


@numba.njit
def bounded_F(v):
    if v[0] < 0.0 or v[1] > 1.0 or v[2] < 0.0:
        return np.full(2, np.nan, dtype=v.dtype)
    return np.array([np.sqrt(v[0] + 1.0) * v[1] ** 3, np.log1p(v[2]) * v[0]], dtype=v.dtype)


def bounded_f_plain(v):
    assert v[0] >= 0.0 and v[1] <= 1.0 and v[2] >= 0.0, v
    return np.sqrt(v[0] + 1.0) * v[1] ** 3 + np.log1p(v[2])


def bounded_F_plain(v):
    assert v[0] >= 0.0 and v[1] <= 1.0 and v[2] >= 0.0, v
    return np.array([np.sqrt(v[0] + 1.0) * v[1] ** 3, np.log1p(v[2]) * v[0]])


CASES = [("central", 2), ("central", 4), ("central", 6), ("forward", 1), ("forward", 2), ("forward", 4),
         ("backward", 1), ("backward", 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method,order", CASES)
def test_bounds_keep_every_point_inside_derivative(method, order, dtype):
    x = np.array([0.0, 1e-7, 0.3, 0.5, 1.0 - 1e-7, 1.0], dtype=dtype)
    seen = []
    r = fdkit.derivative(guarded(0.0, 1.0, seen), x, method=method, order=order, bounds=(0.0, 1.0),
                         full_output=True)
    pts = np.concatenate([np.ravel(s) for s in seen])
    assert pts.min() >= 0.0 and pts.max() <= 1.0
    ex = np.exp(x.astype(np.float64))
    tol = {np.float64: {1: 1e-7, 2: 1e-9}.get(order, 1e-10), np.float32: 2e-3}[dtype]
    np.testing.assert_allclose(r.value, ex, rtol=tol)
    assert np.all(r.h[x == 1.0] < 0) and np.all(r.h[x == 0.0] > 0)  # downwards at ub, upwards at lb


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("jitted", [False, True], ids=["plain", "jitted"])
@pytest.mark.parametrize("method,order", CASES)
def test_bounds_gradient_and_jacobian(method, order, jitted, dtype):
    lb, ub = np.array([0.0, -1.0, 0.0]), np.array([1.0, 1.0, np.inf])
    x = np.array([0.0, 1.0, 2.0], dtype=dtype)
    f, F = (bounded_f, bounded_F) if jitted else (bounded_f_plain, bounded_F_plain)
    g_exact = [0.5, 3.0, 1.0 / 3.0]
    J_exact = [[0.5, 3.0, 0.0], [np.log(3.0), 0.0, 0.0]]
    tol = {np.float64: {1: 1e-6, 2: 1e-8}.get(order, 1e-9), np.float32: 3e-3}[dtype]
    r = fdkit.gradient(f, x, method=method, order=order, bounds=(lb, ub), full_output=True)
    np.testing.assert_allclose(r.value, g_exact, rtol=tol)
    assert r.h[1] < 0  # x_1 at its upper bound: steps down
    J = fdkit.jacobian(F, x, method=method, order=order, bounds=(lb, ub))
    np.testing.assert_allclose(J, J_exact, rtol=tol, atol=tol)


def test_bounds_match_scipys_approx_derivative():
    optimize = pytest.importorskip("scipy.optimize")
    from scipy.optimize._numdiff import approx_derivative

    def F(v):
        return np.array([np.sqrt(v[0]), np.log(1.0 - v[1]), v[0] * v[1]])

    x = np.array([1e-12, 0.999999])
    b = ([0.0, 0.0], [1.0, 1.0])
    for fd, sp in (("forward", "2-point"), ("central", "3-point")):
        ours = fdkit.jacobian(F, x, method=fd, bounds=b)
        theirs = approx_derivative(F, x, method=sp, bounds=b)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)
    assert optimize is not None


def test_bounds_with_an_error_estimate_cover_the_error():
    x = np.array([0.0, 0.5, 1.0])
    for method, order in CASES:
        r = fdkit.derivative(np.exp, x, method=method, order=order, bounds=(0.0, 1.0), estimate_error=True)
        assert np.all(np.abs(r.value - np.exp(x)) <= r.error), (method, order)


def test_bad_bounds():
    with pytest.raises(ValueError, match="lb must be below ub"):
        fdkit.gradient(np.sum, np.zeros(2), bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match="x must lie within bounds"):
        fdkit.gradient(np.sum, np.array([0.0, 2.0]), bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match="cannot be broadcast"):
        fdkit.gradient(np.sum, np.zeros(2), bounds=(np.zeros(3), 1.0))
    with pytest.raises(TypeError, match=r"bounds must be a pair \(lb, ub\)"):
        fdkit.gradient(np.sum, np.zeros(2), bounds=1.0)
    with pytest.raises(ValueError, match="NaN"):
        fdkit.gradient(np.sum, np.zeros(2), bounds=(np.nan, 1.0))
    with pytest.raises(ValueError, match="bounds apply to the fixed stencils.*step_direction"):
        fdkit.gradient(np.sum, np.zeros(2), method="richardson", bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match="n=3 has no one-sided stencil"):
        fdkit.derivative(np.sin, 0.5, n=3, bounds=(0.0, 1.0))
    # no finite bound: the plain stencil, exactly
    x = np.linspace(0, 1, 5)
    np.testing.assert_array_equal(fdkit.derivative(np.sin, x, bounds=(-np.inf, np.inf)), fdkit.derivative(np.sin, x))


# -------------------------------------------------------------- control of the adaptive method


@numba.njit
def jexp(t):
    return np.exp(t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rtol_stops_early_and_honestly(dtype):
    x = np.linspace(-1.0, 1.0, 101).astype(dtype)
    full = fdkit.derivative(jexp, x, method="richardson", full_output=True)
    rtol = 1e-2 if dtype == np.float32 else 1e-4  # (met on two rows in a row before a point stops)
    loose = fdkit.derivative(jexp, x, method="richardson", rtol=rtol, full_output=True)
    ex = np.exp(x.astype(np.float64))
    assert loose.nfev < full.nfev
    assert np.all(loose.status == 0) and np.all(loose.success)
    assert np.all(np.abs(loose.value - ex) <= loose.error)
    assert np.all(loose.error <= rtol * np.abs(loose.value))
    # atol alone, on a derivative near 0
    r = fdkit.derivative(np.sin, np.pi / 2, method="richardson", atol=1e-6, full_output=True)
    assert abs(r.value) <= r.error <= 1e-6 and r.status == 0


def test_maxiter_and_status():
    x = np.linspace(0.0, 1.0, 11)
    r = fdkit.derivative(jexp, x, method="richardson", maxiter=2, full_output=True)
    assert np.all(r.status == -2) and not np.any(r.success)
    assert np.all(r.element_nfev == 4)  # two central differences per point
    assert np.all(np.abs(r.value - np.exp(x)) <= r.error)  # still honest
    r = fdkit.derivative(jexp, x, method="richardson", full_output=True)
    assert np.all(r.status == 0) and r.nfev == r.element_nfev.sum()
    # a value that is not finite
    with pytest.warns(RuntimeWarning, match="NaN or inf"):
        r = fdkit.derivative(lambda t: np.nan, 1.0, method="richardson", full_output=True)
    assert r.status == -3 and not r.success
    for bad, exc in ((0, ValueError), (101, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="maxiter"):
            fdkit.derivative(jexp, 1.0, method="richardson", maxiter=bad)


@pytest.mark.parametrize("ratio", [1.4, 3.0, 4.0])
def test_step_factor(ratio):
    x = np.linspace(-2.0, 2.0, 41)
    r = fdkit.derivative(jexp, x, method="richardson", step_factor=ratio, full_output=True)
    err = np.abs(r.value - np.exp(x))
    assert np.all(err <= r.error) and err.max() < 1e-11 * np.exp(2.0)
    g = fdkit.gradient(lambda v: np.sum(np.exp(v)), x[:5], method="richardson", step_factor=ratio)
    np.testing.assert_allclose(g, np.exp(x[:5]), rtol=1e-11)
    for bad, exc in ((1.0, ValueError), (np.nan, ValueError), ("2", TypeError)):
        with pytest.raises(exc, match="step_factor"):
            fdkit.derivative(jexp, 1.0, method="richardson", step_factor=bad)


def test_tolerances_are_checked_and_belong_to_richardson():
    with pytest.raises(ValueError, match="atol must be non-negative"):
        fdkit.derivative(jexp, 1.0, method="richardson", atol=-1.0)
    with pytest.raises(TypeError, match="rtol must be a non-negative float"):
        fdkit.derivative(jexp, 1.0, method="richardson", rtol="1e-3")
    with pytest.raises(ValueError, match="atol, maxiter control method='richardson'"):
        fdkit.gradient(np.sum, np.ones(2), atol=1e-3, maxiter=3)
    with pytest.raises(ValueError, match="step_direction control method='richardson'"):
        fdkit.derivative(np.sin, 1.0, step_direction=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2])
def test_step_direction_stays_on_its_side(n, dtype):
    # log on (0, inf), at points closer to 0 than the first step: +1 never steps below x
    x = np.array([1e-3, 0.01, 0.5, 2.0], dtype=dtype)
    seen = []
    r = fdkit.derivative(guarded(0.0, np.inf, seen, np.log), x, method="richardson", n=n, step_direction=1,
                         full_output=True)
    lo = np.concatenate([np.ravel(s) for s in seen]).min()
    assert lo >= x.min()
    x64 = x.astype(np.float64)
    ex = 1.0 / x64 if n == 1 else -1.0 / x64**2
    err = np.abs(r.value - ex)
    assert np.all(err <= r.error)
    if dtype == np.float64 or n == 1:  # (float32 n = 2 at x = 1e-3 is honest, not accurate: status says so)
        assert np.all(err <= (1e-6 if dtype == np.float64 else 3e-2) * np.abs(ex))
    # -1 at the upper end of a domain: sqrt(1 - t) at t up to 1 - 1e-3
    seen.clear()
    t = np.array([0.0, 0.9, 0.999], dtype=dtype)
    r = fdkit.derivative(guarded(-np.inf, 1.0, seen, lambda v: np.sqrt(1.0 - v)), t, method="richardson",
                         step_direction=-1, full_output=True)
    assert np.concatenate([np.ravel(s) for s in seen]).max() <= t.max()
    ex = -0.5 / np.sqrt(1.0 - t.astype(np.float64))
    assert np.all(np.abs(r.value - ex) <= r.error)


@pytest.mark.parametrize("jitted", [False, True], ids=["plain", "jitted"])
def test_step_direction_per_parameter(jitted):
    def f(v):
        return np.log(v[0]) + np.sqrt(1.0 - v[1]) + v[2] ** 2

    def F(v):
        return np.array([np.log(v[0]) * v[2], np.sqrt(1.0 - v[1])])

    if jitted:
        f, F = numba.njit(f), numba.njit(F)
    x = np.array([1e-3, 0.999, 0.5])
    d = [1, -1, 0]
    r = fdkit.gradient(f, x, method="richardson", step_direction=d, full_output=True)
    ex = np.array([1e3, -0.5 / np.sqrt(1e-3), 1.0])
    assert np.all(np.abs(r.value - ex) <= r.error)
    assert np.all(r.status == 0)
    assert r.nfev == r.element_nfev.sum() + 1  # f(x) once: the probe of a plain f, or grad_prep's
    J = fdkit.jacobian(F, x, method="richardson", step_direction=d, full_output=True)
    Jex = np.array([[0.5 * 1e3, 0.0, np.log(1e-3)], [0.0, -0.5 / np.sqrt(1e-3), 0.0]])
    assert np.all(np.abs(J.value - Jex) <= J.error)
    with pytest.raises(ValueError, match="cannot be broadcast"):
        fdkit.gradient(f, x, method="richardson", step_direction=[1, 0])


def test_hessian_controls():
    def f(v):
        return np.exp(v[0]) * np.sin(v[1])

    x = np.array([0.3, 0.7])
    ex = np.array([[np.exp(0.3) * np.sin(0.7), np.exp(0.3) * np.cos(0.7)],
                   [np.exp(0.3) * np.cos(0.7), -np.exp(0.3) * np.sin(0.7)]])
    full = fdkit.hessian(f, x, method="richardson", full_output=True)
    loose = fdkit.hessian(f, x, method="richardson", rtol=1e-6, step_factor=3.0, full_output=True)
    for r in (full, loose):
        assert np.all(np.abs(r.value - ex) <= r.error) and np.all(r.status == 0)
    assert loose.nfev < full.nfev
    assert np.all(loose.error <= 1e-6 * np.abs(loose.value))
    with pytest.raises(TypeError):
        fdkit.hessian(f, x, method="richardson", step_direction=1)


def test_fixed_stencils_report_status():
    with pytest.warns(RuntimeWarning, match="NaN or inf"):
        r = fdkit.derivative(lambda t: np.log(t) if t > 0 else np.nan, np.array([-1.0, 1.0]), full_output=True)
    np.testing.assert_array_equal(r.status, [-3, 0])
    np.testing.assert_array_equal(r.success, [False, True])
