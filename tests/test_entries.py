"""The shared kernels of fdkit.engine.entries: a jitted f called through a pointer, one compiled
kernel for every f of a signature, kept in numba's disk cache across processes, and the tiering
to the kernel specialised on f."""

import json
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from scipy import optimize

import fdkit
from fdkit.engine import runner as R


def _rosen(x):
    s = 0.0
    for i in range(x.size - 1):
        s += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    return s


def _fresh():
    """A new dispatcher of the same f: its own entries in fdkit's per-f caches."""
    return numba.njit(_rosen)


def _pointer_runs(f) -> int:
    return sum(len(p.calls) for p in R._POINTERS.get(f, {}).values() if p is not None)


def _specialised(f) -> int:
    return len(R._ENTRIES.get(f, {}))  # kernels specialised on f, run (compiled) at least once


TOL = {np.float64: 1e-6, np.float32: 2e-2}


def _assert_rosen_der(g, x, dtype=np.float64):
    """g against scipy's rosen_der at x (in float64), within TOL of the working precision."""
    exact = optimize.rosen_der(np.asarray(x, dtype=np.float64))
    np.testing.assert_allclose(g, exact, rtol=TOL[dtype], atol=TOL[dtype] * np.abs(exact).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["forward", "central", "complex", "richardson"])
def test_pointer_kernel_is_the_default_and_equals_the_specialised_one(monkeypatch, method, dtype):
    x = np.linspace(-1.2, 1.4, 9).astype(dtype)
    f = _fresh()
    g = fdkit.gradient(f, x, method=method)
    assert _pointer_runs(f) >= 1 and _specialised(f) == 0
    monkeypatch.setattr(R, "INLINE_AFTER", 0)  # straight to the kernel specialised on f
    f2 = _fresh()
    g2 = fdkit.gradient(f2, x, method=method)
    assert _pointer_runs(f2) == 0 and _specialised(f2) >= 1
    np.testing.assert_array_equal(g, g2)  # the same code and arithmetic: f inlined or not
    _assert_rosen_der(g, x, dtype)


def test_every_quantity_runs_through_the_pointer_kernels():
    f = numba.njit(lambda x: np.sin(x) * x)  # elementwise
    x = np.linspace(0.1, 2.0, 7)
    exact = np.sin(x) + x * np.cos(x)
    for method in ("central", "richardson"):
        np.testing.assert_allclose(fdkit.derivative(f, x, method=method), exact, rtol=1e-8)
    v = numba.njit(lambda x: np.array([x[0] * x[1], np.sin(x[0])]))
    xj = np.array([0.3, 2.0])
    for method in ("central", "richardson"):
        np.testing.assert_allclose(fdkit.jacobian(v, xj, method=method),
                                   [[2.0, 0.3], [np.cos(0.3), 0.0]], rtol=1e-8, atol=1e-10)
    h = _fresh()
    for method in ("central", "richardson"):
        np.testing.assert_allclose(fdkit.hessian(h, xj, method=method), optimize.rosen_hess(xj), rtol=1e-5)
    for g in (f, v, h):
        assert _pointer_runs(g) >= 2 and _specialised(g) == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["central", "richardson"])
