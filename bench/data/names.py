"""Dataset names: "ml-100k", "ml-1m" and "synthetic:users=U,movies=M,ratings=R[,seed=S]"."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.errors import UsageError

REAL_DATASETS = ("ml-100k", "ml-1m")
# Bump whenever preprocessing would change any cached array: each version gets its own folder.
PREPROCESSING_VERSION = 1
_SYNTHETIC_KEYS = ("users", "movies", "ratings", "seed")
_SYNTHETIC_HELP = "synthetic:users=U,movies=M,ratings=R[,seed=S] with positive integers"


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed dataset name."""

    kind: str  # "ml-100k" | "ml-1m" | "synthetic"
    users: int = 0  # synthetic only
    movies: int = 0
    ratings: int = 0
    seed: int = 0

    @property
    def name(self) -> str:
        """The canonical name (seed always spelled out for synthetic data)."""
        if self.kind != "synthetic":
            return self.kind
        return (
            f"synthetic:users={self.users},movies={self.movies},"
            f"ratings={self.ratings},seed={self.seed}"
        )

    @property
    def slug(self) -> str:
        """A file-system-safe form of the name, for the cache folder."""
        if self.kind != "synthetic":
            return self.kind
        return f"synthetic-u{self.users}-m{self.movies}-r{self.ratings}-s{self.seed}"


def parse_dataset(name: str) -> DatasetSpec:
    """Parse a dataset name, or raise UsageError saying what is accepted.

    Args:
        name: "ml-100k", "ml-1m" or "synthetic:users=U,movies=M,ratings=R[,seed=S]".
    """
    if name in REAL_DATASETS:
        return DatasetSpec(kind=name)
    if not name.startswith("synthetic:"):
        raise UsageError(
            f"unknown dataset {name!r}; use ml-100k, ml-1m or {_SYNTHETIC_HELP}"
        )
    values: dict[str, int] = {}
    for part in name[len("synthetic:"):].split(","):
        match = re.fullmatch(r"(\w+)=(\d+)", part.strip())
        if not match or match[1] not in _SYNTHETIC_KEYS or match[1] in values:
            raise UsageError(f"bad synthetic dataset {name!r}; use {_SYNTHETIC_HELP}")
        values[match[1]] = int(match[2])
    if any(k not in values for k in _SYNTHETIC_KEYS[:3]) or min(values.values()) < 0:
        raise UsageError(f"bad synthetic dataset {name!r}; use {_SYNTHETIC_HELP}")
    spec = DatasetSpec(kind="synthetic", **values)
    if min(spec.users, spec.movies) < 1 or spec.ratings < 10:
        raise UsageError(f"{name!r}: need users >= 1, movies >= 1 and ratings >= 10")
    if spec.ratings > spec.users * spec.movies // 2:
        raise UsageError(
            f"{name!r}: at most users * movies / 2 = {spec.users * spec.movies // 2} "
            "distinct ratings fit; lower ratings or raise users/movies"
        )
    return spec
