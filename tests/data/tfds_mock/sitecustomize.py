"""Loaded at start-up by the `tfds` source's child process in tests (via PYTHONPATH).

It enters tensorflow-datasets' own mocking facility, `tfds.testing.mock_data`,
so that `tfds.load("movielens/100k-...")` yields the fixture in
$DEEPREC_TFDS_FIXTURE (an .npz in tfds field format) instead of downloading.
"""

import os

if os.environ.get("DEEPREC_TFDS_FIXTURE"):
    import numpy as np
    import tensorflow as tf
    import tensorflow_datasets as tfds

    _DATA = dict(np.load(os.environ["DEEPREC_TFDS_FIXTURE"], allow_pickle=False))

    def _as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        if self.builder_config.name == "100k-movies":
            genres = [
                [int(x) for x in g[:n]]
                for g, n in zip(_DATA["movies_genres"], _DATA["movies_num_genres"], strict=True)
            ]
            return tf.data.Dataset.from_tensor_slices({
                "movie_id": _DATA["movies_id"].astype(str),
                "movie_title": _DATA["movies_title"],
                "movie_genres": tf.ragged.constant(genres, dtype=tf.int64),
            })
        return tf.data.Dataset.from_tensor_slices({
            "user_id": _DATA["user_id"].astype(str),
            "movie_id": _DATA["movie_id"].astype(str),
            "user_rating": _DATA["user_rating"],
            "timestamp": _DATA["timestamp"],
            "raw_user_age": _DATA["raw_user_age"],
            "user_gender": _DATA["user_gender"],
            "user_occupation_label": _DATA["user_occupation_label"],
            "movie_title": _DATA["movie_title"],
        })

    # Keep a reference: a collected context manager would undo the mock.
    _MOCK = tfds.testing.mock_data(as_dataset_fn=_as_dataset)
    _MOCK.__enter__()