def test_tiering_specialises_an_elementwise_derivative_after_the_time_spent(monkeypatch, method, dtype):
    monkeypatch.setattr(R, "INLINE_AFTER", 1e-12)
    f = numba.njit(lambda v: np.sin(v) * v)
    x = np.linspace(0.1, 2.0, 12).astype(dtype)
    first = fdkit.derivative(f, x, method=method)  # compiles or loads the shared kernel: not counted
    assert _pointer_runs(f) == 1 and _specialised(f) == 0
    second = fdkit.derivative(f, x, method=method)  # counted: over the limit, the pointer kernel is retired
    third = fdkit.derivative(f, x, method=method)
    assert _specialised(f) == 1
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, third)
    xd = x.astype(np.float64)
    np.testing.assert_allclose(third, np.sin(xd) + xd * np.cos(xd), rtol=1e-8 if dtype is np.float64 else 2e-3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradients_stay_on_the_pointer_kernels(monkeypatch, dtype):
    """f called on whole vectors gains nothing inlined (measured): no tiering there."""
    monkeypatch.setattr(R, "INLINE_AFTER", 1e-12)
    f = _fresh()
    x = np.linspace(-1.0, 1.0, 12).astype(dtype)
    gs = [fdkit.gradient(f, x, method=m, full_output=True).value for m in ("central", "central", "richardson",
                                                                            "richardson")]
    fdkit.hessian(f, x[:4])
    fdkit.hessian(f, x[:4])
    assert _specialised(f) == 0 and _pointer_runs(f) >= 3
    exact = optimize.rosen_der(x.astype(np.float64))
    tol = TOL[dtype]
    np.testing.assert_allclose(gs[1], exact, rtol=tol, atol=tol * np.abs(exact).max())
    rtol = 1e-9 if dtype is np.float64 else tol  # richardson
    np.testing.assert_allclose(gs[3], exact, rtol=rtol, atol=rtol * np.abs(exact).max() if dtype is np.float32 else 0)


def test_an_exception_in_f_propagates_through_the_pointer():
    @numba.njit
    def f(x):
        if x[0] > 0.5:
            raise ValueError("x[0] above 0.5")
        return np.sum(x * x)

    np.testing.assert_allclose(fdkit.gradient(f, np.array([0.1, 0.2])), [0.2, 0.4], rtol=1e-6)
    with pytest.raises(ValueError, match="above 0.5"):
        fdkit.gradient(f, np.array([0.5, 0.2]), h=1e-3)
    assert _specialised(f) == 0


def test_extra_arguments_go_through_the_pointer():
    @numba.njit
    def f(x, a, b):
        return a * np.sum(x * x) + b

    x = np.array([0.5, -1.5], dtype=np.float32)
    np.testing.assert_allclose(fdkit.gradient(f, x, args=(3.0, 1.0)), 6 * x, rtol=1e-3)
    assert _pointer_runs(f) == 1


_SCRIPT = textwrap.dedent("""
    import json, numba, numpy as np, fdkit
    from fdkit.engine import entries
    @numba.njit
    def f(x):
        return np.sum(np.cos(x) * x)
    x = np.linspace(0.0, 1.0, 5)
    for method in ("forward", "richardson"):
        g = fdkit.gradient(f, x, method=method)
        assert np.allclose(g, np.cos(x) - x * np.sin(x), rtol=1e-6)
    hits = misses = 0
    for d in entries._module().ENTRIES.values():
        hits += sum(d.stats.cache_hits.values())
        misses += sum(d.stats.cache_misses.values())
    print(json.dumps([hits, misses]))
""")


def test_a_new_process_loads_the_kernels_from_numbas_disk_cache():
    """The shared kernels are compiled once (per signature and install), not per f and process."""
    runs = [json.loads(subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1]) for _ in range(2)]
    hits, misses = runs[1]
    assert misses == 0 and hits == 2, runs


# ------------------------------------------------------------------ the default call's fast path

from fdkit import api  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["forward", "central", "complex"])
def test_repeated_default_gradient_takes_the_fast_path_and_agrees(method, dtype):
    f = _fresh()
    x = np.linspace(-1.2, 1.4, 10).astype(dtype)
    first = fdkit.gradient(f, x, method=method)  # the full path, which records the call
    assert (id(f), method, x.dtype.char, x.shape) in api._FAST
    again = fdkit.gradient(f, x, method=method)
    full = fdkit.gradient(f, x, method=method, full_output=True).value  # not a default call: the full path
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(again, full)
    assert again.dtype == dtype
    _assert_rosen_der(again, x, dtype)
    cube = numba.njit(lambda w: np.sum(w * w * w))
    W = x.reshape(2, 5)  # a matrix: a gradient of its shape, through the fast path the second time
    gw = [fdkit.gradient(cube, W, method=method) for _ in range(2)]
    np.testing.assert_array_equal(gw[0], gw[1])
    np.testing.assert_allclose(gw[1], 3 * W.astype(np.float64) ** 2, rtol=TOL[dtype], atol=TOL[dtype])


