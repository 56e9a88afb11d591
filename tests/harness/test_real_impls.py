"""The five primary implementations through the real harness and the real cache (slow).

Tiny synthetic data built by the real cache into a temporary folder, so no
download is needed; each framework runs in its own worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import registry
from bench.errors import UsageError
from tests.harness.conftest import bench_run, read_lines

SYNTHETIC = "synthetic:users=60,movies=300,ratings=4000"


def _installed() -> bool:
    try:
        for name in registry.PRIMARY:
            registry.require_installed(registry.get(name))
    except UsageError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _installed(), reason="needs every framework (pip install -e '.[all]')")
def test_all_five_run_end_to_end_and_agree_with_numpy(tmp_path: Path) -> None:
    results = tmp_path / "results"
    out = bench_run(
        "--impl", "all", "--depth", "1", "--epochs", "2", "--dataset", SYNTHETIC,
        "--cache-dir", str(tmp_path / "cache"), "--retrieve-seconds", "0.05",
        results=results, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    records = read_lines(results)
    assert [r["impl"] for r in records] == list(registry.PRIMARY)
    for rec in records:
        f = rec["figures"]
        assert rec["status"] == "ok"
        assert f["top100_accuracy_impl"] == pytest.approx(f["top100_accuracy_numpy"], abs=1e-6)
        assert f["loop_epoch_s"] is not None  # every impl reports its own loop time
        assert rec["impl_info"]["sync_mechanism"] and rec["impl_info"]["versions"]
        backend = registry.get(rec["impl"]).env.get("KERAS_BACKEND")
        assert rec["environment"]["worker_env"].get("KERAS_BACKEND") == backend
    # One seed: every implementation starts from the same weights and data.
    assert len({r["dataset"]["content_hash"] for r in records}) == 1
