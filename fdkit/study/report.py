"""Write what fdkit measured: CSV, JSON, PNG and the index page.

Every file is written atomically: into a temporary file in the same directory, then renamed
over the final name, so an interrupted run never leaves a half-written file under the old name.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

from matplotlib.figure import Figure


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text(path: Path, text: str) -> Path:
    _atomic_write_bytes(Path(path), text.encode("utf-8"))
    return Path(path)


def _clean(value):
    """JSON-safe: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, obj) -> Path:
    return write_text(path, json.dumps(_clean(obj), indent=1) + "\n")


def write_csv(path: Path, rows: list[dict], columns: list[str] | tuple[str, ...]) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else _clean(r.get(k))) for k in columns})
    return write_text(path, buf.getvalue())


def save_figure(path: Path, fig: Figure, dpi: int = 110) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    _atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def write_bench(summary: dict, out: Path) -> dict[str, Path]:
    """``bench.csv``, ``bench.json``, ``cost_vs_n.png`` and ``time_vs_n.png`` into ``out``."""
    from . import plots

    out = Path(out)
    records = summary["records"]
    paths = {
        "csv": write_csv(out / "bench.csv", records, summary["columns"]),
        "json": write_json(out / "bench.json", summary),
        "cost_vs_n": save_figure(out / "cost_vs_n.png", plots.cost_vs_n(records, summary["fits"])),
        "time_vs_n": save_figure(out / "time_vs_n.png", plots.time_vs_n(records)),
    }
    return paths


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_") or "f"


def write_sweeps(sweeps: list[dict], out: Path) -> dict[str, Path]:
    """``sweep.csv`` (all records), ``sweep.json`` (per sweep: the optimum table and the model) and two
    PNGs per sweep (all methods; forward/central/complex) into ``out``."""
    from . import plots
    from .sweep import COLUMNS

    out = Path(out)
    rows = [r for s in sweeps for r in s["records"]]
    # the JSON holds the optimum tables and the models; the records are in the CSV
    meta = [{k: v for k, v in s.items() if k != "records"} for s in sweeps]
    paths = {"csv": write_csv(out / "sweep.csv", rows, COLUMNS), "json": write_json(out / "sweep.json", meta)}
    for s in sweeps:
        stem = f"{_slug(s['function'])}_{s['dtype']}"
        paths[f"{stem}"] = save_figure(out / f"error_vs_h_{stem}.png", plots.error_vs_h(s))
        paths[f"{stem}_v"] = save_figure(out / f"error_vs_h_{stem}_teaching.png", plots.error_vs_h_teaching(s))
    if len(sweeps) == 1:  # the name the docs use for a single sweep
        paths["main"] = save_figure(out / "error_vs_h.png", plots.error_vs_h(sweeps[0]))
    return paths


