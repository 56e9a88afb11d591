"""The parent of a retrieval study: data once, one worker per contender, records always.

Never imports a framework. It writes every (candidates, dim) group's
embeddings and exact answer to a temporary folder first, then starts
`python -m bench.retrieval.worker` once per contender with every group in its
job, reads the worker's events as they come (progress bar, one record per
finished setting), and when a worker crashes or overruns `timeout_s` on one
group, records that group's unfinished settings as failed / timed out and
starts a fresh worker on the groups left.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import envinfo, paths
from bench.record import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_TIMED_OUT,
    error_tail,
    new_run_id,
    utc_now_iso,
)
from bench.retrieval import synth
from bench.retrieval.contenders import Contender
from bench.retrieval.records import Setting, build_record
from bench.store import ResultsStore

log = logging.getLogger(__name__)
POLL_S = 0.2  # how often the parent reads a running worker's events


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
        timeout_s: wall-clock limit of one contender on one (candidates, dim) group.
        results_dir: the results store's directory.
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

    def groups(self) -> list[tuple[int, int]]:
        return [(n, d) for n in self.candidates for d in self.dims]

    def settings(self, c: Contender, group: tuple[int, int]) -> list[Setting]:
        """Every record one contender makes on one group, in the worker's order."""
        return [Setting(group[0], group[1], k, b, dict(p), self.seed, max(self.batches),
                        synth.GENERATOR)
                for k in self.ks for p in c.params for b in self.batches]

    def total(self) -> int:
        return sum(len(self.settings(c, g)) for c in self.contenders for g in self.groups())


def prepare_data(plan: Plan, folder: Path) -> dict[tuple[int, int], synth.SettingFiles]:
    """Write every group's embeddings and exact top-k answer (once, shared by all)."""
    files = {}
    for n, dim in plan.groups():
        log.info("data: %d candidates x %d dims (exact top-%d in numpy)", n, dim, max(plan.ks))
        f = synth.generate(n, dim, max(plan.batches), plan.seed, folder)
        synth.write_truth(f, max(plan.ks))
        files[(n, dim)] = f
    return files


def _setting_key(event: dict[str, Any]) -> tuple[Any, ...]:
    return (event["candidates"], event["dim"], event["k"], event["batch"],
            json.dumps(event["params"], sort_keys=True))


def _key_of(s: Setting) -> tuple[Any, ...]:
    return (s.candidates, s.dim, s.k, s.batch, json.dumps(s.params, sort_keys=True))


