"""Command line: ``fdkit`` / ``python -m fdkit``.

numba-heavy imports happen inside the handlers, so ``fdkit --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ._progress import Progress


def _machine() -> dict:
    from fdkit.study.harness import machine_info

    return machine_info()


def _names(kind: str, choices) -> "callable":
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(map(repr, bad)) or repr(text)}; choose from {', '.join(choices)}"
            )
        return items

    return parse


def _sizes(text: str) -> list[int]:
    out = []
    for t in text.split(","):
        try:
            n = int(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"sizes must be integers >= 2 separated by commas, got {t!r}") from None
        if n < 2:
            raise argparse.ArgumentTypeError(f"sizes must be integers >= 2 (parameters N), got {n}")
        out.append(n)
    return out


def _largest(text: str) -> tuple[str, int]:
    from fdkit.study.problems import PROBLEMS

    name, _, n = text.partition(":")
    if name not in PROBLEMS or not n.isdigit() or int(n) < 2:
        raise argparse.ArgumentTypeError(f"expected PROBLEM:N with PROBLEM one of {', '.join(PROBLEMS)}, got {text!r}")
    return name, int(n)


def _positive_int(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return k


def _cmd_info(args: argparse.Namespace) -> int:
    import numpy as np

    import fdkit
    from fdkit.methods import METHODS
    from fdkit.stencils import stencils
    from fdkit.steps import RICHARDSON

    rows = []
    for method, n, p, s in stencils():
        rows.append(
            {
                "method": method,
                "n": n,
                "order": p,
                "offsets": ["1j" if isinstance(o, complex) else int(o) for o in s.offsets.tolist()],
                "weights": [str(w) for w in s.exact_weights],
                "evaluations_per_point": s.nfev_per_point,
                "default_h_at_x=1": fdkit.optimal_step(method, 1.0, order=p, n=n),
                "default_h_at_x=1_float32": fdkit.optimal_step(method, 1.0, order=p, n=n, dtype=np.float32),
            }
        )
    table = [{"method": m.name, "quantities": list(m.quantities), "derivatives": list(m.derivatives),
              "complex_input": m.complex_input, "adaptive": m.adaptive, "gradient_cost": m.cost,
              "default_step": m.step_rule, "summary": m.summary} for m in METHODS.values()]
    if args.json:
        print(json.dumps({"fdkit": fdkit.__version__, "machine": _machine(), "methods": table, "stencils": rows,
                          "richardson_policy": RICHARDSON}, indent=2))
        return 0
    print(f"fdkit {fdkit.__version__}")
    for k, v in _machine().items():
        print(f"  {k:22s} {v}")
    print()
    print(f"  {'method':10s} {'gradient':>12s}  quantities; what it is")
    for m in table:
        print(f"  {m['method']:10s} {m['gradient_cost']:>12s}  {', '.join(m['quantities'])}; {m['summary']}")
    print()
    print(f"  {'method':9s} {'n':>1s} {'p':>2s}  {'h (x=1) f64':>11s}  {'h (x=1) f32':>11s}  {'f evals':>7s}  "
          "weights@offsets (units of h)")
    for r in rows:
        if r["method"] == "complex":
            pairs = "Im f(x + i h) / h"
        else:
            pairs = ", ".join(f"{w}@{o:+d}" for o, w in zip(r["offsets"], r["weights"]))
        print(f"  {r['method']:9s} {r['n']:1d} {r['order']:2d}  {r['default_h_at_x=1']:11.3e}  "
              f"{r['default_h_at_x=1_float32']:11.3e}  {r['evaluations_per_point']:7d}  {pairs}")
    print(f"\n  eps = {np.finfo(np.float64).eps:.3e} (float64), {np.finfo(np.float32).eps:.3e} (float32); "
          "default h = eps^(1/(p+n)) * max(1, |x|) with the eps of the working precision (the coarser of "
          "x's dtype and f's result dtype), complex 1e-20 * max(1, |x|)")
    print("  richardson (adaptive, n = 1, 2): central differences at h0 / 2^k extrapolated to h = 0; policy "
          + ", ".join(f"{k}={v:g}" for k, v in RICHARDSON.items()))
    return 0


QUICK_BENCH = dict(problems=["mlp", "rosenbrock"], sizes=[10, 100, 1000], repeat=3, min_time=0.01, budget=1.0)


def _cmd_bench(args: argparse.Namespace) -> int:
    from fdkit.study import harness, report

    out = Path(args.out)
    if args.from_json:
        try:
            data = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
            records = harness.records_from_pytest_benchmark(data)
        except (OSError, ValueError) as exc:
            print(f"fdkit bench: error: --from-json {args.from_json}: {exc}", file=sys.stderr)
            return 2
    else:
        q = QUICK_BENCH if args.quick else {}
        records = harness.run_harness(
            args.problems or q.get("problems", list(harness.PROBLEMS)),
            args.sizes or q.get("sizes", harness.DEFAULT_SIZES),
            ["analytic", *(args.methods or harness.METHODS)],
            parallel=(False,) if args.no_parallel else (False, True),
            repeat=args.repeat or q.get("repeat", 5),
            min_time=q.get("min_time", 0.02),
            budget=q.get("budget", 3.0),
            progress=Progress(),
        )
    paths = report.write_bench(harness.summary(records), out)
    _print_bench(records, harness.fit_slopes(records))
    for p in paths.values():
        print(f"wrote {p}")
    return 0


def _print_bench(records: list[dict], fits: list[dict]) -> None:
    print(f"{'problem':10s} {'N':>6s} {'method':20s} {'par':>3s} {'seconds':>10s} {'nfev':>6s} "
          f"{'cost/f':>9s} {'/analytic':>9s} {'max rel err':>11s} {'first call':>10s}")
    for r in records:
        if r["kind"] == "f":
            continue
        ratio = r["ratio_to_analytical"]
        err = r["max_rel_error"]
        first = r.get("compile_seconds")
        print(f"{r['problem']:10s} {r['n']:6d} {r['method']:20s} {'yes' if r['parallel'] else '':>3s} "
              f"{r['seconds']:10.3e} {'' if r['nfev'] is None else r['nfev']:>6} {r['cost_in_f']:9.4g} "
              f"{'' if ratio is None else format(ratio, '9.4g'):>9s} {'' if err is None else format(err, '11.2e'):>11s} "
              f"{'' if first is None else format(first, '10.3g'):>10s}")
    for f in fits:
        print(f"slope {f['problem']:10s} {_label(f):28s} {f['slope']:5.2f}; extrapolated to N={f['extrapolated_n']:.0e}: "
              f"{f['extrapolated_cost_in_f']:.3g} forward passes, {f['extrapolated_seconds']:.3g} s")


def _label(f: dict) -> str:
    return f["method"] + (" (parallel)" if f["parallel"] else "")


def _load(spec: str, what: str):
    """``module:function`` -> the function (the module is imported from the current directory too)."""
    import importlib

    if ":" not in spec:
        raise ValueError(f"{what} must be given as module:function, got {spec!r}")
    mod, _, name = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load {what} {spec!r}: {exc}") from None
    if not callable(obj):
        raise ValueError(f"{what} {spec!r} is not callable")
    return obj


def _point(text: str, dtype: str):
    """--x: comma-separated numbers, or a .npy file (any shape)."""
    import numpy as np

    if text.endswith(".npy"):
        try:
            x = np.load(text)
        except OSError as exc:
            raise ValueError(f"cannot read --x {text!r}: {exc}") from None
    else:
        try:
            x = np.array([float(t) for t in text.split(",") if t.strip()])
        except ValueError:
            raise ValueError(f"--x must be comma-separated numbers or a .npy file, got {text!r}") from None
    return x.astype(dtype)


def _cmd_check(args: argparse.Namespace) -> int:
    from fdkit.check import check_gradient

    try:
        f = _load(args.f, "f")
        grad = _load(args.grad, "grad")
        x = _point(args.x, args.dtype)
    except ValueError as exc:
        print(f"fdkit check: error: {exc}", file=sys.stderr)
        return 2
    res = check_gradient(f, grad, x, method=args.method, directions=args.directions, taylor=args.taylor,
                         rtol=args.rtol, atol=args.atol)
    res = res if args.rows is None else type(res)(**{**res.__dict__, "rows": args.rows})
    print(res)
    return 0 if res.ok else 1


def _cmd_sweep(args: argparse.Namespace) -> int:
    import dataclasses
    import math

    from fdkit.study import report, sweep

    methods = sweep.SWEEP_METHODS
    if args.methods:
        methods = [m for m in sweep.SWEEP_METHODS if m[0] in args.methods]
    try:
        if args.function and ":" in args.function:
            if not args.derivative:
                raise ValueError("a user function (module:function) needs --derivative module:function "
                                 "or --reference VALUE")
            f = _load(args.function, "--function")
            try:
                value = float(args.derivative)  # a reference value f'(x) ...
            except ValueError:
                fprime = _load(args.derivative, "--derivative")  # ... or module:function
            else:
                if not math.isfinite(value):
                    raise ValueError(f"--derivative must be a finite value or module:function, got {value}")
                fprime = lambda x: value  # noqa: E731
            if args.x is None:
                raise ValueError("a user function needs --x")
            fn = sweep.SweepFunction(args.function, f, lambda x: float(fprime(x)), float(args.x), args.function)
        else:
            fns = sweep.builtin_functions()
            name = args.function or "squire_trapp"
            if name not in fns:
                raise ValueError(f"unknown function {name!r}; choose one of {', '.join(fns)} or give module:function")
            fn = fns[name]
            if args.x is not None:
                if name == "mlp_weight":
                    raise ValueError("mlp_weight is swept at its initial weight; --x cannot move it")
                fn = dataclasses.replace(fn, x=float(args.x))
        if not math.isfinite(fn.x):
            raise ValueError(f"x must be finite, got {fn.x}")
        result = sweep.run_sweep(fn, methods=methods, hmin=args.hmin, hmax=args.hmax, dtype=args.dtype)
    except (ValueError, TypeError) as exc:
        print(f"fdkit sweep: error: {exc}", file=sys.stderr)
        return 2
    paths = report.write_sweeps([result], Path(args.out))
    print(f"{result['title']} at x = {result['x']:.6g} ({result['dtype']}), f'(x) = {result['exact']:.15g}")
    print(f"  {'method':16s} {'model h*':>10s} {'model err':>10s} {'measured h*':>11s} {'min err':>9s} "
          f"{'default h':>10s} {'err there':>9s}")
    for r in result["table"]:
        def g(k, spec=".2e"):
            return "-" if r.get(k) is None else format(r[k], spec)
        print(f"  {r['label']:16s} {g('model_h_opt'):>10s} {g('model_min_rel_error', '.1e'):>10s} "
              f"{g('measured_h_opt'):>11s} {g('measured_min_rel_error', '.1e'):>9s} {g('default_h'):>10s} "
              f"{g('default_rel_error', '.1e'):>9s}")
    for p in paths.values():
        print(f"wrote {p}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from fdkit.study import report

    paths = report.run_report(Path(args.out), quick=args.quick, problems=args.problems, sizes=args.sizes,
                              largest=args.largest,
                              progress=Progress())
    print(f"wrote {len(paths)} files; open {paths['index']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from fdkit import __version__

    parser = argparse.ArgumentParser(
        prog="fdkit",
        description="fdkit: vectorised, numba-jitted finite-difference and complex-step derivatives.",
    )
    parser.add_argument("--version", action="version", version=f"fdkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser(
        "info",
        help="the stencils (exact weights, default steps, cost) and this machine's versions",
        description="Print every stencil fdkit offers with its exact weights, default step and "
        "evaluations per point, and the versions and threading layer in use.",
    )
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=_cmd_info)

    from fdkit.methods import METHODS as TABLE
    from fdkit.study.harness import DEFAULT_SIZES, METHODS
    from fdkit.study.problems import PROBLEMS

    bench = sub.add_parser(
        "bench",
        help="time finite-difference gradients against analytical ones as N grows (the 1+N story)",
        description="For each problem and size N, time one evaluation of f, the analytical gradient, "
        "fdkit's forward/central/complex gradients (serial and parallel) and scipy's approx_fprime "
        "and approx_derivative (when scipy is installed); write bench.csv, bench.json, cost_vs_n.png "
        "and time_vs_n.png. Problems: " + "; ".join(f"{k}: {p.description}" for k, p in PROBLEMS.items()),
    )
    bench.add_argument("--problems", type=_names("problem", list(PROBLEMS)), default=None,
                       help=f"comma-separated problems (default: all, {','.join(PROBLEMS)}; --quick: mlp,rosenbrock)")
    bench.add_argument("--sizes", type=_sizes, default=None,
                       help=f"comma-separated parameter counts N (default {','.join(map(str, DEFAULT_SIZES))}; "
                       "--quick: 10,100,1000)")
    bench.add_argument("--methods", type=_names("method", [m for m in METHODS if m != "analytic"]), default=None,
                       help="comma-separated methods (default: all of " + ",".join(m for m in METHODS if m != "analytic")
                       + "); f and the analytical gradient are always timed")
    bench.add_argument("--repeat", type=_positive_int, default=None,
                       help="timed samples per cell, median reported (default 5; --quick: 3)")
    bench.add_argument("--no-parallel", action="store_true", help="skip fdkit's parallel=True variants")
    bench.add_argument("--quick", action="store_true",
                       help="mlp and rosenbrock at N = 10, 100, 1000 with 3 short samples: under a minute")
    bench.add_argument("--out", default=os.path.join("reports", "bench"), help="output directory (default reports/bench)")
    bench.add_argument("--from-json", metavar="PYTEST_BENCHMARK_JSON", default=None,
                       help="draw the tables and figures from a pytest-benchmark JSON file of "
                       "benchmarks/test_bench_problems.py instead of timing")
    bench.set_defaults(func=_cmd_bench)

    from fdkit.study.harness import QUICK_SIZES

    sweep = sub.add_parser(
        "sweep",
        help="relative error against the step h for every stencil: the truncation/rounding V",
        description="Evaluate forward/backward (p=1, 2), central (p=2, 4, 6) and complex step at each h of "
        "a log grid (8 points per decade; the complex step continues to 1e-300), beside the error model "
        "(truncation C h^p, rounding eps |f| sum|w| / h), its optimum, the measured optimum and fdkit's "
        "default step; and the adaptive richardson method against its first step. Writes sweep.csv, sweep.json and the PNGs. Built-in functions: squire_trapp "
        "(e^x / sqrt(sin^3 x + cos^3 x) at 1.5), exp, sin, 2x^2, 3x^2+5x, 1/x, mlp_weight.",
    )
    sweep.add_argument("--function", default=None,
                       help="a built-in name (default squire_trapp) or module:function taking numpy arrays")
    sweep.add_argument("--derivative", default=None,
                       help="for a user function: its derivative as module:function, or the reference value f'(x)")
    sweep.add_argument("--x", type=float, default=None, help="the point (each built-in has its own default)")
    sweep.add_argument("--methods", type=_names("method", list(TABLE)), default=None,
                       help="comma-separated subset of " + ",".join(TABLE) + " (default: all; "
                            "richardson's curve is its error against the first step of its sequence)")
    sweep.add_argument("--hmin", type=float, default=1e-16, help="smallest step of the grid (default 1e-16)")
    sweep.add_argument("--hmax", type=float, default=1.0, help="largest step of the grid (default 1)")
    sweep.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                       help="precision of x, the evaluations, the model's eps and fdkit's default steps "
                            "(default float64)")
    sweep.add_argument("--out", default=os.path.join("reports", "sweep"), help="output directory (default reports/sweep)")
    sweep.set_defaults(func=_cmd_sweep)

    chk = sub.add_parser(
        "check",
        help="check an analytical gradient against finite differences, element by element",
        description="Compare grad(x) with finite differences of f at x: each element agrees when the "
        "difference is within a small multiple of its Richardson error estimate plus the rounding floor "
        "(no tolerance to tune), or is unreliable where f is not smooth at x (the right derivative "
        "differs from the central one). Prints the worst elements and a verdict; exit status 0 when "
        "no element disagrees, 1 when one does, 2 on bad input.",
    )
    chk.add_argument("f", help="the scalar function as module:function (imported from the current directory too)")
    chk.add_argument("grad", help="its analytical gradient as module:function")
    chk.add_argument("--x", required=True, help="the point: comma-separated numbers, or a .npy file (any shape)")
    chk.add_argument("--dtype", choices=["float64", "float32"], default="float64", help="precision of x (default float64)")
    chk.add_argument("--method", choices=["richardson", "central", "forward", "backward", "complex"],
                     default="richardson", help="the finite differences (default richardson)")
    chk.add_argument("--directions", type=_positive_int, default=None,
                     help="check this many random directional derivatives instead of every partial (large N)")
    chk.add_argument("--taylor", action="store_true", help="also run the Taylor test (rate 2 for a right gradient)")
    chk.add_argument("--rtol", type=float, default=None, help="a tolerance of your own instead of the estimate")
    chk.add_argument("--atol", type=float, default=None, help="an absolute tolerance of your own")
    chk.add_argument("--rows", type=_positive_int, default=None, help="rows of the table of worst elements (default 8)")
    chk.set_defaults(func=_cmd_check)

    rep = sub.add_parser(
        "report",
        help="run the sweeps and the harness and write a self-contained index.html with every figure and table",
        description="The sweep on every built-in function (and the complex-step test function in float32) "
        "and the harness on mlp and rosenbrock, written under OUT (sweep/, bench/) with a self-contained "
        "OUT/index.html (figures inlined; works offline).",
    )
    rep.add_argument("--out", default="reports", help="output directory (default reports)")
    rep.add_argument("--quick", action="store_true", help="3 short samples per harness cell instead of 5")
    rep.add_argument("--problems", type=_names("problem", list(PROBLEMS)), default=None,
                     help="harness problems (default mlp,rosenbrock)")
    rep.add_argument("--sizes", type=_sizes, default=None,
                     help=f"harness sizes N (default {','.join(map(str, QUICK_SIZES))}, the quick sizes)")
    rep.add_argument("--largest", type=_largest, default=None, metavar="PROBLEM:N",
                     help="also measure PROBLEM at one large N with the forward gradient (serial and parallel) and "
                          "scipy's approx_fprime, one sample each, so that the largest point of the cost table is "
                          "measured rather than extrapolated (the reference report: mlp:100000)")
    rep.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