# ----------------------------------------------------------------------------- the index page
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em} th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{background:#f2f2f2} td.l,th.l{text-align:left} img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:.9em} .explain{background:#f7f9fc;border-left:4px solid #4a78b5;padding:.6em 1em;margin:1em 0}
details{margin:.6em 0} summary{cursor:pointer;font-weight:600}
"""


def _img(path: Path, alt: str, out: Path | None = None) -> str:
    """A figure beside the page: linked by its path relative to the page (``out``), loaded lazily
    and opening full size on a click.  Inlining the PNGs as data made the page 3 MB."""
    path = Path(path)
    rel = path.relative_to(out).as_posix() if out is not None else path.name
    return f'<a href="{_esc(rel)}"><img alt="{_esc(alt)}" src="{_esc(rel)}" loading="lazy"></a>'


def _esc(text) -> str:
    import html

    return html.escape(str(text), quote=True)


def _fmt(v, spec=".2e") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, int):
        return str(v)
    return format(v, spec)


def _table(rows: list[dict], cols: list[tuple[str, str, str]]) -> str:
    """cols: (key, header, format spec); a spec of 'l' means left-aligned text."""
    head = "".join(f'<th class="{"l" if s == "l" else ""}">{_esc(h)}</th>' for _, h, s in cols)
    body = []
    for r in rows:
        cells = []
        for k, _, s in cols:
            v = r.get(k)
            cells.append(f'<td class="l">{_esc("–" if v is None else v)}</td>' if s == "l" else f"<td>{_esc(_fmt(v, s))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


_SWEEP_COLS = [
    ("label", "method", "l"), ("model_h_opt", "model optimal h", ".2e"),
    ("model_min_rel_error", "model min error", ".1e"), ("measured_h_opt", "measured optimal h", ".2e"),
    ("measured_min_rel_error", "measured min error", ".1e"), ("default_h", "fdkit default h", ".2e"),
    ("default_rel_error", "error at default h", ".1e"), ("default_nfev", "f evaluations", "d"),
    ("default_error_estimate", "error estimate", ".1e"), ("derivative_source", "f^(m) from", "l"),
]


def _peer_rows(records: list[dict]) -> list[dict]:
    pairs = [("forward", "scipy.approx_fprime"), ("forward", "scipy.2-point"), ("central", "scipy.3-point"),
             ("complex", "scipy.cs")]
    by = {(r["problem"], r["n"], r["method"], r["parallel"]): r for r in records}
    out = []
    for (problem, n, method, par), r in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        for ours, peer in pairs:
            if method == peer and (problem, n, ours, False) in by:
                mine = by[(problem, n, ours, False)]
                par_r = by.get((problem, n, ours, True))
                out.append(dict(problem=problem, n=n, pair=f"fdkit {ours} vs {peer}", peer_s=r["seconds"],
                                fdkit_s=mine["seconds"], speedup=r["seconds"] / mine["seconds"],
                                speedup_par=r["seconds"] / par_r["seconds"] if par_r else None,
                                peer_err=r["max_rel_error"], fdkit_err=mine["max_rel_error"]))
    return out


def _descent_section(descent: dict, out: Path) -> list[str]:
    """Section 3: the seed texts' gradient descent, computed by fdkit beside the closed form; the
    MLP trained with finite differences and with backpropagation; a gradient check at work."""
    parts = ["<h2>3. Gradient descent: w &larr; w &minus; lr &middot; dL/dw</h2>"]
    parts.append("<p>The seed texts end with gradient descent. Their two tables (seed 004), computed "
                 "here with fdkit's central derivative and with the closed-form derivative side by side:</p>")
    for t in descent["tables"]:
        parts.append(f"<p><b>{_esc(t['title'])}</b>, from x = 5:</p>")
        parts.append(_table(t["rows"], [
            ("step", "run", "d"), ("x", "current x", ".6g"), ("cost", "cost", ".6g"),
            ("step_fd", "lr × dC/dx (fdkit)", ".6g"), ("step_exact", "lr × dC/dx (exact)", ".6g"),
            ("new_x", "new x (fdkit)", ".6g"), ("new_x_exact", "new x (exact)", ".6g")]))
    tr = descent["training"]
    save_figure(out / "descent" / "mlp_descent.png", _plots().descent(tr))
    parts.append(f"<p>The MLP problem (N = {tr['n']}) trained for {tr['steps']} steps of learning rate "
                 f"{tr['lr']:g} from the same start, once with fdkit's forward-difference gradient and once "
                 f"with backpropagation. The loss curves differ by at most {tr['max_loss_gap']:.1e}; the "
                 f"finite differences spent {tr['time_ratio']:.0f}× the time on gradients, "
                 f"{tr['extra_passes_per_step']:.0f} forward passes per step more (N + 1 = {tr['n'] + 1}; one "
                 f"forward pass took {tr['t_f'] * 1e6:.2f} µs).</p>")
    parts.append(_img(out / "descent" / "mlp_descent.png", "loss against step and against seconds", out))
    bug = descent["bug"]
    parts.append(f"<p><b>Checking a backprop.</b> <code>fdkit.check_gradient</code> on the MLP's backprop "
                 f"(N = {bug['n']}), right and with a planted bug (the hidden layer's tanh' factor missing), "
                 "beside <code>scipy.optimize.check_grad</code> on the same cases, which returns one 2-norm "
                 "with no index and no scale to judge it by:</p>")
    rows = [{"case": name, "fdkit": bug[name]["summary"], "scipy": bug[name]["scipy"]}
            for name in ("right", "missing tanh'")]
    parts.append(_table(rows, [("case", "backprop", "l"), ("fdkit", "fdkit.check_gradient", "l"),
                               ("scipy", "scipy check_grad", ".3g")]))
    parts.append("<details><summary>fdkit's table of the worst elements, with the bug</summary><pre>"
                 + _esc(bug["missing tanh'"]["table"]) + "</pre></details>")
    return parts


def _plots():
    from . import plots

    return plots


def build_index(sweeps: list[dict], bench: dict | None, out: Path, *, command: str = "fdkit report",
                descent: dict | None = None) -> Path:
    """Write ``index.html`` with its figures linked beside it (``sweep/``, ``bench/``,
    ``descent/``): the directory works offline, nothing is fetched, and the page stays light."""
    out = Path(out)
    machine = (bench or {}).get("machine")
    if machine is None:
        from .harness import machine_info

        machine = machine_info()
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>fdkit report</title>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head><body>"]
    parts.append("<h1>fdkit report</h1>")
    parts.append(f"<p class='note'>Generated by <code>{_esc(command)}</code> on {_esc(machine['date'])}. "
                 "Every number below was measured in this run on the machine described at the end; "
                 "the CSV and JSON files next to this page hold the same data.</p>")
    parts.append("<h2>1. The step h: truncation against rounding</h2>")
    parts.append(
        "<div class='explain'>A finite difference replaces f′(x) by a combination of f at x ± kh. Taylor's "
        "theorem says the formula is wrong by about C·h<sup>p</sup>·f<sup>(p+1)</sup>(x) — the <b>truncation</b> "
        "error, the right arm of the V, falling as h shrinks. But f is computed in floating point: every value "
        "carries a relative error of about ε = 2.2·10<sup>−16</sup>, and subtracting nearly equal values then "
        "dividing by h magnifies it to about ε·|f(x)|·Σ|w<sub>i</sub>|/h — the <b>rounding</b> error, the left arm, "
        "growing as h shrinks. Their sum is smallest at the bottom of the V: near h = √ε ≈ 10<sup>−8</sup> for "
        "forward differences (error ≈ 10<sup>−8</sup>) and ∛ε ≈ 10<sup>−5</sup> for central ones (≈ 10<sup>−11</sup>). "
        "Making h smaller than that makes the answer <i>worse</i>. The <b>complex step</b> "
        "Im f(x + ih)/h subtracts nothing, so it has no rounding arm: it stays at machine precision for "
        "every h from about 10<sup>−8</sup> down to 10<sup>−300</sup>. Dashed and dotted lines are the model, "
        "× marks its optimum and ▼ the step fdkit uses by default. The red line is the adaptive "
        "<code>method='richardson'</code>: central differences at h, h/2, h/4, … extrapolated to h = 0 "
        "(Neville's tableau), plotted against its <i>first</i> step h. From any first step between "
        "10<sup>−2</sup> and 1 it reaches about 10<sup>−13</sup> on these functions without being told the "
        "step (10<sup>−11</sup> on the mlp weight, whose f is a sum over a batch), at the cost of 6–14 "
        "evaluations instead of 2, and it reports an error estimate (last columns; relative).</div>")
    main = [s for s in sweeps if s["dtype"] == "float64"]
    f32 = [s for s in sweeps if s["dtype"] == "float32"]
    sweep_dir = out / "sweep"
    for i, s in enumerate(main):
        stem = f"{_slug(s['function'])}_{s['dtype']}"
        block = []
        if i == 0:
            block.append(_img(sweep_dir / f"error_vs_h_{stem}_teaching.png", f"error against h, {s['title']}", out))
        block.append(_img(sweep_dir / f"error_vs_h_{stem}.png", f"error against h, all methods, {s['title']}", out))
        block.append(f"<p>Optimal step per method for {_esc(s['title'])} at x = {s['x']:.6g} "
                     f"(f′(x) = {s['exact']:.15g}; relative errors):</p>")
        block.append(_table(s["table"], _SWEEP_COLS))
        if i == 0:
            parts.append(f"<h3>{_esc(s['title'])} at x = {s['x']:.6g} (Squire &amp; Trapp 1998)</h3>")
            parts.extend(block)
        else:
            parts.append(f"<details><summary>{_esc(s['title'])} at x = {s['x']:.6g}</summary>{''.join(block)}</details>")
    for s in f32:
        stem = f"{_slug(s['function'])}_{s['dtype']}"
        parts.append("<h3>The same in single precision (float32, ε ≈ 1.2·10<sup>−7</sup>)</h3>")
        parts.append("<div class='explain'>With ε nine orders of magnitude larger, the rounding arm rises and the "
                     "bottom of the V moves to a much larger h (about 10<sup>−4</sup> for forward, 10<sup>−3</sup> for "
                     "central differences). fdkit sizes its default step for the working precision (the coarser of x's "
                     "dtype and the dtype of f's result): ε<sup>1/(p+1)</sup>·max(1, |x|) with the float32 ε, so "
                     "▼ sits at the bottom of the float32 V, not on its rounding arm where a float64-sized step "
                     "would land. <code>method='richardson'</code> uses the float32 ε for its rounding floor. "
                     "Steps below half an ulp of x vanish ((x + h) − x = 0) and are not drawn.</div>")
        parts.append(_img(sweep_dir / f"error_vs_h_{stem}.png", f"error against h in float32, {s['title']}", out))
        parts.append(_table(s["table"], _SWEEP_COLS))
    if bench:
        recs = bench["records"]
        parts.append("<h2>2. What a gradient costs: 1 + N</h2>")
        parts.append(
            "<div class='explain'>A finite-difference gradient perturbs one parameter at a time: forward differences "
            "need f(x) and f(x + h e<sub>i</sub>) for every i — <b>1 + N</b> evaluations of f — central differences "
            "<b>2N</b>, the complex step <b>N</b> complex ones. Backpropagation (the chain rule run backwards) gets the "
            "whole gradient for a small constant number of forward passes, whatever N is (the cheap-gradient "
            "principle). So the finite-difference lines below climb with slope 1 on the log-log plot while the "
            "analytical gradient stays flat: for a network with a million parameters, one forward-difference gradient "
            "costs a million forward passes. Cost is time divided by the time of one evaluation of f "
            "(t<sub>f</sub>, timed in compiled code); at small N a call's fixed overhead of a few microseconds "
            "dominates. That is why nobody trains networks with finite differences, and why they remain the "
            "tool for <i>checking</i> a backprop gradient.</div>")
        bdir = out / "bench"
        parts.append(_img(bdir / "cost_vs_n.png", "cost of a gradient in forward passes against N", out))
        parts.append(_img(bdir / "time_vs_n.png", "seconds per gradient against N", out))
        parts.append("<p>The measured trend (slope of log cost against log N) and the cost at N = 10<sup>6</sup> "
                     "from the model <i>seconds = overhead + k · nfev(N) · t<sub>f</sub>(N)</i>: nfev the "
                     "evaluations the method counts (N + 1, 2N, …), t<sub>f</sub> one evaluation of f, k the cost of "
                     "one evaluation inside the method (k ≥ 1 serially, ≥ 1/cores in parallel: no method evaluates "
                     "f faster than f runs) and the per-call overhead, both fitted to every size. A line through "
                     "log cost, steered at small N by microseconds of overhead, would let a method get cheaper per "
                     "evaluation as N grows. <b>An extrapolation, not a measurement</b>; the largest N measured "
                     "is in the last column:</p>")
        parts.append(_table(bench["fits"], [
            ("problem", "problem", "l"), ("method", "method", "l"), ("parallel", "parallel", "l"),
            ("slope", "slope", ".2f"), ("model_k", "k [t_f per evaluation]", ".3g"),
            ("model_overhead", "overhead [s]", ".2e"), ("extrapolated_cost_in_f", "cost at N=10^6 [forward passes]", ".3g"),
            ("extrapolated_seconds", "seconds at N=10^6 (extrapolated)", ".3g"),
            ("largest_measured_n", "largest N measured", "d")]))
        parts.append("<p>Every measurement (median of the samples; nfev counted):</p>")
        parts.append("<details><summary>cost per method per N</summary>" + _table(
            [r for r in recs if r["kind"] != "f"], [
                ("problem", "problem", "l"), ("n", "N", "d"), ("method", "method", "l"), ("parallel", "parallel", "l"),
                ("seconds", "seconds", ".3e"), ("nfev", "nfev", "d"), ("cost_in_f", "cost [f passes]", ".4g"),
                ("ratio_to_analytical", "× analytical", ".4g"), ("max_rel_error", "max rel error", ".1e"),
                ("compile_seconds", "first call [s]", ".3g")]) + "</details>")
        peers = _peer_rows(recs)
        if peers:
            parts.append("<p>fdkit against the scipy peers (<code>scipy.optimize.approx_fprime</code> and "
                         "<code>approx_derivative</code> on the numpy twin of the same loss; speed-up = scipy time / "
                         "fdkit time, both evaluating f the same number of times):</p>")
            parts.append(_table(peers, [
                ("problem", "problem", "l"), ("n", "N", "d"), ("pair", "comparison", "l"), ("peer_s", "scipy [s]", ".3e"),
                ("fdkit_s", "fdkit serial [s]", ".3e"), ("speedup", "speed-up", ".3g"),
                ("speedup_par", "speed-up, fdkit parallel", ".3g"), ("peer_err", "scipy error", ".1e"),
                ("fdkit_err", "fdkit error", ".1e")]))
            fnp = [r for r in recs if r["method"] == "f_np"]
            if fnp:
                parts.append("<p class='note'>The peers' time follows the speed of their f: one call of the numpy "
                             "twin costs " + ", ".join(f"{r['cost_in_f']:.3g}× the jitted f at N = {r['n']} ({r['problem']})"
                                                      for r in fnp) + ".</p>")
    if descent is not None:
        parts.extend(_descent_section(descent, out))
    parts.append("<h2>Environment</h2>")
    parts.append(_table([{"k": k, "v": v} for k, v in machine.items()], [("k", "", "l"), ("v", "", "l")]))
    parts.append("</body></html>\n")
    return write_text(out / "index.html", "".join(parts))


def run_report(out: Path, *, quick: bool = False, problems=None, sizes=None, progress=None,
               largest: tuple[str, int] | None = None) -> dict[str, Path]:
    """Run the sweeps (every built-in function in float64, the complex-step test function in
    float32 too), the harness and the descent study, and write everything plus ``index.html``
    into ``out``.  ``largest = (problem, N)`` also measures that problem at one large N with the
    forward gradient and scipy's approx_fprime (one sample each)."""
    from . import harness
    from .sweep import builtin_functions, run_sweep

    out = Path(out)
    names = list(builtin_functions())
    sweeps = [run_sweep(n) for n in names] + [run_sweep("squire_trapp", dtype="float32")]
    paths = write_sweeps(sweeps, out / "sweep")
    records = harness.run_harness(
        problems or ["mlp", "rosenbrock"],
        sizes or harness.QUICK_SIZES,
        repeat=3 if quick else 5,
        min_time=0.01 if quick else 0.02,
        budget=1.0 if quick else 3.0,
        progress=progress,
    )
    if largest is not None:
        name, n = largest
        records += harness.run_harness([name], [n], ("analytic", "forward", "scipy.approx_fprime"), repeat=1,
                                       min_time=0.0, budget=0.0, progress=progress)
    summary = harness.summary(records)
    paths.update({f"bench_{k}": v for k, v in write_bench(summary, out / "bench").items()})
    from . import descent as gd

    study = dict(tables=gd.seed_tables(), training=gd.train_mlp(100, 100 if quick else 200, 0.05), bug=gd.planted_bug())
    paths["index"] = build_index(sweeps, summary, out, descent=study)
    paths["descent"] = out / "descent" / "mlp_descent.png"
    return paths
