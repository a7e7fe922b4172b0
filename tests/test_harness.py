"""fdkit.study.harness: counted nfev, errors against the analytical gradient, the slope fit.

No timing assertions (the machines are noisy): timings are only checked to be positive.
"""

import math

import numpy as np
import pytest

from fdkit.study import harness

NFEV = {"forward": lambda n: n + 1, "central": lambda n: 2 * n, "complex": lambda n: n}


@pytest.fixture(scope="module")
def records():
    return harness.run_harness(
        ["rosenbrock", "mlp"], [10, 40], ["analytic", "forward", "central", "complex", "scipy.approx_fprime",
                                          "scipy.3-point"],
        parallel=(False, True), repeat=1, min_time=1e-4, budget=0.05,
    )


def test_every_cell_is_recorded_with_counted_nfev(records):
    assert set(harness.COLUMNS) <= set(records[0])
    mlp = [harness.PROBLEMS["mlp"].size(n) for n in (10, 40)]  # whole hidden layers: 13 and 37
    assert mlp == [13, 37]
    for problem, sizes in {"rosenbrock": [10, 40], "mlp": mlp}.items():
        for n in sizes:
            rows = {(r["method"], r["parallel"]): r for r in records if r["problem"] == problem and r["n"] == n}
            for method, nfev in NFEV.items():
                for par in (False, True):
                    assert rows[(method, par)]["nfev"] == nfev(n)
            assert rows[("f", False)]["cost_in_f"] == 1.0
            assert rows[("analytic", False)]["ratio_to_analytical"] == 1.0
            for method in NFEV:  # the first call's seconds, beside the timed ones
                assert all(rows[(method, par)]["compile_seconds"] > 0 for par in (False, True))
            assert rows[("f", False)]["compile_seconds"] is None


def test_peers_counted_when_scipy_present(records):
    pytest.importorskip("scipy.optimize")
    rows = {(r["problem"], r["n"], r["method"]): r for r in records}
    assert rows[("rosenbrock", 40, "scipy.approx_fprime")]["nfev"] == 41
    assert rows[("rosenbrock", 40, "scipy.3-point")]["nfev"] == 81  # 2N and f(x0), which scipy always makes
    assert rows[("rosenbrock", 40, "f_np")]["kind"] == "f"


def test_errors_against_analytical_gradient(records):
    tol = {"forward": 1e-5, "central": 1e-8, "complex": 1e-14, "scipy.approx_fprime": 1e-5, "scipy.3-point": 1e-8}
    for r in records:
        if r["method"] in tol:
            assert r["max_rel_error"] < tol[r["method"]], r
        assert r["seconds"] > 0 and r["seconds_min"] <= r["seconds"] and r["repeats"] >= 1
        assert r["cost_in_f"] == pytest.approx(r["seconds"] / r["t_f"])


def test_extrapolation_model_recovers_overhead_and_cost_per_evaluation():
    # a method with 1 ms of overhead per call and 2 t_f per evaluation (a peer calling a slower f)
    # looks sublinear at small N (log-log slope < 1); the model recovers both and extrapolates
    recs = []
    for n in [10, 100, 1000]:
        t_f = 2e-9 * n
        for method, kind, nfev, seconds in [("scipy.approx_fprime", "peer", n + 1, 1e-3 + 2.0 * (n + 1) * t_f),
                                            ("forward", "fdkit", n + 1, 5e-6 + 1.0 * (n + 1) * t_f),
                                            ("analytic", "analytic", None, 3.0 * t_f)]:
            recs.append(dict(problem="p", n=n, method=method, parallel=False, kind=kind, seconds=seconds,
                             nfev=nfev, cost_in_f=seconds / t_f, t_f=t_f))
    fits = {f["method"]: f for f in harness.fit_slopes(recs)}
    peer, fwd = fits["scipy.approx_fprime"], fits["forward"]
    assert peer["slope"] < 0.5  # what a line through log cost would have extrapolated from
    assert peer["model_k"] == pytest.approx(2.0, rel=1e-6) and peer["model_overhead"] == pytest.approx(1e-3, rel=1e-6)
    n6, tf6 = 10**6, 2e-9 * 10**6
    assert peer["extrapolated_seconds"] == pytest.approx(1e-3 + 2.0 * (n6 + 1) * tf6, rel=1e-6)
    assert fwd["extrapolated_seconds"] == pytest.approx(5e-6 + (n6 + 1) * tf6, rel=1e-6)
    assert fwd["extrapolated_seconds"] < peer["extrapolated_seconds"]  # no peer overtakes at large N
    assert fits["analytic"]["extrapolated_cost_in_f"] == pytest.approx(3.0, rel=1e-9)
    assert "not a measurement" in fwd["note"]
    # noise cannot push a serial method below its counted evaluations
    for r in recs:
        if r["method"] == "forward":
            r["seconds"] *= 0.5
    fwd = {f["method"]: f for f in harness.fit_slopes(recs)}["forward"]
    assert fwd["model_k"] >= 1.0 and fwd["extrapolated_seconds"] >= (n6 + 1) * tf6 * (1 - 1e-9)


