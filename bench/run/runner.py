"""The parent: one worker process per run, watched, timed out, and always recorded.

The parent never imports a framework. For each run it starts a worker
(bench/process.py), relays its progress events to a listener (the progress
bar) and makes sure the run ends with exactly one record in the store: the
worker writes ok and failed-with-traceback records itself; when it dies
(signal, os.abort, killed), times out or is interrupted, the parent writes the
record, with the tail of the worker's log and the epochs it reported.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.data.cache import DatasetRef
from bench.envinfo import WORKER_ENV_KEYS, load_average
from bench.process import TIMED_OUT, WorkerProcess, interruptible, signals_deferred, worker_env
from bench.record import (
    ERROR_TAIL_CHARS,
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    STATUS_TIMED_OUT,
    RunRecord,
    error_tail,
    new_run_id,
    utc_now_iso,
)
from bench.run.sweep import Run
from bench.store import ResultsStore
from bench.timing import now_ns, seconds

log = logging.getLogger(__name__)


@dataclass
class Options:
    """How the sweep runs (everything that is not in the RunSpec).

    Args:
        results_dir: the results store's directory.
        dataset: the dataset as the parent resolved (and verified) it; each job carries it.
        timeout_s: wall-clock limit of one run, process start to exit.
        device_env: variables that pin the worker to the device.
        environment: bench.envinfo.capture() of this machine.
        git: bench.envinfo.git_info().
        retrieve_budget_s: timed seconds per retrieval batch size.
        resume: skip runs already recorded ok.
        save_embeddings: where each run writes its trained embeddings (bench/run/export.py),
            or None.
    """

    results_dir: Path
    dataset: DatasetRef
    timeout_s: float
    device_env: dict[str, str]
    environment: dict[str, Any]
    git: dict[str, Any]
    retrieve_budget_s: float = 2.0
    resume: bool = False
    save_embeddings: Path | None = None


@dataclass
class Active:
    """The run in flight: its record skeleton, process and what it reported."""

    run: Run
    skeleton: RunRecord
    spawn_ns: int
    log_path: Path
    proc: WorkerProcess | None = None
    events: list[dict[str, Any]] = field(default_factory=list)


Listener = Callable[[str, Run, dict[str, Any]], None]


class SweepInterrupted(Exception):
    """Ctrl-C: the running and pending runs were recorded as interrupted."""

    def __init__(self, records: list[RunRecord]) -> None:
        super().__init__("interrupted")
        self.records = records


class Runner:
    """Runs a sweep, one worker at a time, and returns its records in sweep order.

    Args:
        runs: the expanded sweep.
        options: see Options.
        listener: called as listener(event, run, fields) for "start", every
            worker progress event, and "end" (fields: the record dict).
    """

    def __init__(self, runs: Sequence[Run], options: Options, listener: Listener) -> None:
        self.runs = list(runs)
        self.opts = options
        self.listener = listener
        self.store = ResultsStore(options.results_dir)
        self.workdir = Path()  # a private temporary folder while the sweep runs
        self.active: Active | None = None

    def skipped(self) -> set[int]:
        """Indices of runs --resume skips: their key is recorded ok."""
        if not self.opts.resume:
            return set()
        done = self.store.ok_keys()
        return {
            i for i, r in enumerate(self.runs)
            if (r.spec.spec_hash(), r.repeat, self.opts.dataset.content_hash) in done
        }

    def run_all(self, skip: set[int]) -> list[RunRecord]:
        """Every run not in `skip`; raises SweepInterrupted on Ctrl-C."""
        records: list[RunRecord] = []
        todo = [self.runs[i] for i in range(len(self.runs)) if i not in skip]
        self.workdir = Path(tempfile.mkdtemp(prefix="deeprec-run-"))  # job files, worker logs
        try:
            with interruptible():  # Ctrl-C or SIGTERM raises once; later ones are ignored
                try:
                    for run in todo:
                        self._run_one(run, records)
                except KeyboardInterrupt:
                    records.extend(self._interrupt(todo[len(records) :]))
                    raise SweepInterrupted(records) from None
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return records

    def _skeleton(self, run: Run) -> RunRecord:
        data = self.opts.dataset
        return RunRecord(
            run_id=new_run_id(),
            status=STATUS_FAILED,  # until the worker says otherwise
            impl=run.spec.impl,
            spec=run.spec.to_dict(),
            spec_hash=run.spec.spec_hash(),
            repeat=run.repeat,
            dataset={"name": data.name, "content_hash": data.content_hash},
            started_at=utc_now_iso(),
            environment=self.opts.environment,
            git=self.opts.git,
        )

    def _run_one(self, run: Run, records: list[RunRecord]) -> None:
        """Run one worker to its end and append its stored record to `records`.

        Ctrl-C is deferred while the worker starts (bench/process.py) and while
        its record is settled, so an interrupt never orphans a worker or
        records a run twice.
        """
        self.active = None
        skeleton = self._skeleton(run)
        env = worker_env(run.entry.env, self.opts.device_env)
        skeleton.environment = {
            **skeleton.environment,
            "worker_env": {k: env[k] for k in WORKER_ENV_KEYS if k in env},
            "load_avg_at_start": load_average(),  # other work on the machine skews timings
        }
        active = Active(run, skeleton, now_ns(), self.workdir / f"{skeleton.run_id}.log")
        self.active = active
        self.listener("start", run, {"run_id": skeleton.run_id})
        job = {
            "record": skeleton.to_dict(),
            "target": run.entry.target,
            "dataset": self.opts.dataset.to_dict(),
            "results_dir": str(self.opts.results_dir),
            "spawn_ns": active.spawn_ns,
            "retrieve_budget_s": self.opts.retrieve_budget_s,
            "save_embeddings": (str(self.opts.save_embeddings)
                                if self.opts.save_embeddings is not None else None),
        }
        job_path = self.workdir / f"{skeleton.run_id}.json"
        job_path.write_text(json.dumps(job))
        active.proc = WorkerProcess("bench.run.worker", [str(job_path)], env, active.log_path)
        outcome = active.proc.watch(self.opts.timeout_s, lambda event: self._event(active, event))
        with signals_deferred():
            record = self._finish(active, outcome)
            records.append(record)
            self.active = None
        self.listener("end", run, record.to_dict())

    def _event(self, active: Active, event: dict[str, Any]) -> None:
        active.events.append(event)
        self.listener(str(event["event"]), active.run, event)

    def _finish(self, active: Active, outcome: str) -> RunRecord:
        """The run's stored record: the worker's, or one the parent writes now."""
        run_id = active.skeleton.run_id
        stored = self._stored(run_id)
        if stored is not None:
            return stored
        code = active.proc.returncode if active.proc is not None else None
        if outcome == TIMED_OUT:
            why, status = f"timed out after {self.opts.timeout_s:g} s", STATUS_TIMED_OUT
        elif outcome == STATUS_INTERRUPTED:
            why, status = "interrupted (Ctrl-C or SIGTERM)", STATUS_INTERRUPTED
        elif code is not None and code < 0:
            why, status = f"worker killed by {signal.Signals(-code).name}", STATUS_FAILED
        else:
            why, status = f"worker exited with code {code} without a record", STATUS_FAILED
        return self._write_parent_record(active, status, why, code)

    def _stored(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.store.records() if r.run_id == run_id), None)

    def _write_parent_record(
        self, active: Active, status: str, why: str, code: int | None
    ) -> RunRecord:
        rec = active.skeleton
        rec.status = status
        log_text = active.proc.log_tail() if active.proc is not None else ""
        # The reason first, then as much of the log's end as fits.
        rec.error = f"{why}\n{error_tail(log_text, ERROR_TAIL_CHARS - len(why))}".strip()
        rec.duration_s = seconds(active.spawn_ns, now_ns())
        rec.curve = _curve_from_events(active.events)
        rec.worker = {
            "pid": active.proc.pid if active.proc else None,
            "exit_code": code,
            "signal": signal.Signals(-code).name if code is not None and code < 0 else None,
        }
        self.store.append(rec)
        if log_text:
            _keep_log(active.log_path, self.opts.results_dir)
        return rec

    def _interrupt(self, rest: list[Run]) -> list[RunRecord]:
        """Stop the worker in flight; record it and every run after it as interrupted.

        Args:
            rest: the runs not finished, the one in flight (if any) first.
        """
        records = []
        active = self.active
        if active is not None:
            if active.proc is not None:
                active.proc.kill()
            records.append(self._finish(active, STATUS_INTERRUPTED))
            self.listener("end", active.run, records[-1].to_dict())
            rest = [r for r in rest if r is not active.run]
        for run in rest:
            holder = Active(run, self._skeleton(run), now_ns(), self.workdir / "none.log")
            why = "interrupted before it started"
            records.append(self._write_parent_record(holder, STATUS_INTERRUPTED, why, None))
        return records


def _curve_from_events(events: list[dict[str, Any]]) -> dict[str, list[Any]]:
    epochs = [e for e in events if e.get("event") == "epoch"]
    return {
        "epoch": [e.get("epoch") for e in epochs],
        "epoch_loss": [e.get("loss") for e in epochs],
        "epoch_s": [e.get("epoch_s") for e in epochs],
    }


def _keep_log(log_path: Path, results_dir: Path) -> None:
    """Keep a failed worker's full log beside the records (<results>/logs/<run_id>.log)."""
    target = results_dir / "logs" / log_path.name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log_path, target)
    except OSError as exc:
        log.warning("could not keep worker log %s: %s", log_path, exc)
