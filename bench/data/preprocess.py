"""Raw MovieLens tables -> the cache's arrays, reproducing the reference FeatureSpace.

Pure numpy/pandas. The ratings are first put in tfds record order (the order
the reference adapts its FeatureSpace in), every column is encoded as the
reference's FeatureSpace would encode it, then the rows are shuffled once with
a seeded numpy generator; the first 80 % are the training split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from bench.data import featurespace as fs
from bench.data.dataset import Vocabulary
from bench.data.names import PREPROCESSING_VERSION
from bench.data.raw import RawTables


@dataclass(frozen=True)
class Params:
    """Preprocessing parameters: the reference program's values."""

    age_bins: int = 10  # AGE_BINS_COUNT, float_discretized(num_bins=10)
    crossing_dim: int = 20  # USER_GENDER_CROSS_COUNT, cross(crossing_dim=20)
    title_max_tokens: int = 10_000  # TextVectorization(max_tokens=10_000)
    title_length: int = 16  # TextVectorization(output_sequence_length=16)
    split_seed: int = 42  # the reference shuffles with seed=42 (tf.data; we use numpy)
    train_fraction: float = 0.8  # 80,000 of 100,000


@dataclass(frozen=True)
class Preprocessed:
    """What the cache stores: arrays (name -> array) and their description."""

    arrays: dict[str, np.ndarray]
    vocab: Vocabulary
    num_train: int
    fitted: dict[str, list]  # adapted state: age boundaries, lookup vocabularies
    counts: dict[str, int]


def preprocess(raw: RawTables, params: Params = Params()) -> Preprocessed:
    """Encode `raw` exactly as the reference's FeatureSpace, then shuffle and split."""
    ratings = raw.ratings
    if not raw.stream_ordered:
        ratings = ratings.iloc[fs.tfds_stream_order(len(ratings))]
    columns, fitted = _rating_columns(raw, ratings, params)
    candidates, title_vocab, movie_vocab_size = _candidates(raw, columns["movie_id"], params)
    order = np.random.default_rng(params.split_seed).permutation(len(ratings))
    # Each column is shuffled and its stream-ordered copy dropped in turn (peak memory).
    arrays = {f"ratings.{k}": columns.pop(k)[order] for k in list(columns)}
    del order
    user_id = arrays["ratings.user_id"]
    arrays.update({f"candidates.{k}": v for k, v in candidates.items()})
    arrays["vocabulary.title_tokens"] = np.array(title_vocab, dtype=str)
    genres = candidates["movie_genres"]
    vocab = Vocabulary(
        # The table covers every user of the users table, rated or not (a synthetic
        # workload's requested size); real releases' users all rate, so this is their max id.
        num_users=int(max(raw.users["user_id"].max(), user_id.max())),
        num_movies=int(candidates["movie_id"].max()),
        num_genders=len(fitted["gender_vocabulary"]),
        num_age_bins=params.age_bins,
        num_crosses=params.crossing_dim,
        num_occupations=len(fitted["occupation_vocabulary"]),
        num_title_tokens=movie_vocab_size,
        num_genres=int(genres.max()),  # genres are stored + 1: this is max genre id + 1
        title_length=params.title_length,
        max_genres_per_movie=int(genres.shape[1]),
    )
    num_train = int(round(len(ratings) * params.train_fraction))
    counts = {
        "ratings": len(ratings),
        "users": int(np.count_nonzero(np.bincount(user_id))),
        "movies": int(candidates["movie_id"].size),
        "train": num_train,
        "test": len(ratings) - num_train,
    }
    return Preprocessed(arrays, vocab, num_train, fitted, counts)


