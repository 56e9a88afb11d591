"""The reference program's data preparation, done in the run as it does it (tf.data + FeatureSpace).

From the tfds-form records (bench.data.tfds_records) to cached, batched tf.data
datasets, in the reference's order of steps: the title vectorizer adapted on
the movie titles, the FeatureSpace adapted on the ratings, the candidate set
built by movie id (row 0, the non-existent movie, included), the ratings mapped
to model inputs (genres shifted by one and zero-padded), shuffled once with a
fixed seed, split by take/skip, batched and cached, then read once so the cache
is filled. What the reference spends on this is the run's `prepare_s`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.data.dataset import Dataset, Vocabulary  # noqa: E402
from bench.data.tfds_records import load_records  # noqa: E402
from bench.registry import is_target  # noqa: E402
from bench.spec import RunSpec  # noqa: E402
from impls.keras_reference import featurespace as rfs  # noqa: E402

if keras.backend.backend() != "tensorflow":
    # tf.data runs on the host; TensorFlow would otherwise take the GPU's memory the
    # model's backend needs (TF claims it all when it first starts its GPU devices).
    # Unverified on a GPU here (no device was lent to this task).
    with contextlib.suppress(RuntimeError):  # TF's devices already started: left as they are
        tf.config.set_visible_devices([], "GPU")

SHUFFLE_BUFFER = 100_000  # the reference's shuffle buffer
REFERENCE_SPLIT_SEED = 42  # the reference's shuffle seed
TRAIN_FRACTION = 0.8  # 80,000 of 100,000: take(80_000) / skip(80_000).take(20_000)
FEATURE_SPACE_INPUTS = ("raw_user_age", "user_gender", "user_occupation_label", "user_rating",
                        "movie_title")
Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class ReferenceData:
    """What `prepare` hands the model: the cached datasets and the same rows as numpy.

    `train` / `test` yield (features, label) batches; `train_rows` / `test_rows`
    hold their rows in that order (label under "label") for the embedding exports.
    `candidates` is the reference's MOVIES_DATASET: row r is movie id r, row 0 included.
    """

    train: tf.data.Dataset
    test: tf.data.Dataset
    train_rows: Arrays
    test_rows: Arrays
    candidates: Arrays
    vocab: Vocabulary
    split_seed: int

    @property
    def num_candidates(self) -> int:
        return int(self.candidates["movie_id"].shape[0])


def prepare(spec: RunSpec, data: Dataset) -> ReferenceData:
    """The reference pipeline on dataset `data.name`'s records (see the module docstring)."""
    if is_target(data.name):
        raise ValueError(f"keras-reference reads a cached dataset's raw records; {data.name} "
                         "is a factory without raw tables")
    records = load_records(data.name, data.content_hash)
    ratings = _ratings_dataset(records)
    movies = _movies_dataset(records)
    vectorizer = rfs.title_vectorizer()
    vectorizer.adapt(movies.map(lambda x: x["movie_title"]))
    title_tokens = vectorizer.vocabulary_size()  # read here, before the FeatureSpace re-adapts it
    space = rfs.reference_feature_space(vectorizer)
    space.adapt(ratings)
    users = int(ratings.map(lambda x: tf.strings.to_number(x["user_id"], out_type=tf.int32))
                .reduce(tf.constant(0, tf.int32), tf.maximum).numpy())
    candidates, genres_count, max_genres = _candidates(movies, vectorizer)
    vocab = Vocabulary(
        num_users=users, num_movies=len(candidates["movie_id"]) - 1,
        num_genders=space.preprocessors["user_gender"].vocabulary_size(),
        num_age_bins=rfs.AGE_BINS_COUNT, num_crosses=rfs.USER_GENDER_CROSS_COUNT,
        num_occupations=space.preprocessors["user_occupation_label"].vocabulary_size(),
        num_title_tokens=title_tokens, num_genres=genres_count, title_length=rfs.TITLE_LENGTH,
        max_genres_per_movie=max_genres,
    )
    seed = spec.split_seed()
    seed = REFERENCE_SPLIT_SEED if seed is None else seed
    shuffled = ratings.map(_model_inputs(space, max_genres)).shuffle(
        SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=False)
    total = len(records["user_id"])
    n_train = int(round(total * TRAIN_FRACTION))
    n_test = total - n_train if spec.eval_rows is None else min(spec.eval_rows, total - n_train)
    train = shuffled.take(n_train).batch(spec.batch_size).cache()
    test = shuffled.skip(n_train).take(n_test).batch(spec.batch_size).cache()
    # The pipeline's first pass (fills both caches), keeping the rows for the exports.
    return ReferenceData(train, test, _first_pass(train), _first_pass(test), candidates, vocab,
                         seed)


