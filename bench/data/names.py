"""Dataset names: "ml-100k", "ml-1m" and "synthetic:users=U,movies=M,ratings=R[,seed=S]"."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.errors import UsageError
from bench.registry import is_target, module_exists

REAL_DATASETS = ("ml-100k", "ml-1m")
# Ratings in each real dataset: an upper bound of any split's rows, known without the cache.
REAL_RATINGS = {"ml-100k": 100_000, "ml-1m": 1_000_209}
# Bump whenever preprocessing would change any cached array: each version gets its own folder.
PREPROCESSING_VERSION = 1
# Bump whenever the generator's output changes: synthetic caches carry it in their folder name
# (2: ml-1m-shaped titles and genres, the users table as the user vocabulary, random rating order).
GENERATOR_VERSION = 2
_SYNTHETIC_KEYS = ("users", "movies", "ratings", "seed")
_SYNTHETIC_HELP = "synthetic:users=U,movies=M,ratings=R[,seed=S] with positive integers"
_KNOWN = f"known: {', '.join(REAL_DATASETS)}, {_SYNTHETIC_HELP}"


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
    def max_rows(self) -> int:
        """Ratings in the whole dataset: no split has more rows (known without the cache)."""
        return self.ratings if self.kind == "synthetic" else REAL_RATINGS[self.kind]

    @property
    def slug(self) -> str:
        """A file-system-safe form of the name, for the cache folder."""
        if self.kind != "synthetic":
            return self.kind
        return (f"synthetic-u{self.users}-m{self.movies}-r{self.ratings}-s{self.seed}"
                f"-g{GENERATOR_VERSION}")


def parse_dataset(name: str) -> DatasetSpec:
    """Parse a dataset name, or raise UsageError saying what is accepted.

    Args:
        name: "ml-100k", "ml-1m" or "synthetic:users=U,movies=M,ratings=R[,seed=S]".
    """
    if name in REAL_DATASETS:
        return DatasetSpec(kind=name)
    if not name.startswith("synthetic:"):
        raise UsageError(f"unknown dataset {name!r}; {_KNOWN}")
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


def check_name(name: str) -> None:
    """UsageError unless `name` is a dataset name or a `module:function` whose module exists.

    Checked before anything starts; whether the function returns a Dataset is
    for bench/data/cache.py's `resolve` (one line too).
    """
    if not is_target(name):
        parse_dataset(name)
        return
    module = name.partition(":")[0]
    if not module_exists(module):
        raise UsageError(f"unknown dataset {name!r}: no module {module!r} for a "
                         f"module:function; {_KNOWN}")