def test_fast_path_keeps_the_checks():
    @numba.njit
    def writes_its_input(x):
        s = np.sum(x * x)
        x[0] = 99.0  # a rude f: must not reach the caller's x
        return s

    x = np.array([0.5, -1.0, 2.0])
    before = x.copy()
    for _ in range(3):  # its derivatives are its own business; the caller's x stays as it was
        fdkit.gradient(writes_its_input, x, method="forward")
    np.testing.assert_array_equal(x, before)
    with pytest.raises(ValueError, match="finite"):
        fdkit.gradient(writes_its_input, np.array([0.5, np.nan, 2.0]), method="forward")

    @numba.njit
    def log_sum(x):
        return np.sum(np.log(x))

    y = np.array([1.0, 2.0, 3.0])
    fdkit.gradient(log_sum, y)
    with pytest.warns(RuntimeWarning, match="NaN or inf"):
        fdkit.gradient(log_sum, np.array([1.0, 0.0, 3.0]))
    strided = np.linspace(1.0, 2.0, 6)[::2]  # not C-contiguous: the full path
    np.testing.assert_allclose(fdkit.gradient(log_sum, strided), 1 / strided, rtol=1e-8)


def test_fast_path_records_die_with_f_and_errors_still_name_x():
    import gc

    @numba.njit
    def picky(x):
        if not np.isfinite(x[1]):
            raise ValueError("picky: x[1] must be finite")
        return np.sum(x * x * x)

    x = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    for _ in range(3):  # the full path, then the fast path twice
        g = fdkit.gradient(picky, x, method="forward")
        np.testing.assert_allclose(g, 3 * x.astype(np.float64) ** 2, rtol=1e-2)
    with pytest.raises(ValueError, match="x must be finite, got nan at index"):  # f's own error is not the story
        fdkit.gradient(picky, np.array([0.5, np.nan, 2.0], dtype=np.float32), method="forward")
    fid = id(picky)
    assert any(k[0] == fid for k in api._FAST)
    del picky
    gc.collect()
    assert not any(k[0] == fid for k in api._FAST)


@pytest.mark.parametrize("method, dtype", [("forward", np.float64), ("central", np.float32)])
def test_a_small_gradient_called_very_often_gets_a_baked_kernel(method, dtype, monkeypatch):
    """After INLINE_AFTER seconds of fast calls (here: counted as 1e9 s each, so the second fast
    call) a small x's kernel is baked (steps frozen, f inlined); its answers are the pointer
    kernel's, and the checks stay."""
    monkeypatch.setattr(api, "_FAST_CALL_SECONDS", 1e9)
    monkeypatch.setattr(api, "_BAKE_TIMED", False)  # correctness here; its speed is the benchmark's

    f = _fresh()
    x = np.linspace(-1.2, 1.4, 10).astype(dtype)
    unbaked = [fdkit.gradient(f, x, method=method) for _ in range(3)]  # full path, fast, fast (bakes)
    assert api._FAST[(id(f), method, x.dtype.char, x.shape)][9], "the fast call should have baked the kernel"
    baked = fdkit.gradient(f, x, method=method)
    np.testing.assert_array_equal(baked, unbaked[1])
    assert baked.dtype == dtype
    _assert_rosen_der(baked, x, dtype)
    bad = x.copy()
    bad[4] = np.inf
    with pytest.raises(ValueError, match="x must be finite"):
        fdkit.gradient(f, bad, method=method)
    big = x.copy()
    big[2] = dtype(1e80) if dtype is np.float64 else dtype(1e19)  # (x_2^2)^2 overflows: inf/NaN in the result
    with pytest.warns(RuntimeWarning, match="NaN or inf"):
        fdkit.gradient(f, big, method=method)

    @numba.njit
    def writes_its_input(v):
        v[0] = 7.0  # the caller's x must not see it, baked or not
        return np.sum(v * v)

    before = x.copy()
    for _ in range(4):
        fdkit.gradient(writes_its_input, x, method=method)
    assert api._FAST[(id(writes_its_input), method, x.dtype.char, x.shape)][9]
    np.testing.assert_array_equal(x, before)


