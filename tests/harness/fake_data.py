"""Datasets for the harness tests, addressed as `--dataset tests.harness.fake_data:<name>`."""

from __future__ import annotations

import dataclasses

from bench.data.dataset import Dataset
from tests.fixtures import TINY_VOCAB, make_dataset


def medium() -> Dataset:
    """2000 train / 500 test ratings over 400 movies: top-100 accuracy is below 1."""
    return make_dataset(vocab=dataclasses.replace(TINY_VOCAB, num_movies=400))
