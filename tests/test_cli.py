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
