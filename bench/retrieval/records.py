"""Retrieval records: one per (contender, candidates, dim, k, batch, params).

Same schema family as training records (bench/record.py: run_id, status,
impl, spec, spec_hash, repeat, dataset, started_at, duration_s, error,
figures, impl_info, environment, git, worker, schema_version), plus
`kind: "retrieval"`, so readers that group by kind keep them apart. Stored
with bench.store.ResultsStore (atomic append). `command` is the command line
that produced the record.

`spec`: {candidates, dim, k, batch, seed, params, generator, num_queries}, and
for the trained workload (`bench retrieval --embeddings`, bench/retrieval/trained.py)
generator "trained", seed None and `workload`: {kind, dataset, content_hash,
run_id, impl, spec_hash, arrays_hash} (the training run's meta.json and the
arrays' own hash); random-workload specs carry no `workload` key, so their
hashes stand. `dataset`: {name: "synthetic:<generator>" or "trained:<dataset>",
content_hash: hash of the candidate and query arrays}.
`figures` (times in s or ms as named; memory in MiB):

    build_s             searcher.build(): upload to the framework / index build
    import_s            importing and constructing the searcher in the worker
    first_call_s        first search call of this setting (tracing/compilation)
    p50_ms, p95_ms, p99_ms, mean_ms   latency of one batch, after the first call
    qps                 queries per second over the timed calls
    calls               timed calls
    recall              tie-aware recall@k (bench/retrieval/recall.py)
    recall_ids          plain id-set recall@k
    rows_id_equal       share of queries whose id set equals the exact one
    recall_queries      queries the recall is over
    peak_rss_delta_mb   peak host RSS during this setting's timed calls and one
                        more call polled by a thread (memory.RssSampler), minus
                        the lower of RSS right after build and RSS before the
                        calls: the search's working memory (score matrix,
                        indices; settings run batch-ascending, so memory an
                        allocator kept from an earlier setting is at most this
                        one's need). None where the peak could not be reset.
                        Host memory only: a GPU's is not in it.
    peak_rss_setting_mb peak host RSS during the timed calls minus RSS before them
    peak_reset_ok       whether the kernel let the peak be reset for this setting
    index_rss_mb        RSS after build minus RSS before loading the candidates
    baseline_rss_mb     RSS after imports, before loading anything
    build_peak_delta_mb peak RSS during build minus RSS before it

`worker`: {pid, exit_code, signal, loadavg_1m (the machine's 1-minute load
average when the worker started)}. `invocation`: one id per `bench retrieval`
command, shared by every record it wrote (absent in records from before it
existed), so the report can say which ratios come from one run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.record import (
    NUMBER,
    STATUS_OK,
    envelope_problem,
    error_tail,
    new_run_id,
    type_problem,
    utc_now_iso,
    values_problem,
)
from bench.retrieval.contenders import Contender

KIND = "retrieval"
SCHEMA_VERSION = 1
BUILD_FIGURES = ("build_s", "import_s", "index_rss_mb", "baseline_rss_mb", "build_peak_delta_mb")

_REQUIRED = {"run_id": (str,), "status": (str,), "impl": (str,), "spec": (dict,),
             "spec_hash": (str,), "figures": (dict,), "impl_info": (dict,)}
_OPTIONAL = {"started_at": (str,), "environment": (dict,), "git": (dict,), "worker": (dict,),
             "command": (str, type(None)), "invocation": (str, type(None))}
_SPEC = {"candidates": (int,), "dim": (int,), "k": (int,), "batch": (int,)}


def problem(d: Mapping[str, Any]) -> str | None:
    """Why a stored dict is not a retrieval record this code can read, or None.

    The retrieval report's check for the store's one reader (bench/store.py):
    a foreign, damaged or wrongly typed record is left out with this reason.
    """
    why = envelope_problem(d, KIND, "a retrieval record", _REQUIRED, _OPTIONAL)
    if why:
        return why
    why = (type_problem(d["spec"], _SPEC, {"params": (dict, type(None)), "workload": (dict,)},
                        "spec.")
           or values_problem(d["figures"], NUMBER, "figures")
           or type_problem(d["impl_info"], {}, {"resolved_options": (dict,)}, "impl_info.")
           or type_problem(d.get("environment") or {}, {},
                           {"gpus": (list,), "packages": (dict,)}, "environment.")
           or type_problem(d.get("worker") or {}, {}, {"loadavg_1m": NUMBER}, "worker."))
    figures = d["figures"]
    if why is None and d["status"] == STATUS_OK and not (
            (figures.get("qps") or 0) > 0 and isinstance(figures.get("recall"), int | float)):
        why = "an ok record without a positive figures.qps and a figures.recall"
    return why


@dataclass(frozen=True)
class Setting:
    """What one record measured, apart from the contender.

    Args:
        candidates: number of candidates N.
        dim: embedding dimension.
        k: retrieval depth.
        batch: queries per call.
        params: the contender's search parameters (empty for exact ones).
        seed: the study's seed (None on trained embeddings: nothing is drawn).
        num_queries: size of the query pool.
        generator: synthetic data generator id, or "trained".
        workload: the trained workload's spec (trained.Workload.spec), None when random.
    """

    candidates: int
    dim: int
    k: int
    batch: int
    params: dict[str, Any]
    seed: int | None
    num_queries: int
    generator: str
    workload: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        spec = {"candidates": self.candidates, "dim": self.dim, "k": self.k, "batch": self.batch,
                "params": dict(self.params), "seed": self.seed,
                "num_queries": self.num_queries, "generator": self.generator}
        if self.workload is not None:  # absent when random: old spec hashes stand
            spec["workload"] = dict(self.workload)
        return spec


def spec_hash(impl: str, spec: dict[str, Any]) -> str:
    """Stable 16-hex hash of contender name + spec (sorted JSON, sha256)."""
    blob = json.dumps({"impl": impl, **spec}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def dataset_name(setting: Setting) -> str:
    """"synthetic:<generator>" for random vectors, "trained:<dataset>" for learned ones."""
    if setting.workload is not None:
        return f"trained:{setting.workload['dataset']}"
    return f"synthetic:{setting.generator}"


def build_record(contender: Contender, setting: Setting, *, status: str,
                 content_hash: str | None, started_at: str | None = None,
                 duration_s: float | None = None, error: str | None = None,
                 figures: dict[str, Any] | None = None, built: dict[str, Any] | None = None,
                 context: dict[str, Any] | None = None) -> dict[str, Any]:
    """One retrieval record as a dict ready for ResultsStore.append.

    Args:
        contender: who ran.
        setting: what was measured.
        status: bench.record STATUS_* value.
        content_hash: hash of the candidate and query bytes.
        started_at: when the worker started (ISO-8601 UTC); now when None.
        duration_s: worker wall time up to this record.
        error: error tail for a failed or timed-out setting.
        figures: the worker's per-setting figures.
        built: the worker's "built" event (build time, memory, versions).
        context: {"environment", "git", "worker", "command", "invocation"} shared by a
            worker's records.
    """
    spec = setting.to_dict()
    built = built or {}
    figures = dict(figures or {})
    resolved = figures.pop("resolved_options", {})
    figures.update({key: built[key] for key in BUILD_FIGURES if key in built})
    context = context or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "run_id": new_run_id(),
        "status": status,
        "impl": contender.name,
        "spec": spec,
        "spec_hash": spec_hash(contender.name, spec),
        "repeat": 0,
        "dataset": {"name": dataset_name(setting), "content_hash": content_hash},
        "started_at": started_at or utc_now_iso(),
        "duration_s": duration_s,
        "error": error_tail(error) if error else None,
        "figures": figures,
        "impl_info": {
            "target": contender.target, "framework": contender.framework,
            "exact": contender.exact, "options": dict(contender.options),
            "description": contender.description, "resolved_options": resolved,
            "sync_mechanism": built.get("sync_mechanism"), "device_name": built.get("device"),
            "versions": built.get("versions", {}),
        },
        "environment": context.get("environment", {}),
        "git": context.get("git", {}),
        "worker": context.get("worker", {}),
        "invocation": context.get("invocation"),
        "command": context.get("command"),
    }
