"""One run's worker where it executes: started, watched, and settled into exactly one record.

The same code runs in the harness parent (the local executor) and inside a Ray
task on a cluster node (bench/run/ray_executor.py). The worker writes its ok or
failed record into a private store in the launch's folder; when it dies (signal,
os.abort, killed), times out or is interrupted, the launch writes the record
instead, with the tail of the worker's log and the epochs it reported. Either
way the record goes back to the caller, and only the driver appends it to the
results store (bench/run/runner.py): one writer, wherever the run executed.

A launch's payload is a plain dict (it crosses to Ray nodes): the worker's job
file keys (bench/run/worker.py) but results_dir and spawn_ns, plus `env` (the
variables the implementation and device add to the worker's environment) and
`timeout_s`.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.envinfo import WORKER_ENV_KEYS, load_average
from bench.process import TIMED_OUT, WorkerProcess, worker_env
from bench.record import (
    ERROR_TAIL_CHARS,
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    STATUS_TIMED_OUT,
    RunRecord,
    error_tail,
    utc_now_iso,
)
from bench.store import ResultsStore
from bench.timing import now_ns, seconds

KEPT_LOG_BYTES = 4 << 20  # the end of a failed worker's log kept beside the records

Event = dict[str, Any]


@dataclass
class Settled:
    """A run's one record, and the worker's log when the launch (not the worker) wrote it."""

    record: RunRecord
    log: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record.to_dict(), "log": self.log}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Settled:
        return cls(RunRecord.from_dict(d["record"]), str(d.get("log") or ""))


def without_worker(skeleton: RunRecord, status: str, why: str, log: str = "",
                   duration_s: float | None = 0.0) -> RunRecord:
    """`skeleton` as the record of a run no worker record exists for: `why` and the log's end."""
    rec = RunRecord.from_dict(skeleton.to_dict())
    rec.status = status
    # The reason first, then as much of the log's end as fits.
    rec.error = f"{why}\n{error_tail(log, ERROR_TAIL_CHARS - len(why))}".strip()
    rec.duration_s = duration_s
    rec.curve = _curve_from_events([])
    rec.worker = {"pid": None, "exit_code": None, "signal": None}
    return rec


class Launch:
    """One worker, from its start to its settled record, in a private folder.

    Args:
        payload: see the module docstring.
        workdir: a private folder for the job file, the log and the worker's store.
        environment: the machine's bench.envinfo.capture() (captured where it runs).
    """

    def __init__(self, payload: dict[str, Any], workdir: Path,
                 environment: dict[str, Any]) -> None:
        self.payload = payload
        self.env = worker_env(payload["env"])
        rec = RunRecord.from_dict(payload["record"])
        rec.started_at = utc_now_iso()
        rec.environment = {
            **environment,
            "worker_env": {k: self.env[k] for k in WORKER_ENV_KEYS if k in self.env},
            "load_avg_at_start": load_average(),  # other work on the machine skews timings
        }
        self.skeleton = rec
        self.store_dir = workdir / rec.run_id
        self.log_path = workdir / f"{rec.run_id}.log"
        self.job_path = workdir / f"{rec.run_id}.json"
        self.proc = WorkerProcess("bench.run.worker", [str(self.job_path)], self.env,
                                  self.log_path)
        self.spawn_ns = 0
        self.events: list[Event] = []

    def watch(self, on_event: Callable[[Event], None] = lambda event: None) -> str:
        """Run the worker to its end (bench.process.WorkerProcess.watch); its outcome."""
        self.spawn_ns = now_ns()
        job = {k: v for k, v in self.payload.items() if k not in ("env", "timeout_s")}
        job.update(record=self.skeleton.to_dict(), results_dir=str(self.store_dir),
                   spawn_ns=self.spawn_ns)
        self.job_path.write_text(json.dumps(job))

        def relay(event: Event) -> None:
            self.events.append(event)
            on_event(event)

        return self.proc.watch(float(self.payload["timeout_s"]), relay)

    def settle(self, outcome: str) -> Settled:
        """The run's record: the worker's own, or one written now from `outcome`."""
        run_id = self.skeleton.run_id
        stored = [r for r in ResultsStore(self.store_dir).records() if r.run_id == run_id]
        if stored:
            return Settled(stored[-1])
        code = self.proc.returncode
        if outcome == TIMED_OUT:
            why, status = f"timed out after {self.payload['timeout_s']:g} s", STATUS_TIMED_OUT
        elif outcome == STATUS_INTERRUPTED:
            why, status = "interrupted (Ctrl-C or SIGTERM)", STATUS_INTERRUPTED
        elif code is not None and code < 0:
            why, status = f"worker killed by {signal.Signals(-code).name}", STATUS_FAILED
        else:
            why, status = f"worker exited with code {code} without a record", STATUS_FAILED
        log = self.proc.log_tail(KEPT_LOG_BYTES)
        duration = seconds(self.spawn_ns, now_ns()) if self.spawn_ns else 0.0
        rec = without_worker(self.skeleton, status, why, log, duration)
        rec.curve = _curve_from_events(self.events)
        rec.worker = {
            "pid": self.proc.pid,
            "exit_code": code,
            "signal": signal.Signals(-code).name if code is not None and code < 0 else None,
        }
        return Settled(rec, log)

    def run(self) -> Settled:
        """watch, then settle: the whole launch where no one relays its events."""
        return self.settle(self.watch())


def _curve_from_events(events: list[Event]) -> dict[str, list[Any]]:
    epochs = [e for e in events if e.get("event") == "epoch"]
    return {
        "epoch": [e.get("epoch") for e in epochs],
        "epoch_loss": [e.get("loss") for e in epochs],
        "epoch_s": [e.get("epoch_s") for e in epochs],
    }
