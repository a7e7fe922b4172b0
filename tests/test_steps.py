import numpy as np
import pytest

import fdkit

EPS = np.finfo(np.float64).eps


def test_classical_steps():
    # Numerical Recipes 5.7: sqrt(eps) for one-sided, eps^(1/3) for central, eps^(1/(p+n)) in general
    assert fdkit.optimal_step("forward") == np.sqrt(EPS)
    assert fdkit.optimal_step("backward") == np.sqrt(EPS)
    assert fdkit.optimal_step("central") == pytest.approx(np.cbrt(EPS), rel=1e-15)
    assert fdkit.optimal_step("central", n=2) == pytest.approx(EPS**0.25, rel=1e-15)
    assert fdkit.optimal_step("central", order=4) == pytest.approx(EPS**0.2, rel=1e-15)
    assert fdkit.optimal_step("forward", order=2, n=2) == pytest.approx(EPS**0.25, rel=1e-15)
    assert fdkit.optimal_step("complex") == 1e-20


def test_step_scales_with_max_one_abs_x():
    assert fdkit.optimal_step("forward", 1e-3) == np.sqrt(EPS)
    assert fdkit.optimal_step("forward", -250.0) == pytest.approx(250 * np.sqrt(EPS), rel=1e-15)
    x = np.array([[0.0, -3.0], [0.5, 1e8]])
    h = fdkit.optimal_step("central", x)
    assert h.shape == x.shape
    np.testing.assert_allclose(h, np.cbrt(EPS) * np.maximum(1, np.abs(x)), rtol=1e-15)
    assert isinstance(fdkit.optimal_step("complex", np.float64(2.0)), float)


def test_default_h_is_exactly_optimal_step():
    x = np.array([0.1, -2.0, 30.0])
    for method, order, n in [("forward", 1, 1), ("central", 4, 1), ("backward", 2, 2), ("complex", 2, 1)]:
        r = fdkit.derivative(np.exp, x, method=method, order=order, n=n, full_output=True)
        np.testing.assert_array_equal(r.h, fdkit.optimal_step(method, x, order=order, n=n))
    r = fdkit.gradient(lambda v: float(np.sum(v**2)), x, method="forward", full_output=True)
    np.testing.assert_array_equal(r.h, fdkit.optimal_step("forward", x))


def test_bad_step_requests():
    with pytest.raises(ValueError, match="unknown method"):
        fdkit.optimal_step("fwd")
    with pytest.raises(ValueError, match="order=5"):
        fdkit.optimal_step("central", order=5)
