"""Names of implementations -> where they live, without importing them.

A new implementation is one module in impls/ plus one entry here; the
conformance tests and `python -m bench list` pick it up. This module also holds
the harness's one importer of computed names (`load_target`), so every
"package.module:attribute" reference (implementations, retrieval searchers,
out-of-tree datasets) is imported the same way, and only here.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench.contract import RetrievalImpl
from bench.errors import UsageError

T = TypeVar("T")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def is_target(name: str) -> bool:
    """Whether `name` is a "package.module:attribute" reference.

    Dataset names such as "synthetic:users=50,movies=300,ratings=3000" are not.
    """
    return _TARGET.fullmatch(name) is not None


def load_target(target: str) -> object:
    """Import "package.module:attribute" and return the attribute."""
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class RequiresModules:
    """`missing`/`installed` for a dataclass whose `requires` field names top-level modules.

    Shared by implementations (ImplEntry) and retrieval contenders.
    """

    requires: tuple[str, ...]

    def missing(self) -> list[str]:
        """Required modules not installed here (found without importing them)."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def installed(self) -> bool:
        return not self.missing()


@dataclass(frozen=True)
class ImplEntry(RequiresModules):
    """Where an implementation lives and what its worker process needs."""

    name: str
    target: str  # "package.module:ClassName"
    framework: str  # "jax" | "tensorflow" | "torch"
    requires: tuple[str, ...]  # importable top-level modules the worker needs
    extra: str  # `pip install -e '.[<extra>]'` brings them
    env: Mapping[str, str] = field(default_factory=dict)  # worker environment, e.g. KERAS_BACKEND
    description: str = ""
    # The class's RetrievalImpl.shared_start, known here without importing it (parity refuses
    # an implementation that cannot start from the harness's weights).
    shared_start: bool = True

    def load(self) -> type[RetrievalImpl]:
        """Import the implementation class (only ever in a worker process)."""
        cls = load_target(self.target)
        if not (isinstance(cls, type) and issubclass(cls, RetrievalImpl)):
            raise TypeError(f"{self.target} is not a RetrievalImpl")
        return cls


# torch's OpenMP threads spin-wait between parallel regions (libgomp's default).
# On a 2-core machine shared with other busy processes the spinning threads
# starve each other: a native torch epoch of ml-100k (depth 1) took 7.7-13.5 s
# with torch's default 2 threads vs 0.55-0.70 s with 1 (load average ~6).
# On the same machine idle: 2 threads 0.16 s, 1 thread 0.17 s, and 2 threads
# with OMP_WAIT_POLICY=PASSIVE 0.42 s; keras-torch 0.95 s, 0.87 s, 1.05 s.
# One thread is as fast idle and robust under load for a model this small, so
# every torch-based worker runs with it (the setting is in each run's env).
_TORCH_ENV: Mapping[str, str] = {"OMP_NUM_THREADS": "1"}


def _keras(name: str, backend: str, extra: str) -> ImplEntry:
    """One Keras model module; the worker's KERAS_BACKEND picks the framework."""
    return ImplEntry(
        name=name,
        target="impls.keras_model.impl:KerasRetrieval",
        framework=backend,
        requires=("keras", "keras_rs", backend),
        extra=extra,
        env={"KERAS_BACKEND": backend, **(_TORCH_ENV if backend == "torch" else {})},
        description=f"Keras 3 model (keras.ops, keras_rs) on the {backend} backend",
    )


def _reference(name: str, backend: str) -> ImplEntry:
    """The reference program's own pipeline (tf.data, FeatureSpace) on one Keras backend."""
    return ImplEntry(
        name=name,
        target="impls.keras_reference.impl:KerasReference",
        framework=backend,
        requires=tuple(dict.fromkeys(("keras", "keras_rs", "tensorflow", backend))),
        extra="tf" if backend == "tensorflow" else "all",
        env={"KERAS_BACKEND": backend, **(_TORCH_ENV if backend == "torch" else {})},
        description=f"the keras-io reference program's own pipeline (tf.data, FeatureSpace "
                    f"adapted in the run, its shuffle split, Keras's initial weights) on the "
                    f"{backend} backend",
        shared_start=False,
    )


# What the -dedup variants change (impls/_packed.py, "distinct"). Not like-for-like with the
# Keras model, which runs the towers row by row over padded inputs.
_DEDUP = (
    "towers once per distinct row, padding skipped: less arithmetic, same result up to "
    "summation order; any framework could do this"
)


