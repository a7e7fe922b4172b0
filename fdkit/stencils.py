"""Finite-difference stencils: offsets and exact weights for every supported method.

Weights come from Fornberg's recursion (Fornberg 1988) carried out in exact rational
arithmetic, so a stencil is exact to the last bit before it is rounded once to float64.
The combinations ``(method, order, n)`` that exist come from the one method table,
:data:`fdkit.methods.METHODS`.

References
----------
B. Fornberg, "Generation of finite difference formulas on arbitrarily spaced grids",
Math. Comp. 51 (1988), 699-706.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
import functools
from functools import lru_cache
from math import factorial

import numpy as np

from .methods import FIXED, METHODS, check_method

__all__ = ["Stencil", "fornberg_weights", "get_stencil", "default_order", "available_orders", "stencils"]


def fornberg_weights(offsets, n: int) -> list[Fraction]:
    """Exact weights of the ``n``-th derivative at 0 on the grid ``offsets``.

    Fornberg's recursion (1988, eq. 3.1-3.4) in :class:`fractions.Fraction` arithmetic.
    ``sum(w[k] * f(x + offsets[k]*h)) / h**n`` approximates ``f^(n)(x)``.

    Parameters
    ----------
    offsets : sequence of int or Fraction
        Distinct grid points in units of h.
    n : int
        Derivative order, ``0 <= n < len(offsets)``.

    Returns
    -------
    list of Fraction
        One weight per offset, in the order given.

    Examples
    --------
    >>> [str(w) for w in fornberg_weights([-1, 0, 1], 2)]
    ['1', '-2', '1']
    """
    a = [Fraction(o) for o in offsets]
    if len(set(a)) != len(a):
        raise ValueError(f"offsets must be distinct, got {list(offsets)}")
    if not 0 <= n < len(a):
        raise ValueError(f"n={n} needs at least n+1 offsets, got {len(a)}")
    m = len(a)
    # delta[k][j] = weight of point j for the k-th derivative using the first i+1 points
    delta = [[Fraction(0)] * m for _ in range(n + 1)]
    delta[0][0] = Fraction(1)
    c1 = Fraction(1)
    c4 = a[0]
    for i in range(1, m):
        mn = min(i, n)
        c2 = Fraction(1)
        c5 = c4
        c4 = a[i]
        for j in range(i):
            c3 = a[i] - a[j]
            c2 *= c3
            if j == i - 1:  # the new point i, from point i-1 before it is updated
                for k in range(mn, 0, -1):
                    delta[k][i] = c1 * (k * delta[k - 1][i - 1] - c5 * delta[k][i - 1]) / c2
                delta[0][i] = -c1 * c5 * delta[0][i - 1] / c2
            for k in range(mn, 0, -1):
                delta[k][j] = (c4 * delta[k][j] - k * delta[k - 1][j]) / c3
            delta[0][j] = c4 * delta[0][j] / c3
        c1 = c2
    return delta[n]


@dataclass(frozen=True, eq=False)  # identity hash: one object per (method, order, n)
class Stencil:
    """One finite-difference formula ``f^(n)(x) ~ sum(weights * f(x + offsets*h)) / h**n``.

    Attributes
    ----------
    method, order, n : str, int, int
        Method name, accuracy order p (truncation error O(h^p)) and derivative order.
    offsets, weights : ndarray of float64
        Points with a non-zero weight, in units of h (exact small integers) and their weights.
        The complex step has the one offset 1j (its point is x + i h), a complex array.
    offsets_t, weights_t : tuple of float
        The same as tuples (a fixed length numba can unroll).
    exact_weights : tuple of Fraction
        The same weights as exact fractions.
    error_coefficient : Fraction
        C in the leading truncation error ``C * h**p * f^(n+p)(x)``.
    """

    method: str
    order: int
    n: int
    offsets: np.ndarray
    weights: np.ndarray
    offsets_t: tuple
    weights_t: tuple
    exact_offsets: tuple
    exact_weights: tuple
    error_coefficient: Fraction

    @property
    def nfev_per_point(self) -> int:
        """Evaluations of f per derivative (per point or per parameter), f(x) included."""
        return len(self.exact_offsets)

    @functools.cached_property
    def uses_base_point(self) -> bool:
        """True if f(x) itself is one of the stencil points."""
        return 0 in self.exact_offsets


def _grid(method: str, order: int, n: int) -> list[int]:
    if method == "forward":
        return list(range(0, n + order))
    if method == "backward":
        return list(range(0, -(n + order), -1))
    # central: 2*floor((n+1)/2) - 1 + p points, symmetric about 0
    half = ((n + 1) // 2 * 2 - 1 + order) // 2
    return list(range(-half, half + 1))


def default_order(method: str) -> int | None:
    """The accuracy order used when ``order=None`` (from the method table)."""
    return check_method(method).default_order


def available_orders(method: str, n: int = 1) -> tuple[int, ...]:
    """Accuracy orders available for ``method`` and derivative order ``n``."""
    return check_method(method).orders.get(n, ())


def stencils():
    """Every fixed stencil of the table, in table order: ``(method, n, order, Stencil)``."""
    for name in FIXED:
        for n, orders in METHODS[name].orders.items():
            for p in orders:
                yield name, n, p, _build(name, p, n)


@lru_cache(maxsize=None)
def _build(method: str, order: int, n: int) -> Stencil:
    if method == "complex":
        # f'(x) ~ Im f(x + i h) / h ; error -h^2 f'''(x) / 6
        one = (Fraction(1),)
        # the one point is x + i h: offset 1j, so the kernels' points x + o*h are complex
        return Stencil(method, order, n, np.array([1j]), np.array([1.0]), (1j,), (1.0,), one, one, Fraction(-1, 6))
    grid = _grid(method, order, n)
    w = fornberg_weights(grid, n)
    pts = [(o, wk) for o, wk in zip(grid, w) if wk != 0]
    # leading truncation term: sum w_k o_k^(n+q) / (n+q)! for the first q that does not vanish
    coeff = Fraction(0)
    for q in range(order, order + 3):
        coeff = sum((wk * Fraction(o) ** (n + q) for o, wk in pts), Fraction(0)) / factorial(n + q)
        if coeff != 0:
            break
    offs = tuple(Fraction(o) for o, _ in pts)
    wts = tuple(wk for _, wk in pts)
    return Stencil(
        method,
        order,
        n,
        np.array([float(o) for o in offs]),
        np.array([float(wk) for wk in wts]),
        tuple(float(o) for o in offs),
        tuple(float(wk) for wk in wts),
        offs,
        wts,
        coeff,
    )


def get_stencil(method: str, order: int | None = None, n: int = 1) -> Stencil:
    """The stencil for ``method`` of accuracy ``order`` (default per method) for the ``n``-th derivative.

    Raises
    ------
    TypeError
        If method is not a string or order/n are not integers.
    ValueError
        For an unknown method or an unsupported ``(method, order, n)`` combination.

    Examples
    --------
    >>> s = get_stencil("central", 4)
    >>> s.offsets.tolist(), [str(w) for w in s.exact_weights]
    ([-2.0, -1.0, 1.0, 2.0], ['1/12', '-2/3', '2/3', '-1/12'])
    """
    m = check_method(method)
    if m.adaptive:
        raise ValueError(f"method={method!r} is adaptive and has no fixed stencil; it is available in "
                         f"{', '.join(m.quantities)}, not here")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {type(n).__name__} {n!r}")
    n = int(n)
    if n not in m.orders:
        ok = [k for k in FIXED if n in METHODS[k].orders]
        hint = f"n={n} is available for {ok}" if ok else "use n = 1 to 4 with method='central'"
        if method == "complex":
            hint = "the complex step gives first derivatives only; use method='central' for n=2"
        raise ValueError(f"n={n} is not available for method={method!r}; {hint}")
    if order is None:
        order = m.default_order
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
        raise TypeError(f"order must be an integer or None, got {type(order).__name__} {order!r}")
    order = int(order)
    choices = m.orders[n]
    if order not in choices:
        listed = " or ".join(str(c) for c in choices) if len(choices) < 3 else f"{', '.join(map(str, choices[:-1]))} or {choices[-1]}"
        raise ValueError(f"order={order} is not available for method={method!r} with n={n}; use {listed}")
    return _build(method, order, n)
