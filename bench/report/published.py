"""The keras-io reference program's published figures: the one place they are typed.

Source: the keras-io example `examples/keras_rs/deep_recommender.py` ("deep
recommender", JAX backend), one run per depth, its final
`val_sparse_top_k_categorical_accuracy` after 30 epochs. These are published
single runs of another program, not results of this tool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Layer sizes -> the published top-100 accuracy of that depth (one run each).
PUBLISHED_REFERENCE_ACCURACY = {(32,): 0.310, (64, 32): 0.309, (128, 64, 32): 0.301}
# The spec the published runs used (fields of bench.spec.RunSpec).
PUBLISHED_REFERENCE_SPEC = {"epochs": 30, "batch_size": 1000, "learning_rate": 0.05,
                            "embedding_dim": 32, "top_k": 100, "dataset": "ml-100k"}


# Spec fields whose presence means the runs did something the published ones did not.
CHANGED_BY = ("steps_per_epoch", "eval_rows", "devices")


def published_accuracy(spec: Mapping[str, Any]) -> float | None:
    """The published figure for a group's spec dict, or None when it is not the published spec."""
    ref = PUBLISHED_REFERENCE_ACCURACY.get(tuple(spec.get("layer_sizes") or ()))
    if ref is None or any(spec.get(k) != v for k, v in PUBLISHED_REFERENCE_SPEC.items()):
        return None
    if any(spec.get(k) is not None for k in CHANGED_BY):  # capped, or on several devices
        return None
    return ref
