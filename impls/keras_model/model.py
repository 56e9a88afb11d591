"""The reference program's deep retrieval model in backend-agnostic Keras 3 (keras.ops only).

Structure as in keras-io examples/keras_rs/deep_recommender.py: a query model,
a candidate model, and a combined `RetrievalModel` with its own
`compute_loss` / `compute_metrics` and a keras_rs BruteForceRetrieval layer.
Two additions, both outside the maths: `StepLosses`, a metric that keeps every
training step's loss of the current epoch (Keras only logs running means),
and `neutral_variables`, the map to the neutral weight layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import keras_rs
from keras import ops

from bench.data.dataset import Vocabulary
from bench.weights import CANDIDATE_EMBEDDINGS, QUERY_EMBEDDINGS, dense_names, embedding_rows
from impls._shared import MASKED_FEATURES


def _dense_stack(layer_sizes: tuple[int, ...]) -> keras.Sequential:
    """Dense layers with ReLU on all but the last, which has no activation."""
    stack = keras.Sequential()
    for units in layer_sizes[:-1]:
        stack.add(keras.layers.Dense(units, activation="relu"))
    stack.add(keras.layers.Dense(layer_sizes[-1]))
    return stack


class Tower(keras.Model):
    """Embeddings of the tower's features (masked mean where multi-valued), concatenated, dense."""

    def __init__(
        self, features: Mapping[str, str], rows: Mapping[str, int],
        layer_sizes: tuple[int, ...], embedding_dim: int, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.features = dict(features)  # feature -> neutral weight name, in concat order
        self.embedders: dict[str, keras.Layer] = {}
        for feature, weight_name in self.features.items():
            if feature in MASKED_FEATURES:
                # As the reference: index 0 is padding, masked out of the mean.
                embedder: keras.Layer = keras.Sequential([
                    keras.layers.Embedding(rows[weight_name], embedding_dim, mask_zero=True),
                    keras.layers.GlobalAveragePooling1D(),
                ])
            else:
                embedder = keras.layers.Embedding(rows[weight_name], embedding_dim)
            self.embedders[feature] = embedder
        self.dense_layers = _dense_stack(layer_sizes)

    def call(self, inputs: Mapping[str, Any]) -> Any:
        parts = [self.embedders[f](inputs[f]) for f in self.features]
        return self.dense_layers(ops.concatenate(parts, axis=1))

    def neutral_variables(self, tower: str) -> dict[str, keras.Variable]:
        """This tower's variables under their neutral names (needs the tower built)."""
        out = {}
        for feature, weight_name in self.features.items():
            embedder = self.embedders[feature]
            layer = embedder.layers[0] if feature in MASKED_FEATURES else embedder
            out[weight_name] = layer.embeddings
        for i, dense in enumerate(self.dense_layers.layers):
            kernel, bias = dense_names(tower, i)
            out[kernel], out[bias] = dense.kernel, dense.bias
        return out


class StepLosses(keras.metrics.Metric):
    """Every training step's loss of the current epoch, in order (reset with the metrics).

    `result()` is the last step's loss. Slots are written with `where` so the
    stored values are the losses bit for bit.

    Under a tf.distribute strategy (keras-tf over several devices) metric
    variables are per replica and aggregated when read outside the step: the
    values sum the replicas' losses, each already scaled by 1/replicas by Keras,
    so a slot holds the objective Keras differentiates (the batch mean when the
    batch splits evenly); the count is every replica's own, read from the first
    (a sum would count each step once per replica). One device: no aggregation.
    """

    def __init__(self, capacity: int, name: str = "step_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.capacity = capacity
        self.values = self.add_variable(shape=(capacity,), initializer="zeros", name="values")
        # float32, not int: the torch backend tracks variables as nn.Parameters,
        # which must be floating point (exact as a counter up to 2**24 steps).
        self.count = self.add_variable(shape=(), initializer="zeros", name="count",
                                       aggregation="only_first_replica")

    def update_state(self, loss: Any) -> None:
        values, count = self.values.value, self.count.value
        slot = ops.equal(ops.arange(self.capacity, dtype=values.dtype), count)
        self.values.assign(ops.where(slot, ops.cast(loss, values.dtype), values))
        self.count.assign(count + 1)

    def result(self) -> Any:
        last = ops.cast(ops.maximum(self.count.value - 1, 0), "int32")
        return ops.take(self.values.value, last)


class RetrievalModel(keras.Model):
    """Query and candidate towers, MSE of their dot product, brute-force top-k retrieval."""

    def __init__(
        self, vocab: Vocabulary, layer_sizes: tuple[int, ...], embedding_dim: int,
        retrieval_k: int, steps_per_epoch: int, candidate_ids: Any, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Movie id of each candidate row, a constant tensor. Not given to the
        # retrieval layer as `candidate_ids`: that makes an int Variable, which the
        # torch backend cannot track and the jax trainer donates (deletes) each step.
        self.candidate_ids = candidate_ids
        rows = embedding_rows(vocab)
        self.query_model = Tower(QUERY_EMBEDDINGS, rows, layer_sizes, embedding_dim)
        self.candidate_model = Tower(CANDIDATE_EMBEDDINGS, rows, layer_sizes, embedding_dim)
        self.retrieval = keras_rs.layers.BruteForceRetrieval(k=retrieval_k, return_scores=False)
        self.loss_fn = keras.losses.MeanSquaredError()
        self.top_k_metric = keras.metrics.SparseTopKCategoricalAccuracy(
            k=retrieval_k, from_sorted_ids=True
        )
        self.step_losses = StepLosses(steps_per_epoch)

    def update_candidates(self, candidates: Mapping[str, Any]) -> None:
        """Embed every candidate (rows of `candidate_ids`); load them into the retrieval layer."""
        self.retrieval.update_candidates(self.candidate_model(candidates))

    def call(self, inputs: Mapping[str, Any], training: bool = False) -> dict[str, Any]:
        result = {
            "query_embeddings": self.query_model(inputs),
            "candidate_embeddings": self.candidate_model(inputs),
        }
        if not training:  # retrieval is only needed for the metric
            rows = self.retrieval(result["query_embeddings"])  # (B, k) candidate rows
            result["predictions"] = ops.take(self.candidate_ids, rows, axis=0)  # movie ids
        return result

    def compute_loss(
        self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        labels = ops.expand_dims(y, -1)
        scores = ops.sum(
            ops.multiply(y_pred["query_embeddings"], y_pred["candidate_embeddings"]),
            axis=1, keepdims=True,
        )
        loss = self.loss_fn(labels, scores, sample_weight)
        if training:
            self.step_losses.update_state(loss)
        return loss

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if "predictions" not in y_pred:  # training: the top-k metric is not updated
            result = self.get_metrics_result()
            result.pop(self.top_k_metric.name)
            return result
        # Only 5-star ratings count (the reference's greater(y, 0.9) weight).
        weight = ops.cast(ops.greater(y, 0.9), "float32")
        if sample_weight is not None:
            weight = ops.multiply(weight, sample_weight)
        self.top_k_metric.update_state(x["movie_id"], y_pred["predictions"], sample_weight=weight)
        return self.get_metrics_result()

    def neutral_variables(self) -> dict[str, keras.Variable]:
        """Every model weight under its neutral name (bench.weights layout)."""
        return {
            **self.query_model.neutral_variables("query"),
            **self.candidate_model.neutral_variables("candidate"),
        }
