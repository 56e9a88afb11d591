"""The parent of a retrieval study: data once, one worker per contender, records always.

Never imports a framework. It writes every (candidates, dim) group's
embeddings (random, or a trained workload's copied: bench/retrieval/trained.py)
and exact answer to a temporary folder first, then, for each
contender, starts `python -m bench.retrieval.worker` once per group through
the launcher (bench/process.py), relays the worker's events as they come
(progress bar, one record per finished setting), and when a worker crashes or
overruns `timeout_s`, records the group's unfinished settings as failed /
timed out. Ctrl-C or SIGTERM (bench/process.py's `interruptible`) kills the
worker in flight, records its group's unfinished settings and every setting
still to come as interrupted, removes the temporary folder and raises
StudyInterrupted.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import envinfo, paths
from bench.process import TIMED_OUT, WorkerProcess, interruptible, signals_deferred, worker_env
from bench.record import (
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    STATUS_OK,
    STATUS_TIMED_OUT,
    error_tail,
    new_run_id,
    utc_now_iso,
)
from bench.retrieval import synth, trained
from bench.retrieval.contenders import Contender
from bench.retrieval.records import Setting, build_record
from bench.store import ResultsStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Everything a study runs (what the CLI flags say).

    Args:
        candidates, dims, ks, batches: the grid.
        contenders: who runs, in order.
        repeats: most timed calls per setting.
        min_calls: fewest timed calls per setting, even past the budget.
        budget_s: timed seconds per setting after which calls stop (past min_calls).
        seed: seeds the synthetic data.
        timeout_s: wall-clock limit of one contender's worker on one (candidates, dim) group.
        results_dir: the results store's directory.
        workload: trained embeddings to search instead of random ones (then `candidates`
            and `dims` are its one N and d).
    """

    candidates: tuple[int, ...]
    dims: tuple[int, ...]
    ks: tuple[int, ...]
    batches: tuple[int, ...]
    contenders: tuple[Contender, ...]
    repeats: int = 20
    min_calls: int = 3
    budget_s: float = 2.0
    seed: int = 0
    timeout_s: float = 1800.0
    results_dir: Path = paths.LOCAL_RETRIEVAL
    workload: trained.Workload | None = None

    def groups(self) -> list[tuple[int, int]]:
        return [(n, d) for n in self.candidates for d in self.dims]

    def settings(self, c: Contender, group: tuple[int, int]) -> list[Setting]:
        """Every record one contender makes on one group, in the worker's order."""
        w = self.workload
        seed, generator = (None, trained.GENERATOR) if w else (self.seed, synth.GENERATOR)
        return [Setting(group[0], group[1], k, b, dict(p), seed, max(self.batches), generator,
                        w.spec() if w else None)
                for k in self.ks for p in c.params for b in self.batches]

    def total(self) -> int:
        return sum(len(self.settings(c, g)) for c in self.contenders for g in self.groups())


Files = dict[tuple[int, int], synth.SettingFiles]


class StudyInterrupted(Exception):
    """Ctrl-C or SIGTERM: every setting not finished was recorded as interrupted."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__("interrupted")
        self.records = records


def prepare_data(plan: Plan, folder: Path, files: Files) -> None:
    """Write every group's embeddings and exact top-k answer into `files` (once, shared by all)."""
    if plan.workload is not None:
        w = plan.workload
        log.info("data: trained %s, %d candidates x %d dims (exact top-%d in numpy)",
                 w.meta["dataset"], w.num_candidates, w.dim, max(plan.ks))
        files[(w.num_candidates, w.dim)] = trained.prepare(w, max(plan.batches), max(plan.ks),
                                                           folder)
        return
    for n, dim in plan.groups():
        log.info("data: %d candidates x %d dims (exact top-%d in numpy)", n, dim, max(plan.ks))
        f = synth.generate(n, dim, max(plan.batches), plan.seed, folder)
        synth.write_truth(f, max(plan.ks))
        files[(n, dim)] = f


