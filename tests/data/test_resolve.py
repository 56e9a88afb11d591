"""A run's dataset: resolved and verified once by the parent, checked cheaply by each worker."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from bench.data import cache, store
from bench.data.cache import CacheError, DatasetRef
from bench.record import RunRecord
from bench.run.worker import run_job
from bench.spec import RunSpec
from tests.data.conftest import SMALL_SYNTHETIC
from tests.fixtures import make_dataset

CHANGED = "cache changed since the run started"


@pytest.fixture
def built(tmp_path: Path) -> Path:
    cache.build(SMALL_SYNTHETIC, cache_dir=tmp_path)
    return tmp_path


@pytest.fixture
def ref(built: Path) -> DatasetRef:
    return cache.resolve(SMALL_SYNTHETIC, built)


def _array_file(ref: DatasetRef, name: str = "ratings.user_id") -> Path:
    return Path(ref.location) / store.ARRAYS / f"{name}.npy"


def test_the_worker_loads_what_the_parent_resolved(built: Path, ref: DatasetRef) -> None:
    full = cache.load_dataset(SMALL_SYNTHETIC, built)
    assert ref.location == str(cache.cache_path(SMALL_SYNTHETIC, built).absolute())
    assert (ref.name, ref.content_hash) == (SMALL_SYNTHETIC, full.content_hash)
    assert (ref.train_rows, ref.vocab) == (len(full.train), full.vocab)
    again = DatasetRef.from_dict(json.loads(json.dumps(ref.to_dict())))  # as the job carries it
    assert again == ref
    data = cache.load_ref(again)
    assert (data.name, data.content_hash, data.vocab) == (full.name, full.content_hash, full.vocab)
    for name, array in full.train.features.items():
        assert np.array_equal(data.train.features[name], array), name
    assert np.array_equal(data.test.label, full.test.label)


def test_every_byte_is_hashed_once_by_the_parent_and_never_by_the_worker(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = store.content_hash
    monkeypatch.setattr(store, "content_hash", lambda *a: calls.append("hash") or real(*a))
    ref = cache.resolve(SMALL_SYNTHETIC, built)
    assert calls == ["hash"]
    cache.load_ref(ref)
    assert calls == ["hash"]


def test_a_missing_cache_is_built_unless_the_caller_says_not_to(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match=f"--dataset {SMALL_SYNTHETIC} --cache-dir {tmp_path}"):
        cache.resolve(SMALL_SYNTHETIC, tmp_path, build=False)
    assert list(tmp_path.iterdir()) == []
    ref = cache.resolve(SMALL_SYNTHETIC, tmp_path)
    assert ref.content_hash == cache.verify(SMALL_SYNTHETIC, tmp_path)["content_hash"]


def test_the_parent_rebuilds_a_corrupt_cache(ref: DatasetRef, built: Path) -> None:
    path = _array_file(ref)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CacheError):
        cache.resolve(SMALL_SYNTHETIC, built, build=False)
    assert cache.resolve(SMALL_SYNTHETIC, built) == ref


def test_a_factory_is_called_on_both_sides() -> None:
    name = "tests.fixtures:make_dataset"
    ref = cache.resolve(name)
    reference = make_dataset()
    assert (ref.location, ref.content_hash) == (name, reference.content_hash)
    assert (ref.train_rows, ref.vocab) == (len(reference.train), reference.vocab)
    assert cache.load_ref(ref).content_hash == reference.content_hash


def test_the_worker_refuses_another_content_hash(ref: DatasetRef, built: Path) -> None:
    stale = dataclasses.replace(ref, content_hash="0" * 64)
    expected = (f"{CHANGED}: expected hash {'0' * 64}, found {ref.content_hash}; "
                f"run python -m bench data build --dataset {SMALL_SYNTHETIC} --cache-dir {built}")
    with pytest.raises(CacheError) as caught:
        cache.load_ref(stale)
    assert str(caught.value) == expected


@pytest.mark.parametrize("change", ["deleted", "truncated", "manifest edited"])
def test_the_worker_refuses_a_cache_that_changed_shape(ref: DatasetRef, change: str) -> None:
    path = _array_file(ref)
    if change == "deleted":
        path.unlink()
    elif change == "truncated":
        path.write_bytes(path.read_bytes()[:-8])
    else:
        manifest = Path(ref.location) / store.MANIFEST
        manifest.write_text(manifest.read_text().replace('"numpy"', '"numpy "', 1))
    with pytest.raises(CacheError, match=f"^{CHANGED}: .*; run python -m bench data build"):
        cache.load_ref(ref)


def test_a_changed_array_byte_is_left_to_the_full_checks(ref: DatasetRef, built: Path) -> None:
    """The worker trusts the bytes the parent hashed; `data verify` and load_dataset do not."""
    path = _array_file(ref)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    cache.load_ref(ref)
    with pytest.raises(CacheError, match="does not match its recorded sha256"):
        cache.verify(SMALL_SYNTHETIC, built)
    with pytest.raises(CacheError, match="does not match its recorded sha256"):
        cache.load_dataset(SMALL_SYNTHETIC, built)


def test_a_run_whose_cache_changed_fails_before_importing_anything(ref: DatasetRef) -> None:
    rec = RunRecord(run_id="r", status="failed", impl="jax", spec={}, spec_hash="s", repeat=0,
                    dataset={"name": ref.name, "content_hash": ref.content_hash},
                    started_at="t", environment={}, git={})
    stale = dataclasses.replace(ref, content_hash="0" * 64)
    job = {"record": {"spec": RunSpec(impl="jax").to_dict()}, "dataset": stale.to_dict()}
    with pytest.raises(CacheError, match=f"{CHANGED}: expected hash 0000"):
        run_job(job, rec, lambda *a, **k: None)  # type: ignore[arg-type]
    assert "import_s" not in rec.figures


def test_a_failing_factory_is_one_line_of_bad_input() -> None:
    with pytest.raises(CacheError, match="dataset tests.fixtures:nope failed: AttributeError"):
        cache.resolve("tests.fixtures:nope")


def test_the_worker_refuses_a_factory_whose_data_changed() -> None:
    ref = dataclasses.replace(cache.resolve("tests.fixtures:make_dataset"), content_hash="0" * 64)
    with pytest.raises(CacheError, match="dataset changed since the run started"):
        cache.load_ref(ref)


def test_the_worker_maps_the_arrays_and_gathers_movie_columns_when_read(
    built: Path, ref: DatasetRef
) -> None:
    """load_ref reads no array up front; writes stay private; gathered columns match the table."""
    data = cache.load_ref(ref)
    user_id = data.train.features["user_id"]
    base = user_id
    while base is not None and not isinstance(base, np.memmap):
        base = base.base
    assert base is not None and user_id.flags.writeable
    user_id[:] = 0  # copy-on-write: the cache's bytes are untouched
    assert cache.verify(SMALL_SYNTHETIC, built)["content_hash"] == ref.content_hash
    features = data.test.features
    assert list(features) == [*(k for k in features if "movie_" not in k or k == "movie_id"),
                              "movie_title_vector", "movie_genres"]
    rows = np.searchsorted(data.candidates["movie_id"], features["movie_id"])
    for name in ("movie_title_vector", "movie_genres"):
        assert features[name] is features[name]  # gathered once, then kept
        assert np.array_equal(features[name], data.candidates[name][rows])
    with pytest.raises(KeyError):
        features["no such column"]
