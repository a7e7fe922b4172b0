"""Extra arguments of f (scipy's convention: args=(), kwargs=None), for jitted and plain f,
every quantity and method, serial and parallel; against closed forms."""

import numba
import numpy as np
import pytest

import fdkit


@numba.njit
def j_weighted(x, a, b):  # sum a_i x_i^2 + b: gradient 2 a x, Hessian diag(2 a)
    return np.sum(a * x**2) + b


def p_weighted(x, a, b=0.0):
    return np.sum(a * x**2) + b


@numba.njit
def j_scaled_sin(x, s):  # sin(s x) elementwise: Jacobian diag(s cos(s x))
    return np.sin(s * x)


X = np.array([1.0, -2.0, 0.5])
A = np.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize("method", ["forward", "central", "complex", "richardson"])
def test_gradient_with_args(method):
    exact = 2 * A * X
    tol = 1e-6 if method == "forward" else 1e-9
    for kw in ({}, {"parallel": True}):
        np.testing.assert_allclose(fdkit.gradient(j_weighted, X, method=method, args=(A, 1.0), **kw), exact, rtol=tol)
    np.testing.assert_allclose(fdkit.gradient(p_weighted, X, method=method, args=(A,), kwargs={"b": 4.0}), exact, rtol=tol)
    np.testing.assert_allclose(fdkit.gradient(p_weighted, X, method=method, args=[A]), exact, rtol=tol)


@pytest.mark.parametrize("method", ["central", "complex", "richardson"])
def test_jacobian_derivative_hessian_with_args(method):
    J = fdkit.jacobian(j_scaled_sin, X, method=method, args=(2.0,), parallel=True)
    np.testing.assert_allclose(J, np.diag(2 * np.cos(2 * X)), rtol=1e-8, atol=1e-12)
    d = fdkit.derivative(j_scaled_sin, X, method=method, args=(2.0,))
    np.testing.assert_allclose(d, 2 * np.cos(2 * X), rtol=1e-8)
    d = fdkit.derivative(lambda t, s: np.sin(s * t), X, method=method, args=(2.0,))
    np.testing.assert_allclose(d, 2 * np.cos(2 * X), rtol=1e-8)
    if method != "complex":
        for f, kw in ((j_weighted, {"args": (A, 1.0)}), (p_weighted, {"args": (A,), "kwargs": {"b": 1.0}})):
            H = fdkit.hessian(f, X, method=method, **kw)
            np.testing.assert_allclose(H, np.diag(2 * A), rtol=1e-6, atol=1e-6)


def test_bad_args():
    with pytest.raises(TypeError, match="args must be a tuple"):
        fdkit.gradient(p_weighted, X, args=A)
    with pytest.raises(TypeError, match="kwargs must be a dict"):
        fdkit.gradient(p_weighted, X, args=(A,), kwargs=[("b", 1.0)])
    with pytest.raises(TypeError, match="takes its extra arguments positionally"):
        fdkit.gradient(j_weighted, X, args=(A,), kwargs={"b": 1.0})
    with pytest.raises(TypeError, match=r"cannot be compiled for"):
        fdkit.gradient(j_weighted, X, args=(A,))  # one argument missing