def test_summary_is_json_ready(records):
    import json

    s = harness.summary(records)
    text = json.dumps(s)
    assert "machine" in s and s["machine"]["cores"] >= 1 and "numba_threading_layer" in text
    assert {f["method"] for f in s["fits"]} >= {"forward", "central", "complex", "analytic"}


def test_records_from_pytest_benchmark():
    def bench(kind, method, median, calls=1, **info):
        return {"extra_info": dict(problem="mlp", n=13, kind=kind, method=method, calls=calls, **info),
                "stats": {"median": median, "min": median, "rounds": 5}}

    data = {"benchmarks": [
        bench("f", "f", 1e-3, calls=1000),  # 1 µs per f
        bench("analytic", "analytic", 3e-3, calls=1000),
        bench("fdkit", "forward", 2e-5, nfev=14, parallel=False, max_rel_error=1e-8),
        {"extra_info": {}, "stats": {"median": 1.0, "min": 1.0, "rounds": 1}},  # another suite's row
    ]}
    rows = {r["method"]: r for r in harness.records_from_pytest_benchmark(data)}
    assert rows["f"]["seconds"] == pytest.approx(1e-6)
    assert rows["forward"]["cost_in_f"] == pytest.approx(20.0)
    assert rows["forward"]["ratio_to_analytical"] == pytest.approx(20 / 3)
    assert rows["forward"]["nfev"] == 14
    with pytest.raises(ValueError, match="no harness rows"):
        harness.records_from_pytest_benchmark({"benchmarks": [data["benchmarks"][-1]]})
    with pytest.raises(ValueError, match="not a pytest-benchmark JSON"):
        harness.records_from_pytest_benchmark({"x": 1})


@pytest.mark.parametrize("sizes", [[1], [0], [10, -5], [2.5], [], [True]])
def test_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes must"):
        harness.run_harness(["quadratic"], sizes)


def test_bad_method_and_problem():
    with pytest.raises(ValueError, match="unknown method 'centre'"):
        harness.run_harness(["quadratic"], [10], ["centre"])
    with pytest.raises(ValueError, match="unknown problem"):
        harness.run_harness(["nope"], [10])
    with pytest.raises(ValueError, match="repeat must be"):
        harness.run_harness(["quadratic"], [10], repeat=0)


def test_timing_loops_leave_x_unchanged():
    from fdkit.study.problems import quadratic, quadratic_grad

    x = np.linspace(-1.0, 1.0, 9)
    x0 = x.copy()
    assert harness.repeat_f(quadratic, x, 3) == pytest.approx(3 * quadratic(x0))
    assert harness.repeat_grad(quadratic_grad, x, 2) == pytest.approx(2 * quadratic_grad(x0)[0])
    np.testing.assert_array_equal(x, x0)
    assert math.isfinite(harness.repeat_f(quadratic, x, 1))


def test_one_sample_cells_reuse_the_counted_call():
    calls = []
    run = lambda k: calls.append(k)  # noqa: E731
    assert harness._time(run, 1, 0.0, 0.0, once=0.5) == (0.5, 0.5, 1) and calls == []  # --largest: one gradient
    med, mn, reps = harness._time(run, 3, 0.0, 10.0, once=0.5)
    assert reps == 3 and calls  # more samples asked: timed again
