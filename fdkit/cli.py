"""Command line: ``fdkit`` / ``python -m fdkit``.

numba-heavy imports happen inside the handlers, so ``fdkit --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys


def _machine() -> dict:
    import numba
    import numpy as np

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": numba.config.THREADING_LAYER,
    }


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
