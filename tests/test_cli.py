import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from fdkit.cli import main

from oracles import FORNBERG_CENTRAL


def test_info_json_lists_every_stencil_with_fornberg_weights(capsys):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {(r["method"], r["n"], r["order"]): r for r in data["stencils"]}
    c4 = rows[("central", 1, 4)]
    table = [Fraction(w) for w in FORNBERG_CENTRAL[(1, 4)] if w != 0]
    assert [Fraction(w) for w in c4["weights"]] == table
    assert rows[("forward", 1, 1)]["default_h_at_x=1"] == np.sqrt(np.finfo(float).eps)
    assert rows[("complex", 1, 2)]["evaluations_per_point"] == 1
    assert data["machine"]["numba"]


def test_info_table(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "central" in out and "1/12@-2" in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: fdkit" in capsys.readouterr().out


def test_bad_command_exits_2():
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2


def test_python_m_fdkit_help():
    out = subprocess.run([sys.executable, "-m", "fdkit", "--help"], capture_output=True, text=True, check=True)
    assert "usage: fdkit" in out.stdout and "info" in out.stdout


def test_bench_writes_csv_json_and_figures(tmp_path, capsys):
    import csv

    out = tmp_path / "bench"
    code = main(["bench", "--problems", "quadratic", "--sizes", "4,16", "--methods", "forward,central",
                 "--repeat", "1", "--no-parallel", "--out", str(out)])
    assert code == 0
    rows = list(csv.DictReader((out / "bench.csv").read_text().splitlines()))
    need = {"problem", "n", "method", "parallel", "seconds", "nfev", "cost_in_f", "ratio_to_analytical", "max_rel_error"}
    assert need <= set(rows[0])
    nfev = {(r["n"], r["method"]): r["nfev"] for r in rows}
    assert nfev[("16", "forward")] == "17" and nfev[("16", "central")] == "32"
    data = json.loads((out / "bench.json").read_text())
    assert data["fits"] and data["machine"]["cpu"]
    for png in ("cost_vs_n.png", "time_vs_n.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))
    text = capsys.readouterr().out
    assert "slope quadratic" in text and "wrote" in text


def test_bench_from_json(tmp_path):
    src = tmp_path / "pb.json"
    bench = lambda kind, method, med, **kw: {"extra_info": dict(problem="rosenbrock", kind=kind, method=method, **kw),
                                             "stats": {"median": med, "min": med, "rounds": 3}}
    src.write_text(json.dumps({"benchmarks": [
        bench(k, m, t * n, n=n, nfev=nf, calls=c)
        for n in (100, 1000)
        for k, m, t, nf, c in [("f", "f", 1e-9, 1, 1), ("analytic", "analytic", 2e-9, None, 1),
                               ("fdkit", "forward", 1e-9 * n, n + 1, 1)]
    ]}))
    out = tmp_path / "o"
    assert main(["bench", "--from-json", str(src), "--out", str(out)]) == 0
    data = json.loads((out / "bench.json").read_text())
    fit = {f["method"]: f for f in data["fits"]}
    assert fit["forward"]["slope"] == pytest.approx(1.0, abs=1e-9)
    assert (out / "cost_vs_n.png").exists()
    assert main(["bench", "--from-json", str(tmp_path / "missing.json"), "--out", str(out)]) == 2


@pytest.mark.parametrize("args, message", [
    (["--sizes", "10,abc"], "sizes must be integers"),
    (["--sizes", "1"], "sizes must be integers >= 2"),
    (["--problems", "mlp,nope"], "unknown problem 'nope'"),
    (["--methods", "centre"], "unknown method 'centre'"),
    (["--repeat", "0"], "must be a positive integer"),
])
def test_bench_bad_arguments_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", *args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
