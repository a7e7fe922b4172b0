from fractions import Fraction

import numpy as np
import pytest

from fdkit import METHODS, get_stencil
from fdkit.stencils import fornberg_weights

from oracles import FORNBERG_CENTRAL, FORNBERG_FORWARD


@pytest.mark.parametrize("key", sorted(FORNBERG_CENTRAL))
def test_fornberg_central_table(key):
    n, p = key
    table = [Fraction(w) for w in FORNBERG_CENTRAL[key]]
    half = len(table) // 2
    assert fornberg_weights(range(-half, half + 1), n) == table


@pytest.mark.parametrize("key", sorted(FORNBERG_FORWARD))
def test_fornberg_forward_table(key):
    n, p = key
    table = [Fraction(w) for w in FORNBERG_FORWARD[key]]
    assert fornberg_weights(range(len(table)), n) == table


@pytest.mark.parametrize("key", sorted(FORNBERG_FORWARD))
def test_backward_is_mirrored_forward(key):
    # backward weights on 0, -1, -2, ... are (-1)^n times the forward ones (reflection x -> -x)
    n, p = key
    table = [Fraction(w) * (-1) ** n for w in FORNBERG_FORWARD[key]]
    assert fornberg_weights([-k for k in range(len(table))], n) == table


def test_stencils_of_the_method_table_match_fornberg():
    for n, orders in METHODS["central"].orders.items():
        for p in orders:
            s = get_stencil("central", p, n)
            nz = {Fraction(k - len(FORNBERG_CENTRAL[(n, p)]) // 2): Fraction(w)
                  for k, w in enumerate(FORNBERG_CENTRAL[(n, p)]) if w != 0}
            assert dict(zip(s.exact_offsets, s.exact_weights)) == nz
            np.testing.assert_array_equal(s.weights, [float(w) for w in nz.values()])
    for n, orders in METHODS["forward"].orders.items():
        for p in orders:
            s = get_stencil("forward", p, n)
            assert list(s.exact_weights) == [Fraction(w) for w in FORNBERG_FORWARD[(n, p)]]


@pytest.mark.parametrize(
    "method,p,n,coef",
    [  # leading truncation terms from Taylor expansion (textbook)
        ("forward", 1, 1, Fraction(1, 2)),  # (f(x+h)-f(x))/h = f' + h f''/2
        ("backward", 1, 1, Fraction(-1, 2)),
        ("central", 2, 1, Fraction(1, 6)),  # f' + h^2 f'''/6
        ("central", 4, 1, Fraction(-1, 30)),
        ("central", 2, 2, Fraction(1, 12)),  # f'' + h^2 f''''/12
        ("complex", 2, 1, Fraction(-1, 6)),  # Im f(x+ih)/h = f' - h^2 f'''/6
    ],
)
def test_error_coefficient(method, p, n, coef):
    assert get_stencil(method, p, n).error_coefficient == coef


def test_default_orders_and_costs():
    assert get_stencil("forward").order == 1 and get_stencil("forward").nfev_per_point == 2
    assert get_stencil("central").order == 2 and get_stencil("central").nfev_per_point == 2
    assert get_stencil("complex").nfev_per_point == 1
    assert get_stencil("central", 2, 2).uses_base_point


def test_bad_stencil_requests():
    with pytest.raises(ValueError, match="unknown method 'centre'"):
        get_stencil("centre")
    with pytest.raises(ValueError, match="order=3 is not available for method='central'"):
        get_stencil("central", 3)
    with pytest.raises(ValueError, match="first derivatives only"):
        get_stencil("complex", None, 2)
    with pytest.raises(TypeError, match="order must be an integer"):
        get_stencil("central", 2.0)
    with pytest.raises(ValueError, match="distinct"):
        fornberg_weights([0, 1, 1], 1)
