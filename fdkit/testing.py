"""Assertions for test suites: ``fdkit.testing.assert_gradient_close`` fails a pytest test with
the table of the elements that disagree."""

from __future__ import annotations

from .check import check_gradient, check_jacobian

__all__ = ["assert_gradient_close", "assert_jacobian_close"]


def assert_gradient_close(f, grad, x, **kwargs) -> None:
    """Raise an AssertionError carrying :func:`fdkit.check_gradient`'s table when an element of
    the analytical gradient disagrees with finite differences (keyword arguments as there).

    >>> import numpy as np
    >>> assert_gradient_close(lambda v: np.sum(v**3), lambda v: 3 * v**2, np.array([1.0, -2.0]))
    """
    res = check_gradient(f, grad, x, **kwargs)
    if not res.ok:
        raise AssertionError("the analytical gradient disagrees with finite differences\n" + str(res))


def assert_jacobian_close(f, jac, x, **kwargs) -> None:
    """:func:`assert_gradient_close` for a Jacobian (:func:`fdkit.check_jacobian`)."""
    res = check_jacobian(f, jac, x, **kwargs)
    if not res.ok:
        raise AssertionError("the analytical Jacobian disagrees with finite differences\n" + str(res))
