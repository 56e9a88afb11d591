"""The in-memory dataset every implementation receives: numpy arrays only.

Feature names are the reference program's (keras-io deep_recommender.py), so a
reader can map each array to the FeatureSpace output it reproduces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

# Query-tower inputs, each (N,) int32.
QUERY_FEATURES: tuple[str, ...] = (
    "user_id",  # 1..num_users, used directly as an embedding row (0 never occurs)
    "user_gender",  # IntegerLookup index, 0..num_genders-1
    "raw_user_age",  # Discretization bucket, 0..num_age_bins-1
    "user_gender_X_raw_user_age",  # HashedCrossing bucket, 0..num_crosses-1
    "user_occupation_label",  # IntegerLookup index, 0..num_occupations-1
)
# Candidate-tower inputs: movie_id (N,) int32, movie_title_vector (N, title_length)
# int32 (0 = padding), movie_genres (N, max_genres_per_movie) int32 (genre+1, 0 = padding).
CANDIDATE_FEATURES: tuple[str, ...] = ("movie_id", "movie_title_vector", "movie_genres")


@dataclass(frozen=True)
class Vocabulary:
    """Sizes the model's embedding tables are built from (as the reference names them)."""

    num_users: int  # USERS_COUNT: max user id; the table has num_users + 1 rows
    num_movies: int  # MOVIES_COUNT: max movie id; the table has num_movies + 1 rows
    num_genders: int  # GENDERS_COUNT
    num_age_bins: int  # AGE_BINS_COUNT
    num_crosses: int  # USER_GENDER_CROSS_COUNT
    num_occupations: int  # OCCUPATIONS_COUNT
    num_title_tokens: int  # TITLE_TOKEN_COUNT (incl. padding and OOV); table has +1 rows
    num_genres: int  # GENRES_COUNT (max genre id + 1); table has +1 rows
    title_length: int  # tokens per title (16)
    max_genres_per_movie: int  # MAX_GENRES_PER_MOVIE


