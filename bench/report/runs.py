"""Stored run records -> comparable groups of runs, and what was left out and why.

The only place the report reads the record schema (bench/record.py): each
stored dict becomes a `Run` with the few fields the report uses. Runs are
grouped by what makes them comparable: the machine (CPU model and logical
cores, GPUs), the resolved device, the dataset name and content hash, and the
whole spec except `impl` and `seed`. Runs in different groups never meet in
one table, ratio or test.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.envinfo import machine_label
from bench.record import STATUS_OK, problem
from bench.spec import SPLIT_CACHE

# Spec fields a comparison may vary over; every other field must agree.
VARYING = ("impl", "seed")


@dataclass(frozen=True)
class GroupKey:
    """What records must share to be compared (see the module docstring)."""

    machine: str  # e.g. "AMD EPYC 7B13 (2 logical cores)"
    gpu: str  # "none" or the GPU names
    device: str  # resolved spec.device: cpu | gpu
    dataset: str  # name
    dataset_hash: str  # content hash
    spec: tuple[tuple[str, str], ...]  # spec minus impl and seed, as sorted (name, json) pairs

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return tuple(json.loads(dict(self.spec).get("layer_sizes", "[]")))

    @property
    def split(self) -> str:
        """The group's spec.split (records written before the field: the cache's split)."""
        return str(self.spec_dict().get("split", SPLIT_CACHE))

    def spec_dict(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.spec}

    def spec_id(self) -> str:
        """Short stable id of the shared spec (12 hex digits)."""
        blob = json.dumps(self.spec, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def slug(self) -> str:
        """Stable file-name stem: layer sizes plus a short hash of the whole key."""
        layers = "x".join(str(n) for n in self.layer_sizes)
        return f"layers-{layers}-{hashlib.sha256(repr(self).encode()).hexdigest()[:8]}"

    def sort_key(self) -> tuple[Any, ...]:
        # Depth first: a reader looks for one depth, then compares machines within it.
        return (len(self.layer_sizes), self.layer_sizes, self.machine, self.gpu, self.device,
                self.dataset, self.dataset_hash, self.spec)


@dataclass(frozen=True)
class Run:
    """One ok training run, as the report sees it."""

    run_id: str
    impl: str
    seed: int
    repeat: int
    started_at: str
    key: GroupKey
    figures: Mapping[str, Any]
    curve: Mapping[str, list[Any]]
    retrieval: Mapping[str, Mapping[str, Any]]
    versions: Mapping[str, str]  # environment packages and the impl's framework versions
    commit: str
    dirty: bool
    sync: str  # the impl's device synchronisation mechanism
    device_name: str
    options: Mapping[str, Any] = field(default_factory=dict)  # impl_info.resolved_options
    # Started from the harness's shared initial weights (impl_info.shared_start; records
    # written before the field existed did, so absent means true).
    shared_start: bool = True

    def figure(self, name: str) -> float:
        """A numeric figure, nan when absent or null."""
        v = self.figures.get(name)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan

    def steady_epoch_s(self) -> list[float]:
        """Synchronised steady-state epoch times (epochs 2..E) from the curve."""
        return [float(v) for v in (self.curve.get("epoch_s") or [])[1:] if v is not None]


@dataclass
class Grouped:
    """Runs grouped for comparison, and every record left out with its reason."""

    groups: dict[GroupKey, list[Run]] = field(default_factory=dict)
    left_out: Counter[str] = field(default_factory=Counter)
    other_kinds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def sorted_groups(self) -> list[tuple[GroupKey, list[Run]]]:
        return sorted(self.groups.items(), key=lambda kv: kv[0].sort_key())


def group_key(rec: Mapping[str, Any]) -> GroupKey:
    """The comparability key of one stored record dict."""
    spec = dict(rec.get("spec") or {})
    machine, gpu = machine_label(rec.get("environment") or {})
    dataset = rec.get("dataset") or {}
    shared = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in spec.items()
                          if k not in VARYING))
    return GroupKey(machine=machine, gpu=gpu, device=str(spec.get("device", "?")),
                    dataset=str(dataset.get("name") or spec.get("dataset") or "?"),
                    dataset_hash=str(dataset.get("content_hash") or "unknown"), spec=shared)


def _dist_name(name: object) -> str:
    """Normalised package name (PEP 503 style), so keras_rs and keras-rs are one package."""
    return str(name).lower().replace("_", "-").replace(".", "-")


def to_run(rec: Mapping[str, Any]) -> Run:
    """A `Run` from one stored record dict (bench/record.py schema, version 1)."""
    env = rec.get("environment") or {}
    info = rec.get("impl_info") or {}
    git = rec.get("git") or {}
    versions = {_dist_name(k): str(v) for k, v in (env.get("packages") or {}).items() if v}
    versions.update({_dist_name(k): str(v) for k, v in (info.get("versions") or {}).items() if v})
    if env.get("python"):
        versions.setdefault("python", str(env["python"]))
    spec = rec.get("spec") or {}
    return Run(
        run_id=str(rec["run_id"]), impl=str(rec.get("impl") or spec.get("impl")),
        seed=int(spec.get("seed", 0)), repeat=int(rec.get("repeat") or 0),
        started_at=str(rec.get("started_at") or ""), key=group_key(rec),
        figures=rec.get("figures") or {}, curve=rec.get("curve") or {},
        retrieval=rec.get("retrieval") or {}, versions=versions,
        commit=str(git.get("commit") or "unknown"), dirty=bool(git.get("dirty")),
        sync=str(info.get("sync_mechanism") or "?"),
        device_name=str(info.get("device_name") or spec.get("device") or "?"),
        options=info.get("resolved_options") or {},
        shared_start=info.get("shared_start") is not False,
    )


def group_records(records: Iterable[Mapping[str, Any]]) -> Grouped:
    """Ok training runs by comparability key; everything else counted with its reason.

    Args:
        records: stored record dicts (`ResultsStore.iter_dicts()`), any order.
    """
    out = Grouped()
    buckets: dict[GroupKey, list[Run]] = defaultdict(list)
    for rec in records:
        kind = str(rec.get("kind") or "train")
        if kind != "train":
            out.other_kinds.setdefault(kind, []).append(dict(rec))
            continue
        status = str(rec.get("status"))
        if status != STATUS_OK:
            out.left_out[f"status {status!r} (the run did not finish)"] += 1
            continue
        if rec.get("schema_version") != 1:
            out.left_out[f"schema_version {rec.get('schema_version')!r} (unknown)"] += 1
            continue
        why = problem(dict(rec))  # the store's test of a training record (bench/record.py)
        if why is not None:
            out.left_out[f"malformed record ({why})"] += 1
            continue
        buckets[group_key(rec)].append(to_run(rec))
    for key, runs in buckets.items():
        # Stable order, whatever the append order: impl, seed, repeat, then run id.
        out.groups[key] = sorted(runs, key=lambda r: (r.impl, r.seed, r.repeat, r.run_id))
    return out


def differing_fields(a: GroupKey, b: GroupKey) -> list[str]:
    """Names of what keeps two groups apart (machine, gpu, device, dataset, spec fields)."""
    names = [n for n in ("machine", "gpu", "device", "dataset", "dataset_hash")
             if getattr(a, n) != getattr(b, n)]
    sa, sb = dict(a.spec), dict(b.spec)
    names += [f"spec.{k}" for k in sorted(set(sa) | set(sb)) if sa.get(k) != sb.get(k)]
    return names
