"""The driver: a sweep's runs handed to an executor, every record stored by one writer.

The parent never imports a framework. It expands nothing (bench/run/sweep.py
did) and starts nothing itself: it makes one job per run and hands them to an
executor (bench/run/executors.py: this machine, one run at a time, or a Ray
cluster), which starts each run's worker where it executes (bench/run/launch.py)
and reports back. Each run ends with exactly one record, appended here to the
store: the worker's own (ok, or failed with a traceback), or one written for a
worker that died, timed out, was interrupted or was lost with its node.
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data.cache import DatasetRef
from bench.envinfo import machine_label
from bench.process import interruptible, signals_deferred
from bench.record import STATUS_FAILED, STATUS_INTERRUPTED, RunRecord, new_run_id, utc_now_iso
from bench.registry import devices_env
from bench.run.executors import Executor, Job, LocalExecutor
from bench.run.launch import Settled, without_worker
from bench.run.sweep import Run
from bench.store import ResultsStore

log = logging.getLogger(__name__)


@dataclass
class Options:
    """How the sweep runs (everything that is not in the RunSpec).

    Args:
        results_dir: the results store's directory.
        dataset: the dataset as the parent resolved (and verified) it; each job carries it.
        timeout_s: wall-clock limit of one run, process start to exit.
        device_env: variables that pin the worker to the device.
        environment: bench.envinfo.capture() of this machine (the local executor's runs).
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


Listener = Callable[[str, Run, dict[str, Any]], None]


class SweepInterrupted(Exception):
    """Ctrl-C: the running and pending runs were recorded as interrupted."""

    def __init__(self, records: list[RunRecord]) -> None:
        super().__init__("interrupted")
        self.records = records


class Runner:
    """Runs a sweep through an executor and returns its records in sweep order.

    Args:
        runs: the expanded sweep.
        options: see Options.
        listener: called as listener(event, run, fields) for "start", every
            worker progress event the executor relays, and "end" (fields: the record dict).
        executor: where the runs execute (bench/run/executors.py); default: this
            machine, one run at a time.
    """

    def __init__(self, runs: Sequence[Run], options: Options, listener: Listener,
                 executor: Executor | None = None) -> None:
        self.runs = list(runs)
        self.opts = options
        self.listener = listener
        self.executor: Executor = executor or LocalExecutor(options.environment)
        self.store = ResultsStore(options.results_dir)
        self.done: dict[str, RunRecord] = {}  # run_id -> its stored record

    def _key(self, run: Run) -> tuple[str, int, str | None]:
        """The RunRecord.key() that `run`'s record will have (what --resume matches)."""
        return (run.spec.spec_hash(), run.repeat, self.opts.dataset.content_hash)

    @functools.cached_property
    def _recorded_ok(self) -> list[RunRecord]:
        """The store's ok records, read once (unreadable lines are warned about once)."""
        return self.store.ok_records()

    def skipped(self) -> set[int]:
        """Indices of runs --resume skips: their key is recorded ok."""
        if not self.opts.resume:
            return set()
        done = {r.key() for r in self._recorded_ok}
        return {i for i, r in enumerate(self.runs) if self._key(r) in done}

    def recorded_elsewhere(self, skip: set[int]) -> tuple[int, Counter[str]]:
        """Of the runs in `skip`, how many were recorded ok only on other machines than this
        one, and how many per machine (envinfo.machine_label as "CPU (n cores), GPU g")."""
        keys = {self._key(self.runs[i]) for i in skip}
        where: dict[tuple[str, int, str | None], set[tuple[str, str]]] = defaultdict(set)
        for r in self._recorded_ok:
            if r.key() in keys:
                where[r.key()].add(machine_label(r.environment))
        here = machine_label(self.opts.environment)
        elsewhere = [labels for labels in where.values() if here not in labels]
        return len(elsewhere), Counter(f"{cpu}, GPU {gpu}" for labels in elsewhere
                                       for cpu, gpu in labels)

    def run_all(self, skip: set[int]) -> list[RunRecord]:
        """Every run not in `skip`; raises SweepInterrupted on Ctrl-C."""
        jobs = [self._job(self.runs[i]) for i in range(len(self.runs)) if i not in skip]
        workdir = Path(tempfile.mkdtemp(prefix="deeprec-run-"))  # job files, worker logs
        try:
            with interruptible():  # Ctrl-C or SIGTERM raises once; later ones are ignored
                try:
                    self.executor.run(jobs, self, workdir)
                except KeyboardInterrupt:
                    self._interrupt(jobs)
                    raise SweepInterrupted(self._records(jobs)) from None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return self._records(jobs)

    def _records(self, jobs: list[Job]) -> list[RunRecord]:
        return [self.done[j.skeleton.run_id] for j in jobs if j.skeleton.run_id in self.done]

    def _job(self, run: Run) -> Job:
        data = self.opts.dataset
        skeleton = RunRecord(
            run_id=new_run_id(),
            status=STATUS_FAILED,  # until the worker says otherwise
            impl=run.spec.impl,
            spec=run.spec.to_dict(),
            spec_hash=run.spec.spec_hash(),
            repeat=run.repeat,
            dataset={"name": data.name, "content_hash": data.content_hash},
            started_at=utc_now_iso(),
            environment={"executor": self.executor.describe()},  # filled in where it runs
            git=self.opts.git,
        )
        payload = {
            "record": skeleton.to_dict(),
            "target": run.entry.target,
            "dataset": data.to_dict(),
            "retrieve_budget_s": self.opts.retrieve_budget_s,
            "save_embeddings": (str(self.opts.save_embeddings)
                                if self.opts.save_embeddings is not None else None),
            "env": {**run.entry.env, **self.opts.device_env,
                    **devices_env(run.entry, run.spec.device, run.spec.devices)},
            "timeout_s": self.opts.timeout_s,
        }
        return Job(run, skeleton, payload)

    # -- the sink (bench/run/executors.py) -------------------------------------------
    def started(self, job: Job) -> None:
        self.listener("start", job.run, {"run_id": job.skeleton.run_id})

    def event(self, job: Job, event: dict[str, Any]) -> None:
        self.listener(str(event["event"]), job.run, event)

    def finished(self, job: Job, settled: Settled) -> None:
        """Store the run's record (and a failed worker's log); Ctrl-C waits until it is."""
        with signals_deferred():
            record = settled.record
            self.store.append(record)
            self.done[record.run_id] = record
            if settled.log:
                _keep_log(record.run_id, settled.log, self.opts.results_dir)
        self.listener("end", job.run, record.to_dict())

    def _interrupt(self, jobs: list[Job]) -> None:
        """Record every job the executor left unfinished as interrupted."""
        for job in jobs:
            if job.skeleton.run_id not in self.done:
                rec = without_worker(job.skeleton, STATUS_INTERRUPTED, self.executor.pending_why)
                self.finished(job, Settled(rec))


def _keep_log(run_id: str, text: str, results_dir: Path) -> None:
    """Keep a failed worker's log beside the records (<results>/logs/<run_id>.log)."""
    target = results_dir / "logs" / f"{run_id}.log"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except OSError as exc:
        log.warning("could not keep worker log %s: %s", target, exc)