def _native(name: str, framework: str, cls: str, description: str,
            module: str = "impl") -> ImplEntry:
    """A native implementation: impls/<framework>_native/<module>.py, needing only its framework."""
    return ImplEntry(
        name=name,
        target=f"impls.{framework}_native.{module}:{cls}",
        framework=framework,
        requires=(framework,),
        extra=framework,
        env=_TORCH_ENV if framework == "torch" else {},
        description=description,
    )


_ROW_WISE = "row-wise towers on padded inputs, as the Keras model"
# What the native layout (jax, jax-scan, torch) changes (impls/_packed.py): not the maths.
_PACKED = ("row-wise towers as the Keras model, table-batched embeddings "
           "(one gather per tower, padding ids left out of the means)")

# What the -sparse variants change (impls/*_native/sparse.py): only the optimizer's reach.
_SPARSE = "sparse embedding updates: only the batch's rows touched; otherwise as"

REGISTRY: dict[str, ImplEntry] = {
    e.name: e
    for e in (
        _keras("keras-jax", "jax", "jax"),
        _keras("keras-tf", "tensorflow", "tf"),
        _keras("keras-torch", "torch", "torch"),
        # The reference program's backend is jax (keras-io sets KERAS_BACKEND), hence no suffix.
        _reference("keras-reference", "jax"),
        _reference("keras-reference-tf", "tensorflow"),
        _reference("keras-reference-torch", "torch"),
        _native("jax", "jax", "JaxRetrieval",
                f"native JAX: whole training step under jax.jit; {_PACKED}"),
        _native("jax-scan", "jax", "JaxScanRetrieval",
                "native JAX: the epoch's full batches as one compiled lax.scan "
                f"(short last batch as a jitted step); {_PACKED}"),
        _native("jax-padded", "jax", "JaxPaddedRetrieval",
                f"native JAX: whole training step under jax.jit; {_ROW_WISE}, "
                "one lookup per feature"),
        _native("jax-dedup", "jax", "JaxDedupRetrieval",
                f"native JAX, jitted step on deduplicated batches: {_DEDUP}"),
        _native("jax-sparse", "jax", "JaxSparseRetrieval",
                f"native JAX, {_SPARSE} `jax`", module="sparse"),
        _native("torch", "torch", "TorchRetrieval",
                f"native PyTorch: nn.Embedding, nn.Linear, optim.Adagrad, eager; {_PACKED}"),
        _native("torch-dedup", "torch", "TorchDedupRetrieval",
                f"native PyTorch, eager, on deduplicated batches: {_DEDUP}"),
        _native("torch-compile", "torch", "TorchCompiledRetrieval",
                f"native PyTorch with the training step under torch.compile; {_ROW_WISE}"),
        _native("torch-sparse", "torch", "TorchSparseRetrieval",
                f"native PyTorch, {_SPARSE} `torch`", module="sparse"),
    )
}

# The five implementations the project compares; the others are variants.
PRIMARY: tuple[str, ...] = ("keras-jax", "keras-tf", "keras-torch", "jax", "torch")


# Implementations that train one run over several devices (--devices N > 1), and how.
DATA_PARALLEL: dict[str, str] = {
    "jax": "jax.jit over a jax.sharding.Mesh (batch sharded, params replicated)",
    "jax-padded": "jax.jit over a jax.sharding.Mesh (batch sharded, params replicated)",
    "keras-jax": "keras.distribution.DataParallel",
    "keras-tf": "tf.distribute.MirroredStrategy (model built in its scope; logical CPU devices "
                "on a CPU, set up by the worker)",
    "torch": "torch DistributedDataParallel, one process per device (gloo on CPU, NCCL on GPUs)",
    "torch-dedup": "torch DistributedDataParallel, one process per device (gloo on CPU, NCCL "
                   "on GPUs)",
}
# Why the others refuse, where the reason is the framework's.
NO_DATA_PARALLEL: dict[str, str] = {
    "keras-torch": "Keras offers no distribution on the torch backend (keras.distribution "
                   "is implemented for jax only; keras/src/backend/torch has no distribution_lib)",
}


def check_devices(entry: ImplEntry, devices: int) -> None:
    """UsageError when `entry` cannot train one run over `devices` > 1 devices."""
    if devices == 1 or entry.name in DATA_PARALLEL:
        return
    why = NO_DATA_PARALLEL.get(entry.name, "no data-parallel path; "
                               f"those with one: {', '.join(DATA_PARALLEL)}")
    raise UsageError(f"--devices {devices}: {entry.name}: {why}")


