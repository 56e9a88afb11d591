"""Run in a subprocess: a framework searcher's blocked variant returns what its unblocked one does.

    python -m tests.retrieval.blocked_check MODULE:CLASS

Prints "ok <max id difference rows>" or exits non-zero with the mismatch.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.retrieval import synth


def main(target: str) -> int:
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    with tempfile.TemporaryDirectory() as tmp:
        files = synth.generate(2000, 16, 50, seed=5, folder=Path(tmp))
        synth.write_truth(files, 20)
        cand, queries = np.load(files.candidates), np.load(files.queries)
        truth = np.load(files.truth_ids)
    answers = {}
    # 300 does not divide 2000: padding is exercised; 16 < k: a block gives all its rows.
    for block in (None, 300, 1024, 16):
        s = cls(block=block)
        s.build(cand)
        answers[block] = s.to_numpy(s.search(s.to_device(queries), 20))
    for block, ids in answers.items():
        if not np.array_equal(ids, truth):
            print(f"block={block}: {int((ids != truth).any(1).sum())} rows differ from the truth")
            return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
