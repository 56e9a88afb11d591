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
from collections.abc import Iterable
from dataclasses import dataclass

from bench import registry
from bench.errors import UsageError
from bench.registry import ImplEntry
from bench.spec import RunSpec, layers_for_depth


def parse_int_list(text: str, flag: str, minimum: int = 1, ranges: bool = True) -> list[int]:
    """"3", "1,2,3" or "0-4" (inclusive range) -> ints, each >= minimum.

    The one parser of the integer-list flags of `run`, `parity` and `retrieval`.

    Args:
        text: the flag's value.
        flag: the flag's name, for the error message.
        minimum: smallest allowed value.
        ranges: whether "a-b" is allowed (not for sizes, where 1000-1000000 is a typo).
    """
    values: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            lo, sep, hi = part.partition("-")
            if sep and lo and ranges:
                if int(hi) < int(lo):
                    raise UsageError(f"{flag}: range {part!r} runs backwards; write {hi}-{lo}")
                values.extend(range(int(lo), int(hi) + 1))
            else:
                values.append(int(part))
    except ValueError:
        forms = "a comma list or a range a-b" if ranges else "or a comma list"
        raise UsageError(f"{flag}: expected an integer, {forms}, got {text!r}") from None
    if not values:
        raise UsageError(f"{flag}: no values in {text!r}")
    bad = [v for v in values if v < minimum]
    if bad:
        raise UsageError(f"{flag} must be >= {minimum}, got {bad[0]}")
    return list(dict.fromkeys(values))  # de-duplicated, order kept


def parse_layers(text: str) -> tuple[int, ...]:
    """"256,128,32" -> (256, 128, 32); each size >= 1."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--layers: expected sizes like 256,128,32, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise UsageError(f"--layers: every size must be >= 1, got {text!r}")
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
        return f"{self.spec.impl} [{layers}] seed {self.spec.seed} rep {self.repeat}"


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
