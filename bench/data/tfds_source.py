"""The `tfds` source: MovieLens 100k as the reference program loads it.

tensorflow-datasets imports TensorFlow, which this process must never do, so
`python -m bench.data.tfds_export` reads `movielens/100k-ratings` and
`100k-movies` in a child process and writes plain parquet tables; here they
are mapped back onto the same RawTables the official files give. tfds yields
ratings in its record order, which is the order preprocessing adapts in.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.raw import RawTables, SourceError, users_table

log = logging.getLogger(__name__)

EXPORT_TIMEOUT_S = 600
RATINGS_FILE, MOVIES_FILE = "ratings.parquet", "movies.parquet"


def fetch_tfds(data_dir: str | None = None, download: bool = True) -> RawTables:
    """Load ml-100k through tensorflow-datasets in a child process.

    Args:
        data_dir: tfds data folder; tfds' own default (TFDS_DATA_DIR) when None.
        download: let tfds download and prepare the data if it is not there yet.
    """
    with tempfile.TemporaryDirectory(prefix="deeprec-tfds-") as tmp:
        cmd = [sys.executable, "-m", "bench.data.tfds_export", tmp]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        if not download:
            cmd.append("--no-download")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        log.info("reading movielens/100k through tensorflow-datasets (child process)")
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, env=env
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SourceError(f"tensorflow-datasets export failed: {exc}") from exc
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["no output"]
            raise SourceError(f"tensorflow-datasets could not load movielens/100k: {lines[-1]}")
        return read_export(Path(tmp))


def read_export(folder: Path) -> RawTables:
    """RawTables from the two parquet tables `bench.data.tfds_export` writes."""
    rows = pd.read_parquet(folder / RATINGS_FILE)
    movie_rows = pd.read_parquet(folder / MOVIES_FILE)
    ratings = pd.DataFrame(
        {k: rows[k].to_numpy(np.int64) for k in ("user_id", "movie_id", "rating", "timestamp")}
    )
    users = rows.drop_duplicates("user_id").sort_values("user_id")
    user_table = users_table(
        users["user_id"].to_numpy(), users["raw_user_age"].to_numpy(),
        users["is_male"].to_numpy(), users["occupation"].to_numpy(),
    )
    movies = pd.DataFrame({
        "movie_id": movie_rows["movie_id"].to_numpy(np.int64),
        "title": [str(t) for t in movie_rows["title"]],
        "genres": [tuple(int(g) for g in genres) for genres in movie_rows["genres"]],
    })
    digest = hashlib.sha256()
    for table in (ratings, user_table, movies.astype({"genres": str})):
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return RawTables(
        ratings, movies, user_table, source="tfds:movielens/100k-ratings+100k-movies",
        source_files={"tfds movielens/100k tables": digest.hexdigest()}, stream_ordered=True,
    )
