"""The cache: layout, determinism, integrity checks, atomic and concurrent builds."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bench.data import cache, preprocess, store
from bench.data.dataset import CANDIDATE_FEATURES, QUERY_FEATURES
from tests.data.conftest import SMALL_SYNTHETIC
from tests.fixtures import make_dataset


@pytest.fixture
def built(tmp_path: Path) -> Path:
    cache.build(SMALL_SYNTHETIC, cache_dir=tmp_path)
    return tmp_path


def test_loaded_dataset_has_the_fixture_schema(built: Path) -> None:
    data = cache.load_dataset(SMALL_SYNTHETIC, built)
    reference = make_dataset()
    assert set(data.train.features) == set(QUERY_FEATURES) | set(CANDIDATE_FEATURES)
    for name, array in data.train.features.items():
        assert array.dtype == reference.train.features[name].dtype, name
        assert array.ndim == reference.train.features[name].ndim, name
    assert data.train.label.dtype == np.float32
    assert (len(data.train), len(data.test)) == (1200, 300)
    assert np.array_equal(data.candidates["movie_id"], np.arange(1, 91))
    assert data.vocab.num_movies == 90 and data.vocab.title_length == 16
    assert data.train.features["movie_title_vector"].shape == (1200, 16)
    assert data.name == SMALL_SYNTHETIC  # already canonical


def test_row_features_are_the_candidate_rows(built: Path) -> None:
    data = cache.load_dataset(SMALL_SYNTHETIC, built)
    rows = data.test.features["movie_id"] - 1
    assert np.array_equal(data.test.features["movie_genres"], data.candidates["movie_genres"][rows])
    titles = data.candidates["movie_title_vector"][rows]
    assert np.array_equal(data.test.features["movie_title_vector"], titles)


def test_rebuild_gives_the_same_content_hash(built: Path, tmp_path_factory) -> None:
    first = cache.verify(SMALL_SYNTHETIC, built)["content_hash"]
    other = tmp_path_factory.mktemp("again")
    cache.build(SMALL_SYNTHETIC, cache_dir=other)
    assert cache.verify(SMALL_SYNTHETIC, other)["content_hash"] == first
    cache.build(SMALL_SYNTHETIC, cache_dir=built, force=True)
    assert cache.load_dataset(SMALL_SYNTHETIC, built).content_hash == first


def test_a_different_seed_changes_the_content_hash(built: Path) -> None:
    other = SMALL_SYNTHETIC.replace("seed=7", "seed=8")
    cache.build(other, cache_dir=built)
    assert cache.verify(other, built)["content_hash"] != cache.verify(SMALL_SYNTHETIC, built)[
        "content_hash"
    ]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("which", ["array data", "array header", "manifest"])
def test_any_changed_byte_is_refused_then_rebuilt(built: Path, which: str) -> None:
    folder = cache.cache_path(SMALL_SYNTHETIC, built)
    good = cache.verify(SMALL_SYNTHETIC, built)["content_hash"]
    target = {
        "array data": (folder / "arrays" / "ratings.user_id.npy", -3),
        "array header": (folder / "arrays" / "ratings.label.npy", 40),
        "manifest": (folder / "manifest.json", 200),
    }[which]
    path, offset = target
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(cache.CacheError, match="run python -m bench data build --dataset synth"):
        cache.load_dataset(SMALL_SYNTHETIC, built)
    assert cache.ensure_dataset(SMALL_SYNTHETIC, cache_dir=built) == folder
    assert cache.load_dataset(SMALL_SYNTHETIC, built).content_hash == good


def test_every_file_is_covered_by_the_checks(built: Path) -> None:
    """Flip one byte in each file in turn: every flip is refused."""
    folder = cache.cache_path(SMALL_SYNTHETIC, built)
    for path in _files(folder):
        original = path.read_bytes()
        flipped = bytearray(original)
        flipped[len(original) // 2] ^= 0x20
        path.write_bytes(bytes(flipped))
        with pytest.raises(cache.CacheError):
            cache.load_dataset(SMALL_SYNTHETIC, built)
        path.write_bytes(original)
    cache.load_dataset(SMALL_SYNTHETIC, built)


def test_missing_cache_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(cache.CacheError, match=f"--dataset ml-100k --cache-dir {tmp_path}"):
        cache.load_dataset("ml-100k", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_build_leaves_nothing_loadable(tmp_path: Path, monkeypatch) -> None:
    calls = {"n": 0}
    real = store._npy_bytes

    def failing(array: np.ndarray) -> bytes:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # as if the user pressed ctrl-c mid-write
        return real(array)

    monkeypatch.setattr(store, "_npy_bytes", failing)
    with pytest.raises(KeyboardInterrupt):
        cache.build(SMALL_SYNTHETIC, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # the private temporary folder is gone too
    with pytest.raises(cache.CacheError):
        cache.load_dataset(SMALL_SYNTHETIC, tmp_path)


def test_killed_build_is_ignored_then_cleaned(tmp_path: Path) -> None:
    """A builder killed outright leaves its temporary folder; it never loads, and goes."""
    script = (
        "import os, sys\n"
        "from bench.data import cache, store\n"
        "real = store._npy_bytes\n"
        "calls = []\n"
        "def dying(a):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 4: os._exit(9)\n"
        "    return real(a)\n"
        "store._npy_bytes = dying\n"
        f"cache.build({SMALL_SYNTHETIC!r}, cache_dir=sys.argv[1])\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], timeout=120)
    assert done.returncode == 9
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(store.TMP_PREFIX)
    with pytest.raises(cache.CacheError):
        cache.load_dataset(SMALL_SYNTHETIC, tmp_path)
    folder = cache.ensure_dataset(SMALL_SYNTHETIC, cache_dir=tmp_path)
    assert _one_version(tmp_path, folder)


def _one_version(root: Path, pointer: Path) -> bool:
    """`root` holds just the cache path, a symlink, and the one version it names."""
    names = sorted(p.name for p in root.iterdir())
    return pointer.is_symlink() and names == [pointer.name, store.current(pointer).name]


def test_concurrent_builds_leave_one_valid_cache(tmp_path: Path, monkeypatch, caplog) -> None:
    """Two builds that are both mid-way at the same moment: one wins, both succeed."""
    barrier = threading.Barrier(2, timeout=60)
    real = preprocess.preprocess

    def in_step(raw, *args):  # type: ignore[no-untyped-def]
        barrier.wait()  # both builders have fetched; neither has written
        return real(raw, *args)

    monkeypatch.setattr(preprocess, "preprocess", in_step)
    caplog.set_level(logging.INFO, logger="bench.data.cache")
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(
            cache.build(SMALL_SYNTHETIC, cache_dir=tmp_path)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 2 and results[0] == results[1]
    assert "another build finished" in caplog.text  # the loser discarded its copy
    assert _one_version(tmp_path, Path(str(results[0])))
    cache.load_dataset(SMALL_SYNTHETIC, tmp_path)


def test_concurrent_cli_processes(tmp_path: Path) -> None:
    """Two `python -m bench data build` processes racing on the same cache root."""
    cmd = [sys.executable, "-m", "bench", "data", "build", "--dataset", SMALL_SYNTHETIC,
           "--cache-dir", str(tmp_path)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    assert _one_version(tmp_path, cache.cache_path(SMALL_SYNTHETIC, tmp_path))
    cache.load_dataset(SMALL_SYNTHETIC, tmp_path)


def test_cache_root_precedence(tmp_path: Path, monkeypatch) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "datasets").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    monkeypatch.setattr(cache, "_CHECKOUT", checkout)
    monkeypatch.delenv(cache.ENV_VAR, raising=False)
    assert cache.cache_root() == checkout / "datasets"
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "env"))
    assert cache.cache_root() == tmp_path / "env"
    assert cache.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv(cache.ENV_VAR)
    monkeypatch.setattr(cache, "_CHECKOUT", tmp_path / "site-packages")  # an installed copy
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "deeprec-bench"


def test_versioned_folder_per_dataset(tmp_path: Path) -> None:
    folder = cache.cache_path("ml-100k", tmp_path)
    assert folder == tmp_path / f"ml-100k-v{preprocess.PREPROCESSING_VERSION}"
    assert cache.cache_path(SMALL_SYNTHETIC, tmp_path).name.startswith("synthetic-u60-m90-r1500-s7")


def test_loading_imports_no_framework_and_no_pandas(built: Path) -> None:
    script = (
        "import sys\n"
        "from bench.data.cache import load_dataset\n"
        f"load_dataset({SMALL_SYNTHETIC!r}, {str(built)!r})\n"
        "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch', 'pandas') if m in sys.modules]\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_building_imports_no_framework(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from bench.data.cache import build\n"
        f"build({SMALL_SYNTHETIC!r}, cache_dir={str(tmp_path)!r})\n"
        "print([m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_superseded_versions_stay_for_readers_then_go(tmp_path: Path) -> None:
    """clean_versions keeps the target, the one before it, and any older version whose
    successor was named less than READER_GRACE_S ago (a reader may still be loading it)."""
    now = time.time_ns()
    ages_s = {"a": 300.0, "b": 200.0, "c": 30.0, "d": 20.0, "e": 10.0}  # by build time
    for age in ages_s.values():
        (tmp_path / f"x.{now - int(age * 1e9)}").mkdir()
    by_name = dict(zip(ages_s, store.versions(tmp_path / "x"), strict=True))
    os.symlink(by_name["e"].name, tmp_path / "x")
    store.clean_versions(tmp_path / "x")
    # a's successor b is 200 s old: a goes; b's successor c is 30 s old: b stays.
    assert store.versions(tmp_path / "x") == [by_name[k] for k in "bcde"]
    store.clean_versions(tmp_path / "x", grace_s=0.0)
    assert store.versions(tmp_path / "x") == [by_name["d"], by_name["e"]]
