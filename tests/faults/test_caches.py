"""Damaged and shared caches: structure damage is refused or rebuilt, rebuilds are atomic
for readers, a cache dir that is a file is one line, folders are readable by others.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.cli import main
from bench.data import cache, store

ROOT = Path(__file__).resolve().parents[2]
SMALL = "synthetic:users=60,movies=90,ratings=1500,seed=7"
FAKE = "tests.harness.fake_impl:FakeImpl"


@pytest.fixture
def built(tmp_path: Path) -> Path:
    cache.build(SMALL, cache_dir=tmp_path)
    return tmp_path


def _folder_is_a_file(folder: Path) -> None:
    folder.unlink()  # the symlink readers use
    folder.write_text("not a cache")


def _arrays_is_a_file(folder: Path) -> None:
    shutil.rmtree(folder / "arrays")
    (folder / "arrays").write_text("not a folder")


def _array_is_a_folder(folder: Path) -> None:
    path = folder / "arrays" / "ratings.label.npy"
    path.unlink()
    path.mkdir()


def _manifest_edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """Edit the manifest, then recompute its digest as a careless tool would."""
    def damage(folder: Path) -> None:
        path = folder / store.MANIFEST
        manifest = json.loads(path.read_text())
        change(manifest)
        manifest["manifest_sha256"] = store._manifest_digest(manifest)
        path.write_text(store.canonical_json(manifest))
    return damage


DAMAGE: dict[str, Callable[[Path], None]] = {
    "dataset folder is a file": _folder_is_a_file,
    "the version it names is gone": lambda folder: shutil.rmtree(store.current(folder)),
    "arrays/ is a file": _arrays_is_a_file,
    "an array file is a folder": _array_is_a_folder,
    "no arrays list": _manifest_edit(lambda m: m.pop("arrays")),
    "arrays a list": _manifest_edit(lambda m: m.update(arrays=["ratings.label"])),
    "an entry without sha256": _manifest_edit(lambda m: m["arrays"]["ratings.label"].pop("sha256")),
    "a file outside arrays/": _manifest_edit(
        lambda m: m["arrays"]["ratings.label"].update(file="../../etc/passwd")),
    "no content_meta": _manifest_edit(lambda m: m.pop("content_meta")),
}


@pytest.mark.parametrize("what", list(DAMAGE))
def test_structure_damage_is_refused_then_rebuilt(built: Path, what: str, capsys) -> None:
    good = cache.verify(SMALL, built)["content_hash"]
    DAMAGE[what](cache.cache_path(SMALL, built))
    capsys.readouterr()
    assert main(["data", "verify", "--dataset", SMALL, "--cache-dir", str(built)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "run python -m bench data build" in err
    with pytest.raises(cache.CacheError):
        cache.load_dataset(SMALL, built)
    ref = cache.resolve(SMALL, built)  # what `bench run` does first: rebuilds the damage
    assert ref.content_hash == good
    assert cache.load_ref(ref).content_hash == good
    DAMAGE[what](cache.cache_path(SMALL, built))  # and `data build` (no --force) repairs it
    assert main(["data", "build", "--dataset", SMALL, "--cache-dir", str(built)]) == 0
    assert cache.verify(SMALL, built)["content_hash"] == good


def _main_line(args: list[str], capsys) -> str:
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("command", [["data", "verify"], ["data", "build"], ["data", "info"]])
@pytest.mark.parametrize("how", ["flag", "env", "inside"])
def test_a_cache_dir_that_is_a_file_is_one_line(tmp_path: Path, monkeypatch, capsys,
                                                command: list[str], how: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    root = blocker / "sub" if how == "inside" else blocker
    args = [*command, "--dataset", SMALL]
    if how == "env":
        monkeypatch.setenv(cache.ENV_VAR, str(root))
    else:
        args += ["--cache-dir", str(root)]
    assert "file" in _main_line(args, capsys)
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("command", ["run", "parity"])
def test_run_and_parity_refuse_a_cache_dir_that_is_a_file(tmp_path: Path, command: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = {"run": ["run", "--impl", FAKE, "--epochs", "1", "--no-progress"],
            "parity": ["parity", "--impl", FAKE, "--reference", FAKE, "--steps", "2"]}[command]
    env = {**os.environ, cache.ENV_VAR: str(blocker)}
    for extra, environ in (([], env), (["--cache-dir", str(blocker)], dict(os.environ))):
        done = subprocess.run([sys.executable, "-m", "bench", *args, "--dataset", SMALL,
                               "--results", str(tmp_path / "results"), *extra],
                              cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "file" in done.stderr
    assert blocker.read_text() == "x" and not (tmp_path / "results").exists()


READER = """
import sys, time
from pathlib import Path
from bench.data import cache
name, root, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ref = cache.resolve(name, root, build=False)
reads = failed = 0
errors = []
while not stop.exists():
    for load in (lambda: cache.load_dataset(name, root), lambda: cache.load_ref(ref)):
        reads += 1
        try:
            assert load().content_hash == ref.content_hash
        except Exception as exc:
            failed += 1
            errors.append(repr(exc))
print(reads, failed, errors[:3])
"""


def test_readers_always_see_a_cache_during_forced_rebuilds(built: Path) -> None:
    """Another process loads the cache in a loop while this one forces rebuild after rebuild."""
    stop = built.parent / f"{built.name}-stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, SMALL, str(built), str(stop)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # the reader is importing and looping
        for _ in range(12):
            cache.build(SMALL, cache_dir=built, force=True)
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=60)
    reads, failed, errors = out.split(" ", 2)
    assert int(reads) > 50 and int(failed) == 0, (reads, failed, errors)
    pointer = cache.cache_path(SMALL, built)
    assert not [p for p in built.iterdir() if p.name.startswith(store.TMP_PREFIX)]
    store.clean_versions(pointer, grace_s=0.0)  # the readers' grace over at once
    # The pointer, its target and the one version before it.
    names = sorted(p.name for p in built.iterdir())
    assert len(names) == 3 and pointer.is_symlink() and store.current(pointer).name in names


def test_a_cache_from_before_versions_loads_and_is_migrated(
        built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "READER_GRACE_S", 0.0)  # no reader here: clean at once
    pointer = cache.cache_path(SMALL, built)
    version = store.current(pointer)
    pointer.unlink()
    version.rename(pointer)  # a plain folder, as every cache built before versions is
    good = cache.load_dataset(SMALL, built).content_hash
    assert cache.resolve(SMALL, built).content_hash == good
    cache.build(SMALL, cache_dir=built, force=True)
    assert pointer.is_symlink() and cache.load_dataset(SMALL, built).content_hash == good
    cache.build(SMALL, cache_dir=built, force=True)  # the old plain folder goes after one more
    assert len(list(built.iterdir())) == 3


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_cache_folders_and_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        cache.build(SMALL, cache_dir=tmp_path / "shared")
    finally:
        os.umask(old)
    version = store.current(cache.cache_path(SMALL, tmp_path / "shared"))
    folders = [tmp_path / "shared", version, version / "arrays"]
    files = [version / store.MANIFEST, *(version / "arrays").iterdir()]
    assert {oct(p.stat().st_mode & 0o777) for p in folders} == {oct(0o777 & ~umask)}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o666 & ~umask)}
