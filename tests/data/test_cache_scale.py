"""bench.studies.cache_scale at a tiny size: two children per repeat, a markdown table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.studies import cache_scale

ROOT = Path(__file__).resolve().parents[2]
TINY = "synthetic:users=40,movies=50,ratings=400"


def test_tiny_study_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "cache_scale.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.studies.cache_scale", "--dataset", TINY, "--repeats", "2",
         "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert text == done.stdout and f"`{TINY},seed=0`" in text
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in text.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert rows["build: generate, preprocess, write (s)"][1] == "< 60"
    assert rows["build: generate, preprocess, write (s)"][-1].strip(" |") == "pass"
    assert rows["load: load_ref + touch every column (s)"][-1].strip(" |") == "pass"
    # 400 ratings make a cache of a few KiB: the interpreter alone is over 4x that.
    assert rows["build peak RSS / cache size on disk"][-1].strip(" |") == "FAIL"
    cache_mb = [float(v) for v in rows["cache size on disk (MiB)"][2:5]]
    assert 0 < cache_mb[0] <= cache_mb[1] <= cache_mb[2] < 1


def test_bad_input_is_refused_before_any_child(capsys) -> None:
    for argv in (["--dataset", "ml-20m"], ["--dataset", "ml-100k"], ["--repeats", "0"]):
        try:
            cache_scale.main(argv)
        except SystemExit as exc:
            assert exc.code == 2
        else:
            raise AssertionError(f"{argv} accepted")
    assert "error:" in capsys.readouterr().err


def test_load_and_touch_reads_every_column(tmp_path: Path) -> None:
    from bench.data import cache

    ref = cache.resolve(TINY, tmp_path)
    load_s, touch_s = cache_scale.load_and_touch(ref.to_dict())
    assert load_s >= 0 and touch_s >= 0
    assert cache_scale.disk_bytes(Path(ref.location)) > 0
