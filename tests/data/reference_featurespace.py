"""Child process for the fidelity test: the reference program's FeatureSpace, run for real.

Usage: python reference_featurespace.py IN.npz OUT.npz

IN holds ratings in tfds record order, in tfds field format (raw_user_age,
user_gender, user_occupation_label, user_rating, movie_title, user_id,
movie_id) and the movies table (movie_id, movie_title, genre lists). The
preprocessing is the keras-reference implementation's, configured exactly like
keras-io examples/keras_rs/deep_recommender.py
(impls/keras_reference/featurespace.py); OUT holds every encoded column.
Runs with the reference's KERAS_BACKEND (jax); imports TensorFlow.
"""

from __future__ import annotations

import os
import sys
import types

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from impls.keras_reference.featurespace import (  # noqa: E402
    reference_feature_space,
    title_vectorizer,
)

RATING_KEYS = ("raw_user_age", "user_gender", "user_occupation_label", "user_rating", "movie_title")


def age_space():
    """Only age, gender and their cross: used to rerun the age adapt with stable ties."""
    fs = keras.utils.FeatureSpace
    return fs(
        features={
            "raw_user_age": fs.float_discretized(num_bins=10, output_mode="int"),
            "user_gender": fs.integer_categorical(num_oov_indices=0, output_mode="int"),
        },
        crosses=[fs.cross(("user_gender", "raw_user_age"), crossing_dim=20, output_mode="int")],
        output_mode="dict",
    )


class _StableArgsortNumpy(types.ModuleType):
    """numpy, except that argsort breaks ties by position (what the cache does)."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def argsort(a, axis=-1, kind=None, order=None):
        return np.argsort(a, axis=axis, kind="stable", order=order)


def encode(space, ratings: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = space({k: tf.constant(v) for k, v in ratings.items() if k in space.features})
    return {k: np.asarray(v) for k, v in out.items()}


def main(in_path: str, out_path: str) -> None:
    data = dict(np.load(in_path, allow_pickle=False))
    ratings = {k: data[k] for k in RATING_KEYS}
    ratings["movie_title"] = ratings["movie_title"].astype(object)
    ratings_ds = tf.data.Dataset.from_tensor_slices(ratings)  # unbatched, like tfds.load
    titles = data["movies_title"].astype(object)
    vectorizer = title_vectorizer()
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(titles))
    title_token_count = vectorizer.vocabulary_size()
    space = reference_feature_space(vectorizer)
    space.adapt(ratings_ds)
    result = {f"out.{k}": v for k, v in encode(space, ratings).items()}
    # As the reference: candidate titles vectorised after FeatureSpace.adapt.
    result["movies_title_vector"] = np.asarray(vectorizer(tf.constant(titles)))
    genres = [list(data["movies_genres"][i, : data["movies_num_genres"][i]])
              for i in range(len(titles))]
    max_genres = max(len(g) for g in genres)
    result["movies_genres"] = np.array(
        [[g + 1 for g in gs] + [0] * (max_genres - len(gs)) for gs in genres], np.int32
    )
    result["title_vocabulary"] = np.array(vectorizer.get_vocabulary(), dtype=str)
    result["counts"] = np.array([
        title_token_count,
        space.preprocessors["user_gender"].vocabulary_size(),
        space.preprocessors["user_occupation_label"].vocabulary_size(),
        max(max(g) for g in genres if g) + 1,
        max_genres,
    ])
    result["age_boundaries"] = np.array(space.preprocessors["raw_user_age"].bin_boundaries)
    from keras.src.layers.preprocessing import discretization

    discretization.np = _StableArgsortNumpy("numpy")
    stable = age_space()
    stable.adapt(tf.data.Dataset.from_tensor_slices(
        {k: ratings[k] for k in ("raw_user_age", "user_gender")}))
    result.update({f"stable.{k}": v for k, v in encode(stable, ratings).items()})
    result["stable_age_boundaries"] = np.array(stable.preprocessors["raw_user_age"].bin_boundaries)
    np.savez(out_path, **result)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
