"""fdkit.Objective with scipy's optimisers: f(x) shared between fun and jac, every evaluation
counted (oracles: scipy's rosen_der and the optimum of Rosenbrock at x = 1)."""

import numba
import numpy as np
import pytest

import fdkit
from fdkit.study.problems import rosen_batch

optimize = pytest.importorskip("scipy.optimize")


@numba.njit
def jrosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.mark.parametrize("kind", ["plain", "jitted", "batched"])
def test_minimize_spends_n_per_forward_gradient(kind):
    f = {"plain": optimize.rosen, "jitted": jrosen, "batched": rosen_batch}[kind]
    obj = fdkit.Objective(f, vectorized=kind == "batched")
    x0 = np.full(5, 0.5)
    res = optimize.minimize(obj.fun, x0, jac=obj.jac, method="BFGS")
    np.testing.assert_allclose(res.x, 1.0, atol=1e-4)
    assert obj.ngev == res.njev
    assert obj.nfev == res.nfev + x0.size * res.njev  # f(x) of every gradient came from fun


def test_jac_alone_and_value_and_grad():
    obj = fdkit.Objective(optimize.rosen)
    x = np.array([0.3, -0.2, 1.1])
    g = obj.jac(x)  # a new x: f(x) once, then N
    assert obj.nfev == 1 + x.size
    np.testing.assert_allclose(g, optimize.rosen_der(x), rtol=1e-6, atol=1e-6)
    v, g2 = obj.value_and_grad(x)  # the same x: f(x) remembered, N more
    assert v == optimize.rosen(x) and obj.nfev == 1 + 2 * x.size
    central = fdkit.Objective(optimize.rosen, method="central")
    np.testing.assert_allclose(central.jac(x), optimize.rosen_der(x), rtol=1e-8)
    rich = fdkit.Objective(optimize.rosen, method="richardson")
    np.testing.assert_allclose(rich.jac(x), optimize.rosen_der(x), rtol=1e-11)
    res = optimize.minimize(central.value_and_grad, np.zeros(3), jac=True, method="L-BFGS-B")
    np.testing.assert_allclose(res.x, 1.0, atol=1e-3)


def test_least_squares_gets_a_jacobian():
    t = np.linspace(0.0, 2.0, 30)
    y = 2.0 * np.exp(-1.3 * t) + 0.5

    def resid(p):
        return p[0] * np.exp(-p[1] * t) + p[2] - y

    obj = fdkit.Objective(resid, method="central")
    res = optimize.least_squares(obj.fun, [1.0, 1.0, 0.0], jac=obj.jac)
    np.testing.assert_allclose(res.x, [2.0, 1.3, 0.5], rtol=1e-7)
    J = obj.jac(res.x)
    p = res.x
    exact = np.stack([np.exp(-p[1] * t), -p[0] * t * np.exp(-p[1] * t), np.ones_like(t)], axis=1)
    np.testing.assert_allclose(J, exact, rtol=1e-7, atol=1e-9)
    with pytest.raises(TypeError, match="callable"):
        fdkit.Objective(3.0)
