"""Test helpers: writers of the official file formats; the tfds-form tables re-exported
from bench.data.tfds_records, where the reference implementation reads them."""

from __future__ import annotations

import zipfile
from pathlib import Path

from bench.data import labels
from bench.data.raw import RawTables
from bench.data.tfds_records import movies_table, stream_ratings

__all__ = ["movies_table", "stream_ratings", "write_ml100k", "write_ml1m", "zip_folder"]


_ML100K_OCCUPATION_TEXT = {  # one u.user text per tfds label (the map is many-to-one)
    labels.occupation_id(label): text for text, label in labels.ML100K_OCCUPATIONS.items()
}


def write_ml100k(raw: RawTables, folder: Path) -> Path:
    """Write `raw` as an official ml-100k release (u.data, u.item latin-1, u.user)."""
    folder.mkdir(parents=True, exist_ok=True)
    r = raw.ratings
    (folder / "u.data").write_text(
        "".join(f"{a}\t{b}\t{c}\t{d}\n" for a, b, c, d in r.itertuples(index=False))
    )
    flag_ids = [labels.genre_id(g) for g in labels.ML100K_GENRE_FLAGS]
    lines = []
    for movie_id, title, genres in raw.movies.itertuples(index=False):
        flags = "|".join("1" if g in genres else "0" for g in flag_ids)
        lines.append(f"{movie_id}|{title}|01-Jan-1995||http://example.invalid/{movie_id}|{flags}\n")
    (folder / "u.item").write_bytes("".join(lines).encode("latin-1"))
    (folder / "u.user").write_text("".join(
        f"{u}|{int(age)}|{'M' if male else 'F'}|{_ML100K_OCCUPATION_TEXT[occ]}|0{u:04d}\n"
        for u, age, male, occ in raw.users.itertuples(index=False)
    ))
    return folder


def write_ml1m(raw: RawTables, folder: Path) -> Path:
    """Write `raw` as an official ml-1m release (`::`-separated .dat files)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("".join(
        f"{a}::{b}::{c}::{d}\n" for a, b, c, d in raw.ratings.itertuples(index=False)
    ))
    (folder / "movies.dat").write_bytes("".join(
        f"{m}::{t}::{'|'.join(labels.TFDS_GENRES[g] for g in gs)}\n"
        for m, t, gs in raw.movies.itertuples(index=False)
    ).encode("latin-1"))
    codes = {labels.occupation_id(name): code for code, name in enumerate(labels.ML1M_OCCUPATIONS)}
    (folder / "users.dat").write_text("".join(
        f"{u}::{'M' if male else 'F'}::{int(age)}::{codes[occ]}::0{u:04d}\n"
        for u, age, male, occ in raw.users.itertuples(index=False)
    ))
    return folder


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip `folder` as GroupLens does: members under `<folder name>/`."""
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.iterdir()):
            out.write(path, f"{folder.name}/{path.name}")
    return archive