def _ratings_dataset(records: Arrays) -> tf.data.Dataset:
    """The ratings as `tfds.load("movielens/100k-ratings")` yields them (ids as strings)."""
    rows = np.searchsorted(records["movies_id"], records["movie_id"])  # movies_id is sorted
    return tf.data.Dataset.from_tensor_slices({
        "user_id": records["user_id"].astype(str).astype(bytes),
        "movie_id": records["movie_id"].astype(str).astype(bytes),
        "raw_user_age": records["raw_user_age"],
        "user_gender": records["user_gender"],
        "user_occupation_label": records["user_occupation_label"],
        "user_rating": records["user_rating"],
        "movie_title": np.char.encode(records["movie_title"], "utf-8"),
        "movie_genres": _ragged(records["movies_genres"][rows], records["movies_num_genres"][rows]),
    })


def _movies_dataset(records: Arrays) -> tf.data.Dataset:
    """The movies as `tfds.load("movielens/100k-movies")` yields them."""
    return tf.data.Dataset.from_tensor_slices({
        "movie_id": records["movies_id"].astype(str).astype(bytes),
        "movie_title": np.char.encode(records["movies_title"], "utf-8"),
        "movie_genres": _ragged(records["movies_genres"], records["movies_num_genres"]),
    })


def _ragged(matrix: np.ndarray, lengths: np.ndarray) -> tf.RaggedTensor:
    """Each row's first `lengths[i]` entries of the zero-padded `matrix`, as tfds gives lists."""
    return tf.RaggedTensor.from_row_lengths(
        matrix[np.arange(matrix.shape[1])[None, :] < lengths[:, None]], lengths)


def _candidates(movies: tf.data.Dataset,
                vectorizer: keras.layers.TextVectorization) -> tuple[Arrays, int, int]:
    """The reference's candidate set by movie id, row 0 (no movie: "" and no genres) included.

    Returns (MOVIES_DATASET as numpy, GENRES_COUNT, MAX_GENRES_PER_MOVIE).
    """
    count = int(movies.cardinality().numpy())
    titles: list[Any] = [""] * (count + 1)
    genres: list[list[int]] = [[]] * (count + 1)
    for x in movies.as_numpy_iterator():
        movie_id = int(x["movie_id"])
        if not 0 < movie_id <= count:  # the reference indexes its lists by movie id
            raise ValueError(f"movie id {movie_id} outside 1..{count}: the reference program "
                             "needs movie ids 1..number of movies")
        titles[movie_id] = x["movie_title"]
        genres[movie_id] = x["movie_genres"].tolist()
    max_genres = max(len(g) for g in genres)
    genres_count = max(max(g) for g in genres if g) + 1
    padded = [[g + 1 for g in gs] + [0] * (max_genres - len(gs)) for gs in genres]
    return {
        "movie_id": np.arange(0, count + 1, dtype=np.int32),
        "movie_title_vector": np.asarray(vectorizer(titles), np.int32),
        "movie_genres": np.asarray(padded, np.int32),
    }, genres_count, max_genres


def _model_inputs(space: keras.utils.FeatureSpace, max_genres: int) -> Any:
    """The reference's per-rating map: FeatureSpace features, ids as ints, padded genres."""

    def preprocess(x: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        features = space({k: x[k] for k in FEATURE_SPACE_INPUTS})
        features = {k: tf.squeeze(v, axis=0) for k, v in features.items()}
        genres = x["movie_genres"]
        return {
            "user_id": tf.strings.to_number(x["user_id"], out_type=tf.int32),
            "raw_user_age": features["raw_user_age"],
            "user_gender": features["user_gender"],
            "user_occupation_label": features["user_occupation_label"],
            # The reference squeezes one more (trailing) axis here; keras 3.15's cross of
            # two scalars has none left, so it is made a scalar whatever the version.
            "user_gender_X_raw_user_age": tf.reshape(features["user_gender_X_raw_user_age"], []),
            "movie_id": tf.strings.to_number(x["movie_id"], out_type=tf.int32),
            "movie_title_vector": features["movie_title"],
            "movie_genres": tf.pad(tf.cast(genres, tf.int32) + 1,
                                   [[0, max_genres - tf.shape(genres)[0]]]),
        }, features["user_rating"]

    return preprocess


def _first_pass(batches: tf.data.Dataset) -> Arrays:
    """Read every batch once (filling the dataset's cache); the rows as numpy, in order."""
    parts: dict[str, list[np.ndarray]] = {}
    for features, label in batches.as_numpy_iterator():
        for name, value in {**features, "label": label}.items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}
