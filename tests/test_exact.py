"""Exact zeros and aliasing: what the peers' own tests look at (scipy, numdifftools).

A component of f that does not depend on a parameter must give exactly 0, not 1e-11 (a
sparsity pattern must not look dense); an f that returns its input (or a view of it) must be
differentiated like any other.  Every method, order and quantity, serial and parallel, jitted
and plain.
"""

import numba
import numpy as np
import pytest

import fdkit
from fdkit.stencils import stencils


@numba.njit
def j_const(t):
    return 3.0 + 0.0 * t


@numba.njit
def j_square(v):  # the example: dv_i^2 / dv_j = 0 exactly for i != j
    return v**2


@numba.njit
def j_ident(v):  # returns its input itself
    return v


@numba.njit
def j_sum_first(v):  # depends on v[0] and v[1] only: the other partials are exactly 0
    return v[0] * 3.0 + np.sin(v[1]) + 0.0 * v[2]


FIRST = [(m, p) for m, n, p, _ in stencils() if n == 1]


@pytest.mark.parametrize("method,p,n", [(m, p, n) for m, n, p, _ in stencils()])
def test_derivative_of_a_constant_is_exactly_zero(method, p, n):
    x = np.linspace(-3, 7, 9)
    for f in (j_const, j_const.py_func, lambda t: 0 * t + 3.0):
        assert np.all(fdkit.derivative(f, x, method=method, order=p, n=n) == 0.0)
    assert np.all(fdkit.derivative(j_const, x, method=method, order=p, n=n, parallel=True) == 0.0)


@pytest.mark.parametrize("method,p", FIRST)
def test_jacobian_off_diagonal_is_exactly_zero(method, p):
    x = np.ones(4)
    for f, kw in ((j_square, {}), (j_square, {"parallel": True}), (j_square.py_func, {})):
        J = fdkit.jacobian(f, x, method=method, order=p, **kw)
        off = J[~np.eye(4, dtype=bool)]
        assert np.all(off == 0.0)
        np.testing.assert_allclose(np.diag(J), 2.0, rtol=1e-5)


@pytest.mark.parametrize("method,p", FIRST)
def test_gradient_partials_that_do_not_matter_are_exactly_zero(method, p):
    x = np.array([0.3, -0.4, 2.0, 5.0])
    for f, kw in ((j_sum_first, {}), (j_sum_first, {"parallel": True}), (j_sum_first.py_func, {})):
        g = fdkit.gradient(f, x[:3], method=method, order=p, **kw)
        assert g[2] == 0.0
        np.testing.assert_allclose(g[:2], [3.0, np.cos(-0.4)], rtol=1e-5)


def test_richardson_and_hessian_exact_zeros():
    x = np.array([0.3, -0.4, 2.0])
    g = fdkit.gradient(j_sum_first, x, method="richardson")
    assert g[2] == 0.0
    J = fdkit.jacobian(j_square, np.ones(3), method="richardson")
    assert np.all(J[~np.eye(3, dtype=bool)] == 0.0)
    for method in ("central", "richardson"):
        H = fdkit.hessian(j_sum_first, x, method=method)
        assert np.all(H[2] == 0.0) and np.all(H[:, 2] == 0.0)


@pytest.mark.parametrize("method", ["forward", "central", "complex", "richardson"])
def test_an_f_that_returns_its_input(method):
    # identity: the Jacobian is the identity matrix (complex step used to return zeros)
    x = np.array([0.5, -1.5, 2.0])
    for f, kw in ((j_ident, {}), (j_ident, {"parallel": True}), (lambda v: v, {}), (lambda v: v[:], {})):
        J = fdkit.jacobian(f, x, method=method, **kw)
        np.testing.assert_allclose(J, np.eye(3), rtol=1e-7, atol=1e-12)
