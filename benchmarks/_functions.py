"""Functions shared by the benchmarks: jitted and numpy twins, and the evaluation floors."""

import numba
import numpy as np

from fdkit.study.problems import rosen, rosen_np  # noqa: F401  (the benchmarks' Rosenbrock)


@numba.njit
def rosen_floor(x, h):
    """The floor of a forward gradient: N+1 evaluations of rosen in a jitted loop, x perturbed
    one element at a time (so no evaluation can be hoisted), nothing else."""
    s = rosen(x)
    for i in range(x.size):
        xi = x[i]
        x[i] = xi + h
        s += rosen(x)
        x[i] = xi
    return s


@numba.njit
def bump(x):
    """Elementwise test function sin(x) exp(-x^2/10), derivative (cos x - x sin x / 5) exp(-x^2/10)."""
    return np.sin(x) * np.exp(-0.1 * x * x)


def bump_np(x):
    return np.sin(x) * np.exp(-0.1 * x * x)


def bump_prime(x):
    return (np.cos(x) - 0.2 * x * np.sin(x)) * np.exp(-0.1 * x * x)


def start(n, seed=0):
    return np.random.default_rng(seed).uniform(-1.5, 1.5, n)


@numba.njit
def runge(x):
    """Cheap arithmetic test function x / (1 + x^2); derivative (1 - x^2) / (1 + x^2)^2."""
    return x / (1.0 + x * x)


def runge_np(x):
    return x / (1.0 + x * x)


def runge_prime(x):
    return (1.0 - x * x) / (1.0 + x * x) ** 2