def test_generated_modules_of_other_digests_are_pruned(tmp_path):
    """An old module of another digest goes with its numba cache files; the current one and a
    young one (maybe another process's, about to be imported) stay."""
    import os
    import time

    from fdkit.engine import entries

    cache = tmp_path / "__pycache__"
    cache.mkdir()
    old = time.time() - 2 * entries.PRUNE_AFTER
    for name in ("fdkit_entries_old", "fdkit_entries_current", "fdkit_entries_young"):
        (tmp_path / f"{name}.py").write_text("# generated\n")
        (cache / f"{name}.grad_serial-75.py311.1.nbc").write_bytes(b"\0")
        (cache / f"{name}.grad_serial-75.py311.nbi").write_bytes(b"\0")
    for name in ("fdkit_entries_old", "fdkit_entries_current"):
        os.utime(tmp_path / f"{name}.py", (old, old))
    (tmp_path / "unrelated.py").write_text("")
    assert entries.prune(tmp_path, "fdkit_entries_current") == ["fdkit_entries_old"]
    left = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted(["fdkit_entries_current.py", "fdkit_entries_young.py", "unrelated.py",
                           "fdkit_entries_current.grad_serial-75.py311.1.nbc", "fdkit_entries_current.grad_serial-75.py311.nbi",
                           "fdkit_entries_young.grad_serial-75.py311.1.nbc", "fdkit_entries_young.grad_serial-75.py311.nbi"])


