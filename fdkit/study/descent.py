"""Gradient descent, as the seed texts end: ``w <- w - lr * dL/dw``, with finite differences and with
the analytical derivative side by side.

* :func:`seed_tables`: the two tables of seed 004 (a linear cost ``2x - 5`` with learning rate
  0.25, and the squared cost ``(2x - 5)^2`` with learning rate 0.1, both from x = 5), each step
  computed twice: with fdkit's central derivative and with the closed form.
* :func:`train_mlp`: the MLP problem trained by gradient descent twice from the same start, with
  fdkit's forward-difference gradient (1 + N forward passes per step) and with backpropagation;
  the loss and the wall clock per step.
* :func:`planted_bug`: :func:`fdkit.check_gradient` on the MLP's backprop with the tanh' factor
  of the hidden layer missing, beside ``scipy.optimize.check_grad`` on the same case.
"""

from __future__ import annotations

import time

import numpy as np

from ..api import derivative, gradient
from ..check import check_gradient
from .problems import MLP_BATCH, MLP_INPUTS, MLP_X, MLP_Y, get_problem

__all__ = ["SEED_TABLES", "seed_tables", "train_mlp", "planted_bug", "mlp_grad_missing_tanh"]

#: seed 004's two runs: (title, cost, its derivative, learning rate, start, steps)
SEED_TABLES = (
    ("linear cost C = 2x - 5, learning rate 0.25", lambda x: 2.0 * x - 5.0, lambda x: 2.0, 0.25, 5.0, 5),
    ("squared cost C = (2x - 5)^2, learning rate 0.1", lambda x: (2.0 * x - 5.0) ** 2,
     lambda x: 4.0 * (2.0 * x - 5.0), 0.1, 5.0, 4),
)


def seed_tables() -> list[dict]:
    """Both runs of seed 004, step by step: current x, cost, lr * dC/dx and the new x, with the
    derivative from fdkit (central differences) and from the closed form."""
    out = []
    for title, cost, dcost, lr, x0, steps in SEED_TABLES:
        rows = []
        xf = xa = x0
        for k in range(steps):
            df = float(derivative(cost, xf))
            da = float(dcost(xa))
            rows.append(dict(step=k + 1, x=xf, cost=cost(xf), step_fd=lr * df, step_exact=lr * da,
                             new_x=xf - lr * df, new_x_exact=xa - lr * da))
            xf, xa = xf - lr * df, xa - lr * da
        out.append(dict(title=title, lr=lr, rows=rows))
    return out


def train_mlp(n: int = 100, steps: int = 200, lr: float = 0.05, seed: int = 0) -> dict:
    """Gradient descent on the MLP problem from ``x0(n, seed)``: once with fdkit's forward
    gradient of the jitted loss, once with the hand-written backprop.  Returns, per run, the loss
    before every step and the seconds spent on gradients so far (compilation done beforehand),
    the time of one forward pass ``t_f`` (called from Python, as the gradients are) and the
    extra time per step of the finite differences in forward passes (about N + 1)."""
    p = get_problem("mlp")
    theta0 = p.x0(n, seed)
    for _ in range(3):  # compile (the kernel, then its entry point) before the clock runs
        gradient(p.f, theta0, method="forward")
        p.grad(theta0)
    reps = 200
    t0 = time.perf_counter()
    for _ in range(reps):
        p.f(theta0)
    t_f = (time.perf_counter() - t0) / reps  # one forward pass, called from Python
    runs = {}
    for name, grad in (("forward differences", lambda t: gradient(p.f, t, method="forward")),
                       ("backpropagation", p.grad)):
        t = theta0.copy()
        losses, seconds = [], []
        spent = 0.0
        for _ in range(steps):
            losses.append(float(p.f(t)))
            seconds.append(spent)
            t0 = time.perf_counter()
            g = grad(t)
            spent += time.perf_counter() - t0
            t = t - lr * g
        losses.append(float(p.f(t)))
        seconds.append(spent)
        runs[name] = dict(loss=np.array(losses), seconds=np.array(seconds))
    fd, bp = runs["forward differences"], runs["backpropagation"]
    per_step = (fd["seconds"][-1] - bp["seconds"][-1]) / steps
    return dict(n=int(theta0.size), steps=steps, lr=lr, runs=runs, t_f=t_f,
                max_loss_gap=float(np.max(np.abs(fd["loss"] - bp["loss"]))),
                time_ratio=float(fd["seconds"][-1] / bp["seconds"][-1]) if bp["seconds"][-1] > 0 else None,
                extra_passes_per_step=float(per_step / t_f))


def mlp_grad_missing_tanh(theta):
    """The MLP's backprop with a planted bug: the hidden layer's tanh' factor (1 - T^2) is missing."""
    d = MLP_INPUTS
    H = (theta.size - 1) // (d + 2)
    W1, b1, w2 = theta[: H * d].reshape(H, d), theta[H * d: H * d + H], theta[H * d + H: H * d + 2 * H]
    T = np.tanh(MLP_X @ W1.T + b1)
    dout = 2.0 * (T @ w2 + theta[-1] - MLP_Y) / MLP_BATCH
    dA = np.outer(dout, w2)  # should be np.outer(dout, w2) * (1 - T * T)
    return np.concatenate([(dA.T @ MLP_X).ravel(), dA.sum(axis=0), T.T @ dout, [dout.sum()]])


def planted_bug(n: int = 60) -> dict:
    """check_gradient and scipy's check_grad on the MLP's backprop, right and with the planted bug."""
    p = get_problem("mlp")
    theta = p.x0(n, 1)
    out = {"n": int(theta.size)}
    for name, g in (("right", p.grad_np), ("missing tanh'", mlp_grad_missing_tanh)):
        res = check_gradient(p.f_np, g, theta)
        entry = {"fdkit": res, "summary": res.summary(), "table": res.table(6)}
        try:
            from scipy.optimize import check_grad

            entry["scipy"] = float(check_grad(p.f_np, g, theta))
        except ImportError:
            entry["scipy"] = None
        out[name] = entry
    return out
