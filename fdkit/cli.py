"""Command line: ``fdkit`` / ``python -m fdkit``.

numba-heavy imports happen inside the handlers, so ``fdkit --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _machine() -> dict:
    from fdkit.harness import machine_info

    return machine_info()


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, stream=None, width: int = 28):
        self.stream = stream if stream is not None else sys.stderr
        self.active = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.width = width
        self.t0 = time.perf_counter()

    def __call__(self, done: int, total: int, label: str) -> None:
        if not self.active:
            return
        frac = done / total if total else 1.0
        bar = "#" * int(frac * self.width)
        line = f"\r[{bar:<{self.width}s}] {done}/{total} {time.perf_counter() - self.t0:6.1f}s {label[:40]:<40s}"
        self.stream.write(line)
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


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
    from fdkit.stencils import METHODS, get_stencil

    rows = []
    for method, by_n in METHODS.items():
        for n, orders in by_n.items():
            for p in orders:
                s = get_stencil(method, p, n)
                rows.append(
                    {
                        "method": method,
                        "n": n,
                        "order": p,
                        "offsets": [int(o) for o in s.offsets],
                        "weights": [str(w) for w in s.exact_weights],
                        "evaluations_per_point": s.nfev_per_point,
                        "default_h_at_x=1": fdkit.optimal_step(method, 1.0, order=p, n=n),
                    }
                )
    if args.json:
        print(json.dumps({"fdkit": fdkit.__version__, "machine": _machine(), "stencils": rows}, indent=2))
        return 0
    print(f"fdkit {fdkit.__version__}")
    for k, v in _machine().items():
        print(f"  {k:22s} {v}")
    print()
    print(f"  {'method':9s} {'n':>1s} {'p':>2s}  {'default h (x=1)':>15s}  {'f evals':>7s}  weights@offsets (units of h)")
    for r in rows:
        pairs = ", ".join(f"{w}@{o:+d}" for o, w in zip(r["offsets"], r["weights"]))
        if r["method"] == "complex":
            pairs = "Im f(x + i h) / h"
        print(f"  {r['method']:9s} {r['n']:1d} {r['order']:2d}  {r['default_h_at_x=1']:15.3e}  {r['evaluations_per_point']:7d}  {pairs}")
    print(f"\n  eps = {np.finfo(float).eps:.3e}; default h = eps^(1/(p+n)) * max(1, |x|), complex 1e-20 * max(1, |x|)")
    return 0


QUICK_BENCH = dict(problems=["mlp", "rosenbrock"], sizes=[10, 100, 1000], repeat=3, min_time=0.01, budget=1.0)


def _cmd_bench(args: argparse.Namespace) -> int:
    from fdkit import harness, report

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
          f"{'cost/f':>9s} {'/analytic':>9s} {'max rel err':>11s}")
    for r in records:
        if r["kind"] == "f":
            continue
        ratio = r["ratio_to_analytical"]
        err = r["max_rel_error"]
        print(f"{r['problem']:10s} {r['n']:6d} {r['method']:20s} {'yes' if r['parallel'] else '':>3s} "
              f"{r['seconds']:10.3e} {'' if r['nfev'] is None else r['nfev']:>6} {r['cost_in_f']:9.4g} "
              f"{'' if ratio is None else format(ratio, '9.4g'):>9s} {'' if err is None else format(err, '11.2e'):>11s}")
    for f in fits:
        print(f"slope {f['problem']:10s} {_label(f):28s} {f['slope']:5.2f}; extrapolated to N={f['extrapolated_n']:.0e}: "
              f"{f['extrapolated_cost_in_f']:.3g} forward passes, {f['extrapolated_seconds']:.3g} s")


def _label(f: dict) -> str:
    return f["method"] + (" (parallel)" if f["parallel"] else "")


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

    from fdkit.harness import DEFAULT_SIZES, METHODS
    from fdkit.problems import PROBLEMS

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