def test_a_kernel_that_cannot_be_baked_leaves_the_call_alone(monkeypatch):
    from fdkit.engine import runner

    def cannot(*a, **k):
        raise RuntimeError("no baking today")

    monkeypatch.setattr(api, "_FAST_CALL_SECONDS", 1e9)
    monkeypatch.setattr(runner, "bake", cannot)
    f = _fresh()
    x = np.linspace(-1.2, 1.4, 10)
    gs = [fdkit.gradient(f, x, method="forward") for _ in range(4)]
    assert api._FAST[(id(f), "forward", "d", x.shape)][9] is False
    for g in gs:
        _assert_rosen_der(g, x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("keep", [True, False])
def test_the_complex_step_tiers_up_on_trial(monkeypatch, keep, dtype):
    """A complex-step gradient gives way to the kernel specialised on f after INLINE_AFTER; its
    third run is timed against the pointer kernel's best, and the loser goes (TRIAL_MARGIN inf:
    the specialised kernel always wins; 0: it always loses and the pointer kernel comes back)."""
    monkeypatch.setattr(R, "INLINE_AFTER", 1e-12)
    monkeypatch.setattr(R, "TRIAL_MARGIN", np.inf if keep else 0.0)
    f = _fresh()
    x = np.linspace(-1.2, 1.4, 9).astype(dtype)
    gs = [fdkit.gradient(f, x, method="complex", full_output=True).value for _ in range(6)]
    # calls 1-2 through the pointer (the second counted: over the limit), 3-5 specialised (the
    # fifth judged), 6 through the winner
    assert _specialised(f) == 1
    pointer_back = any(p is not None for p in R._POINTERS[f].values())
    assert pointer_back is (not keep)
    assert not R._TRIALS.get(f)
    for g in gs[1:]:
        np.testing.assert_array_equal(g, gs[0])
    _assert_rosen_der(gs[-1], x, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("same_size", [True, False])
def test_the_trial_compares_runs_of_the_same_size(monkeypatch, same_size, dtype):
    """The specialised kernel's trial is judged against the pointer kernel's best time per item
    at the same number of parameters: a gradient's time per item grows with N, so a best from a
    smaller N turned down every specialised kernel at a larger one (in one run of the benchmark
    suite, the complex step at N = 10^4 stayed on the pointer kernel: 481-495 ms against 310-350
    specialised).  TRIAL_MARGIN 0 (any timed run loses): judged at the size the pointer kernel
    ran at, the pointer kernel comes back; at a size it never ran at there is nothing to judge
    against, and the specialised kernel stays."""
    monkeypatch.setattr(R, "INLINE_AFTER", 1e-12)
    monkeypatch.setattr(R, "TRIAL_MARGIN", 0.0)
    f = _fresh()
    small = np.linspace(-1.2, 1.4, 9).astype(dtype)
    large = small if same_size else np.linspace(-1.2, 1.4, 40).astype(dtype)
    for _ in range(2):  # through the pointer (the second counted: over the limit)
        fdkit.gradient(f, small, method="complex", full_output=True)
    # then 3 specialised runs (the third judged) and one through the winner
    gs = [fdkit.gradient(f, large, method="complex", full_output=True).value for _ in range(4)]
    assert _specialised(f) == 1 and not R._TRIALS.get(f)
    pointer_back = any(p is not None for p in R._POINTERS[f].values())
    assert pointer_back is same_size
    for g in gs[1:]:
        np.testing.assert_array_equal(g, gs[0])
    _assert_rosen_der(gs[-1], large, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_fast_path_keeps_the_complex_steps_tiering(monkeypatch, dtype):
    """Repeated default complex-step gradients (the fast path) tier up like the full path's."""
    monkeypatch.setattr(R, "INLINE_AFTER", 1e-12)
    monkeypatch.setattr(R, "TRIAL_MARGIN", np.inf)  # the specialised kernel wins its trial
    monkeypatch.setattr(api, "_FAST_CALL_SECONDS", 0.0)  # no baking in this test
    f = _fresh()
    x = np.linspace(-1.2, 1.4, 9).astype(dtype)
    gs = [fdkit.gradient(f, x, method="complex") for _ in range(6)]
    assert api._FAST[(id(f), "complex", x.dtype.char, x.shape)][6] is False  # run() decides
    assert _specialised(f) == 1 and not R._TRIALS.get(f)
    for g in gs[1:]:
        np.testing.assert_array_equal(g, gs[0])
    _assert_rosen_der(gs[-1], x, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_fast_path_binds_the_shared_kernel_where_the_complex_step_will_be_baked(monkeypatch, dtype):
    """A small x that the fast path will bake (runner.bake: f inlined, the specialisation) runs
    on the shared pointer kernel until then, not through run()'s tiering; a bake that is turned
    down hands the tiering back to run()."""
    monkeypatch.setattr(api, "_FAST_CALL_SECONDS", 1e-15)  # the bake: far away
    f = _fresh()
    x = np.linspace(-1.2, 1.4, 9).astype(dtype)
    gs = [fdkit.gradient(f, x, method="complex") for _ in range(5)]
    rec = api._FAST[(id(f), "complex", x.dtype.char, x.shape)]
    assert callable(rec[6]) and rec[9] is None  # bound to the pointer kernel, not baked yet
    assert _specialised(f) == 0
    monkeypatch.setattr(R, "INLINE_AFTER", 1e-12)  # run() specialises at once from here
    monkeypatch.setattr(api, "_FAST_CALL_SECONDS", 1e9)
    monkeypatch.setattr(api, "_bake", lambda *a: False)  # the bake is turned down
    gs.append(fdkit.gradient(f, x, method="complex"))
    assert rec[9] is False and rec[6] is None
    gs += [fdkit.gradient(f, x, method="complex") for _ in range(2)]
    assert rec[6] is False  # run() decides again, and tiers up
    assert _specialised(f) == 1
    for g in gs:
        _assert_rosen_der(g, x, dtype)