def _setting_key(event: dict[str, Any]) -> tuple[Any, ...]:
    return (event["candidates"], event["dim"], event["k"], event["batch"],
            json.dumps(event["params"], sort_keys=True))


def _key_of(s: Setting) -> tuple[Any, ...]:
    return (s.candidates, s.dim, s.k, s.batch, json.dumps(s.params, sort_keys=True))


@dataclass
class Attempt:
    """One worker process on one group: what each of its records says about it."""

    proc: WorkerProcess | None  # None: the group never started (interrupted before)
    env: dict[str, str]
    started: str  # UTC, ISO
    t0: float  # monotonic seconds at the start
    loadavg_1m: float  # the machine's load at the start: timings on a shared machine need it

    def worker(self) -> dict[str, Any]:
        code = self.proc.returncode if self.proc else None  # None while it runs
        return {"pid": self.proc.pid if self.proc else None, "exit_code": code,
                "signal": -code if code is not None and code < 0 else None,
                "loadavg_1m": self.loadavg_1m}


class ContenderRun:
    """One contender across every group: workers, their events, and the records.

    Args:
        plan: the study.
        contender: who runs.
        files: every group's data files.
        folder: where job and log files go.
        store: the results store.
        context: {"environment", "git"} of this machine.
        progress: called with the number of settings just finished.
    """

    def __init__(self, plan: Plan, contender: Contender, files: Files, folder: Path,
                 store: ResultsStore, context: dict[str, Any], progress: Any) -> None:
        self.plan, self.c, self.files, self.folder = plan, contender, files, folder
        self.store, self.context, self.progress = store, context, progress
        self.pending = {_key_of(s): s for g in plan.groups() for s in plan.settings(contender, g)}
        self.built: dict[tuple[int, int], dict[str, Any]] = {}
        self.records: list[dict[str, Any]] = []
        self.flight: tuple[tuple[int, int], Attempt] | None = None  # the group in flight

    def run(self) -> list[dict[str, Any]]:
        """One worker per (candidates, dim) group; every setting ends as one record; the records.

        A fresh process per group because allocators keep what they freed (TF's
        and XLA's pools): memory pooled in an earlier group would cover this
        group's score matrices and hide them from its peak, which is read
        against RSS after build.
        """
        for group in self.plan.groups():
            self._run_worker(group)
        return self.records

    def _job(self, group: tuple[int, int]) -> dict[str, Any]:
        files = self.files[group]
        return {
            "target": self.c.target, "options": dict(self.c.options),
            "params": [dict(p) for p in self.c.params],
            "group": {"n": group[0], "dim": group[1], "candidates": str(files.candidates),
                      "queries": str(files.queries), "truth_ids": str(files.truth_ids)},
            "ks": list(self.plan.ks), "batches": list(self.plan.batches),
            "repeats": self.plan.repeats, "min_calls": self.plan.min_calls,
            "budget_s": self.plan.budget_s, "warmup": 0,
        }

    def _run_worker(self, group: tuple[int, int]) -> None:
        """One worker process on `group`; whatever happens, each of its settings ends recorded."""
        tag = f"{self.c.name}-{group[0]}x{group[1]}"
        job_path = self.folder / f"{tag}.json"
        job_path.write_text(json.dumps(self._job(group)))
        env = worker_env(self.c.env)
        proc = WorkerProcess("bench.retrieval.worker", [str(job_path)], env,
                             self.folder / f"{tag}.log")
        attempt = Attempt(proc, env, utc_now_iso(), time.monotonic(),
                          round(os.getloadavg()[0], 2))
        self.flight = (group, attempt)
        outcome = proc.watch(self.plan.timeout_s, lambda event: self._handle(event, attempt))
        if any((s.candidates, s.dim) == group for s in self.pending.values()):
            if outcome == TIMED_OUT:
                status, why = STATUS_TIMED_OUT, f"timed out after {self.plan.timeout_s:g} s"
            else:
                status, why = STATUS_FAILED, f"worker exited with {proc.returncode}"
            self._fail_group(group, status, f"{why}\n{error_tail(proc.log_tail(), 4000)}",
                             attempt)
        self.flight = None

    def _handle(self, event: dict[str, Any], attempt: Attempt) -> None:
        kind = event["event"]
        if kind == "built":
            self.built[(event["candidates"], event["dim"])] = event
        elif kind in ("setting", "setting_failed"):
            status = STATUS_OK if kind == "setting" else STATUS_FAILED
            self._record(_setting_key(event), status, attempt, event.get("error"),
                         event.get("figures"))
        elif kind == "group_failed":
            self._fail_group((event["candidates"], event["dim"]), STATUS_FAILED,
                             event["error"], attempt)

    def _fail_group(self, group: tuple[int, int], status: str, error: str,
                    attempt: Attempt) -> None:
        for key in [k for k, s in self.pending.items() if (s.candidates, s.dim) == group]:
            self._record(key, status, attempt, error, None)

    def interrupt(self) -> None:
        """Record every setting not recorded yet as interrupted (its worker already killed).

        The group in flight carries its worker's pid and exit; the others never started.
        """
        never = Attempt(None, worker_env(self.c.env), utc_now_iso(), time.monotonic(),
                        round(os.getloadavg()[0], 2))
        group, attempt = self.flight or ((0, 0), never)
        tail = error_tail(attempt.proc.log_tail(), 4000) if attempt.proc else ""
        for key, s in list(self.pending.items()):
            if attempt is not never and (s.candidates, s.dim) == group:
                self._record(key, STATUS_INTERRUPTED, attempt,
                             f"interrupted (Ctrl-C or SIGTERM)\n{tail}".strip(), None)
            else:
                self._record(key, STATUS_INTERRUPTED, never, "interrupted before it started",
                             None)

    def _record(self, key: tuple[Any, ...], status: str, attempt: Attempt,
                error: str | None, figures: dict[str, Any] | None) -> None:
        setting = self.pending.get(key)
        if setting is None:
            return
        files = self.files.get((setting.candidates, setting.dim))
        env_block = {**self.context["environment"],
                     "worker_env": {k: attempt.env[k] for k in envinfo.WORKER_ENV_KEYS
                                    if k in attempt.env}}
        rec = build_record(
            self.c, setting, status=status, content_hash=files.content_hash if files else None,
            started_at=attempt.started, duration_s=time.monotonic() - attempt.t0, error=error,
            figures=figures, built=self.built.get((setting.candidates, setting.dim)),
            context={"environment": env_block, "git": self.context["git"],
                     "worker": attempt.worker(), "command": self.context.get("command"),
                     "invocation": self.context.get("invocation")})
        with signals_deferred():  # stored and no longer pending, together
            self.store.append(rec)
            del self.pending[key]
            self.records.append(rec)
        self.progress(1)


def run_study(plan: Plan, progress: Any = None, command: str | None = None) -> list[dict[str, Any]]:
    """Run the whole study; every setting of every contender ends as one stored record.

    Raises StudyInterrupted (with every record written) on Ctrl-C or SIGTERM.

    Args:
        plan: the grid, contenders and limits.
        progress: callable(n) advanced per finished setting (a tqdm's update), or None.
        command: the command line, stored in every record.
    """
    store = ResultsStore(plan.results_dir)
    context = {"environment": envinfo.capture(), "git": envinfo.git_info(), "command": command,
               "invocation": new_run_id()}  # one id for every record of this study run
    files: Files = {}
    # The temporary folder inside: it is removed while a second signal is still ignored.
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        runs = [ContenderRun(plan, c, files, Path(tmp), store, context,
                             progress or (lambda n: None)) for c in plan.contenders]
        try:
            prepare_data(plan, Path(tmp), files)
            for run in runs:
                log.info("contender %s", run.c.name)
                run.run()
        except KeyboardInterrupt:
            for run in runs:
                run.interrupt()
            raise StudyInterrupted([r for run in runs for r in run.records]) from None
    return [r for run in runs for r in run.records]