def devices_env(entry: ImplEntry, device: str, devices: int) -> dict[str, str]:
    """Worker variables for a run over `devices`: simulated XLA host devices for jax on a CPU.

    None for keras-tf: its logical CPU devices are made by its backend in the worker
    (impls/keras_model/_backend.py), before TensorFlow initialises.
    """
    if devices > 1 and device == "cpu" and entry.framework == "jax":
        flag = f"--xla_force_host_platform_device_count={devices}"
        return {"XLA_FLAGS": " ".join(filter(None, (os.environ.get("XLA_FLAGS"), flag)))}
    return {}


def lookup(table: Mapping[str, T], name: str, what: str, cutoff: float = 0.6) -> T:
    """`table[name]`, or a UsageError naming the nearest known name (difflib `cutoff`)."""
    try:
        return table[name]
    except KeyError:
        close = difflib.get_close_matches(name, table, n=1, cutoff=cutoff)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown {what} {name!r}{hint}; known: {', '.join(table)}") from None


def get(name: str) -> ImplEntry:
    """The entry for `name`, or a UsageError suggesting the nearest known name."""
    return lookup(REGISTRY, name, "implementation")


def module_exists(module: str) -> bool:
    """Whether `module` can be imported, found without importing it (but its parents)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def out_of_tree_entry(target: str) -> ImplEntry:
    """An ImplEntry for `--impl module:Class`; the module is only located and read, not imported.

    The parent never imports an implementation (it may import a framework), so
    the module's source says whether the attribute can be a class at all.
    """
    module, _, attr = target.partition(":")
    if not module_exists(module):
        raise UsageError(f"--impl {target}: module {module!r} not found")
    if module in sys.modules:  # imported already: ask the object itself
        cls = getattr(sys.modules[module], attr, None)
        if not (isinstance(cls, type) and issubclass(cls, RetrievalImpl)):
            what = f"a {type(cls).__name__}" if cls is not None else "not defined there"
            raise UsageError(f"--impl {target}: {attr!r} is {what}, not a RetrievalImpl class")
        return _custom(target)
    kinds = _bindings(module, attr)
    if kinds is not None and not kinds & {"class", "other"}:
        what = "a " + " or ".join(sorted(kinds)) if kinds else "not defined there"
        raise UsageError(f"--impl {target}: {attr!r} is {what}, not a RetrievalImpl class")
    return _custom(target)


def _bindings(module: str, attr: str) -> set[str] | None:
    """How `module`'s source binds `attr` at top level: "class", "function", "module",
    "other"; an empty set when it does not; None when the source cannot say (no source,
    or a star import or module __getattr__ may bind it)."""
    spec = importlib.util.find_spec(module)
    origin = spec.origin if spec is not None else None
    try:
        tree = ast.parse(Path(origin).read_text()) if origin and origin.endswith(".py") else None
    except (OSError, SyntaxError, UnicodeDecodeError):
        tree = None
    if tree is None:
        return None
    kinds: set[str] = set()
    dynamic = False
    for node in _top_level(tree.body):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            dynamic |= node.name == "__getattr__"
            if node.name == attr:
                kinds.add("class" if isinstance(node, ast.ClassDef) else "function")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                dynamic |= alias.name == "*"
                if (alias.asname or alias.name.split(".")[0]) == attr:
                    kinds.add("module" if isinstance(node, ast.Import) else "other")
        elif any(isinstance(n, ast.Name) and n.id == attr and isinstance(n.ctx, ast.Store)
                 for n in ast.walk(node)):
            kinds.add("other")  # an assignment, a loop variable...
    return None if dynamic and not kinds else kinds


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, inside if/try/with blocks too (not inside defs)."""
    for node in body:
        if isinstance(node, ast.If | ast.Try | ast.With):
            blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
            blocks += [h.body for h in getattr(node, "handlers", [])]
            for block in blocks:
                yield from _top_level(block)
        else:
            yield node


def entry_for(name: str) -> ImplEntry:
    """The entry a worker loads for the run's impl name (registry or out-of-tree)."""
    return _custom(name) if is_target(name) else get(name)


def _custom(target: str) -> ImplEntry:
    return ImplEntry(name=target, target=target, framework="custom", requires=(), extra="")


def require_shared_start(entry: ImplEntry, what: str) -> None:
    """UsageError for an implementation that cannot start from the harness's weights."""
    if not entry.shared_start:
        raise UsageError(f"{what}: {entry.name} starts from its own initial weights and split "
                         "(shared_start False), so it has no shared-start parity; compare it "
                         "by distribution over seeds")


def require_installed(entry: ImplEntry) -> None:
    """UsageError naming the extra to install when the framework is missing."""
    missing = entry.missing()
    if missing:
        raise UsageError(
            f"{entry.name} needs {', '.join(missing)}, not installed here; "
            f"install it with: pip install -e '.[{entry.extra}]'"
        )