class RowFeatures(Mapping[str, np.ndarray]):
    """A split's feature columns: those stored per row, and the candidate table's
    multi-valued columns gathered for each row's movie on first access (then kept).

    Loading a cache then copies nothing per rating (at 10 million ratings the
    gathered title and genre columns are ~900 MB and ~1 s): a run pays the gather
    when it first reads the column, outside the load.

    Args:
        stored: per-row columns, used as they are.
        table: candidate columns, one row per candidate.
        rows: (N,) each row's candidate row in `table`.
    """

    def __init__(
        self, stored: Mapping[str, np.ndarray], table: Mapping[str, np.ndarray], rows: np.ndarray
    ) -> None:
        self._stored, self._table, self._rows = dict(stored), dict(table), rows
        self._gathered: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._stored:
            return self._stored[name]
        if name not in self._gathered:
            # np.take, not table[rows]: numpy's fancy indexing is ~5x slower at this size.
            self._gathered[name] = np.take(self._table[name], self._rows, axis=0)  # or KeyError
        return self._gathered[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._stored
        yield from (name for name in self._table if name not in self._stored)

    def __len__(self) -> int:
        return len(self._stored) + sum(name not in self._stored for name in self._table)

    def rows(self, part: slice) -> RowFeatures:
        """The features of rows `part` (views: nothing gathered or copied)."""
        stored = {name: column[part] for name, column in self._stored.items()}
        return RowFeatures(stored, self._table, self._rows[part])

    def stacked_take(self, other: RowFeatures, index: np.ndarray) -> RowFeatures:
        """Rows `index` of these rows followed by `other`'s (same candidate table): the
        stored columns and candidate rows are taken, the multi-valued columns left to gather.
        """
        if self._table.keys() != other._table.keys() or any(
                self._table[k] is not other._table[k] for k in self._table):
            raise ValueError("features of different candidate tables cannot be stacked")
        stored = {name: _stacked_take(column, other._stored[name], index)
                  for name, column in self._stored.items()}
        return RowFeatures(stored, self._table, _stacked_take(self._rows, other._rows, index))


def _stacked_take(first: np.ndarray, second: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Rows `index` of `first` and `second` stacked: one column at a time, so the peak is
    one column's stacked copy beside its result (np.take: millions of rows, no fancy indexing).
    """
    return np.take(np.concatenate([first, second]), index, axis=0)


@dataclass(frozen=True)
class Split:
    """Row-aligned examples: every QUERY_FEATURES and CANDIDATE_FEATURES column, and the label.

    Training iterates contiguous slices in row order: the cache already holds
    the seeded shuffle, so every implementation sees identical batches each epoch.
    """

    features: Mapping[str, np.ndarray]
    label: np.ndarray  # (N,) float32, rating rescaled to [0, 1]: (r - 1) / 4

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def batch_slices(self, batch_size: int) -> Iterator[slice]:
        """Contiguous batches in row order; the last one may be short."""
        for start in range(0, len(self), batch_size):
            yield slice(start, min(start + batch_size, len(self)))

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def five_star(self) -> np.ndarray:
        """Boolean mask of 5-star ratings: the rows the top-k accuracy counts."""
        return self.label > 0.9  # the reference's `greater(y, 0.9)`


@dataclass(frozen=True)
class Dataset:
    """One dataset as loaded from the cache.

    `candidates` holds every real movie, ordered by movie_id (row r is the
    movie `candidates["movie_id"][r]`), with the CANDIDATE_FEATURES columns.
    """

    name: str
    content_hash: str
    vocab: Vocabulary
    train: Split
    test: Split
    candidates: Mapping[str, np.ndarray]
    # The seed whose permutation of the stream-ordered ratings gave the rows (train, then
    # test): the cache's preprocessing split seed. None: the rows are in their own order.
    split_seed: int | None = None

    @property
    def num_candidates(self) -> int:
        return int(self.candidates["movie_id"].shape[0])

    def resplit(self, seed: int | None) -> Dataset:
        """The same ratings split by `seed` as preprocessing splits them with its split seed.

        Rows are the stream-ordered ratings permuted by numpy's
        `default_rng(seed).permutation`, the first len(train) of them training (the same
        80/20 counts). The cache's own permutation is undone first, so resplit(s) gives
        exactly the rows a cache built with split seed s holds. Candidates and vocabulary
        are unchanged. None, or this dataset's own split seed, returns self (no copy).
        """
        if seed is None or seed == self.split_seed:
            return self
        num_train, n = len(self.train), len(self.train) + len(self.test)
        index = np.random.default_rng(seed).permutation(n)  # new row -> stream row
        if self.split_seed is not None:
            # Row r of this dataset is stream row own[r]: stream row j is row inverse[j].
            own = np.random.default_rng(self.split_seed).permutation(n)
            inverse = np.empty_like(own)
            inverse[own] = np.arange(n)
            del own
            index = np.take(inverse, index)  # new row -> this dataset's row
            del inverse
        features = _stacked_features(self.train.features, self.test.features, index)
        label = _stacked_take(self.train.label, self.test.label, index)
        train, test = slice(0, num_train), slice(num_train, None)
        return dataclasses.replace(
            self, split_seed=seed,
            train=Split(_rows(features, train), label[train]),
            test=Split(_rows(features, test), label[test]))


def _stacked_features(first: Mapping[str, np.ndarray], second: Mapping[str, np.ndarray],
                      index: np.ndarray) -> Mapping[str, np.ndarray]:
    """Rows `index` of two splits' features stacked (a cache's RowFeatures stay lazy)."""
    if isinstance(first, RowFeatures) and isinstance(second, RowFeatures):
        return first.stacked_take(second, index)
    return {name: _stacked_take(column, second[name], index) for name, column in first.items()}


def _rows(features: Mapping[str, np.ndarray], part: slice) -> Mapping[str, np.ndarray]:
    """Rows `part` of every feature (views)."""
    if isinstance(features, RowFeatures):
        return features.rows(part)
    return {name: column[part] for name, column in features.items()}
