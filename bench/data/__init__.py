"""The shared, preprocessed, versioned MovieLens cache (numpy/pandas only)."""

from bench.data.dataset import (
    CANDIDATE_FEATURES,
    QUERY_FEATURES,
    Dataset,
    Split,
    Vocabulary,
)

__all__ = ["CANDIDATE_FEATURES", "QUERY_FEATURES", "Dataset", "Split", "Vocabulary"]
