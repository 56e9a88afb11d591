"""`bench run --save-embeddings DIR`: a trained run's embeddings, for the retrieval study.

After training, the worker writes one folder per run, all or nothing (a private
temporary folder beside it, renamed into place once every file is whole):

    DIR/<run_id>/candidates.npy  float32 (num_candidates, d): the candidate tower on
                                 every candidate row (row r = candidates["movie_id"][r])
    DIR/<run_id>/queries.npy     float32 (test rows, d): the query tower on the test split
                                 (its first `spec.eval_rows` rows when capped)
    DIR/<run_id>/meta.json       {"dataset", "content_hash", "impl", "spec_hash",
                                  "run_id", "top_k"}

`bench retrieval` reads exactly this format. The arrays are the ones the
harness's numpy accuracy check scored (bench/run/phases.py numpy_accuracy).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from bench.record import RunRecord

CANDIDATES_FILE = "candidates.npy"
QUERIES_FILE = "queries.npy"
META_FILE = "meta.json"


def save_embeddings(root: Path, rec: RunRecord, candidates: np.ndarray,
                    queries: np.ndarray) -> Path:
    """Write the run's folder under `root` atomically; returns it.

    Args:
        root: the --save-embeddings folder (checked writable by the command up front).
        rec: the run's record (run_id, impl, spec, dataset).
        candidates: (num_candidates, d) candidate embeddings.
        queries: (test rows, d) query embeddings.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / rec.run_id
    meta = {"dataset": rec.dataset.get("name"), "content_hash": rec.dataset.get("content_hash"),
            "impl": rec.impl, "spec_hash": rec.spec_hash, "run_id": rec.run_id,
            "top_k": int(rec.spec.get("top_k", 100))}
    tmp = Path(tempfile.mkdtemp(prefix=f".{rec.run_id}.", dir=root))
    try:
        np.save(tmp / CANDIDATES_FILE, np.ascontiguousarray(candidates, dtype=np.float32))
        np.save(tmp / QUERIES_FILE, np.ascontiguousarray(queries, dtype=np.float32))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the folder from other readers
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
