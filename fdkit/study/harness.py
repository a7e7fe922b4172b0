"""The 1+N harness: what a finite-difference gradient costs against an analytical one.

For each problem of :mod:`fdkit.study.problems` and each size N, :func:`run_harness` times one
evaluation of f (``t_f``), the analytical gradient and every finite-difference method
(serial and ``parallel=True``), plus the scipy peers when scipy is installed, and returns
plain records (dicts, JSON-ready; no plotting here):

``problem, n, method, parallel, kind, seconds, seconds_min, repeats, nfev, cost_in_f,
ratio_to_analytical, max_rel_error, t_f``

- ``seconds`` is the median over ``repeats`` samples of the time per call, after a warm-up
  that compiles everything on a small instance (compilation is never timed). A sample is at
  least ``min_time`` long (fast calls are looped) and a cell stops early once it has used
  ``budget`` seconds, with at least one sample.
- ``t_f`` and the analytical gradient are timed in a jitted loop that calls them ``k``
  times, so they measure the forward and backward passes, not Python's call overhead.
  fdkit's gradients and the peers are timed as a user calls them, from Python.
- ``method="forward.batched-numpy"`` (kind ``batched``): fdkit's forward gradient of the
  problem's batched numpy loss (``Problem.f_batch``, ``vectorized=True``), for the problems that
  have one: the numpy f evaluated in stacks, beside the peers that call the same numpy loss
  point by point.
- ``method="f_np"`` (with the peers) is one call of the numpy twin of f from Python: the
  peers evaluate that f, so their times follow its speed, not fdkit's.
- ``cost_in_f = seconds / t_f``: the cost in forward passes of the jitted f. ``ratio_to_analytical =
  seconds / seconds(analytic)`` at the same N.
- ``nfev`` is counted: fdkit returns it; the peers' f is wrapped in a counter for one
  untimed call.
- ``max_rel_error = max|g - g_analytic| / max|g_analytic|``.
- ``compile_seconds`` (fdkit's cells): the first call of that method in the process, on the
  warm-up's small instance (N = 8) with f already compiled by the timing loops: what compiling
  the kernel, or loading it from numba's disk cache, costs before the first answer.

:func:`fit_slopes` fits ``log(cost_in_f)`` against ``log N`` per method (about 1 for finite
differences, about 0 for the analytical gradient) and extrapolates, as an extrapolation, to
N = 10^6 with ``t_f`` extrapolated from its own fit.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from typing import Callable, Iterable

import numba
import numpy as np

from .. import api
from ..engine import threads as TH
from ..methods import FIXED
from ..methods import METHODS as TABLE
from .problems import PROBLEMS, Problem, get_problem

#: fdkit's gradient methods the harness times, from the method table: every fixed-stencil method
#: of gradient except backward (forward's mirror image, with the same cost and time)
FD_METHODS = tuple(m for m in FIXED if m != "backward" and "gradient" in TABLE[m].quantities)
PEER_METHODS = ("scipy.approx_fprime", "scipy.2-point", "scipy.3-point", "scipy.cs")
METHODS = ("analytic", *FD_METHODS, *PEER_METHODS)
#: fdkit's forward gradient of the problem's batched numpy loss (``vectorized=True``), timed with
#: the forward method where a problem has one (``Problem.f_batch``)
BATCHED = "forward.batched-numpy"
DEFAULT_SIZES = (10, 100, 1000, 10000)
QUICK_SIZES = (10, 100, 1000)
EXTRAPOLATE_N = 10**6
COLUMNS = (
    "problem", "n", "method", "parallel", "kind", "seconds", "seconds_min", "repeats", "nfev",
    "cost_in_f", "ratio_to_analytical", "max_rel_error", "t_f", "compile_seconds",
)


# --- jitted timing loops: f and grad are inlined; x[0] is rewritten with a value that depends
# on the result (x0 + 0*s, equal to x0), so no evaluation can be hoisted out of the loop
@numba.njit
def repeat_f(f, x, k):
    """Call ``f(x)`` k times in compiled code; returns the sum of the values."""
    x0 = x[0]
    s = 0.0
    for _ in range(k):
        s += f(x)
        x[0] = x0 + 0.0 * s
    x[0] = x0
    return s


@numba.njit
def repeat_grad(grad, x, k):
    """Call ``grad(x)`` k times in compiled code; returns the sum of the first components."""
    x0 = x[0]
    s = 0.0
    for _ in range(k):
        g = grad(x)
        s += g[0]
        x[0] = x0 + 0.0 * s
    x[0] = x0
    return s


def machine_info() -> dict:
    """CPU, cores, numba threading, library versions and the date (UTC)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        layer = numba.threading_layer()  # only known once a parallel kernel has run
    except ValueError:
        layer = f"not yet chosen (config: {numba.config.THREADING_LAYER})"
    import matplotlib

    from .. import __version__

    info = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "fdkit": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "matplotlib": matplotlib.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": layer,
    }
    try:
        import scipy

        info["scipy"] = scipy.__version__
    except ImportError:
        info["scipy"] = None
    info["blas"] = _blas_info()
    info["idle_threads"] = (f"OpenBLAS's stopped before long parallel runs: {TH.QUIET_BLAS}; numba's OpenMP "
                            f"paused after them: {'on' if TH.REST_OPENMP else 'off'} (fdkit.engine.threads)")
    return info


