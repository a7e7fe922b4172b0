"""Figures built from harness and sweep records (matplotlib, object-oriented, Agg).

No pyplot: every builder makes its own :class:`matplotlib.figure.Figure` and touches no global
state, so it is safe in scripts, tests and servers. Builders take the plain records of
:mod:`fdkit.harness` and :mod:`fdkit.sweep` and return the Figure; the caller saves it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

COLORS = {
    "analytic": "black",
    "forward": "tab:blue",
    "backward": "tab:cyan",
    "central": "tab:orange",
    "complex": "tab:green",
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
        series = _series(records, problem, ("f", "analytic", "fdkit", "peer"))
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
