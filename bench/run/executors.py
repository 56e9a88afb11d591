"""Where a sweep's runs execute: the seam between the runner and an engine.

The runner (bench/run/runner.py) makes one `Job` per run and hands them all to an
executor; the executor starts each run's worker somewhere (bench/run/launch.py,
wherever it executes) and reports back through a `Sink`: `started`, the worker's
progress `event`s where it can relay them, and `finished` with the settled
record, which the runner alone appends to the results store. On Ctrl-C the
executor stops what it started, reports what had finished, and re-raises; the
runner records every job not finished as interrupted, with the executor's
`pending_why`.

`LocalExecutor` runs the jobs one after another on this machine;
`bench.run.ray_executor.RayExecutor` runs them as Ray tasks on a cluster. A
SLURM executor (submitit) would be a third class with the same `run`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench.process import signals_deferred
from bench.record import STATUS_INTERRUPTED, RunRecord
from bench.run.launch import Event, Launch, Settled
from bench.run.sweep import Run


@dataclass
class Job:
    """One run as the runner hands it over: the sweep's run, its skeleton record, its payload."""

    run: Run
    skeleton: RunRecord
    payload: dict[str, Any]  # bench/run/launch.py: crosses to a Ray node as it is


class Sink(Protocol):
    """What an executor reports to the runner (the runner is the one writer of records)."""

    def started(self, job: Job) -> None: ...

    def event(self, job: Job, event: Event) -> None: ...

    def finished(self, job: Job, settled: Settled) -> None: ...


class Executor(Protocol):
    """Runs every job and reports each through the sink (see the module docstring)."""

    name: str
    pending_why: str  # the error of a job left unfinished by Ctrl-C

    def describe(self) -> dict[str, Any]: ...

    def run(self, jobs: list[Job], sink: Sink, workdir: Path) -> None: ...


class LocalExecutor:
    """One worker at a time on this machine, its events relayed as they come.

    Args:
        environment: bench.envinfo.capture() of this machine (once per sweep).
    """

    name = "local"
    pending_why = "interrupted before it started"

    def __init__(self, environment: dict[str, Any]) -> None:
        self.environment = environment

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    def run(self, jobs: list[Job], sink: Sink, workdir: Path) -> None:
        """Every job in order. Ctrl-C is deferred while a record is settled, so an
        interrupt never orphans a worker or records a run twice."""
        environment = {**self.environment, "executor": self.describe()}
        for job in jobs:
            launch = Launch(job.payload, workdir, environment)
            sink.started(job)
            try:
                outcome = launch.watch(functools.partial(sink.event, job))
            except KeyboardInterrupt:  # watch killed the worker; its record, then re-raise
                with signals_deferred():
                    sink.finished(job, launch.settle(STATUS_INTERRUPTED))
                raise
            with signals_deferred():
                sink.finished(job, launch.settle(outcome))