def _blas_info() -> str:
    """The BLAS libraries loaded (threadpoolctl's view): library, version, threading, threads."""
    libs = TH.libraries()
    if libs is None:
        return "unknown (threadpoolctl not installed: the threads extra)"
    return "; ".join(f"{c.internal_api} {c.version} ({getattr(c, 'threading_layer', None)}, {c.num_threads} threads)"
                     for c in libs if c.user_api == "blas") or "none loaded"


def _timed(call: Callable[[], object]) -> tuple[object, float]:
    """call()'s result and the seconds it took."""
    t0 = time.perf_counter()
    out = call()
    return out, time.perf_counter() - t0


def _time(run: Callable[[int], object], repeat: int, min_time: float, budget: float,
          once: float | None = None) -> tuple[float, float, int]:
    """Median and minimum seconds per call of ``run(k)`` (k calls), and the samples taken.
    ``once``: a call already timed (the one that gave the counted result); where one sample is
    all that is asked (``repeat == 1``) and it is long enough, it is that sample: a cell of a
    large N (``fdkit report --largest``) then costs one gradient, not two."""
    if once is not None and repeat == 1 and once >= min_time:
        return once, once, 1
    t0 = time.perf_counter()
    run(1)
    first = time.perf_counter() - t0
    samples = []
    if first >= min_time:
        number = 1
        samples.append(first)
    else:
        number = min(10**7, max(1, math.ceil(min_time / max(first, 1e-9))))
    start = time.perf_counter()
    while len(samples) < repeat and (not samples or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        run(number)
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples), min(samples), len(samples)


def _loop(fn: Callable[[], object]) -> Callable[[int], None]:
    def run(k: int) -> None:
        for _ in range(k):
            fn()

    return run


def _peer(method: str, f_np: Callable, x: np.ndarray) -> Callable[[], np.ndarray]:
    from scipy.optimize import approx_fprime
    from scipy.optimize._numdiff import approx_derivative  # scipy's engine behind approx_fprime, not exported

    if method == "scipy.approx_fprime":
        return lambda: approx_fprime(x, f_np)
    scheme = method.split(".", 1)[1]
    return lambda: approx_derivative(f_np, x, method=scheme)


def _counted(f: Callable) -> tuple[Callable, list]:
    count = [0]

    def g(x):
        count[0] += 1
        return f(x)

    return g, count


def check_sizes(sizes: Iterable) -> tuple[int, ...]:
    """Sizes as positive ints >= 2, or ValueError naming the bad one."""
    out = []
    for s in sizes:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 2:
            raise ValueError(f"sizes must be integers >= 2 (parameters N), got {s!r}")
        out.append(int(s))
    if not out:
        raise ValueError("sizes must name at least one N")
    return tuple(out)


def check_methods(methods: Iterable[str]) -> tuple[str, ...]:
    methods = tuple(methods)
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    return methods


def have_scipy() -> bool:
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:
        return False
    return True


