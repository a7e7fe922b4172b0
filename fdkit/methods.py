"""The one table of fdkit's methods.

Every layer that needs to know which methods exist reads :data:`METHODS`: the stencils (orders),
the steps (the default step rule), the API (quantities, complex input), the sweep and the plots
(which rows, colours, line styles), the harness (cost per parameter) and ``fdkit info``.
Adding a method is one entry here plus its kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

__all__ = ["Method", "METHODS", "FIXED", "ADAPTIVE", "QUANTITIES", "check_method", "method_names"]

#: the quantities of the public API
QUANTITIES = ("derivative", "gradient", "jacobian", "hessian")


@dataclass(frozen=True)
class Method:
    """One method of the table.

    Attributes
    ----------
    name : str
    orders : mapping of int to tuple of int
        Derivative order n -> the accuracy orders p available (truncation O(h^p)).  Empty for an
        adaptive method, whose order grows per element.
    derivatives : tuple of int
        The derivative orders n allowed.
    default_order : int or None
        The accuracy order used when ``order=None`` (None for an adaptive method).
    complex_input : bool
        f is evaluated at complex points (it must accept complex input).
    adaptive : bool
        Not one stencil: a step sequence with an error estimate (``richardson``).
    quantities : tuple of str
        Which of derivative, gradient, jacobian, hessian offer it.
    step_rule : str
        The default step, in words (``fdkit info`` and the docs print it; :mod:`fdkit.steps`
        computes it).
    cost : str
        Evaluations of f per gradient of N parameters, at the default order.
    color, linestyle : str
        Plot style (matplotlib), shared by every figure.
    summary : str
        One line for ``fdkit info`` and the docs.
    """

    name: str
    orders: Mapping[int, tuple[int, ...]]
    derivatives: tuple[int, ...]
    default_order: int | None
    complex_input: bool
    adaptive: bool
    quantities: tuple[str, ...]
    step_rule: str
    cost: str
    color: str
    linestyle: str = "-"
    summary: str = field(default="", compare=False)


def _m(name, orders, default_order, *, complex_input=False, adaptive=False, quantities=QUANTITIES[:3],
       step_rule, cost, color, linestyle="-", summary="", derivatives=None):
    return Method(name, MappingProxyType(dict(orders)), tuple(derivatives or sorted(orders)), default_order,
                  complex_input, adaptive, tuple(quantities), step_rule, cost, color, linestyle, summary)


METHODS: Mapping[str, Method] = MappingProxyType({m.name: m for m in (
    _m("forward", {1: (1, 2, 3, 4), 2: (1, 2, 3, 4)}, 1, step_rule="eps^(1/(p+n)) * max(1, |x|)", cost="1+N",
       color="tab:blue", summary="one-sided differences towards +h; f(x) shared by every parameter"),
    _m("backward", {1: (1, 2, 3, 4), 2: (1, 2, 3, 4)}, 1, step_rule="eps^(1/(p+n)) * max(1, |x|)", cost="1+N",
       color="tab:cyan", linestyle=(0, (5, 2)), summary="one-sided differences towards -h"),
    _m("central", {1: (2, 4, 6), 2: (2, 4, 6), 3: (2, 4, 6), 4: (2, 4, 6)}, 2, quantities=QUANTITIES,
       step_rule="eps^(1/(p+n)) * max(1, |x|)", cost="2N", color="tab:orange",
       summary="symmetric differences; even truncation error"),
    _m("complex", {1: (2,)}, 2, complex_input=True, step_rule="1e-20 * max(1, |x|)", cost="N (complex)",
       color="tab:green", summary="Im f(x + ih) / h (Squire & Trapp 1998): no subtraction, no rounding error"),
    _m("richardson", {}, None, adaptive=True, derivatives=(1, 2), quantities=QUANTITIES,
       step_rule="absolute h0 = 0.1, halved per row (fdkit.steps.RICHARDSON)", cost="~10N",
       color="tab:red", summary="central differences over a step sequence, extrapolated, with an error estimate"),
)})

#: the fixed-stencil methods, in table order
FIXED = tuple(n for n, m in METHODS.items() if not m.adaptive)
#: the adaptive methods
ADAPTIVE = tuple(n for n, m in METHODS.items() if m.adaptive)


def method_names(quantity: str | None = None) -> tuple[str, ...]:
    """The methods a quantity offers (all of them for None), in table order."""
    return tuple(n for n, m in METHODS.items() if quantity is None or quantity in m.quantities)


def check_method(method, quantity: str | None = None) -> Method:
    """The table entry of ``method``, or the TypeError/ValueError that says what to use."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__} {method!r}")
    m = METHODS.get(method)
    if m is None:
        choices = ", ".join(repr(k) for k in method_names(quantity))
        raise ValueError(f"unknown method {method!r}; choose one of {choices}")
    if quantity is not None and quantity not in m.quantities:
        choices = " or ".join(repr(k) for k in method_names(quantity))
        raise ValueError(f"{quantity} supports method={choices}, got method={method!r}")
    return m
