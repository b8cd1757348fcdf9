"""The CLI skeleton: version, list, data info / convert, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.nb201_official_file import write_official_file

ROOT = Path(__file__).resolve().parents[1]


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0 and "0.1.0" in out.stdout


def test_list_names_builtins():
    out = run_cli("list", "--json")
    assert out.returncode == 0
    listing = json.loads(out.stdout)
    assert "nb201" in listing["search_spaces"]


def test_data_info_real_table(nb201_cifar10_path):
    out = run_cli("data", "info", "--data", str(nb201_cifar10_path), "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["n_cells"] == 15625
    assert info["best"]["val_acc"]["value"] == pytest.approx(91.6067)
    assert info["best"]["val_acc"]["index"] == 6111


def test_data_info_default_is_analog():
    out = run_cli("data", "info", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["source"] == "AnalogNAS-Bench CIFAR-10, NAS-Bench-201 cell space"
    assert info["n_cells"] == 15625 and "baseline_accuracy" in info["metrics"]
    text = run_cli("data", "info")
    assert "AnalogNAS-Bench CIFAR-10, NAS-Bench-201 cell space" in text.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("data", "info", "--data", "missing.csv"), "does not exist"),
        (("data", "info", "--space", "nope"), "unknown search space 'nope'"),
        (("data", "info", "--data", "{table}", "--dataset", "cifar100"), "--dataset"),
        (("data", "info", "--data", "{bad}"), "holds 'x'"),
        (("data", "info", "--data", "{badarch}"), "unknown op 'conv9'"),
        (("data", "convert", "missing.pth", "-o", "{out}"), "does not exist"),
        (("data", "info", "--bogus"), "No such option"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, nb201_cifar10_path, args, needle):
    bad = tmp_path / "bad.csv"
    bad.write_text("index,arch,acc\n1651,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,x\n")
    badarch = tmp_path / "badarch.csv"
    badarch.write_text("index,arch,acc\n0,|conv9~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n")
    paths = {"table": str(nb201_cifar10_path), "bad": str(bad), "badarch": str(badarch),
             "out": str(tmp_path / "out.csv")}
    out = run_cli(*(a.format(**paths) for a in args))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out.csv").exists()


def test_convert_official_file(tmp_path):
    pth = write_official_file(tmp_path / "tiny.pth", [5, 6111])
    table = tmp_path / "table.csv"
    out = run_cli("data", "convert", str(pth), "--dataset", "cifar10", "-o", str(table))
    assert out.returncode == 0, out.stderr
    rows = table.read_text().splitlines()
    assert rows[0].startswith("index,arch,val_acc") and [r.split(",")[0] for r in rows[1:]] == ["5", "6111"]
    # The two-cell table converts, but a benchmark must hold every cell: `data info` says what lacks.
    info = run_cli("data", "info", "--data", str(table))
    assert info.returncode == 2 and "lacks 15,623 of the 15,625" in info.stderr, info.stderr
    # A failed conversion leaves nothing behind.
    failed = run_cli("data", "convert", str(pth), "--dataset", "nope", "-o", str(tmp_path / "x.csv"))
    assert failed.returncode == 2 and not (tmp_path / "x.csv").exists()


def test_import_nasloop_does_not_import_torch():
    code = "import sys, nasloop, nasloop.registry, nasloop.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr
