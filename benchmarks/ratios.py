"""Print the within-run ratios of a pytest-benchmark JSON file written by this suite.

    python benchmarks/ratios.py reports/bench.json [--strip-samples]

``--strip-samples`` first rewrites the file without the raw timings that ``--benchmark-json``
always stores (tens of MB for the microsecond benchmarks); the statistics stay.

Ratios use the minimum time of each benchmark (the least disturbed sample on a noisy machine)
and, in brackets, the median.
"""

import json
import sys
from collections import defaultdict


def load(path):
    with open(path) as fh:
        data = json.load(fh)
    by_group = defaultdict(dict)
    for b in data["benchmarks"]:
        name = b["name"].split("[", 1)[-1].rstrip("]") if "[" in b["name"] else b["name"]
        key = b["name"].split("[")[0].replace("test_", "") + ":" + name
        by_group[b["group"]][key] = b
    return by_group


def ratio(a, b):
    return f"{a['stats']['min'] / b['stats']['min']:.2f} ({a['stats']['median'] / b['stats']['median']:.2f})"


def main(path):
    groups = load(path)
    for n in (10, 100, 1000, 10000):
        g = groups.get(f"rosen-gradient-n{n}", {})
        floor = g.get(f"floor:{n}")
        if not floor:
            continue
        print(f"Rosenbrock N={n}: floor {floor['stats']['min'] * 1e6:.1f} us")
        for method in ("forward", "central", "complex"):
            ser = g.get(f"fdkit_gradient:{n}-{method}-serial")
            par = g.get(f"fdkit_gradient:{n}-{method}-parallel")
            if not ser:  # a run of part of the suite
                continue
            line = f"  {method:8s} / floor = {ratio(ser, floor)}"
            if par:
                line += f";  parallel / serial = {ratio(par, ser)}"
            print(line)
        peer = g.get(f"scipy_approx_fprime:{n}")
        fwd = g.get(f"fdkit_gradient:{n}-forward-serial")
        if peer and fwd:
            print(f"  scipy approx_fprime / fdkit forward = {ratio(peer, fwd)}")
    for n in (1000, 10000):
        g = groups.get(f"rosen-gradient-after-matmul-n{n}", {})
        ser = g.get(f"fdkit_gradient_after_matmul:{n}-serial")
        if ser:
            par, spin = (g.get(f"fdkit_gradient_after_matmul:{n}-{m}") for m in ("parallel", "parallel-blas-spinning"))
            print(f"Rosenbrock N={n}, forward, right after a matmul: parallel / serial = {ratio(par, ser)}; "
                  f"with OpenBLAS left spinning: {ratio(spin, ser)}")
    g = groups.get("matmul-after-gradient", {})
    ser = g.get("matmul_after_gradient:serial")
    if ser:
        par, spin = (g.get(f"matmul_after_gradient:{m}") for m in ("parallel", "parallel-openmp-spinning"))
        print(f"400 x 400 matmul right after a central gradient (N=5000): after serial {ser['stats']['median'] * 1e3:.2f} ms "
              f"(median); after parallel / after serial = {ratio(par, ser)}; with OpenMP left spinning: {ratio(spin, ser)}")
    for fname in ("bump", "runge"):
        g = groups.get(f"derivative-central-1e6-{fname}", {})
        ser, par = g.get(f"fdkit_central_1e6:{fname}-serial"), g.get(f"fdkit_central_1e6:{fname}-parallel")
        npx, sp = g.get(f"numpy_central_expression_1e6:{fname}"), g.get(f"scipy_differentiate_1e6:{fname}")
        if ser and npx:
            print(f"10^6 points, {fname}: fdkit serial {ser['stats']['min'] * 1e3:.2f} ms")
            print(f"  numpy expression / fdkit serial = {ratio(npx, ser)};  / fdkit parallel = {ratio(npx, par)}")
            if sp:
                print(f"  scipy.differentiate / fdkit serial = {ratio(sp, ser)}")
    for fname in ("bump", "runge"):
        g = groups.get(f"richardson-{fname}", {})
        ser = g.get(f"fdkit_richardson:{fname}-serial")
        if not ser:
            continue
        print(f"adaptive derivative, {ser['extra_info']['points']} points, {fname}:")
        peers = [(k, b) for k, b in sorted(g.items())]
        for _, b in peers:
            e = b["extra_info"]
            cover = e.get("estimate_covers_error")
            honest = f", estimate covers {cover:.0%}, median estimate/error {e['median_estimate_over_error']:.0f}" if cover is not None else ""
            line = (f"  {e['method']:34s} {b['stats']['min'] * 1e3:8.1f} ms  {e['nfev_per_point']:5.1f} f/point  "
                    f"max error {e['max_abs_error']:.1e}, median {e['median_abs_error']:.1e}{honest}")
            if b is not ser:
                line += f";  / fdkit serial = {ratio(b, ser)}"
            print(line)
    for n in (16, 32):
        g = groups.get(f"workers-ode-{n}", {})
        ser = g.get(f"serial:{n}")
        if not ser:
            continue
        print(f"ODE black box, N={n}, forward: serial {ser['stats']['min']:.3f} s")
        for k in ("workers_2", "dask_2", "scipy_approx_derivative_pool"):
            if f"{k}:{n}" in g:
                print(f"  {k} / serial = {ratio(g[f'{k}:{n}'], ser)}")
    api = groups.get("gradient-api-n10", {})
    for k, b in sorted(api.items()):
        print(f"N=10 gradient via the API, {b['extra_info']['method']}, {b['extra_info'].get('tier', '')}: "
              f"{b['stats']['min'] * 1e6:.2f} us (median {b['stats']['median'] * 1e6:.2f})")
    for k, b in sorted(groups.get("first-call", {}).items()):
        e = b["extra_info"]
        first, second = e.get("first_call_seconds", []), e.get("second_call_seconds", [])
        print(f"first call, fresh process, {e['method']}: " + ", ".join(f"{s:.3f}" for s in first) + " s; second: "
              + ", ".join(f"{s * 1e3:.2f}" for s in second) + " ms; numba start-up before it: "
              + ", ".join(f"{s:.2f}" for s in e.get("numba_startup_seconds", [])) + " s")


def strip_samples(path):
    with open(path) as fh:
        data = json.load(fh)
    for b in data["benchmarks"]:
        b["stats"].pop("data", None)
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--strip-samples"]
    path = args[0] if args else "reports/bench.json"
    if "--strip-samples" in sys.argv[1:]:
        strip_samples(path)
    main(path)
