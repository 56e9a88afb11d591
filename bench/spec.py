"""The run specification: the one place every hyperparameter of a run lives, and its bounds.

`BOUNDS` and `check_fits` are what "sane" means for a run's numbers; the
commands check them before anything is written or started.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from bench.data.dataset import Vocabulary
from bench.errors import UsageError
from bench.weights import weight_shapes

# Sizes index 64-bit arrays; depth d's widest layer, 32 * 2**(d - 1), must be one.
MAX_SIZE = 2**62
MAX_DEPTH = 58


@dataclass(frozen=True)
class Bound:
    """The sane range of one numeric flag, and why its upper end is there."""

    flag: str
    low: float
    high: float
    why: str = ""
    open_low: bool = False  # low itself is refused (a rate or a time must be > 0)

    def check(self, value: float) -> None:
        """UsageError naming the flag unless `value` is finite and in range."""
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{self.flag} must be a finite number, got {value}")
        if value < self.low or (self.open_low and value == self.low):
            raise UsageError(f"{self.flag} must be {'>' if self.open_low else '>='} "
                             f"{_num(self.low)}, got {_num(value)}")
        if value > self.high:
            why = f" ({self.why})" if self.why else ""
            raise UsageError(f"{self.flag} must be <= {_num(self.high)}, got {_num(value)}{why}")


def _num(x: float) -> str:
    """A number for a message: ints as typed (however long), floats short."""
    return str(x) if isinstance(x, int) else f"{x:g}"


# The RunSpec fields' bounds (layer sizes: MAX_SIZE each, and `check_fits`).
BOUNDS: dict[str, Bound] = {
    "epochs": Bound("--epochs", 1, 10_000, "a generous cap: no run's duration can be "
                    "estimated before it starts, and the reference trains 30"),
    "embedding_dim": Bound("--embedding-dim", 1, MAX_SIZE),
    "batch_size": Bound("--batch-size", 1, MAX_SIZE),
    "learning_rate": Bound("--learning-rate", 0, 1e6, open_low=True),
    "seed": Bound("--seed", 0, 2**32 - 1, "seeds are 32-bit for numpy and JAX"),
    "validation_freq": Bound("--validation-freq", 1, 10_000),
    "steps_per_epoch": Bound("--steps-per-epoch", 1, MAX_SIZE),
    "eval_rows": Bound("--eval-rows", 1, MAX_SIZE),
    "devices": Bound("--devices", 1, 1024, "devices of one data-parallel run"),
}

# RunSpec.split's named values; any other value is a split seed (decimal, in the seed bounds).
SPLIT_CACHE = "cache"  # the cache's own fixed split (its preprocessing split seed, 42)
SPLIT_SEED = "seed"  # each run's split seeded by its own `seed`

# Fields left out of to_dict (so out of the spec hash and the report's group key) while at
# their default of None: specs written before they existed keep their hashes.
OPTIONAL_FIELDS = ("steps_per_epoch", "eval_rows")
# Fields left out of to_dict while at these defaults, for the same reason.
DEFAULTED_FIELDS: dict[str, Any] = {"devices": 1, "split": SPLIT_CACHE}


def check_split(text: str) -> str:
    """`--split`'s value in its canonical form ("cache", "seed" or a decimal seed), or UsageError.

    A seed is written without sign or leading zeros ("07" -> "7"), so equal splits hash equal.
    """
    value = text.strip()
    if value in (SPLIT_CACHE, SPLIT_SEED):
        return value
    bound = dataclasses.replace(BOUNDS["seed"], flag="--split")
    if not (value.isascii() and value.isdigit()):
        raise UsageError(f"--split: expected cache, seed or a split seed "
                         f"{_num(bound.low)}..{_num(bound.high)}, got {_short(text)!r}")
    digits = value.lstrip("0") or "0"
    if len(digits) > len(str(bound.high)):  # int() refuses thousands of digits
        raise UsageError(f"--split must be <= {_num(bound.high)}, got a {len(digits)}-digit "
                         f"number ({bound.why})")
    bound.check(int(digits))
    return digits


def layers_for_depth(depth: int) -> tuple[int, ...]:
    """Layer sizes for `--depth`: 1 -> (32,), 2 -> (64, 32), 3 -> (128, 64, 32).

    Depths beyond 3 keep doubling the widest layer, e.g. 4 -> (256, 128, 64, 32).
    """
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be in 1..{MAX_DEPTH}, got {depth}")
    return tuple(32 * 2 ** (depth - 1 - i) for i in range(depth))


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines what one run computes.

    Two runs with equal specs (and equal dataset content hash) are comparable;
    the harness keys records by `spec_hash()`.
    """

    impl: str  # registry name, e.g. "keras-jax"
    layer_sizes: tuple[int, ...] = (32,)  # dense stack of both towers; last = output dim
    embedding_dim: int = 32  # dimension of every embedding table
    epochs: int = 30  # the reference trains 30 epochs
    batch_size: int = 1000  # the reference batches 1000 ratings
    learning_rate: float = 0.05  # Adagrad, as the reference
    seed: int = 0  # seeds the shared initial weights (bench.weights.init_weights)
    validation_freq: int = 5  # evaluate top-k accuracy every N epochs, and after the last
    top_k: int = 100  # retrieval depth of the accuracy metric
    jit: str = "auto"  # auto | on | off (Keras jit_compile; native impls always compile)
    device: str = "auto"  # auto | cpu | gpu
    dataset: str = "ml-100k"  # dataset name as `bench data` knows it
    # A cap on training steps per epoch (None: every batch): long workloads are capped
    # rather than shrunk; the first `steps_per_epoch` batches in row order, every epoch.
    steps_per_epoch: int | None = None
    # A cap on the test rows evaluated (None: all): the first rows of the shuffled test
    # split, so the accuracy phases of a 10-million-rating workload stay affordable.
    eval_rows: int | None = None
    # Devices of one data-parallel run at a fixed global batch (batch_size, split evenly).
    devices: int = 1
    # The train/test split: "cache" (the cache's own), "seed" (seeded by `seed`) or a split
    # seed "N" (bench.data.dataset.Dataset.resplit); resolved by split_seed().
    split: str = SPLIT_CACHE

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layer_sizes"] = list(self.layer_sizes)
        for name in OPTIONAL_FIELDS:
            if d[name] is None:
                del d[name]
        for name, default in DEFAULTED_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        d = dict(d)
        d["layer_sizes"] = tuple(d["layer_sizes"])
        return cls(**d)

    def spec_hash(self) -> str:
        """Stable short hash of the spec (sorted JSON, sha256, 16 hex digits)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def split_seed(self) -> int | None:
        """The seed of this run's train/test split; None for the cache's own split."""
        if self.split == SPLIT_CACHE:
            return None
        return self.seed if self.split == SPLIT_SEED else int(check_split(self.split))

    def validation_epochs(self) -> list[int]:
        """1-based epochs after which accuracy is evaluated (always the last one)."""
        epochs = [e for e in range(1, self.epochs + 1) if e % self.validation_freq == 0]
        if not epochs or epochs[-1] != self.epochs:
            epochs.append(self.epochs)
        return epochs


def check_devices(devices: int, batch_sizes: list[int]) -> None:
    """UsageError unless `devices` is in bounds and splits every global batch evenly."""
    BOUNDS["devices"].check(devices)
    for batch in batch_sizes:
        if batch % devices:
            raise UsageError(f"--devices {devices}: --batch-size {batch} does not split evenly "
                             f"over {devices} devices (the global batch is split per device)")


_NO_VOCAB = Vocabulary(**{f.name: 0 for f in dataclasses.fields(Vocabulary)})
MB = 1024 * 1024


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes a run needs, by kind: what any framework must hold, before its own overhead.

    Args:
        params: every float32 parameter once (embedding tables and dense layers).
        gradients: one gradient per parameter (a dense step's worst case).
        optimizer: Adagrad's state, one float32 accumulator per parameter.
        activations: one batch of both towers, forward and backward.
        data: the dataset arrays the run holds (0 when not known yet).
    """

    params: int
    gradients: int
    optimizer: int
    activations: int
    data: int = 0

    @property
    def total(self) -> int:
        return self.params + self.gradients + self.optimizer + self.activations + self.data

    @property
    def model_state(self) -> int:
        """Parameters, optimizer state and data: the floor a report compares peak RSS with."""
        return self.params + self.optimizer + self.data

    def figures(self) -> dict[str, float]:
        """The record's `need_*_mb` figures (MiB)."""
        return {"need_params_mb": self.params / MB, "need_optimizer_mb": self.optimizer / MB,
                "need_data_mb": self.data / MB, "need_mb": self.model_state / MB}


