"""fdkit sweep / fdkit report on the command line, the page and atomic writes."""

import json
import os
import sys

import pytest

from fdkit.study import report
from fdkit.cli import main


def test_sweep_cli_writes_csv_json_and_pngs(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sweep", "--function", "sin", "--methods", "forward,complex", "--out", str(out)]) == 0
    header = (out / "sweep.csv").read_text().splitlines()[0].split(",")
    assert header[:8] == ["function", "x", "dtype", "method", "order", "h", "value", "abs_error"]
    assert "rel_error" in header
    data = json.loads((out / "sweep.json").read_text())
    assert {r["method"] for r in data[0]["table"]} == {"forward", "complex"}
    for png in ("error_vs_h.png", "error_vs_h_sin_float64.png", "error_vs_h_sin_float64_teaching.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "complex step" in capsys.readouterr().out


def test_sweep_cli_user_function(tmp_path, monkeypatch):
    mod = tmp_path / "myfuncs.py"
    mod.write_text("import numpy as np\ndef f(x):\n    return np.cosh(x)\ndef df(x):\n    return np.sinh(x)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "o"
    assert main(["sweep", "--function", "myfuncs:f", "--derivative", "myfuncs:df", "--x", "0.7",
                 "--out", str(out)]) == 0
    data = json.loads((out / "sweep.json").read_text())
    assert data[0]["exact"] == pytest.approx(0.7585837018395334)  # sinh(0.7)
    assert main(["sweep", "--function", "myfuncs:f", "--derivative", "0.7585837018395334", "--x", "0.7",
                 "--dtype", "float32", "--out", str(out)]) == 0
    sys.modules.pop("myfuncs", None)


@pytest.mark.parametrize("args, message", [
    (["--function", "cos"], "unknown function 'cos'"),
    (["--function", "nomodule_xyz:f", "--derivative", "1", "--x", "1"], "cannot load --function"),
    (["--function", "math:sin", "--x", "1"], "needs --derivative"),
    (["--hmin", "1", "--hmax", "0.1"], "hmin < hmax"),
])
def test_sweep_cli_errors(args, message, tmp_path, capsys):
    assert main(["sweep", *args, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_report_quick_writes_a_light_page_with_its_figures_beside_it(tmp_path):
    import re

    out = tmp_path / "r"
    assert main(["report", "--quick", "--out", str(out), "--problems", "quadratic", "--sizes", "4,16"]) == 0
    page = (out / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "http://" not in page and "https://" not in page  # nothing to fetch: works offline
    figures = re.findall(r'<img[^>]* src="([^"]+)"', page)
    assert len(figures) >= 11 and all((out / f).is_file() for f in figures)  # linked, relative, present
    assert len(page.encode()) < 300_000  # light: the 3 MB of inlined PNGs are gone
    assert "Gradient descent" in page and "2.504" in page  # the seeds' descent section
    for text in ("truncation", "rounding", "1 + N", "Optimal step per method", "numba", "extrapolation",
                 "richardson (adaptive; h = first step)"):
        assert text in page
    assert (out / "bench" / "bench.csv").exists() and (out / "sweep" / "sweep.csv").exists()
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    report.write_json(target, {"a": 1})

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        report.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
