"""The seed texts' gradient descent: their tables reproduced (seed 004's numbers are the oracle),
the MLP trained with finite differences and with backprop along the same curve."""

import numpy as np
import pytest

from fdkit.study.descent import mlp_grad_missing_tanh, planted_bug, seed_tables, train_mlp
from fdkit.study.problems import get_problem


def test_the_seed_tables():
    linear, squared = seed_tables()
    # seed 004: x 5 -> 4.5 -> 4 -> 3.5 -> 3 -> 2.5 with costs 5, 4, 3, 2, 1 (a step of 0.5 each)
    np.testing.assert_allclose([r["new_x"] for r in linear["rows"]], [4.5, 4.0, 3.5, 3.0, 2.5], atol=1e-9)
    np.testing.assert_allclose([r["cost"] for r in linear["rows"]], [5, 4, 3, 2, 1], atol=1e-9)
    np.testing.assert_allclose([r["step_fd"] for r in linear["rows"]], 0.5, atol=1e-9)
    # (2x - 5)^2 with learning rate 0.1 from 5: 3, 2.6, 2.52, 2.504; costs 25, 1, 0.04, 0.0016
    np.testing.assert_allclose([r["new_x"] for r in squared["rows"]], [3.0, 2.6, 2.52, 2.504], rtol=1e-9)
    np.testing.assert_allclose([r["cost"] for r in squared["rows"]], [25, 1, 0.04, 0.0016], rtol=1e-8)
    np.testing.assert_allclose([r["step_fd"] for r in squared["rows"]], [2, 0.4, 0.08, 0.016], rtol=1e-8)
    for t in (linear, squared):
        for r in t["rows"]:
            assert r["new_x"] == pytest.approx(r["new_x_exact"], rel=1e-9)


def test_training_with_finite_differences_follows_backprop():
    r = train_mlp(60, 40, 0.05)
    fd, bp = r["runs"]["forward differences"], r["runs"]["backpropagation"]
    assert fd["loss"][-1] < 0.5 * fd["loss"][0] and bp["loss"][-1] < 0.5 * bp["loss"][0]  # both descend
    assert r["max_loss_gap"] < 1e-6 * fd["loss"][0]  # on the same curve
    assert r["extra_passes_per_step"] > 0.3 * r["n"]  # the N + 1 passes show in the clock


def test_planted_bug_is_found_and_scipy_says_a_number():
    b = planted_bug(30)
    assert b["right"]["fdkit"].ok and not b["missing tanh'"]["fdkit"].ok
    p = get_problem("mlp")
    th = p.x0(30, 1)
    assert not np.allclose(mlp_grad_missing_tanh(th), p.grad_np(th))
    if b["right"]["scipy"] is not None:
        assert b["missing tanh'"]["scipy"] > 100 * b["right"]["scipy"]
