"""check_gradient decides each element by its error estimate: a right float32 backprop passes with
the defaults, a wrong element is flagged with its index, a kink is unreliable, not a mismatch.
Oracles: the MLP's hand-written backprop (numpy, float32 and float64) with planted bugs."""

import subprocess
import sys

import numpy as np
import pytest

import fdkit
from fdkit.study.problems import MLP_BATCH, MLP_INPUTS, MLP_X, MLP_Y, get_problem
from fdkit.testing import assert_gradient_close, assert_jacobian_close

X32, Y32 = MLP_X.astype(np.float32), MLP_Y.astype(np.float32)


def _unpack(t):
    d = MLP_INPUTS
    H = (t.size - 1) // (d + 2)
    return t[: H * d].reshape(H, d), t[H * d: H * d + H], t[H * d + H: H * d + 2 * H], t[-1]


def loss32(t):
    """The MLP loss computed in float32 throughout (its data in float32 too)."""
    W1, b1, w2, b2 = _unpack(t)
    r = np.tanh(X32 @ W1.T + b1) @ w2 + b2 - Y32
    return np.sum(r * r) / np.float32(MLP_BATCH)


def grad32(t, bug=None):
    """Its backprop; ``bug='tanh'`` drops the tanh' factor, ``bug='sign'`` flips the output layer."""
    W1, b1, w2, b2 = _unpack(t)
    T = np.tanh(X32 @ W1.T + b1)
    dout = np.float32(2) * (T @ w2 + b2 - Y32) / np.float32(MLP_BATCH)
    dA = np.outer(dout, w2) * (1 - T * T) if bug != "tanh" else np.outer(dout, w2)
    out = T.T @ dout if bug != "sign" else -(T.T @ dout)
    return np.concatenate([(dA.T @ X32).ravel(), dA.sum(0), out, [dout.sum()]]).astype(t.dtype)


@pytest.fixture(scope="module")
def theta32():
    return get_problem("mlp").x0(100).astype(np.float32)


def test_a_right_float32_backprop_passes_with_the_defaults(theta32):
    res = fdkit.check_gradient(loss32, grad32, theta32)
    assert res.ok and res.counts["agree"] == theta32.size, str(res)
    assert res.numeric.shape == theta32.shape
    p = get_problem("mlp")
    th = p.x0(100)
    assert fdkit.check_gradient(p.f, p.grad, th).ok  # jitted float64 too
    assert fdkit.check_gradient(p.f, p.grad, th.astype(np.float32)).ok


def test_one_element_off_by_one_percent_is_flagged_with_its_index(theta32):
    p = get_problem("mlp")
    th = p.x0(100)
    for k in (7, 55, th.size - 1):
        res = fdkit.check_gradient(p.f_np, lambda t: p.grad_np(t) * np.where(np.arange(t.size) == k, 1.01, 1.0), th)
        assert not res.ok and res.worst_index == (k,) and res.counts["disagree"] == 1, str(res)
        assert "disagree" in str(res) and f"({k},)" in str(res)
    # in float32 the finite differences resolve ~1e-4 of the largest partial: a 1 % error there
    k = int(np.argmax(np.abs(grad32(theta32))))
    res = fdkit.check_gradient(loss32, lambda t: grad32(t) * np.where(np.arange(t.size) == k, np.float32(1.01),
                                                                      np.float32(1)), theta32)
    assert not res.ok and res.worst_index == (k,) and res.counts["disagree"] == 1


@pytest.mark.parametrize("bug", ["tanh", "sign"])
def test_a_bug_in_one_layer_is_flagged(theta32, bug):
    res = fdkit.check_gradient(loss32, lambda t: grad32(t, bug), theta32)
    assert not res.ok
    H = (theta32.size - 1) // (MLP_INPUTS + 2)
    layer = slice(0, H * (MLP_INPUTS + 1)) if bug == "tanh" else slice(H * (MLP_INPUTS + 1), H * (MLP_INPUTS + 2))
    assert np.all(res.verdict[np.arange(theta32.size)[layer]][np.abs(res.numeric[layer]) > 1e-3] == "disagree")
    assert res.verdict[-1] == "agree"  # the output bias is right in both


def test_a_kink_is_unreliable_not_a_mismatch():
    for grad in (np.sign, lambda v: np.where(v >= 0, 1.0, -1.0)):  # either convention at 0
        res = fdkit.check_gradient(lambda v: np.sum(np.abs(v)), grad, np.array([0.0, 1.0, -2.0]))
        assert list(res.verdict) == ["unreliable", "agree", "agree"] and res.ok


def test_random_directions_find_a_wrong_gradient_at_n_10000():
    p = get_problem("mlp")
    th = p.x0(10000)
    H = (th.size - 1) // (MLP_INPUTS + 2)

    def wrong(t):  # the output layer's sign flipped
        g = p.grad_np(t)
        g[H * (MLP_INPUTS + 1): H * (MLP_INPUTS + 2)] *= -1
        return g

    bad = fdkit.check_gradient(p.f_np, wrong, th, directions=5)
    assert not bad.ok and bad.counts["disagree"] == 5
    assert bad.nfev < 100 < th.size  # five Richardson derivatives, not 10^4 partials
    good = fdkit.check_gradient(p.f_np, p.grad_np, th, directions=5)
    assert good.ok and good.nfev < 100