def memory_need(layer_sizes: tuple[int, ...], embedding_dim: int, batch_size: int,
                vocab: Vocabulary | None = None, data_bytes: int = 0) -> MemoryNeed:
    """What a run needs, by kind (MemoryNeed). Without `vocab` the embedding tables count
    as empty: a lower bound, known before the dataset is resolved.
    """
    shapes = weight_shapes(vocab or _NO_VOCAB, layer_sizes, embedding_dim)
    params = 4 * sum(math.prod(shape) for shape in shapes.values())
    activations = 4 * 2 * 2 * batch_size * (8 * embedding_dim + sum(layer_sizes))
    return MemoryNeed(params=params, gradients=params, optimizer=params,
                      activations=activations, data=data_bytes)


def memory_estimate(layer_sizes: tuple[int, ...], embedding_dim: int, batch_size: int,
                    vocab: Vocabulary | None = None) -> int:
    """Bytes a run needs at least: every float32 parameter three times (weights, gradients,
    Adagrad state) plus one batch's activations of both towers, forward and backward.
    """
    return memory_need(layer_sizes, embedding_dim, batch_size, vocab).total


def check_fits(spec: RunSpec, vocab: Vocabulary | None = None) -> None:
    """UsageError, with the estimate, when the run cannot fit this machine's memory."""
    import psutil  # only when checking

    need, have = memory_estimate(spec.layer_sizes, spec.embedding_dim, spec.batch_size,
                                 vocab), psutil.virtual_memory().total
    if need > have:
        layers = ",".join(map(str, spec.layer_sizes))
        raise UsageError(
            f"layers {_short(layers)} with --embedding-dim {spec.embedding_dim} and --batch-size "
            f"{spec.batch_size} need about {format_bytes(need)} (parameters x3, one batch's "
            f"activations); this machine has {format_bytes(have)}")


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def format_bytes(n: float) -> str:
    """1536 -> "1.5 KiB"; any size, however large (640 PiB, 1e30 bytes)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    n = float(n)
    for unit in units:
        if n < 1024 or unit == units[-1]:
            return f"{n:.3g} {unit}" if unit == units[-1] and n >= 1024 else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
