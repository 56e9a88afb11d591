"""Fake implementations for the `bench parity` tests (numpy, see fake_impl.py)."""

from __future__ import annotations

import dataclasses

from bench.data.dataset import Dataset
from bench.spec import RunSpec
from bench.weights import Weights
from tests.harness.fake_impl import FakeImpl


class SameImpl(FakeImpl):
    """FakeImpl under another name: the same maths, so parity must say equivalent."""


class SkewedImpl(FakeImpl):
    """A learning rate 1% off: step 0 (a forward pass) agrees, every later step parts."""

    def __init__(self, spec: RunSpec, data: Dataset, weights: Weights) -> None:
        super().__init__(dataclasses.replace(spec, learning_rate=spec.learning_rate * 1.01),
                         data, weights)


class BrokenImpl(FakeImpl):
    """Fails while building: the worker exits 1 and writes nothing."""

    def __init__(self, spec: RunSpec, data: Dataset, weights: Weights) -> None:
        raise RuntimeError("broken on purpose")