class ContenderRun:
    """One contender across every group: workers, their events, and the records.

    Args:
        plan: the study.
        contender: who runs.
        files: every group's data files.
        folder: where job, event and log files go.
        store: the results store.
        context: {"environment", "git"} of this machine.
        progress: called with the number of settings just finished.
    """

    def __init__(self, plan: Plan, contender: Contender,
                 files: dict[tuple[int, int], synth.SettingFiles], folder: Path,
                 store: ResultsStore, context: dict[str, Any], progress: Any) -> None:
        self.plan, self.c, self.files, self.folder = plan, contender, files, folder
        self.store, self.context, self.progress = store, context, progress
        self.pending = {_key_of(s): s for g in plan.groups() for s in plan.settings(contender, g)}
        self.built: dict[tuple[int, int], dict[str, Any]] = {}
        self.records: list[dict[str, Any]] = []

    def run(self) -> list[dict[str, Any]]:
        """One worker per (candidates, dim) group until each setting has a record; the records.

        A fresh process per group because allocators keep what they freed (TF's
        and XLA's pools): memory pooled in an earlier group would cover this
        group's score matrices and hide them from its peak, which is read
        against RSS after build.
        """
        attempt = 0
        for group in self.plan.groups():
            while any((s.candidates, s.dim) == group for s in self.pending.values()):
                self._run_worker([group], attempt)
                attempt += 1
        return self.records

    def _job(self, groups: list[tuple[int, int]]) -> dict[str, Any]:
        return {
            "target": self.c.target, "options": dict(self.c.options),
            "params": [dict(p) for p in self.c.params],
            "groups": [{"n": n, "dim": d, "candidates": str(self.files[(n, d)].candidates),
                        "queries": str(self.files[(n, d)].queries),
                        "truth_ids": str(self.files[(n, d)].truth_ids)} for n, d in groups],
            "ks": list(self.plan.ks), "batches": list(self.plan.batches),
            "repeats": self.plan.repeats, "min_calls": self.plan.min_calls,
            "budget_s": self.plan.budget_s, "warmup": 0,
        }

    def _run_worker(self, groups: list[tuple[int, int]], attempt: int) -> None:
        """One worker process over `groups`; whatever happens, its current group ends recorded."""
        tag = f"{self.c.name}-{attempt}"
        job_path, events_path = self.folder / f"{tag}.json", self.folder / f"{tag}.events"
        log_path = self.folder / f"{tag}.log"
        job_path.write_text(json.dumps(self._job(groups)))
        env = {**os.environ, **self.c.env}
        started, t0 = utc_now_iso(), time.monotonic()
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.retrieval.worker", str(job_path), str(events_path)],
                env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        # The machine's load when the worker started: timings on a shared machine need it.
        worker = {"pid": proc.pid, "exit_code": None, "signal": None,
                  "loadavg_1m": round(os.getloadavg()[0], 2)}
        state = {"group": None, "group_t0": t0, "offset": 0, "worker": worker,
                 "started": started, "t0": t0, "env": env, "groups": list(groups)}
        try:
            timed_out = self._watch(proc, events_path, state)
        finally:
            if proc.poll() is None:
                _kill_group(proc)
        worker["exit_code"] = proc.returncode
        worker["signal"] = -proc.returncode if proc.returncode and proc.returncode < 0 else None
        self._read_events(events_path, state)
        self._close_group(state, timed_out, _tail(log_path))

    def _watch(self, proc: subprocess.Popen, events_path: Path, state: dict[str, Any]) -> bool:
        """Follow the worker until it exits; True when it overran timeout_s on one group."""
        while proc.poll() is None:
            self._read_events(events_path, state)
            if time.monotonic() - state["group_t0"] > self.plan.timeout_s:
                _kill_group(proc)
                return True
            time.sleep(POLL_S)
        return False

    def _read_events(self, path: Path, state: dict[str, Any]) -> None:
        """Handle every complete new line of the worker's events file."""
        if not path.exists():
            return
        with open(path, "rb") as f:
            f.seek(state["offset"])
            data = f.read()
        end = data.rfind(b"\n") + 1
        state["offset"] += end
        for line in data[:end].splitlines():
            self._handle(json.loads(line), state)

    def _handle(self, event: dict[str, Any], state: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "group_start":
            state["group"] = (event["candidates"], event["dim"])
            state["group_t0"] = time.monotonic()
        elif kind == "built":
            self.built[(event["candidates"], event["dim"])] = event
        elif kind in ("setting", "setting_failed"):
            status = STATUS_OK if kind == "setting" else STATUS_FAILED
            self._record(_setting_key(event), status, state, event.get("error"),
                         event.get("figures"))
        elif kind == "group_failed":
            self._fail_group((event["candidates"], event["dim"]), STATUS_FAILED,
                             event["error"], state)
            state["group"] = None

    def _close_group(self, state: dict[str, Any], timed_out: bool, log_tail: str) -> None:
        """After a worker exits: its unfinished group (or, if none started, its job's) is lost."""
        worker = state["worker"]
        if timed_out:
            status, why = STATUS_TIMED_OUT, f"timed out after {self.plan.timeout_s:g} s"
        else:
            status, why = STATUS_FAILED, f"worker exited with {worker['exit_code']}"
        group = state["group"]
        lost = [group] if group is not None else state["groups"]
        for g in lost:
            self._fail_group(g, status, f"{why}\n{log_tail}", state)

    def _fail_group(self, group: tuple[int, int], status: str, error: str,
                    state: dict[str, Any]) -> None:
        for key in [k for k, s in self.pending.items() if (s.candidates, s.dim) == group]:
            self._record(key, status, state, error, None)

    def _record(self, key: tuple[Any, ...], status: str, state: dict[str, Any],
                error: str | None, figures: dict[str, Any] | None) -> None:
        setting = self.pending.pop(key, None)
        if setting is None:
            return
        files = self.files[(setting.candidates, setting.dim)]
        env_block = {**self.context["environment"],
                     "worker_env": {k: state["env"][k] for k in envinfo.WORKER_ENV_KEYS
                                    if k in state["env"]}}
        rec = build_record(
            self.c, setting, status=status, content_hash=files.content_hash,
            started_at=state["started"], duration_s=time.monotonic() - state["t0"], error=error,
            figures=figures, built=self.built.get((setting.candidates, setting.dim)),
            context={"environment": env_block, "git": self.context["git"],
                     "worker": dict(state["worker"]), "command": self.context.get("command"),
                     "invocation": self.context.get("invocation")})
        self.store.append(rec)
        self.records.append(rec)
        self.progress(1)


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return error_tail(path.read_text(errors="replace"), limit)
    except OSError:
        return ""


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the worker's process group (it runs in its own session) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_study(plan: Plan, progress: Any = None, command: str | None = None) -> list[dict[str, Any]]:
    """Run the whole study; every setting of every contender ends as one stored record.

    Args:
        plan: the grid, contenders and limits.
        progress: callable(n) advanced per finished setting (a tqdm's update), or None.
        command: the command line, stored in every record.
    """
    store = ResultsStore(plan.results_dir)
    context = {"environment": envinfo.capture(), "git": envinfo.git_info(), "command": command,
               "invocation": new_run_id()}  # one id for every record of this study run
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        folder = Path(tmp)
        files = prepare_data(plan, folder)
        for contender in plan.contenders:
            log.info("contender %s", contender.name)
            run = ContenderRun(plan, contender, files, folder, store, context,
                               progress or (lambda n: None))
            records += run.run()
    return records
