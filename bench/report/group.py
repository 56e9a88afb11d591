"""One comparable group of the report: its runs, summaries, tables and verdicts.

Its own module so that sections built beside the groups (report/reference.py)
can read them without importing report/build.py, which assembles them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report.parity import Verdict
from bench.report.runs import GroupKey, Run
from bench.report.summary import ImplSummary
from bench.report.tables import Table


@dataclass
class GroupReport:
    """One comparable group's summaries, tables and verdicts."""

    key: GroupKey
    runs: list[Run]
    summaries: dict[str, ImplSummary]
    verdicts: list[Verdict]
    tables: list[Table]

    @property
    def slug(self) -> str:
        """Stable file-name stem (GroupKey.slug)."""
        return self.key.slug()

    def csv_fields(self) -> dict[str, Any]:
        """The group's identity, prefixed to every CSV row."""
        k = self.key
        return {"group": self.slug, "machine": k.machine, "gpu": k.gpu, "device": k.device,
                "dataset": k.dataset, "dataset_hash": k.dataset_hash,
                "layer_sizes": "x".join(str(n) for n in k.layer_sizes), "spec_id": k.spec_id(),
                "versions": self.versions_text()}

    def versions_text(self) -> str:
        """Every package version seen in the group's runs, e.g. "jax 0.4.36, numpy 2.0.0"."""
        seen: dict[str, set[str]] = {}
        for r in self.runs:
            for name, v in r.versions.items():
                seen.setdefault(name, set()).add(v)
        return ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in sorted(seen.items()))
