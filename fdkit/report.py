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
