"""fdkit.study.sweep: the error-vs-h measurements against closed forms and mpmath.

What the issue asks the sweep to show on e^x / sqrt(sin^3 x + cos^3 x) at x = 1.5 (Squire &
Trapp 1998), with the derivative's reference value from mpmath at 50 digits.
"""

import math

import numpy as np
import pytest

from fdkit.study import sweep
from fdkit.stencils import get_stencil

from fractions import Fraction

from oracles import FORNBERG_CENTRAL, mp_derivative


@pytest.fixture(scope="module")
def st():
    return sweep.run_sweep("squire_trapp")


def rows(result, method, order):
    return [r for r in result["records"] if (r["method"], r["order"]) == (method, order)]


def at(result, method, order, h):
    return min(rows(result, method, order), key=lambda r: abs(math.log10(r["h"] / h)))


def table(result, method, order):
    return next(r for r in result["table"] if (r["method"], r["order"]) == (method, order))


def test_exact_derivative_matches_mpmath(st):
    assert st["exact"] == pytest.approx(mp_derivative("squire_trapp", 1.5), rel=4e-16)


def test_grid_has_eight_points_per_decade_and_complex_goes_to_1e_300(st):
    h = np.array([r["h"] for r in rows(st, "central", 2)])
    assert h.min() == pytest.approx(1e-16) and h.max() == pytest.approx(1.0)
    assert len(h) >= 16 * 8
    hc = np.array([r["h"] for r in rows(st, "complex", 2)])
    assert hc.min() == pytest.approx(1e-300)


def test_forward_central_optima_where_the_theory_says(st):
    fwd, cen = table(st, "forward", 1), table(st, "central", 2)
    assert 1e-9 <= fwd["measured_h_opt"] <= 1e-7 and 3e-9 <= fwd["measured_min_rel_error"] <= 1e-7
    assert 3e-7 <= cen["measured_h_opt"] <= 3e-5 and cen["measured_min_rel_error"] <= 1e-10
    for row in (fwd, cen):  # the model's optimum within a factor 10 of the measured one
        assert 0.1 <= row["measured_h_opt"] / row["model_h_opt"] <= 10


def test_tiny_steps_are_worse_than_the_optimum_by_100x(st):
    for method, order in [("forward", 1), ("backward", 1), ("central", 2), ("central", 4)]:
        assert at(st, method, order, 1e-14)["rel_error"] > 100 * table(st, method, order)["measured_min_rel_error"]


def test_complex_step_is_at_machine_precision_from_1e_8_to_1e_300(st):
    errs = [r["rel_error"] for r in rows(st, "complex", 2) if r["h"] <= 1e-8]
    assert len(errs) > 250 and max(errs) <= 1e-15


def test_richardson_row(st):
    """The adaptive method's row: from its default policy and from any first step in [1e-2, 1]
    within 1e-12 of the mpmath derivative; its error estimate covers the true error."""
    exact = mp_derivative("squire_trapp", 1.5)
    row = table(st, "richardson", None)
    assert row["default_rel_error"] <= 1e-12
    assert row["default_rel_error"] <= row["default_error_estimate"] <= 1e-10
    assert row["default_nfev"] >= 6
    recs = rows(st, "richardson", None)
    assert len(recs) == len(rows(st, "central", 2))  # the same grid of first steps
    for r in recs:
        if 1e-2 <= r["h"] <= 1.0:
            assert abs(r["value"] - exact) / abs(exact) <= 1e-12
    finite = [r for r in recs if np.isfinite(r["abs_error"])]
    assert np.mean([r["abs_error"] <= r["error_estimate"] for r in finite]) >= 0.95
    # the V's right arm does not exist for it: its error at first step 1e-2 beats central's optimum
    assert at(st, "richardson", None, 1e-2)["rel_error"] < table(st, "central", 2)["measured_min_rel_error"]


def test_richardson_swept_in_float32_with_an_honest_estimate():
    s32 = sweep.run_sweep("exp", dtype="float32", methods=[("central", 2), ("richardson", None)])
    assert [r["method"] for r in s32["table"]] == ["central", "richardson"]
    row = table(s32, "richardson", None)
    # exp'(1) = e (closed form); float32 differences cannot beat ~eps32^(2/3)-ish, but the policy
    # must land near the float32 optimum and its estimate must cover its error
    assert row["default_rel_error"] < 1e-5
    assert row["default_rel_error"] <= row["default_error_estimate"]
    recs = [r for r in rows(s32, "richardson", None) if np.isfinite(r["abs_error"])]
    assert recs and np.mean([r["abs_error"] <= r["error_estimate"] for r in recs]) >= 0.95


