"""The reference program's preprocessing layers, configured exactly as keras-io
examples/keras_rs/deep_recommender.py configures them.

Used by the keras-reference implementation (pipeline.py) and by the fidelity
test's child (tests/data/reference_featurespace.py), so both run one configuration.
"""

from __future__ import annotations

import keras

TITLE_MAX_TOKENS = 10_000
TITLE_LENGTH = 16
AGE_BINS_COUNT = 10
USER_GENDER_CROSS_COUNT = 20


def title_vectorizer() -> keras.layers.TextVectorization:
    """The movie-title vectorizer (adapted on the movie titles, then again by the FeatureSpace)."""
    return keras.layers.TextVectorization(
        max_tokens=TITLE_MAX_TOKENS, output_sequence_length=TITLE_LENGTH, dtype="int32"
    )


def reference_feature_space(vectorizer: keras.layers.TextVectorization) -> keras.utils.FeatureSpace:
    """The reference's FeatureSpace, feature for feature."""
    fs = keras.utils.FeatureSpace
    return fs(
        features={
            "raw_user_age": fs.float_discretized(num_bins=AGE_BINS_COUNT, output_mode="int"),
            "user_gender": fs.integer_categorical(num_oov_indices=0, output_mode="int"),
            "user_occupation_label": fs.integer_categorical(num_oov_indices=0, output_mode="int"),
            "user_rating": fs.float_rescaled(scale=1.0 / 4.0, offset=-1.0 / 4.0),
            "movie_title": fs.feature(preprocessor=vectorizer, dtype="string", output_mode="float"),
        },
        crosses=[fs.cross(("user_gender", "raw_user_age"), crossing_dim=USER_GENDER_CROSS_COUNT,
                          output_mode="int")],
        output_mode="dict",
    )
