"""The Ray executor: each run of a sweep as one Ray core task, on whichever node has room.

The driver (`bench run --executor ray`) submits one task per run and collects
their records as they finish; the runner appends them (one writer, no file lock
over a network file system). Ray decides where each task runs; the harness only
says what a run needs:

- a CPU run one unit of the custom resource SLOT (declared once per node that
  may take runs: `ray start --resources '{"deeprec_node": 1}'`; a local instance
  declares it itself), or 1/N of it with `--runs-per-node N`. The task pins its
  worker to its share of the node's cores (os.sched_setaffinity): Ray's CPU
  counts are bookkeeping and pin nothing. The record's environment.executor
  says how many runs a node took at once and which cores this one had.
- a GPU run one GPU per device it trains on (`--devices N`: N), and it sees only
  those (Ray sets CUDA_VISIBLE_DEVICES, recorded in worker_env).

No engine retries (`max_retries=0`): a silent second attempt would hide a double
timing; reruns go through `--resume`. On the node the task captures the machine
(bench.envinfo.capture), resolves the dataset in the node's own cache (refusing a
run whose content hash differs from the driver's), runs the worker through
bench/run/launch.py in a node-local folder and returns the settled record. A
lost node, a crashed Ray worker or an error in the task comes back as an
exception, recorded as `failed` with its name and message; the sweep goes on.
Ctrl-C cancels every task still out (force: the Ray worker is killed, and its
run's worker with it, bench.process.die_with_parent).

Auth: RAY_AUTH_MODE is set explicitly (`--ray-auth`, default `token`) before Ray
is imported, which reads it once (bench/commands/run.py); every node of the
cluster must run with the same mode and token. A local instance in token mode
makes a token at ~/.ray/auth_token when none exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError

from bench import envinfo
from bench.data.cache import resolve
from bench.errors import UsageError
from bench.record import STATUS_FAILED, RunRecord
from bench.run.executors import Job, Sink
from bench.run.launch import Launch, Settled, without_worker
from bench.timing import now_ns, seconds

log = logging.getLogger(__name__)

SLOT = "deeprec_node"  # the custom resource a node offers for runs (one run at a time)
AUTH_VAR = "RAY_AUTH_MODE"
AUTH_MODES = ("token", "disabled")
POLL_S = 1.0  # how often the driver's wait wakes up (so Ctrl-C is seen)
CANCEL_WAIT_S = 10.0  # after Ctrl-C: how long to collect tasks that had finished


@dataclass(frozen=True)
class Settings:
    """How the sweep uses Ray.

    Args:
        address: an existing cluster ("auto" or HOST:PORT); None starts a local instance.
        auth: RAY_AUTH_MODE for this driver (and a local instance).
        runs_per_node: CPU runs a node takes at once (each pinned to 1/N of its cores).
        device: "cpu" or "gpu" (one GPU per device of a run).
        cache_dir: the dataset cache root each node resolves in (None: the node's default).
    """

    address: str | None
    auth: str
    runs_per_node: int = 1
    device: str = "cpu"
    cache_dir: str | None = None


def connect(settings: Settings) -> None:
    """Join the cluster (or start a local instance); UsageError when no node can take a run."""
    if os.environ.get(AUTH_VAR) != settings.auth:  # Ray read it when it was imported
        raise RuntimeError(f"set {AUTH_VAR}={settings.auth} before importing this module")
    try:
        if settings.address is None:
            ray.init(resources={SLOT: 1}, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        else:
            ray.init(address=settings.address, log_to_driver=False,
                     logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = settings.address or "a local instance"
        raise UsageError(f"--executor ray: cannot connect to {where}: "
                         f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}"
                         ) from None
    need = "GPU" if settings.device == "gpu" else SLOT
    if not any(n.get("Alive") and n.get("Resources", {}).get(need) for n in ray.nodes()):
        ray.shutdown()
        hint = ("no node has a GPU" if need == "GPU" else
                f"start each node that may take runs with --resources '{{\"{SLOT}\": 1}}'")
        raise UsageError(f"--executor ray: no node of the cluster offers {need}: {hint}")


def disconnect() -> None:
    ray.shutdown()


class RayExecutor:
    """Every job as one Ray task at once; records come back as the tasks finish.

    Args:
        settings: see Settings.
        driver_hash: the dataset content hash the driver verified.
    """

    name = "ray"
    pending_why = ("interrupted (Ctrl-C or SIGTERM on the driver): its Ray task, running or "
                   "still pending, was cancelled")

    def __init__(self, settings: Settings, driver_hash: str) -> None:
        self.settings = settings
        self.driver_hash = driver_hash

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "runs_per_node": self.settings.runs_per_node}

    def run(self, jobs: list[Job], sink: Sink, workdir: Path) -> None:
        """Submit every job, then store each record as its task ends (in any order)."""
        out: dict[Any, tuple[Job, int]] = {}
        for job in jobs:
            out[self._submit(job)] = (job, now_ns())
        try:
            while out:
                done, _ = ray.wait(list(out), num_returns=1, timeout=POLL_S)
                for ref in done:
                    job, submitted = out.pop(ref)
                    self._report(sink, job, self._collect(ref, job, submitted))
        except KeyboardInterrupt:
            for ref in out:
                ray.cancel(ref, force=True)
            self._collect_finished(out, sink)
            raise

    def _submit(self, job: Job) -> Any:
        if self.settings.device == "gpu":  # one GPU per device of the run (--devices N)
            resources: dict[str, Any] = {"num_gpus": job.run.spec.devices}
        else:
            resources = {"resources": {SLOT: 1.0 / self.settings.runs_per_node}}
        task = run_on_node.options(max_retries=0, **resources)
        return task.remote(job.payload, asdict(self.settings), self.driver_hash)

    def _collect(self, ref: Any, job: Job, submitted: int, timeout: float | None = None
                 ) -> Settled:
        """The task's settled record, or a failed one naming what Ray raised."""
        try:
            return Settled.from_dict(ray.get(ref, timeout=timeout))
        except RayError as exc:
            if isinstance(exc, GetTimeoutError):
                raise
            why = f"{type(exc).__name__} on the Ray cluster: {str(exc).strip()}"
            rec = without_worker(job.skeleton, STATUS_FAILED, why,
                                 duration_s=seconds(submitted, now_ns()))
            return Settled(rec)

    def _collect_finished(self, out: dict[Any, tuple[Job, int]], sink: Sink) -> None:
        """After Ctrl-C: store the records of tasks that had finished; the rest are the runner's."""
        done, _ = ray.wait(list(out), num_returns=len(out), timeout=CANCEL_WAIT_S)
        for ref in done:
            job, _submitted = out[ref]
            with contextlib.suppress(RayError):
                self._report(sink, job, Settled.from_dict(ray.get(ref, timeout=0)))

    @staticmethod
    def _report(sink: Sink, job: Job, settled: Settled) -> None:
        sink.started(job)  # no events cross from the node: the run starts and ends here
        sink.finished(job, settled)


@ray.remote(max_retries=0)
def run_on_node(payload: dict[str, Any], settings: dict[str, Any], driver_hash: str
                ) -> dict[str, Any]:
    """One run on this node: its machine, its dataset, its cores; the settled record."""
    opts = Settings(**settings)
    context = ray.get_runtime_context()
    node = {"name": "ray", "runs_per_node": opts.runs_per_node,
            "node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address()}
    environment = {**envinfo.capture(), "executor": node}
    skeleton = RunRecord.from_dict(payload["record"])
    skeleton.environment = environment
    # Ray sets OMP_NUM_THREADS=1 in its workers; a run gets what the local executor gives it.
    os.environ.pop("OMP_NUM_THREADS", None)
    try:
        payload = {**payload, "dataset": _node_dataset(payload, opts, driver_hash, node)}
    except (UsageError, OSError, ValueError) as exc:
        return Settled(without_worker(skeleton, STATUS_FAILED, str(exc))).to_dict()
    workdir = Path(tempfile.mkdtemp(prefix="deeprec-ray-"))
    try:
        with _pinned(opts, node["node_id"]) as cores:
            node["cpu_affinity"] = cores
            return Launch(payload, workdir, environment).run().to_dict()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _node_dataset(payload: dict[str, Any], opts: Settings, driver_hash: str,
                  node: dict[str, Any]) -> dict[str, Any]:
    """The node's own copy of the dataset (built or verified here), if it holds the driver's."""
    name = payload["dataset"]["name"]
    ref = resolve(name, Path(opts.cache_dir) if opts.cache_dir else None)
    if ref.content_hash != driver_hash:
        raise ValueError(f"refused: dataset {name} on node {node['node_ip']} "
                         f"({node['node_id']}) has content hash {ref.content_hash}, the "
                         f"driver's is {driver_hash}; rebuild the node's cache")
    return ref.to_dict()


@contextlib.contextmanager
def _pinned(opts: Settings, node_id: str) -> Iterator[list[int] | None]:
    """Pin this task (and the worker it starts) to its share of the node's cores.

    With N runs per node, a node-local lock file per share tells concurrent tasks apart.
    GPU runs are not pinned (None).
    """
    if opts.device == "gpu":
        yield None
        return
    try:
        cores = sorted(os.sched_getaffinity(os.getppid()))  # the raylet's: all the node's
    except OSError:
        cores = sorted(os.sched_getaffinity(0))
    n = opts.runs_per_node
    with _share(node_id, n) as k:
        mine = cores[k * len(cores) // n: (k + 1) * len(cores) // n] or [cores[k % len(cores)]]
        os.sched_setaffinity(0, mine)
        yield mine


@contextlib.contextmanager
def _share(node_id: str, n: int) -> Iterator[int]:
    """A free share index 0..n-1 of this node, held (flock) until the block ends."""
    if n == 1:
        yield 0
        return
    folder = Path(tempfile.gettempdir()) / f"deeprec-bench-shares-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    for k in range(n):
        fd = os.open(folder / f"{node_id}-{k}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            yield k
        finally:
            os.close(fd)
        return
    raise RuntimeError(f"more than {n} runs at once on node {node_id}")
