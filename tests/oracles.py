"""Independent oracles for fdkit's tests; each with its provenance.

Nothing here is produced by fdkit: closed forms, published tables, scipy's Rosenbrock
derivatives and mpmath values computed at high precision when the tests run.
"""

import math
from fractions import Fraction as F

import numba
import numpy as np

# --- Fornberg (1988), "Generation of finite difference formulas on arbitrarily spaced grids",
# Math. Comp. 51, Table 1 (centred, at a grid point) and Table 3 (one-sided, forward).
# Keys: (derivative n, accuracy p) -> weights on offsets -p/2..p/2 (centred) or 0..len-1.
FORNBERG_CENTRAL = {
    (1, 2): [F(-1, 2), 0, F(1, 2)],
    (1, 4): [F(1, 12), F(-2, 3), 0, F(2, 3), F(-1, 12)],
    (1, 6): [F(-1, 60), F(3, 20), F(-3, 4), 0, F(3, 4), F(-3, 20), F(1, 60)],
    (1, 8): [F(1, 280), F(-4, 105), F(1, 5), F(-4, 5), 0, F(4, 5), F(-1, 5), F(4, 105), F(-1, 280)],
    (2, 2): [1, -2, 1],
    (2, 4): [F(-1, 12), F(4, 3), F(-5, 2), F(4, 3), F(-1, 12)],
    (2, 6): [F(1, 90), F(-3, 20), F(3, 2), F(-49, 18), F(3, 2), F(-3, 20), F(1, 90)],
    (2, 8): [F(-1, 560), F(8, 315), F(-1, 5), F(8, 5), F(-205, 72), F(8, 5), F(-1, 5), F(8, 315), F(-1, 560)],
    (3, 2): [F(-1, 2), 1, 0, -1, F(1, 2)],
    (3, 4): [F(1, 8), -1, F(13, 8), 0, F(-13, 8), 1, F(-1, 8)],
    (3, 6): [F(-7, 240), F(3, 10), F(-169, 120), F(61, 30), 0, F(-61, 30), F(169, 120), F(-3, 10), F(7, 240)],
    (4, 2): [1, -4, 6, -4, 1],
    (4, 4): [F(-1, 6), 2, F(-13, 2), F(28, 3), F(-13, 2), 2, F(-1, 6)],
    (4, 6): [F(7, 240), F(-2, 5), F(169, 60), F(-122, 15), F(91, 8), F(-122, 15), F(169, 60), F(-2, 5), F(7, 240)],
}
FORNBERG_FORWARD = {
    (1, 1): [-1, 1],
    (1, 2): [F(-3, 2), 2, F(-1, 2)],
    (1, 3): [F(-11, 6), 3, F(-3, 2), F(1, 3)],
    (1, 4): [F(-25, 12), 4, -3, F(4, 3), F(-1, 4)],
    (2, 1): [1, -2, 1],
    (2, 2): [2, -5, 4, -1],
    (2, 3): [F(35, 12), F(-26, 3), F(19, 2), F(-14, 3), F(11, 12)],
    (2, 4): [F(15, 4), F(-77, 6), F(107, 6), -13, F(61, 12), F(-5, 6)],
}

# --- Teaching examples (the seeds of fdkit): closed forms by the power rule.
# d/dx 2x^2 = 4x ; d/dx (3x^2 + 5x) = 6x + 5 ; d/dw of w^2, w^3, w, 1/w at w = 2 -> 4, 12, 1, -1/4
# and the forward difference of w^2 at w = 3 with step 0.001: ((3.001)^2 - 9) / 0.001 = 6.001.
POWER_RULE_AT_2 = {"w**2": 4.0, "w**3": 12.0, "w": 1.0, "1/w": -0.25}


# --- jitted test functions (module level: each dispatcher compiles once per process)
@numba.njit
def two_x2(x):
    return 2.0 * x * x


@numba.njit
def poly_3x2_5x(x):
    return 3.0 * x * x + 5.0 * x


@numba.njit
def sq(w):
    return w * w


@numba.njit
def cube(w):
    return w * w * w


@numba.njit
def ident(w):
    return w + 0.0


@numba.njit
def recip(w):
    return 1.0 / w


@numba.njit
def jsin(x):
    return np.sin(x)


@numba.njit
def jexp(x):
    return np.exp(x)


@numba.njit
def squire_trapp(x):
    """e^x / sqrt(sin^3 x + cos^3 x): Squire & Trapp (1998); Martins, Sturdza & Alonso (2003)."""
    s = np.sin(x)
    c = np.cos(x)
    return np.exp(x) / np.sqrt(s * s * s + c * c * c)


@numba.njit
def jlog(x):
    return np.log(x)


@numba.njit
def jsinc(x):
    """sin(x)/x; derivative (x cos x - sin x) / x^2 (closed form)."""
    return np.sin(x) / x


@numba.njit
def math_sin(x):
    return math.sin(x)


# the Rosenbrock test function (the f, not the oracle: scipy's rosen_der is) is fdkit.study.problems'
from fdkit.study.problems import rosen, rosen_np  # noqa: E402,F401


@numba.njit
def sum_cubes(w):
    """sum(w**3) for any shape; gradient 3 w**2 (closed form)."""
    return np.sum(w * w * w)


@numba.njit
def slow_sum_cubes(w):
    """sum(w**3) made slow (100 000 sums of sum(w) * 1e-30 per call: 6-9 ms per gradient of 10
    parameters here); gradient 3 w**2 + 1e-25 (the cut-off's f worth threads)."""
    s = 0.0
    for _ in range(100000):
        s += np.sum(w) * 1e-30
    return np.sum(w * w * w) + s


@numba.njit
def vec_f(v):
    """f(v) = [v0 v1, sin v0, v1^2 exp(v0)]; Jacobian [[v1, v0], [cos v0, 0], [v1^2 e^v0, 2 v1 e^v0]]."""
    return np.array([v[0] * v[1], np.sin(v[0]), v[1] * v[1] * np.exp(v[0])])


def vec_f_jac(v):
    e = np.exp(v[0])
    return np.array([[v[1], v[0]], [np.cos(v[0]), 0.0], [v[1] ** 2 * e, 2 * v[1] * e]])


def mp_derivative(fn_name: str, x: float, n: int = 1) -> float:
    """High-precision derivative with mpmath (50 digits) of a named function."""
    import mpmath as mp

    mp.mp.dps = 50
    fns = {
        "squire_trapp": lambda t: mp.exp(t) / mp.sqrt(mp.sin(t) ** 3 + mp.cos(t) ** 3),
        "sin": mp.sin,
        "exp": mp.exp,
        "log": mp.log,
        "sinc": lambda t: mp.sin(t) / t,
    }
    return float(mp.diff(fns[fn_name], mp.mpf(x), n))
