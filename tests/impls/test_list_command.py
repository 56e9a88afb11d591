"""`python -m bench list`: every registry entry, installed or not, without importing frameworks."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import registry
from bench.commands import list as list_cli
from bench.registry import ImplEntry

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("jax", "torch", "tensorflow", "keras", "keras_rs")


def test_list_imports_no_framework() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from bench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['list']) == 0\n"
        f"print(sorted(set({FRAMEWORKS!r}) & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_every_entry_listed_with_its_extra(capsys: pytest.CaptureFixture[str]) -> None:
    assert list_cli.list_command(argparse.Namespace(json=True)) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in listed] == list(registry.REGISTRY)
    for row in listed:
        entry = registry.get(row["name"])
        assert row["framework"] == entry.framework
        assert row["install with"] == f"pip install -e '.[{entry.extra}]'"
        missing = entry.missing()
        assert row["installed"] == ("yes" if not missing else f"no (missing {', '.join(missing)})")


def test_missing_framework_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = ImplEntry(
        name="fake", target="nowhere:Fake", framework="fakeframe",
        requires=("deeprec_no_such_module",), extra="fake",
    )
    monkeypatch.setitem(registry.REGISTRY, "fake", fake)
    out = io.StringIO()
    list_cli.list_command(argparse.Namespace(json=False), out=out)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("fake "))
    assert "no (missing deeprec_no_such_module)" in line
    assert "pip install -e '.[fake]'" in line