def test_float32_default_step_sits_at_the_bottom_of_the_v():
    # fdkit's default step in float32 (eps32-sized) errs within a small factor of the best the
    # sweep measured, not on the rounding arm (where a float64-sized step would put it)
    # (the model's own optimum uses the function's derivatives, from closed forms / Cauchy)
    for name in ("squire_trapp", "exp", "sin"):
        s32 = sweep.run_sweep(name, dtype="float32")
        for method, order in [("forward", 1), ("backward", 1), ("forward", 2), ("central", 2), ("central", 4)]:
            row = table(s32, method, order)
            x = s32["x"]
            assert row["default_h"] == pytest.approx(np.finfo(np.float32).eps ** (1 / (order + 1)) * max(1, x))
            assert row["default_rel_error"] <= 10 * row["model_min_rel_error"]
            assert row["model_h_opt"] / 3 <= row["default_h"] <= 3 * row["model_h_opt"]


def test_values_are_the_stencil_applied_by_hand():
    # the forward difference of exp at 1 with h = 2^-20, computed here from its definition
    r = sweep.run_sweep("exp", methods=[("forward", 1)], hmin=2.0**-20, hmax=2.0**-19, per_decade=1)
    h = 2.0**-20
    rec = next(x for x in r["records"] if x["h"] == h)
    assert rec["value"] == (math.exp(1 + h) - math.exp(1)) / h
    assert rec["abs_error"] == abs(rec["value"] - math.e)


def test_truncation_model_from_the_stencil_and_closed_forms():
    r = sweep.run_sweep("exp")
    c2 = table(r, "central", 2)
    assert c2["truncation_coefficient"] == pytest.approx(1 / 6) and c2["derivative_order"] == 3
    assert c2["derivative_value"] == pytest.approx(math.e)
    # the classical optimum of e h^2/6 + eps e sum|w| / h: h* = (3 eps)^(1/3) for exp at 1 (sum|w| = 1)
    assert c2["model_h_opt"] == pytest.approx((3 * np.finfo(float).eps) ** (1 / 3), rel=1e-12)
    c6 = table(r, "central", 6)
    # D_h f - f' = h^6 f^(7) sum(w_k k^7) / 7!, with Fornberg's published weights: +1/140
    w = FORNBERG_CENTRAL[(1, 6)]
    lead = sum(Fraction(wk) * k**7 for wk, k in zip(w, range(-3, 4))) / math.factorial(7)
    assert lead == Fraction(1, 140)
    assert c6["derivative_order"] == 7 and c6["truncation_coefficient"] == pytest.approx(float(lead))


def test_cauchy_estimate_of_higher_derivatives():
    fn = sweep.builtin_functions()["squire_trapp"]
    for m in (2, 3, 5):
        d, source = sweep.higher_derivative(fn, m)
        assert source == "cauchy"
        assert d == pytest.approx(mp_derivative("squire_trapp", 1.5, m), rel=1e-8)


def test_fornberg_fallback_for_real_only_functions():
    f = sweep.SweepFunction("absexp", lambda x: np.exp(np.abs(x)), math.exp, 1.0, "e^|x|")
    d, source = sweep.higher_derivative(f, 3)
    assert source == "fornberg" and d == pytest.approx(math.e, rel=1e-4)


def test_float32_moves_the_optimum_to_larger_h(st):
    r32 = sweep.run_sweep("squire_trapp", dtype="float32")
    for method, order in [("forward", 1), ("central", 2)]:
        assert table(r32, method, order)["measured_h_opt"] > 100 * table(st, method, order)["measured_h_opt"]
        assert table(r32, method, order)["model_h_opt"] > 100 * table(st, method, order)["model_h_opt"]
    assert r32["eps"] == pytest.approx(np.finfo(np.float32).eps)
    assert any(x["step_vanished"] for x in rows(r32, "forward", 1))


def test_mlp_weight_derivative_is_the_backprop_component():
    from fdkit.study.problems import mlp_grad, mlp_x0

    r = sweep.run_sweep("mlp_weight", methods=[("complex", 2)])
    assert r["exact"] == mlp_grad(mlp_x0(49))[0]
    assert table(r, "complex", 2)["measured_min_rel_error"] < 1e-13


def test_polynomial_central_difference_has_no_truncation():
    r = sweep.run_sweep("2x^2", methods=[("central", 2)])
    row = table(r, "central", 2)
    assert row["derivative_value"] == 0 and row["model_h_opt"] is None
    # (2(x+h)^2 - 2(x-h)^2) / 2h = 4x: only rounding is left, a few ulp at a large h
    assert at(r, "central", 2, 0.5)["rel_error"] <= 4 * np.finfo(float).eps


def test_bad_input():
    with pytest.raises(ValueError, match="unknown function 'cos'"):
        sweep.run_sweep("cos")
    with pytest.raises(ValueError, match="hmin < hmax"):
        sweep.run_sweep("exp", hmin=1.0, hmax=1e-3)
    with pytest.raises(ValueError, match="dtype must be"):
        sweep.run_sweep("exp", dtype="float16")
    f = sweep.SweepFunction("up", lambda x: np.asarray(x, dtype=np.float64) * 2, lambda x: 2.0, 1.0, "2x")
    with pytest.raises(TypeError, match="keep the dtype"):
        sweep.run_sweep(f, dtype="float32")
    assert get_stencil("central", 2).error_coefficient == pytest.approx(1 / 6)
