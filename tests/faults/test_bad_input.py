"""Bad input to every sub-command: one line, exit 2, nothing written, nothing started.

The cases are rows of tests/faults/cases.py. Each runs in this process
through bench.cli.main (fast); a few, one per command, also run as
`python -m bench` in a subprocess, to see the real stderr.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import pytest

from bench.cli import main
from tests.faults.cases import Case, Sandbox, all_cases, check, env_for, run_subprocess

ROOT = Path(__file__).resolve().parents[2]
CASES = all_cases()


def _params(cases: list[Case]) -> list[object]:
    return [pytest.param(c, id=c.id) for c in cases]


def _in_process(argv: list[str]) -> tuple[int | None, str]:
    """main(argv) here: (exit code, what went to stderr, warnings logged included)."""
    err = io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code: int | None = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        logging.getLogger().removeHandler(handler)
    return code, err.getvalue()


def _prepared(case: Case, tmp_path: Path) -> tuple[Sandbox, list[str], str]:
    box = Sandbox(tmp_path)
    argv = [box.fill(a) for a in case.argv]
    fragment = box.fill(case.fragment)
    if None in argv or fragment is None:
        pytest.skip("no unwritable folder here (root, no read-only mount)")
    return box, argv, fragment  # type: ignore[return-value]


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, argv, fragment = _prepared(case, tmp_path)
    for key, value in env_for(case, box).items():
        monkeypatch.setenv(key, value)
    before = box.snapshot()
    code, stderr = _in_process(argv)
    problem = check(case, fragment, code, stderr, box.snapshot() ^ before)
    assert problem is None, problem


# The first case of each command, and the first set by a variable, as a user runs them.
_BY_PROCESS = list({c.command: c for c in reversed(CASES)}.values()) + [
    next(c for c in CASES if c.env)]


@pytest.mark.parametrize("case", _params(_BY_PROCESS))
def test_bad_input_as_a_process(case: Case, tmp_path: Path) -> None:
    box, argv, fragment = _prepared(case, tmp_path)
    before = box.snapshot()
    code, stderr = run_subprocess(argv, env_for(case, box), ROOT, timeout=60)
    problem = check(case, fragment, code, stderr, box.snapshot() ^ before)
    assert problem is None, problem