def test_directions_point_to_a_single_wrong_parameter():
    x = np.random.default_rng(1).uniform(-1, 1, 50)
    optimize = pytest.importorskip("scipy.optimize")

    def wrong(v):
        g = optimize.rosen_der(v)
        g[31] += 50.0
        return g

    res = fdkit.check_gradient(optimize.rosen, wrong, x, directions=40)
    assert not res.ok and res.suspects == [(31,)]


def test_taylor_rates():
    p = get_problem("mlp")
    th = p.x0(60)
    right = fdkit.taylor_test(p.f_np, p.grad_np, th)
    wrong = fdkit.taylor_test(p.f_np, lambda t: 1.01 * p.grad_np(t), th)
    assert right.ok and abs(right.rate - 2.0) < 0.2
    assert not wrong.ok and abs(wrong.rate - 1.0) < 0.2
    res = fdkit.check_gradient(p.f_np, p.grad_np, th, taylor=True)
    assert res.taylor.ok and "Taylor rate" in str(res)


def test_scipy_check_grad_side_by_side(theta32):
    """What scipy.optimize.check_grad returns on the same cases: one 2-norm, no index, no
    scale to judge it by (its default step also assumes float64)."""
    optimize = pytest.importorskip("scipy.optimize")
    k = int(np.argmax(np.abs(grad32(theta32))))
    cases = {"right": grad32,
             "one element 1 % off": lambda t: grad32(t) * np.where(np.arange(t.size) == k, np.float32(1.01),
                                                                   np.float32(1)),
             "missing tanh'": lambda t: grad32(t, "tanh")}
    scipy_says = {name: optimize.check_grad(loss32, g, theta32) for name, g in cases.items()}
    ours = {name: fdkit.check_gradient(loss32, g, theta32) for name, g in cases.items()}
    assert all(np.ndim(v) == 0 for v in scipy_says.values())  # a single number each
    assert scipy_says["right"] > 0 and scipy_says["one element 1 % off"] > scipy_says["right"]
    assert ours["right"].ok and not ours["one element 1 % off"].ok and not ours["missing tanh'"].ok
    assert ours["one element 1 % off"].worst_index == (k,)


def test_assertions_and_jacobian():
    x = np.array([0.3, -0.7])
    assert_gradient_close(lambda v: np.sum(v**3), lambda v: 3 * v**2, x)
    with pytest.raises(AssertionError, match=r"(?s)disagrees with finite differences\nMISMATCH: 1 of 2.*\(1,\)"):
        assert_gradient_close(lambda v: np.sum(v**3), lambda v: 3 * v**2 * [1.0, 1.02], x)

    def F(v):
        return np.array([v[0] * v[1], np.sin(v[0])])

    def J(v):
        return np.array([[v[1], v[0]], [np.cos(v[0]), 0.0]])

    assert_jacobian_close(F, J, x)
    res = fdkit.check_jacobian(F, lambda v: J(v) + [[0, 0], [0, 0.01]], x)
    assert not res.ok and res.worst_index == (1, 1)
    with pytest.raises(AssertionError, match="Jacobian disagrees"):
        assert_jacobian_close(F, lambda v: J(v) * 1.01, x)
    with pytest.raises(ValueError, match="grad has shape"):
        fdkit.check_gradient(lambda v: np.sum(v), np.ones(3), x)
    with pytest.raises(ValueError, match="directions must be a positive integer"):
        fdkit.check_gradient(lambda v: np.sum(v), np.ones(2), x, directions=0)


def test_fdkit_check_command(tmp_path):
    (tmp_path / "mymod.py").write_text(
        "import numpy as np\n"
        "def f(x):\n    return float(np.sum(np.sin(x) * x))\n"
        "def g(x):\n    return np.cos(x) * x + np.sin(x)\n"
        "def g_bad(x):\n    out = np.cos(x) * x + np.sin(x)\n    out[1] *= 1.05\n    return out\n")
    np.save(tmp_path / "x.npy", np.array([[0.5, 1.0], [1.5, 2.0]]))
    run = lambda *a: subprocess.run([sys.executable, "-m", "fdkit", "check", *a], cwd=tmp_path,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    ok = run("mymod:f", "mymod:g", "--x", "0.5,1,2")
    assert ok.returncode == 0 and ok.stdout.startswith("OK: 3 of 3"), ok.stdout + ok.stderr
    bad = run("mymod:f", "mymod:g_bad", "--x", "x.npy")
    assert bad.returncode == 1 and "MISMATCH" in bad.stdout and "(0, 1)" in bad.stdout, bad.stdout + bad.stderr
    assert run("mymod:nope", "mymod:g", "--x", "1").returncode == 2
