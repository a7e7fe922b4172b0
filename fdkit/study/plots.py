"""Figures built from harness and sweep records (matplotlib, object-oriented, Agg).

No pyplot: every builder makes its own :class:`matplotlib.figure.Figure` and touches no global
state, so it is safe in scripts, tests and servers. Builders take the plain records of
:mod:`fdkit.study.harness` and :mod:`fdkit.study.sweep` and return the Figure; the caller saves it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..methods import METHODS

#: fdkit's methods take their colour from the method table; the rest are the study's own series
COLORS = {
    "analytic": "black",
    **{name: m.color for name, m in METHODS.items()},
    "scipy.approx_fprime": "tab:purple",
    "scipy.2-point": "tab:pink",
    "scipy.3-point": "tab:brown",
    "scipy.cs": "tab:olive",
    "f": "tab:gray",
    "f_np": "darkkhaki",
}


def _label(method: str, parallel: bool) -> str:
    return f"{method} (parallel)" if parallel else method


def _series(records: list[dict], problem: str, kinds: tuple[str, ...]) -> dict:
    out: dict = {}
    for r in records:
        if r["problem"] == problem and r["kind"] in kinds and r.get("seconds"):
            out.setdefault((r["method"], bool(r["parallel"])), []).append(r)
    return {k: sorted(v, key=lambda r: r["n"]) for k, v in out.items()}


def _problems(records: list[dict]) -> list[str]:
    seen: list[str] = []
    for r in records:
        if r["problem"] not in seen:
            seen.append(r["problem"])
    return seen


def cost_vs_n(records: list[dict], fits: list[dict] | None = None) -> Figure:
    """Cost in forward passes (time / t_f) against N, one panel per problem.

    Log-log; one line per method (parallel variants dotted); dashed references y = N + 1 and
    y = 2N; the fitted slope of each line in the legend.
    """
    problems = _problems(records)
    fig = Figure(figsize=(6.4 * len(problems), 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(problems), squeeze=False)[0])
    slopes = {(f["problem"], f["method"], f["parallel"]): f["slope"] for f in (fits or [])}
    for ax, problem in zip(axes, problems):
        series = _series(records, problem, ("analytic", "fdkit"))
        ns = np.array(sorted({r["n"] for r in records if r["problem"] == problem}), dtype=float)
        for (method, par), rows in series.items():
            slope = slopes.get((problem, method, par))
            lab = _label(method, par) + (f", slope {slope:.2f}" if slope is not None else "")
            ax.plot([r["n"] for r in rows], [r["cost_in_f"] for r in rows], marker="o",
                    ls=":" if par else "-", color=COLORS.get(method, None), label=lab)
        if ns.size:
            grid = np.geomspace(ns.min(), ns.max(), 50)
            ax.plot(grid, grid + 1, "k--", lw=0.8, alpha=0.6, label="N + 1 (forward)")
            ax.plot(grid, 2 * grid, "k-.", lw=0.8, alpha=0.6, label="2N (central)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters N")
        ax.set_ylabel("cost per gradient [forward passes = time / t_f]")
        ax.set_title(f"{problem}: cost of one gradient")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper left")
    return fig


def time_vs_n(records: list[dict]) -> Figure:
    """Seconds per gradient against N (left) and the ratio to the analytical gradient (right),
    one row per problem, with the scipy peers where they were measured."""
    problems = _problems(records)
    fig = Figure(figsize=(12.8, 4.4 * len(problems)), layout="constrained")
    axes = fig.subplots(len(problems), 2, squeeze=False)
    for (ax, ax2), problem in zip(axes, problems):
        series = _series(records, problem, ("f", "analytic", "fdkit", "peer", "batched"))
        for (method, par), rows in series.items():
            style = dict(marker="o" if not method.startswith("scipy") else "s",
                         ls=":" if par else ("--" if method.startswith("scipy") or method.startswith("f") else "-"),
                         color=COLORS.get(method, None))
            label = {"f": "one f evaluation (jitted)", "f_np": "one f evaluation (numpy twin)"}.get(method, _label(method, par))
            ax.plot([r["n"] for r in rows], [r["seconds"] for r in rows], label=label, **style)
            if method not in ("f", "f_np", "analytic"):
                ax2.plot([r["n"] for r in rows], [r["ratio_to_analytical"] for r in rows], label=label, **style)
        for a in (ax, ax2):
            a.set_xscale("log")
            a.set_yscale("log")
            a.set_xlabel("parameters N")
            a.grid(True, which="major", alpha=0.3)
        ax.set_ylabel("time per gradient [s] (median)")
        ax.set_title(f"{problem}: seconds per gradient")
        ax2.set_ylabel("time / analytical gradient [×]")
        ax2.set_title(f"{problem}: slowdown against the analytical gradient")
        ax.legend(fontsize="x-small", loc="upper left", ncol=2)
        ax2.legend(fontsize="x-small", loc="upper left", ncol=2)
    return fig


FLOOR = 1e-18  # where an exact (zero) error is drawn on a log axis


def error_vs_h(sweep: dict, methods: list[tuple[str, int]] | None = None, *, title_suffix: str = "") -> Figure:
    """Relative error against the step h (log-log) for one sweep of :func:`fdkit.study.sweep.run_sweep`.

    One line per method; the model's truncation and rounding lines dashed and dotted in the same
    colour; the model optimum (x) and fdkit's default step (triangle) marked; "truncation" and
    "rounding" written on the two arms of the V; exact results (error 0) drawn at 1e-18.
    """
    from .sweep import label, model_error

    fig = Figure(figsize=(12.0, 7.0), layout="constrained")
    ax, axc = fig.subplots(1, 2, width_ratios=[3, 1.2])
    table = {(r["method"], r["order"]): r for r in sweep["table"]}
    keys = methods or list(table)
    scale = abs(sweep["exact"]) or 1.0
    hmin = min(r["h"] for r in sweep["records"] if (r["method"], r["order"]) in keys)
    annotated = False
    for method, order in keys:
        rows = [r for r in sweep["records"] if (r["method"], r["order"]) == (method, order)]
        if not rows:
            continue
        color = COLORS.get(method)
        entry = METHODS.get(method)
        ls = entry.linestyle if entry is not None else "-"
        if entry is not None and not entry.adaptive and order != entry.default_order:
            ls = {2: "--", 4: "--", 6: "-."}.get(order, ls)  # higher orders of a family: dashed
        h = np.array([r["h"] for r in rows])
        e = np.array([r["rel_error"] for r in rows], dtype=float)
        main = h >= sweep["hmin"]
        # forward and backward coincide for a smooth f: markers at staggered points tell them apart
        mark = {"forward": dict(marker="o", markevery=(0, 10), ms=3.5),
                "backward": dict(marker="s", markevery=(5, 10), ms=3.5, mfc="none")}.get(method, {})
        ax.plot(h[main], np.where(e[main] == 0, np.nan, e[main]), ls=ls, color=color, lw=1.6,
                label=label(method, order), **mark)
        zero = main & (e == 0)
        ax.plot(h[zero], np.full(zero.sum(), FLOOR), ".", color=color, ms=4)
        if method == "complex":
            axc.plot(h, np.where(e == 0, np.nan, e), color=color, lw=1.2, label="complex step")
            axc.plot(h[e == 0], np.full((e == 0).sum(), FLOOR), ".", color=color, ms=3)
        row = table[(method, order)]
        if row.get("truncation_A") is not None:  # the adaptive method has no one-step model
            grid = np.geomspace(sweep["hmin"], max(h), 200)
            trunc, rnd = model_error(row, grid, scale)
            ax.plot(grid, np.where(trunc > 0, trunc, np.nan), ls=":", color=color, lw=0.9, alpha=0.8)
            ax.plot(grid, rnd, ls=(0, (5, 4)), color=color, lw=0.9, alpha=0.8)
        if row.get("model_h_opt") and row.get("model_min_rel_error"):
            ax.plot([row["model_h_opt"]], [row["model_min_rel_error"]], "x", color=color, ms=9, mew=2)
        if row.get("default_h"):
            ax.plot([row["default_h"]], [max(row["default_rel_error"], FLOOR)], "v", color=color, ms=8,
                    mec="black", mew=0.6)
        if method == "forward" and order == 1 and not annotated:
            ht, hr = 3e-3, 3e-14
            t_val = model_error(row, np.array([ht]), scale)[0][0]
            r_val = model_error(row, np.array([hr]), scale)[1][0]
            if t_val > 0:
                ax.annotate("truncation ~ C h^p", (ht, t_val), xytext=(ht * 0.02, t_val * 30),
                            arrowprops=dict(arrowstyle="->", color="0.3"), fontsize=9, color="0.2")
            ax.annotate("rounding ~ eps |f| / h", (hr, r_val), xytext=(hr * 10, r_val * 30),
                        arrowprops=dict(arrowstyle="->", color="0.3"), fontsize=9, color="0.2")
            annotated = True
    for a in (ax, axc):
        a.axhline(sweep["eps"], color="0.5", lw=0.8)
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_ylim(FLOOR / 3, 10.0)
        a.grid(True, which="major", alpha=0.3)
    ax.text(sweep["hmin"], sweep["eps"] * 1.5, "machine epsilon", fontsize=8, color="0.4")
    ax.set_xlim(sweep["hmin"] / 2, sweep["hmax"] * 2)
    from matplotlib.ticker import LogLocator

    axc.set_xlim(hmin / 10, sweep["hmax"] * 10)  # the steps drawn, not matplotlib's padding to 1e15
    axc.xaxis.set_major_locator(LogLocator(numticks=5))
    axc.set_xlabel("step size h (the complex step, continued)")
    axc.set_title(f"complex step down to h = {hmin:.0e}", fontsize="medium")
    axc.legend(fontsize="x-small", loc="upper left")
    ax.set_xlabel("step size h")
    ax.set_ylabel("relative error |D_h f(x) − f′(x)| / |f′(x)|")
    ax.set_title(f"{sweep['title']} at x = {sweep['x']:.6g} ({sweep['dtype']}){title_suffix}")
    handles, labels = ax.get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles += [Line2D([], [], ls=":", color="0.3"), Line2D([], [], ls=(0, (5, 4)), color="0.3"),
                Line2D([], [], marker="x", ls="", color="0.3", mew=2),
                Line2D([], [], marker="v", ls="", color="0.3", mec="black")]
    labels += ["model: truncation", "model: rounding", "model optimum", "fdkit default h (richardson: step chosen)"]
    fig.legend(handles, labels, fontsize="small", loc="outside lower center", ncol=5, frameon=False)  # off the data
    ax.text(0.99, 0.01, "error 0 (exact) drawn at 1e-18", transform=ax.transAxes, ha="right", va="bottom",
            fontsize=7, color="0.5")
    return fig


def error_vs_h_teaching(sweep: dict) -> Figure:
    """The teaching picture: forward, central (p=2) and the complex step only."""
    return error_vs_h(sweep, [("forward", 1), ("central", 2), ("complex", 2)], title_suffix=": the V")


def descent(training: dict) -> Figure:
    """The MLP trained twice by gradient descent (:func:`fdkit.study.descent.train_mlp`): loss
    against step (the two curves lie on top of each other) and against the seconds spent on
    gradients (the finite differences pay about N + 1 forward passes per step)."""
    fig = Figure(figsize=(11.0, 4.2), layout="constrained")
    ax_step, ax_time = fig.subplots(1, 2)
    styles = {"forward differences": dict(color=COLORS.get("forward", "tab:blue"), lw=3.0, alpha=0.5),
              "backpropagation": dict(color="black", lw=1.2, ls="--")}
    for name, run in training["runs"].items():
        steps = np.arange(run["loss"].size)
        ax_step.plot(steps, run["loss"], label=name, **styles.get(name, {}))
        ax_time.plot(np.maximum(run["seconds"], 1e-7), run["loss"], label=name, **styles.get(name, {}))
    for ax in (ax_step, ax_time):
        ax.set_yscale("log")
        ax.set_ylabel("loss (MSE)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper right")
    ax_step.set_xlabel("gradient-descent step")
    ax_step.set_title(f"MLP, N = {training['n']}: the same descent (largest gap {training['max_loss_gap']:.1e})")
    ax_time.set_xscale("log")
    ax_time.set_xlabel("seconds spent on gradients")
    ax_time.set_title(f"… at {training['extra_passes_per_step']:.0f} extra forward passes per step")
    return fig
