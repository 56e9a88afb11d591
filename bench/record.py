"""One run's result record: what `python -m bench run` stores, and its schema.

A record is one JSON object (one line of `<results dir>/records.jsonl`, see
bench/store.py). Readers should use `bench.store.ResultsStore(dir).records()`
(or `.scan(problem)`), which leave out torn, foreign and wrongly typed lines
with their reasons (`problem` below), and compare only records whose
`spec_hash`, `dataset.content_hash` and environment agree.

Schema, version 1 (`schema_version`). Times are seconds (`_s`) or milliseconds
(`_ms`) as their names say; every figure may be null when its phase did not
run (a failed run, or one epoch only: no steady state).

    schema_version   int, 1
    run_id           str, uuid4 hex: one run of one spec (unique per record)
    status           "ok" | "failed" | "timed out" | "interrupted"
    impl             str, registry name (or "module:Class" for out-of-tree impls)
    spec             dict, bench.spec.RunSpec.to_dict() (device resolved to cpu|gpu)
    spec_hash        str, RunSpec.spec_hash()
    repeat           int, 0-based index among `--repeats` of the same spec
    dataset          {"name": str, "content_hash": str | null}
    started_at       str, ISO-8601 UTC, when the worker process was started
    duration_s       float, wall time of the whole run (process start to record)
    error            str | null: the error tail (traceback, signal, timeout)
    figures          dict, flat (names below)
    curve            dict of per-epoch lists (names below)
    retrieval        {"<batch>": {"p50_ms","p95_ms","p99_ms","mean_ms","qps","calls"}}
                     for batch sizes "1", "100", "1000" (after warm-up)
    impl_info        {"target", "framework", "sync_mechanism", "device_name",
                      "versions": {pkg: ver}, "resolved_options": {...}}
    environment      bench.envinfo.capture(): python, packages {name: version},
                     cpu_model, cpu_count_logical/physical, memory_gb, os,
                     hostname, gpus [{name, driver, memory_mb}], cuda_version,
                     worker_env {KERAS_BACKEND, CUDA_VISIBLE_DEVICES, JAX_PLATFORMS, ...},
                     load_avg_at_start [1, 5, 15 min] (other load skews timings)
    git              {"commit": str | null, "dirty": bool | null}
    worker           {"pid", "exit_code", "signal"}: how the worker process ended

`figures` (k = spec.top_k, 100 in every run the CLI makes):

    cache_load_s            bench.data.cache.load_ref() in the worker
    import_s                importing the implementation's module (and its framework)
    weights_init_s          bench.weights.init_weights (numpy)
    build_s                 the implementation's constructor (host->device copies)
    first_epoch_s           epoch 1, synchronised: includes tracing/compilation
    compile_s               impl.compile_ahead() timed (inside epoch 1) where the impl
                            compiles ahead of time; else first_epoch_s minus
                            train_epoch_s, a difference that can be negative
                            (impl_info.compile_s_method says which)
    train_epoch_s           median over steady epochs (2..E), each ending in
                            impl.synchronize()
    train_epoch_min_s, train_epoch_max_s, train_epoch_iqr_s   spread of the same
    steady_epochs           int, how many epochs the median is over
    train_steps_per_epoch   int
    train_step_ms           train_epoch_s / steps * 1000
    train_examples_per_s    training rows / train_epoch_s
    loop_epoch_s            median steady epoch time by the impl's own loop
                            (LoopHooks.begin/end); null if the impl never calls them
    harness_overhead_ratio  train_epoch_s / loop_epoch_s (median of per-epoch
                            ratios); the issue asks it to be within 1.05
    refresh_s, evaluate_s   median over validation epochs (the first includes tracing)
    train_rows, test_rows   int, rows of the dataset's splits
    numpy_eval_s            exporting embeddings + numpy top-k (not a framework figure)
    top100_accuracy_impl    impl.evaluate() after the last epoch
    top100_accuracy_numpy   bench.metrics on the exported embeddings
    top100_accuracy_abs_diff
    retrieve_agreement      mean share of numpy's top-k that impl.retrieve also
                            returns, over the first (up to) 1000 test queries
    retrieve_identical_share  share of those queries whose top-k set is exactly numpy's
    retrieve_p50_ms_b1, retrieve_p95_ms_b1, retrieve_p99_ms_b1, retrieve_qps_b1,
    ... _b100, ... _b1000   copies of `retrieval` for flat tables
    peak_rss_mb             worker's peak resident memory (getrusage)
    peak_device_memory_mb   impl.peak_device_memory_mb() (GPU only, else null)

`curve`: epoch (1..E), epoch_loss (mean of the step losses), epoch_s (harness,
synchronised), loop_s (impl loop, null when not reported), val_epoch,
val_top100_accuracy (impl metric at spec.validation_epochs()).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_TIMED_OUT = "timed out"
STATUS_INTERRUPTED = "interrupted"
STATUSES = (STATUS_OK, STATUS_FAILED, STATUS_TIMED_OUT, STATUS_INTERRUPTED)

ERROR_TAIL_CHARS = 4000  # enough for a traceback, small enough for a JSON line


def new_run_id() -> str:
    """A fresh unique run id (uuid4, 32 hex digits)."""
    return uuid.uuid4().hex


def utc_now_iso() -> str:
    """Now, as ISO-8601 UTC with seconds precision (a record's `started_at`)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def error_tail(text: str, limit: int = ERROR_TAIL_CHARS) -> str:
    """The last `limit` characters of `text` (where tracebacks end)."""
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]