def run_harness(
    problems: Iterable[str] = ("mlp",),
    sizes: Iterable[int] = DEFAULT_SIZES,
    methods: Iterable[str] = METHODS,
    *,
    parallel: Iterable[bool] = (False, True),
    repeat: int = 5,
    min_time: float = 0.02,
    budget: float = 5.0,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[dict]:
    """Time every (problem, N, method, parallel) and return one record per cell.

    Parameters
    ----------
    problems : iterable of str
        Names from :data:`fdkit.study.problems.PROBLEMS`.
    sizes : iterable of int
        Requested parameter counts N (``mlp`` rounds each to a whole hidden layer).
    methods : iterable of str
        From :data:`METHODS`. ``analytic`` is always timed (the ratios need it), and so is f.
        The ``scipy.*`` peers are skipped when scipy is not installed.
    parallel : iterable of bool
        Which of fdkit's variants to time (``parallel=False`` and/or ``True``).
    repeat : int
        Samples per cell; the median is reported.
    min_time, budget : float
        Seconds: the shortest sample (fast calls are looped) and the most a cell may use
        before it stops sampling (it always keeps at least one sample).
    progress : callable, optional
        ``progress(done, total, label)`` after every cell.

    Returns
    -------
    list of dict
        Records with the keys in :data:`COLUMNS`.
    """
    probs = [get_problem(p) for p in problems]
    sizes = check_sizes(sizes)
    methods = check_methods(methods)
    if not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be a positive integer, got {repeat!r}")
    parallel = tuple(bool(p) for p in parallel)
    fd = [m for m in methods if m in FD_METHODS]
    peers = [m for m in methods if m in PEER_METHODS] if have_scipy() else []
    per_size = 2 + len(fd) * len(parallel) + len(peers)  # f, analytic, fdkit, peers (f_np uncounted)
    batched = sum(p.f_batch is not None for p in probs) if "forward" in fd else 0
    total = len(probs) * len(sizes) * per_size + batched * len(sizes)
    done = 0
    records: list[dict] = []

    def tick(label: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total, label)

    for prob in probs:
        first = _warm_up(prob, fd, parallel)
        for n in sizes:
            x = prob.x0(n)
            N = x.size
            exact = prob.grad(x)
            scale = float(np.max(np.abs(exact))) or 1.0
            base = dict(problem=prob.name, n=N)

            xc = x.copy()
            # t_f divides every cost: sample it longer and more often than the other cells
            t_f, t_f_min, reps = _time(lambda k: repeat_f(prob.f, xc, k), 3 * repeat, 5 * min_time, budget)
            records.append(dict(base, method="f", parallel=False, kind="f", seconds=t_f, seconds_min=t_f_min,
                                repeats=reps, nfev=1, cost_in_f=1.0, ratio_to_analytical=None,
                                max_rel_error=None, t_f=t_f))
            tick(f"{prob.name} N={N} f")

            t_a, t_a_min, reps = _time(lambda k: repeat_grad(prob.grad, xc, k), repeat, min_time, budget)
            records.append(dict(base, method="analytic", parallel=False, kind="analytic", seconds=t_a,
                                seconds_min=t_a_min, repeats=reps, nfev=None, cost_in_f=t_a / t_f,
                                ratio_to_analytical=1.0, max_rel_error=0.0, t_f=t_f))
            tick(f"{prob.name} N={N} analytic")

            for method in fd:
                for par in parallel:
                    r, once = _timed(lambda: api.gradient(prob.f, x, method=method, parallel=par, full_output=True))
                    med, mn, reps = _time(
                        _loop(lambda: api.gradient(prob.f, x, method=method, parallel=par)),
                        repeat, min_time, budget, once,
                    )
                    records.append(dict(base, method=method, parallel=par, kind="fdkit", seconds=med,
                                        seconds_min=mn, repeats=reps, nfev=r.nfev, cost_in_f=med / t_f,
                                        ratio_to_analytical=med / t_a,
                                        max_rel_error=float(np.max(np.abs(r.value - exact))) / scale, t_f=t_f,
                                        compile_seconds=first[(method, par)]))
                    tick(f"{prob.name} N={N} {method}{' parallel' if par else ''}")

            if prob.f_batch is not None and "forward" in fd:  # the same loss in numpy, batched
                r, once = _timed(lambda: api.gradient(prob.f_batch, x, method="forward", vectorized=True,
                                                      full_output=True, progress=False))
                med, mn, reps = _time(
                    _loop(lambda: api.gradient(prob.f_batch, x, method="forward", vectorized=True, progress=False)),
                    repeat, min_time, budget, once)
                records.append(dict(base, method=BATCHED, parallel=False, kind="batched", seconds=med,
                                    seconds_min=mn, repeats=reps, nfev=r.nfev, cost_in_f=med / t_f,
                                    ratio_to_analytical=med / t_a,
                                    max_rel_error=float(np.max(np.abs(r.value - exact))) / scale, t_f=t_f))
                tick(f"{prob.name} N={N} {BATCHED}")
            if peers:  # the peers' own f, called from Python: their ratios depend on it
                med, mn, reps = _time(_loop(lambda: prob.f_np(x)), repeat, min_time, budget)
                records.append(dict(base, method="f_np", parallel=False, kind="f", seconds=med, seconds_min=mn,
                                    repeats=reps, nfev=1, cost_in_f=med / t_f, ratio_to_analytical=None,
                                    max_rel_error=None, t_f=t_f))
            for method in peers:
                counted, count = _counted(prob.f_np)
                g, once = _timed(_peer(method, counted, x))
                g = np.asarray(g, dtype=float).reshape(N)
                med, mn, reps = _time(_loop(_peer(method, prob.f_np, x)), repeat, min_time, budget, once)
                records.append(dict(base, method=method, parallel=False, kind="peer", seconds=med,
                                    seconds_min=mn, repeats=reps, nfev=count[0], cost_in_f=med / t_f,
                                    ratio_to_analytical=med / t_a,
                                    max_rel_error=float(np.max(np.abs(g - exact))) / scale, t_f=t_f))
                tick(f"{prob.name} N={N} {method}")
    for r in records:
        r.setdefault("compile_seconds", None)
    return records


def _warm_up(prob: Problem, fd: list[str], parallel: tuple[bool, ...]) -> dict:
    """Compile f, grad, the timing loops and every kernel on a small instance; returns the
    seconds of each (method, parallel)'s first gradient (its kernel compiled or loaded)."""
    x = prob.x0(8)
    repeat_f(prob.f, x.copy(), 1)
    repeat_grad(prob.grad, x.copy(), 1)
    first = {}
    for method in fd:
        for par in parallel:
            first[(method, par)] = _timed(lambda: api.gradient(prob.f, x, method=method, parallel=par))[1]
    return first


def _fit(ns: list[float], ys: list[float]) -> tuple[float, float]:
    slope, intercept = np.polyfit(np.log(ns), np.log(ys), 1)
    return float(slope), float(intercept)


def _cost_model(rows: list[dict], k_min: float) -> tuple[float, float]:
    """(overhead seconds, k) of ``seconds = overhead + k * nfev * t_f`` fitted to rows by least
    squares in relative terms, with k >= k_min and overhead >= 0."""
    x = np.array([r["nfev"] * r["t_f"] for r in rows], dtype=float)
    y = np.array([r["seconds"] for r in rows], dtype=float)
    w = 1.0 / y
    A = np.stack([w, w * x], axis=1)
    (o, k), *_ = np.linalg.lstsq(A, w * y, rcond=None)
    if k < k_min or o < 0:  # the bounds: refit the other parameter with this one on its bound
        k = max(k, k_min)
        o = max(0.0, float(np.median(y - k * x)))
        k = max(k_min, float(np.median((y - o) / x)))
    return float(o), float(k)


def fit_slopes(records: list[dict], *, min_n: int = 1000, extrapolate_n: int = EXTRAPOLATE_N) -> list[dict]:
    """Per (problem, method, parallel): the slope of log(cost_in_f) against log N, and the cost at
    ``extrapolate_n`` from a model that cannot go below the counted evaluations.

    The model is ``seconds(N) = overhead + k * nfev(N) * t_f(N)``: ``nfev(N)`` the evaluations the
    method makes (linear in N, from the two largest sizes measured: N + 1, 2N, ...), ``t_f(N)``
    one evaluation of f (a power law through the two largest sizes), ``overhead`` the per-call
    cost and ``k`` the cost of one evaluation inside the method in units of t_f, fitted to every
    size, with k >= 1 serially and k >= 1/cores in parallel (no method evaluates f faster than f
    runs) and overhead >= 0.  A line fitted to log cost at small N, where a call's microseconds
    of overhead dominate, would have slopes below 1 and predict that a method gets cheaper per
    evaluation as N grows; this model does not.  The analytical gradient (no nfev) is a fixed
    multiple of t_f, from its largest size.  The slope is kept as the measured trend (sizes
    N >= ``min_n`` when there are at least two, else the two largest).
    """
    out = []
    keys = sorted({(r["problem"], r["method"], r["parallel"]) for r in records if r["kind"] != "f"},
                  key=lambda k: (k[0], METHODS.index(k[1]) if k[1] in METHODS else 99, k[2]))
    cores = os.cpu_count() or 1
    for problem, method, par in keys:
        rows = sorted((r for r in records if (r["problem"], r["method"], r["parallel"]) == (problem, method, par)),
                      key=lambda r: r["n"])
        rows = [r for r in rows if r["cost_in_f"] and r["cost_in_f"] > 0 and r.get("t_f")]
        big = [r for r in rows if r["n"] >= min_n]
        use = big if len(big) >= 2 else rows[-2:]
        if len(use) < 2:
            continue
        slope, intercept = _fit([r["n"] for r in use], [r["cost_in_f"] for r in use])
        tf_slope, tf_icpt = _fit([r["n"] for r in use], [r["t_f"] for r in use])
        t_f = math.exp(tf_icpt) * extrapolate_n**tf_slope
        n1, n2 = rows[-2], rows[-1]
        if all(r.get("nfev") for r in rows):
            b = (n2["nfev"] - n1["nfev"]) / (n2["n"] - n1["n"])
            nfev = n2["nfev"] + b * (extrapolate_n - n2["n"])
            overhead, k = _cost_model(rows, (1.0 / cores) if par else 1.0)
            seconds = overhead + k * nfev * t_f
        else:  # the analytical gradient: a fixed multiple of t_f
            nfev, overhead = None, 0.0
            k = n2["seconds"] / n2["t_f"]
            seconds = k * t_f
        out.append(
            dict(problem=problem, method=method, parallel=par, slope=slope, intercept=intercept,
                 fit_sizes=[r["n"] for r in use], extrapolated_n=extrapolate_n, model_k=k,
                 model_overhead=overhead, extrapolated_nfev=nfev, extrapolated_cost_in_f=seconds / t_f,
                 extrapolated_t_f=t_f, extrapolated_seconds=seconds, largest_measured_n=n2["n"],
                 note="extrapolation from the model overhead + k nfev(N) t_f(N), not a measurement")
        )
    return out


def records_from_pytest_benchmark(data: dict) -> list[dict]:
    """Harness records from a pytest-benchmark JSON run of ``benchmarks/test_bench_problems.py``.

    Uses the benchmarks whose ``extra_info`` names a ``problem``: ``kind`` (f, analytic,
    fdkit, peer), ``method``, ``n``, ``parallel``, ``nfev``, ``max_rel_error`` and ``calls``
    (calls per timed round, for the jitted loops). ``seconds`` is the median per call.
    """
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError("not a pytest-benchmark JSON file: no 'benchmarks' list")
    rows = []
    for b in data["benchmarks"]:
        info = b.get("extra_info") or {}
        if "problem" not in info or "kind" not in info:
            continue
        calls = info.get("calls", 1)
        st = b["stats"]
        rows.append(dict(problem=info["problem"], n=int(info["n"]), method=info["method"],
                         parallel=bool(info.get("parallel", False)), kind=info["kind"],
                         seconds=st["median"] / calls, seconds_min=st["min"] / calls, repeats=st["rounds"],
                         nfev=info.get("nfev"), max_rel_error=info.get("max_rel_error")))
    if not rows:
        raise ValueError("the pytest-benchmark JSON holds no harness rows (extra_info without 'problem'); "
                         "run: pytest benchmarks/test_bench_problems.py --benchmark-only --benchmark-json=FILE")
    t_f = {(r["problem"], r["n"]): r["seconds"] for r in rows if r["method"] == "f"}
    t_a = {(r["problem"], r["n"]): r["seconds"] for r in rows if r["method"] == "analytic"}
    out = []
    for r in rows:
        key = (r["problem"], r["n"])
        if key not in t_f:
            continue
        r["t_f"] = t_f[key]
        r["cost_in_f"] = r["seconds"] / t_f[key]
        r["ratio_to_analytical"] = r["seconds"] / t_a[key] if key in t_a and r["kind"] != "f" else None
        out.append({c: r.get(c) for c in COLUMNS})
    return out


def summary(records: list[dict]) -> dict:
    """The harness's run as one JSON-ready dict: records, fits and the machine."""
    return {"columns": list(COLUMNS), "records": records, "fits": fit_slopes(records), "machine": machine_info()}


__all__ = [
    "run_harness", "fit_slopes", "summary", "records_from_pytest_benchmark", "machine_info", "repeat_f", "repeat_grad",
    "METHODS", "FD_METHODS", "PEER_METHODS", "DEFAULT_SIZES", "QUICK_SIZES", "COLUMNS", "PROBLEMS",
]
