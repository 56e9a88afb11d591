"""From command-line values to the list of runs: parsing, resolving, expanding.

Never imports a framework (the parent process uses it). Two out-of-tree forms
(`bench.registry.is_target`) keep tests and experiments free of registry edits:

- `--impl package.module:Class` runs any RetrievalImpl subclass importable in
  the worker (tests use `tests.harness.fake_impl:FakeImpl`);
- `--dataset package.module:function` takes the Dataset that function returns
  (tests use `tests.fixtures:make_dataset`) instead of the cache.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from bench import registry
from bench.errors import UsageError
from bench.registry import ImplEntry
from bench.spec import BOUNDS, MAX_DEPTH, MAX_SIZE, SPLIT_CACHE, Bound, RunSpec, layers_for_depth

# At most this many values in one list flag, and runs in one sweep: counted before expanding.
MAX_VALUES = 10_000
MAX_RUNS = 10_000


def parse_int_list(text: str, flag: str, minimum: int = 1, ranges: bool = True,
                   maximum: int | None = None, why: str = "") -> list[int]:
    """"3", "1,2,3" or "0-4" (inclusive range) -> ints, each in minimum..maximum.

    The one parser of the integer-list flags of `run`, `parity` and `retrieval`.
    A range is counted before it is expanded (at most MAX_VALUES values).

    Args:
        text: the flag's value.
        flag: the flag's name, for the error message.
        minimum: smallest allowed value.
        ranges: whether "a-b" is allowed (not for sizes, where 1000-1000000 is a typo).
        maximum: largest allowed value (None: MAX_SIZE).
        why: the reason for `maximum`, for the error message.
    """
    values: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            lo, sep, hi = part.partition("-")
            if sep and lo and ranges:
                values.extend(_range(int(lo), int(hi), part, flag, MAX_VALUES - len(values)))
            else:
                values.append(int(part))
    except ValueError:
        forms = "a comma list or a range a-b" if ranges else "or a comma list"
        raise UsageError(f"{flag}: expected an integer, {forms}, got {text!r}") from None
    if not values:
        raise UsageError(f"{flag}: no values in {text!r}")
    if len(values) > MAX_VALUES:
        raise UsageError(f"{flag}: {len(values):,} values; at most {MAX_VALUES:,}")
    for value in values:
        Bound(flag, minimum, MAX_SIZE if maximum is None else maximum, why).check(value)
    return list(dict.fromkeys(values))  # de-duplicated, order kept


def _range(lo: int, hi: int, part: str, flag: str, room: int) -> range:
    """range(lo, hi + 1), refused before it exists when backwards or longer than `room`."""
    if hi < lo:
        raise UsageError(f"{flag}: range {part!r} runs backwards; write {hi}-{lo}")
    if hi - lo + 1 > room:
        raise UsageError(f"{flag}: range {part!r} has {hi - lo + 1:,} values; "
                         f"at most {MAX_VALUES:,} in one flag")
    return range(lo, hi + 1)


def parse_field(text: str, field: str) -> list[int]:
    """A list flag of a RunSpec field ("seed", "batch_size", ...) or "depth", within its bounds."""
    if field == "depth":
        return parse_int_list(text, "--depth", maximum=MAX_DEPTH,
                              why="its widest layer, 32 x 2^(depth-1), must fit a 64-bit index")
    bound = BOUNDS[field]
    return parse_int_list(text, bound.flag, int(bound.low), maximum=int(bound.high),
                          why=bound.why)


def check_sweep_size(*counts: int) -> None:
    """UsageError, before anything is expanded, when the sweep would exceed MAX_RUNS runs."""
    total = math.prod(counts)
    if total > MAX_RUNS:
        raise UsageError(f"the sweep would be {total:,} runs; at most {MAX_RUNS:,} in one "
                         "command (split it; --resume skips what is recorded)")


def parse_layers(text: str) -> tuple[int, ...]:
    """"256,128,32" -> (256, 128, 32); each size >= 1."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--layers: expected sizes like 256,128,32, got {text!r}") from None
    if len(sizes) > MAX_DEPTH:
        raise UsageError(f"--layers: at most {MAX_DEPTH} layers, got {len(sizes)}")
    for size in sizes:
        Bound("--layers", 1, MAX_SIZE).check(size)
    return sizes


def resolve_impls(text: str) -> list[ImplEntry]:
    """--impl value -> entries; `all` means the five primary implementations.

    Every framework must be installed (UsageError naming the extra otherwise).
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--impl: no implementation named")
    expanded: list[str] = []
    for name in names:
        expanded.extend(registry.PRIMARY if name == "all" else [name])
    entries = []
    for name in dict.fromkeys(expanded):
        entry = registry.out_of_tree_entry(name) if registry.is_target(name) else registry.get(name)
        registry.require_installed(entry)
        entries.append(entry)
    return entries


@dataclass(frozen=True)
class Run:
    """One run of the sweep: a spec and its repeat index."""

    spec: RunSpec
    repeat: int
    entry: ImplEntry

    def label(self) -> str:
        layers = "x".join(map(str, self.spec.layer_sizes))
        split = "" if self.spec.split == SPLIT_CACHE else f" (split {self.spec.split})"
        devices = "" if self.spec.devices == 1 else f" on {self.spec.devices} devices"
        return (f"{self.spec.impl} [{layers}] seed {self.spec.seed} rep {self.repeat}"
                f"{devices}{split}")


def expand(
    entries: Iterable[ImplEntry],
    layer_stacks: Iterable[tuple[int, ...]],
    seeds: Iterable[int],
    repeats: int,
    **fixed: object,
) -> list[Run]:
    """The cross product, implementations innermost.

    Implementations alternate run by run, so slow drifts of the machine (heat,
    other load) spread over all of them instead of biasing one.

    Args:
        entries: implementations.
        layer_stacks: dense layer sizes per model variant.
        seeds: weight-initialisation seeds.
        repeats: runs per (spec).
        fixed: every other RunSpec field (epochs, batch_size, ...).
    """
    entries, layer_stacks, seeds = list(entries), list(layer_stacks), list(seeds)
    runs = []
    for repeat, seed, layers, entry in itertools.product(
        range(repeats), seeds, layer_stacks, entries
    ):
        spec = RunSpec(impl=entry.name, layer_sizes=layers, seed=seed, **fixed)  # type: ignore[arg-type]
        runs.append(Run(spec=spec, repeat=repeat, entry=entry))
    return runs


def layer_stacks(depths: list[int] | None, layers: list[str] | None) -> list[tuple[int, ...]]:
    """Layer stacks from `--layers` (wins when given) or `--depth`."""
    if layers:
        return list(dict.fromkeys(parse_layers(text) for text in layers))
    return [layers_for_depth(d) for d in depths or [1]]