Types = tuple[type, ...]
NUMBER: Types = (int, float, type(None))  # a figure: a number, a flag (bool) or null

# A training record's top-level fields: the required ones and their types.
_REQUIRED: dict[str, Types] = {
    "run_id": (str,), "status": (str,), "impl": (str,), "spec": (dict,), "spec_hash": (str,),
    "repeat": (int,), "dataset": (dict,), "started_at": (str,), "schema_version": (int,)}
_OPTIONAL: dict[str, Types] = {
    "duration_s": NUMBER, "error": (str, type(None)), "figures": (dict,), "curve": (dict,),
    "retrieval": (dict,), "impl_info": (dict,), "environment": (dict,), "git": (dict,),
    "worker": (dict,)}


def type_problem(d: Mapping[str, Any], required: Mapping[str, Types],
                 optional: Mapping[str, Types] | None = None, where: str = "") -> str | None:
    """What is wrong with the types of `d`'s fields, or None when they are as declared.

    A missing optional field is fine; null only where NoneType is among the
    types; bool never passes where int alone is asked (such as `repeat`).
    """
    for name, types in {**required, **(optional or {})}.items():
        if name not in d:
            if name in required:
                return f"no {where}{name}"
            continue
        value = d[name]
        int_only = bool not in types and float not in types
        if not isinstance(value, types) or (isinstance(value, bool) and int_only):
            return f"{where}{name} is {type(value).__name__}, not {types[0].__name__}"
    return None


def values_problem(values: Any, types: Types, where: str) -> str | None:
    """The first of `values` (a list, or a dict's values) whose type is not in `types`."""
    items = values.items() if isinstance(values, dict) else enumerate(values)
    for key, v in items:
        if not isinstance(v, types):
            return f"{where}.{key} is {type(v).__name__}, not a number"
    return None


def envelope_problem(d: Mapping[str, Any], kind: str, what: str,
                     required: Mapping[str, Types], optional: Mapping[str, Types]) -> str | None:
    """The check every record kind starts with: its kind, top-level field types, a known status.

    A record without "kind" is a training run (records before kinds existed).
    """
    if d.get("kind", "train") != kind:
        return f"kind {d.get('kind')!r} (not {what})"
    why = type_problem(d, required, optional)
    if why is None and d["status"] not in STATUSES:
        why = f"status {d['status']!r} (unknown)"
    return why


def problem(d: Mapping[str, Any]) -> str | None:
    """Why a stored dict is not a training record this code can read, or None.

    The one test of a training record, shared by `--resume` (bench/store.py)
    and the report: a foreign, damaged or wrongly typed line is left out with
    this reason instead of crashing either.
    """
    why = envelope_problem(d, "train", "a training run", _REQUIRED, _OPTIONAL)
    if why:
        return why
    layers = d["spec"].get("layer_sizes")
    if not (isinstance(layers, list) and layers
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in layers)):
        return f"spec.layer_sizes is {layers!r}, not a list of positive integers"
    why = type_problem(d["spec"], {}, {"seed": (int,), "device": (str,)}, "spec.")
    why = why or values_problem(d.get("figures") or {}, NUMBER, "figures")
    for name, values in (d.get("curve") or {}).items():
        why = why or (None if isinstance(values, list) else f"curve.{name} is not a list")
        counts = name in ("epoch", "val_epoch")  # epoch numbers: never null or fractional
        why = why or values_problem(values, (int,) if counts else NUMBER, f"curve.{name}")
    for batch, stats in (d.get("retrieval") or {}).items():
        why = why or (None if isinstance(stats, dict) else f"retrieval.{batch} is not a dict")
        why = why or values_problem(stats, NUMBER, f"retrieval.{batch}")
    return why or _context_problem(d)


def _context_problem(d: Mapping[str, Any]) -> str | None:
    """Types of the nested fields the report reads: dataset, environment, impl_info, git."""
    return (type_problem(d["dataset"], {}, {"name": (str,), "content_hash": (str,)}, "dataset.")
            or type_problem(d.get("environment") or {}, {},
                            {"gpus": (list,), "packages": (dict,)}, "environment.")
            or type_problem(d.get("impl_info") or {}, {}, {"versions": (dict,)}, "impl_info.")
            or type_problem(d.get("git") or {}, {}, {"dirty": (bool,)}, "git."))

@dataclass
class RunRecord:
    """One run's record; `to_dict()` is the stored JSON (see the module docstring).

    Args:
        run_id: unique id of this run.
        status: one of STATUSES.
        impl: registry name of the implementation.
        spec: RunSpec.to_dict().
        spec_hash: RunSpec.spec_hash().
        repeat: index among repeats of one spec.
        dataset: {"name", "content_hash"}.
        started_at: ISO-8601 UTC start time.
    """

    run_id: str
    status: str
    impl: str
    spec: dict[str, Any]
    spec_hash: str
    repeat: int
    dataset: dict[str, Any]
    started_at: str
    duration_s: float | None = None
    error: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    curve: dict[str, list[Any]] = field(default_factory=dict)
    retrieval: dict[str, dict[str, Any]] = field(default_factory=dict)
    impl_info: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    git: dict[str, Any] = field(default_factory=dict)
    worker: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        """Rebuild a record; unknown keys (from a newer schema) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def key(self) -> tuple[str, int, str | None]:
        """What `--resume` matches: spec hash, repeat index, dataset content hash."""
        return (self.spec_hash, self.repeat, self.dataset.get("content_hash"))
