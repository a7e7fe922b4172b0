"""fdkit.study.problems: every analytical gradient against an oracle independent of it.

Oracles: scipy.optimize.rosen / rosen_der; the quadratic's dense matrix written out from the
documented formula; the logistic gradient X^T (sigmoid(Xθ) - y)/m with X built here from the
documented feature formula; and for the mlp a complex-step gradient computed here, one
Im f(θ + i h e_k) / h per parameter with the problem's own f (exact to rounding at h = 1e-30,
no subtraction), not fdkit's kernels.
"""

import numpy as np
import pytest

from fdkit.study import problems as P


def complex_step_gradient(f, x, h=1e-30):
    g = np.empty(x.size)
    for k in range(x.size):
        xc = x.astype(complex)
        xc[k] += 1j * h
        g[k] = f(xc).imag / h
    return g


@pytest.mark.parametrize("n", [2, 3, 10, 101, 1000])
def test_rosenbrock_matches_scipy(n):
    optimize = pytest.importorskip("scipy.optimize")
    p = P.get_problem("rosenbrock")
    x = p.x0(n, seed=n)
    assert p.f(x) == pytest.approx(optimize.rosen(x), rel=1e-14)
    np.testing.assert_allclose(p.grad(x), optimize.rosen_der(x), rtol=1e-14, atol=1e-12)
    np.testing.assert_allclose(p.grad_np(x), optimize.rosen_der(x), rtol=1e-14, atol=1e-12)
    assert p.f_np(x) == pytest.approx(optimize.rosen(x), rel=1e-14)


@pytest.mark.parametrize("n", [1, 2, 7, 300])
def test_quadratic_against_dense_matrix(n):
    p = P.get_problem("quadratic")
    x = p.x0(n, seed=1)
    i = np.arange(n)
    A = np.diag(2.0 + i / n)
    A[i[:-1], i[:-1] + 1] = -0.5
    A[i[:-1] + 1, i[:-1]] = -0.5
    assert p.f(x) == pytest.approx(0.5 * x @ A @ x, rel=1e-13)
    np.testing.assert_allclose(p.grad(x), A @ x, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(p.grad_np(x), A @ x, rtol=1e-13, atol=1e-13)
    assert p.f_np(x) == pytest.approx(0.5 * x @ A @ x, rel=1e-13)
    eig = np.linalg.eigvalsh(A)  # the documented conditioning: eigenvalues in [1, 4]
    assert eig.min() >= 1.0 - 1e-12 and eig.max() <= 4.0 + 1e-12


@pytest.mark.parametrize("n", [3, 40, 777])
def test_logistic_closed_form(n):
    p = P.get_problem("logistic")
    theta = p.x0(n, seed=2)
    rows = np.arange(1, P.LOGISTIC_SAMPLES + 1)[:, None]
    cols = np.arange(1, n + 1)[None, :]
    v = rows * np.sqrt(2.0) + cols * np.sqrt(3.0)
    X = 2.0 * (v - np.floor(v)) - 1.0
    z = X @ theta
    y = P.LOGISTIC_Y
    loss = np.mean(np.log1p(np.exp(z)) - y * z)
    grad = X.T @ (1.0 / (1.0 + np.exp(-z)) - y) / y.size
    assert p.f(theta) == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(p.grad(theta), grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(p.grad_np(theta), grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(p.grad(theta), complex_step_gradient(p.f, theta), rtol=1e-12, atol=1e-15)


def test_logistic_large_margins_do_not_overflow():
    p = P.get_problem("logistic")
    theta = np.full(50, 40.0)  # |z| in the hundreds: log(1 + e^z) would overflow if written naively
    assert np.isfinite(p.f(theta)) and np.all(np.isfinite(p.grad(theta)))
    assert p.f(theta) == pytest.approx(p.f_np(theta), rel=1e-13)


@pytest.mark.parametrize("n", [8, 61, 601])
def test_mlp_backprop_matches_complex_step(n):
    p = P.get_problem("mlp")
    theta = p.x0(n, seed=3)
    theta[P.mlp_size(P.mlp_width(n)) - 1] = 0.3  # a nonzero output bias
    exact = complex_step_gradient(p.f, theta)
    np.testing.assert_allclose(p.grad(theta), exact, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(p.grad_np(theta), exact, rtol=1e-12, atol=1e-15)
    assert p.f_np(theta) == pytest.approx(p.f(theta), rel=1e-13)


def test_mlp_loss_by_hand_for_width_one():
    # one hidden unit: loss = mean_b (b2 + w2 tanh(b1 + W1 . x_b) - y_b)^2
    W1 = np.array([0.5, -0.25, 1.0, 0.75])[: P.MLP_INPUTS]
    theta = np.concatenate([W1, [0.1], [-0.7], [0.2]])
    pred = 0.2 - 0.7 * np.tanh(0.1 + P.MLP_X @ W1)
    assert P.mlp_loss(theta) == pytest.approx(np.mean((pred - P.MLP_Y) ** 2), rel=1e-14)


@pytest.mark.parametrize("n", [2, 10, 100, 1000, 10000])
def test_mlp_size_is_weights_plus_biases(n):
    H = P.mlp_width(n)
    d = P.MLP_INPUTS
    N = d * H + H + H + 1  # W1, b1, w2, b2
    assert P.PROBLEMS["mlp"].size(n) == N == P.mlp_x0(n).size
    assert abs(N - n) <= (d + 2) / 2 or n < d + 3


@pytest.mark.parametrize("name", list(P.PROBLEMS))
def test_x0_is_reproducible_and_f_takes_complex(name):
    p = P.PROBLEMS[name]
    a, b = p.x0(50), p.x0(50)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, p.x0(50, seed=1))
    assert p.size(50) == a.size and p.description
    fc = p.f(a.astype(complex))
    assert fc.real == pytest.approx(p.f(a), rel=1e-14) and fc.imag == 0.0


def test_unknown_problem():
    with pytest.raises(ValueError, match="unknown problem 'mpl'; choose one of 'mlp'"):
        P.get_problem("mpl")
    with pytest.raises(TypeError, match="problem must be a name"):
        P.get_problem(3)
