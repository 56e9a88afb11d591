"""The trained workload: candidate and query embeddings a model learned, instead of random ones.

`python -m bench run --save-embeddings DIR` writes DIR/<run_id>/ with

    candidates.npy  float32 (num_candidates, d): the candidate tower on every movie
    queries.npy     float32 (test rows, d): the query tower on the test split
    meta.json       {"dataset", "content_hash", "impl", "spec_hash", "run_id", "top_k"}

`bench retrieval --embeddings DIR/<run_id>` benchmarks the same contenders on
those vectors: approximate indexes behave very differently on learned
embeddings than on a random Gaussian mixture. `load` checks everything before
the study writes anything (bad input is a UsageError); `prepare` copies the
arrays C-ordered into the study's temporary folder (so every worker maps the
bytes that were hashed) and computes the exact answer like the random workload.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.retrieval import synth

GENERATOR = "trained"  # spec.generator of a trained workload's records
META_KEYS = ("dataset", "content_hash", "impl", "spec_hash", "run_id", "top_k")
FILES = ("candidates.npy", "queries.npy", "meta.json")
CHUNK_ROWS = 1 << 16  # rows checked and hashed at a time


@dataclass(frozen=True)
class Workload:
    """One folder of trained embeddings, checked.

    Args:
        folder: DIR/<run_id> as given.
        num_candidates: rows of candidates.npy (N).
        dim: d, shared by candidates and queries.
        num_queries: rows of queries.npy (test rows).
        meta: meta.json as written by `bench run --save-embeddings`.
        arrays_hash: blake2b of the candidate then query bytes, C order (16 hex digits).
    """

    folder: Path
    num_candidates: int
    dim: int
    num_queries: int
    meta: dict[str, Any]
    arrays_hash: str

    def spec(self) -> dict[str, Any]:
        """What a record's spec says about the workload (part of its spec hash)."""
        return {"kind": GENERATOR, "dataset": self.meta["dataset"],
                "content_hash": self.meta["content_hash"], "run_id": self.meta["run_id"],
                "impl": self.meta["impl"], "spec_hash": self.meta["spec_hash"],
                "arrays_hash": self.arrays_hash}


def _bad(folder: Path, why: str) -> UsageError:
    return UsageError(f"--embeddings {folder}: {why}")


def _meta(folder: Path) -> dict[str, Any]:
    """meta.json as a dict with every META_KEYS key, or a UsageError."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _bad(folder, f"meta.json is not readable JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _bad(folder, "meta.json is not a JSON object")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise _bad(folder, f"meta.json lacks {', '.join(missing)}")
    for key in ("dataset", "content_hash", "run_id"):
        if not isinstance(meta[key], str) or not meta[key]:
            raise _bad(folder, f"meta.json's {key} is not a non-empty string")
    return meta


def _array(folder: Path, name: str) -> np.ndarray:
    """A 2-D float32 .npy memory-mapped, with at least one row and column, or a UsageError."""
    try:
        arr = np.load(folder / name, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise _bad(folder, f"{name} is not a readable .npy array ({exc})") from None
    if arr.ndim != 2 or 0 in arr.shape:
        raise _bad(folder, f"{name} has shape {arr.shape}, expected (rows, d) with rows, d >= 1")
    if arr.dtype != np.float32:
        raise _bad(folder, f"{name} is {arr.dtype}, expected float32")
    return arr


def _check_and_hash(folder: Path, arrays: dict[str, np.ndarray]) -> str:
    """The arrays' content hash; a UsageError at the first non-finite value."""
    digest = hashlib.blake2b(digest_size=8)
    for name, arr in arrays.items():
        for start in range(0, arr.shape[0], CHUNK_ROWS):
            chunk = np.ascontiguousarray(arr[start : start + CHUNK_ROWS])
            if not np.isfinite(chunk).all():
                row = start + int(np.flatnonzero(~np.isfinite(chunk).all(axis=1))[0])
                raise _bad(folder, f"{name} row {row} holds a non-finite value")
            digest.update(chunk.tobytes())
    return digest.hexdigest()


def load(folder: Path) -> Workload:
    """Check DIR/<run_id> (files, meta, shapes, dtype, d, finiteness) and describe it."""
    if not folder.exists():
        raise _bad(folder, "no such folder")
    if not folder.is_dir():
        raise _bad(folder, "not a folder")
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise _bad(folder, f"no {', '.join(missing)} (written by `bench run --save-embeddings`)")
    meta = _meta(folder)
    cand, queries = _array(folder, "candidates.npy"), _array(folder, "queries.npy")
    if cand.shape[1] != queries.shape[1]:
        raise _bad(folder, f"candidates.npy has d={cand.shape[1]} but queries.npy "
                           f"d={queries.shape[1]}")
    digest = _check_and_hash(folder, {"candidates.npy": cand, "queries.npy": queries})
    return Workload(folder, int(cand.shape[0]), int(cand.shape[1]), int(queries.shape[0]),
                    meta, digest)


def prepare(workload: Workload, num_queries: int, k_max: int,
            out: Path) -> synth.SettingFiles:
    """Write the candidates and the query pool (the first `num_queries` test rows) C-ordered
    to `out`, then the exact top-`k_max` answer; the files every worker maps."""
    out.mkdir(parents=True, exist_ok=True)
    tag = f"trained-{workload.arrays_hash}"
    files = synth.SettingFiles(out / f"cand-{tag}.npy", out / f"query-{tag}.npy",
                               out / f"truth-ids-{tag}.npy", out / f"truth-scores-{tag}.npy",
                               workload.arrays_hash)
    cand = np.load(workload.folder / "candidates.npy", mmap_mode="r")
    np.save(files.candidates, np.ascontiguousarray(cand))
    queries = np.load(workload.folder / "queries.npy", mmap_mode="r")
    np.save(files.queries, np.ascontiguousarray(queries[:num_queries]))
    del cand, queries
    synth.write_truth(files, k_max)
    return files