def _rating_columns(
    raw: RawTables, ratings: pd.DataFrame, params: Params
) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """Per-rating encoded columns (stream order) and the adapted state behind them."""
    user_id = ratings["user_id"].to_numpy()
    age, is_male, occupation = _user_columns(raw, user_id)
    boundaries = fs.adapt_discretization(age, params.age_bins)
    age_bin = fs.discretize(age, boundaries)
    gender_vocab = fs.integer_vocabulary(is_male)
    gender = fs.lookup(is_male, gender_vocab)
    occupation_vocab = fs.integer_vocabulary(occupation)
    occupation_label = fs.lookup(occupation, occupation_vocab)
    del age, is_male, occupation  # per-rating temporaries: free them before the next ones
    columns = {
        "user_id": user_id.astype(np.int32),
        "user_gender": gender,
        "raw_user_age": age_bin,
        "user_gender_X_raw_user_age": fs.hashed_cross(gender, age_bin, params.crossing_dim),
        "user_occupation_label": occupation_label,
        "movie_id": ratings["movie_id"].to_numpy(np.int32),
        # Rescaling(scale=1/4, offset=-1/4) in float32: exact for whole stars.
        "label": ratings["rating"].to_numpy(np.float32) * np.float32(0.25) - np.float32(0.25),
    }
    fitted: dict[str, list] = {
        "age_boundaries": [float(b) for b in boundaries],
        "gender_vocabulary": [bool(v) for v in gender_vocab],  # index -> is_male
        "occupation_vocabulary": [int(v) for v in occupation_vocab],  # index -> tfds id
    }
    return columns, fitted


def _user_columns(raw: RawTables, user_id: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-rating raw age (float32), is_male (int8) and occupation id (int32), by id-indexed tables.

    Narrow integer types keep millions of ratings small; the encodings only compare values.
    """
    users = raw.users
    ids = users["user_id"].to_numpy(np.int64)
    if not _all_known(user_id, ids):
        raise ValueError("ratings reference users missing from the users table")
    size = int(max(ids.max(), user_id.max())) + 1
    tables = []
    for column, dtype in (("age", np.float32), ("is_male", np.int8), ("occupation", np.int32)):
        table = np.zeros(size, dtype)
        table[ids] = users[column].to_numpy().astype(dtype)
        tables.append(table[user_id])
    return tuple(tables)


def _candidates(
    raw: RawTables, rated_movie_id: np.ndarray, params: Params
) -> tuple[dict[str, np.ndarray], list[str], int]:
    """Candidate arrays (every real movie, by id), the title vocabulary and its reference size.

    The reference re-adapts its title vectorizer inside FeatureSpace.adapt on
    the ratings' titles, so token counts weigh each title by its rating count;
    its TITLE_TOKEN_COUNT, though, was read after adapting on the movie titles.
    """
    movies = raw.movies.sort_values("movie_id", kind="stable")
    ids = movies["movie_id"].to_numpy(np.int64)
    if not _all_known(rated_movie_id, ids):
        raise ValueError("ratings reference movies missing from the movies table")
    titles = movies["title"].tolist()
    rating_counts = np.bincount(rated_movie_id, minlength=int(ids.max()) + 1)[ids]
    vocab = fs.text_vocabulary(titles, rating_counts, params.title_max_tokens)
    movie_vocab = fs.text_vocabulary(titles, np.ones(len(titles), int), params.title_max_tokens)
    genres = movies["genres"].tolist()
    width = max((len(g) for g in genres), default=0)
    genre_matrix = np.zeros((len(genres), width), np.int32)
    for row, movie_genres in enumerate(genres):
        genre_matrix[row, : len(movie_genres)] = np.asarray(movie_genres, np.int32) + 1
    arrays = {
        "movie_id": ids.astype(np.int32),
        "movie_title_vector": fs.vectorize_titles(titles, vocab, params.title_length),
        "movie_genres": genre_matrix,
    }
    return arrays, vocab, len(movie_vocab)


def _all_known(values: np.ndarray, ids: np.ndarray) -> bool:
    """Whether every value is one of `ids` (non-negative ids): by table read, not by sorting."""
    if values.size == 0:
        return True
    if values.min() < 0:
        return False
    known = np.zeros(int(max(ids.max(), values.max())) + 1, bool)
    known[ids[ids >= 0]] = True
    return bool(known[values].all())


def params_dict(params: Params) -> dict[str, object]:
    """Every parameter that shapes the arrays, for the manifest."""
    return {
        **asdict(params),
        "adapt_batch_size": fs.ADAPT_BATCH_SIZE,
        "discretization_epsilon": fs.DISCRETIZATION_EPSILON,
        "cross_hash_key": fs.CROSS_HASH_KEY,
        "stream_order": "tfds: md5('train' + row number of the official ratings file)",
        "preprocessing_version": PREPROCESSING_VERSION,
    }
