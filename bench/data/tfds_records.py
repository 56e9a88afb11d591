"""Raw MovieLens tables as the tfds `movielens/100k-ratings` and `100k-movies` records.

What the reference program reads with `tfds.load`, field for field: the ratings
in tfds record order with tfds field formats, and the movies table. tfds downloads
and prepares a dataset once, then reads its records; `load_records` does the same
under the cache root (`reference-records/<dataset>-<content hash>.npz`, written
atomically the first time, from the same source the cache was built from).
numpy/pandas only: the TensorFlow side is the reference implementation's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.cache import cache_path, cache_root
from bench.data.featurespace import tfds_stream_order
from bench.data.names import parse_dataset
from bench.data.raw import RawTables
from bench.data.store import read_manifest
from bench.errors import UsageError
from bench.store import atomic_write

log = logging.getLogger(__name__)

RECORDS_FOLDER = "reference-records"


def stream_ratings(raw: RawTables) -> dict[str, np.ndarray]:
    """The ratings in tfds record order and tfds field format, as the reference reads them."""
    ratings = raw.ratings
    if not raw.stream_ordered:
        ratings = ratings.iloc[tfds_stream_order(len(ratings))]
    users = raw.users.set_index("user_id").loc[ratings["user_id"]]
    titles = raw.movies.set_index("movie_id")["title"].loc[ratings["movie_id"]]
    return {
        "user_id": ratings["user_id"].to_numpy(np.int64),
        "movie_id": ratings["movie_id"].to_numpy(np.int64),
        "raw_user_age": users["age"].to_numpy(np.float32),
        "user_gender": users["is_male"].to_numpy(bool),
        "user_occupation_label": users["occupation"].to_numpy(np.int64),
        "user_rating": ratings["rating"].to_numpy(np.float32),
        "timestamp": ratings["timestamp"].to_numpy(np.int64),
        "movie_title": titles.to_numpy().astype(str),
    }


def movies_table(raw: RawTables) -> dict[str, np.ndarray]:
    """Movies by id: ids, titles, genre lists as a padded matrix plus lengths."""
    movies = raw.movies.sort_values("movie_id")
    genres = movies["genres"].tolist()
    width = max(len(g) for g in genres)
    matrix = np.zeros((len(genres), width), np.int64)
    for row, gs in enumerate(genres):
        matrix[row, : len(gs)] = gs
    return {
        "movies_id": movies["movie_id"].to_numpy(np.int64),
        "movies_title": movies["title"].to_numpy().astype(str),
        "movies_genres": matrix,
        "movies_num_genres": np.array([len(g) for g in genres]),
    }


def records_path(name: str, content_hash: str) -> Path:
    """Where dataset `name`'s records are kept (keyed by the cache content they match)."""
    return cache_root() / RECORDS_FOLDER / f"{parse_dataset(name).slug}-{content_hash[:16]}.npz"


def load_records(name: str, content_hash: str) -> dict[str, np.ndarray]:
    """`stream_ratings` and `movies_table` of dataset `name`, made once and then read.

    Args:
        name: the dataset's name (a cache name; a `module:function` factory has no raw tables).
        content_hash: the content hash of the cache the run loaded.
    """
    path = records_path(name, content_hash)
    if not path.is_file():
        raw = raw_tables(name, content_hash)
        arrays: dict[str, Any] = {**stream_ratings(raw), **movies_table(raw)}
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as f:
            np.savez_compressed(f, **arrays)
        log.info("wrote %s", path)
        return arrays  # not read back: the run that made the file already holds them
    with np.load(path, allow_pickle=False) as records:
        return dict(records)


def raw_tables(name: str, content_hash: str) -> RawTables:
    """Dataset `name`'s raw tables, from the source its cache was built from where known."""
    spec = parse_dataset(name)
    if spec.kind == "synthetic":
        from bench.data.synthetic import generate

        return generate(spec)
    from bench.data.sources import fetch

    try:
        manifest = read_manifest(cache_path(name))
    except Exception:  # noqa: BLE001 - no readable cache here: any source will do
        manifest = {}
    source = "auto"
    if manifest.get("content_hash") == content_hash:
        kind, _, where = str(manifest.get("source", "")).partition(":")
        source = where if kind == "path" else kind
    try:
        return fetch(spec.kind, source)
    except UsageError:
        if source == "auto":
            raise
        log.warning("source %s unavailable; trying auto", source)
        return fetch(spec.kind, "auto")
