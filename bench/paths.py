"""Where results go by default, relative to the current directory (the checkout's root).

The committed studies live in results/runs (training and parity) and
results/retrieval; they are written only when a command names them with
`--results`. Every other run lands in results/local/ (git-ignored), so a
quick try never edits the committed records or the report built from them.
"""

from __future__ import annotations

from pathlib import Path

STUDY_RUNS = Path("results") / "runs"  # the committed training study; `bench report` reads it
STUDY_RETRIEVAL = Path("results") / "retrieval"  # the committed retrieval study
STUDY_REPORT = Path("results")  # where the committed study's report (README.md) goes

LOCAL_RUNS = Path("results") / "local"  # default of `bench run` and `bench parity`
LOCAL_RETRIEVAL = LOCAL_RUNS / "retrieval"  # default of `bench retrieval`
