"""The parent runner end to end with numpy contenders and fakes (workers are subprocesses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.retrieval.contenders import CONTENDERS, Contender
from bench.retrieval.runner import Plan, run_study
from bench.store import ResultsStore


def _fake(name: str, cls: str) -> Contender:
    return Contender(name, f"tests.retrieval.fakes:{cls}", "numpy", (), True)


def _plan(tmp_path: Path, contenders: tuple[Contender, ...], **kw) -> Plan:
    args = {"candidates": (2000,), "dims": (8,), "ks": (5, 10), "batches": (1, 20),
            "repeats": 3, "min_calls": 1, "budget_s": 0.05, "seed": 1,
            "timeout_s": 60.0, "results_dir": tmp_path / "res"}
    args.update(kw)
    return Plan(contenders=contenders, **args)


def test_numpy_study_writes_readable_ok_records(tmp_path: Path) -> None:
    plan = _plan(tmp_path, (CONTENDERS["numpy"], CONTENDERS["numpy-blocked"]))
    ticks: list[int] = []
    records = run_study(plan, progress=ticks.append, command="python -m bench retrieval ...")
    assert len(records) == plan.total() == 2 * 2 * 2 == sum(ticks)
    stored = list(ResultsStore(plan.results_dir).iter_dicts())
    assert [r["run_id"] for r in stored] == [r["run_id"] for r in records]
    for r in stored:
        assert r["kind"] == "retrieval" and r["status"] == "ok", r.get("error")
        f = r["figures"]
        assert f["recall"] == 1.0 and f["recall_ids"] == 1.0
        assert f["calls"] >= 1 and f["p50_ms"] > 0 and f["qps"] > 0
        assert f["build_s"] >= 0 and f["peak_reset_ok"] is True and f["peak_rss_delta_mb"] >= 0
        assert r["invocation"] == stored[0]["invocation"]  # one id per study run
        assert r["environment"]["packages"]["numpy"]
        assert r["command"] == "python -m bench retrieval ..."
    assert len({r["spec_hash"] for r in stored}) == len(stored)


def test_crash_and_failing_setting_are_recorded_and_sweep_goes_on(tmp_path: Path) -> None:
    plan = _plan(tmp_path, (_fake("crashy", "CrashOnLargeSearcher"),
                            _fake("raising", "RaisingSearcher"), CONTENDERS["numpy"]),
                 candidates=(2000, 4000), batches=(20,))
    records = run_study(plan)
    status = {(r["impl"], r["spec"]["candidates"], r["spec"]["k"]): r["status"] for r in records}
    assert status[("crashy", 2000, 5)] == "ok"
    assert status[("crashy", 4000, 5)] == status[("crashy", 4000, 10)] == "failed"
    crashed = next(r for r in records if r["impl"] == "crashy" and r["status"] == "failed")
    assert crashed["worker"]["signal"] is not None or crashed["worker"]["exit_code"] != 0
    assert status[("raising", 2000, 5)] == "failed" and status[("raising", 2000, 10)] == "ok"
    failed = next(r for r in records if r["impl"] == "raising" and r["status"] == "failed")
    assert "not supported by this fake" in failed["error"]
    assert all(s == "ok" for (impl, _, _), s in status.items() if impl == "numpy")
    assert len(records) == plan.total()


def test_hanging_contender_times_out(tmp_path: Path) -> None:
    plan = _plan(tmp_path, (_fake("hang", "HangingSearcher"),), ks=(5,), batches=(20,),
                 timeout_s=3.0)
    records = run_study(plan)
    assert [r["status"] for r in records] == ["timed out"]
    assert "timed out after 3 s" in records[0]["error"]


@pytest.mark.parametrize(("bad", "nearest"),
                         [("numpi", "numpy"), ("numpy,faiss-flta", "faiss-flat")])
def test_select_unknown_names_nearest(bad: str, nearest: str) -> None:
    from bench.errors import UsageError
    from bench.retrieval.contenders import select

    with pytest.raises(UsageError, match=f"did you mean {nearest!r}"):
        select(bad)
