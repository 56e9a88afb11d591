"""Child process for the `tfds` source: tfds MovieLens 100k -> two parquet tables.

Run as `python -m bench.data.tfds_export OUT_DIR [--data-dir DIR]`. It is the
only module in bench/data that imports tensorflow-datasets (and so TensorFlow),
and only ever in its own process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

RATING_FIELDS = (
    "user_id", "movie_id", "user_rating", "timestamp", "raw_user_age", "user_gender",
    "user_occupation_label",
)


def export(out_dir: Path, data_dir: str | None = None, download: bool = True) -> None:
    """Write ratings.parquet (tfds record order) and movies.parquet into `out_dir`.

    Args:
        out_dir: an existing folder.
        data_dir: tfds data folder, or None for tfds' default.
        download: let tfds download and prepare missing data (as the reference does).
    """
    import tensorflow_datasets as tfds

    def load(name: str):  # type: ignore[no-untyped-def]
        return tfds.load(name, split="train", data_dir=data_dir, download=download)

    ratings = load("movielens/100k-ratings")
    movies = load("movielens/100k-movies")
    columns: dict[str, list[np.ndarray]] = {k: [] for k in RATING_FIELDS}
    selected = ratings.map(lambda x: {k: x[k] for k in RATING_FIELDS})
    for batch in selected.batch(10_000).as_numpy_iterator():
        for key in RATING_FIELDS:
            columns[key].append(np.asarray(batch[key]))
    flat = {k: np.concatenate(v) for k, v in columns.items()}
    pd.DataFrame({
        "user_id": flat["user_id"].astype(np.int64),  # tfds stores ids as strings
        "movie_id": flat["movie_id"].astype(np.int64),
        "rating": flat["user_rating"].astype(np.int64),
        "timestamp": flat["timestamp"].astype(np.int64),
        "raw_user_age": flat["raw_user_age"].astype(np.float64),
        "is_male": flat["user_gender"].astype(bool),
        "occupation": flat["user_occupation_label"].astype(np.int64),
    }).to_parquet(out_dir / "ratings.parquet")
    movie_rows = list(movies.as_numpy_iterator())
    pd.DataFrame({
        "movie_id": [int(m["movie_id"]) for m in movie_rows],
        "title": [m["movie_title"].decode("utf-8") for m in movie_rows],
        "genres": [[int(g) for g in m["movie_genres"]] for m in movie_rows],
    }).to_parquet(out_dir / "movies.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-download", action="store_true", help="only read prepared data")
    args = parser.parse_args()
    export(args.out_dir, args.data_dir, download=not args.no_download)


if __name__ == "__main__":
    main()
