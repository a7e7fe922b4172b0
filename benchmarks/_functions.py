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


# --- an expensive black box: the final state of a damped, driven oscillator chain, solved by
# scipy's solve_ivp (tens of milliseconds per call); the parameters are the chain's 16 stiffnesses
def chain_energy(k):
    """Energy at t = 6 of a chain of len(k) masses with spring constants k (solve_ivp, RK45,
    rtol 1e-9): a realistic black box of tens of milliseconds per evaluation."""
    from scipy.integrate import solve_ivp

    k = np.asarray(k, dtype=np.float64)
    n = k.size

    def rhs(t, y):
        q, p = y[:n], y[n:]
        stretch = np.diff(np.concatenate(([0.0], q)))
        force = -k * stretch
        force[:-1] += k[1:] * stretch[1:]
        return np.concatenate((p, force - 0.05 * p + np.where(np.arange(n) == 0, np.sin(t), 0.0)))

    y0 = np.concatenate((np.linspace(0.0, 0.1, n), np.zeros(n)))
    sol = solve_ivp(rhs, (0.0, 6.0), y0, rtol=1e-9, atol=1e-11)
    q, p = sol.y[:n, -1], sol.y[n:, -1]
    stretch = np.diff(np.concatenate(([0.0], q)))
    return 0.5 * np.sum(p * p) + 0.5 * np.sum(k * stretch * stretch)
