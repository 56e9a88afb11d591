"""Write a built Report: README.md, one CSV per table kind, the PNG plots, the retrieval section.

The last step of `python -m bench report` (bench/report/build.py computes the
Report first); every file is written with "\n" line ends, so a rerun on the
same records rewrites identical bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bench.errors import UsageError
from bench.process import signals_deferred
from bench.report import devices, markdown, pytest_bench, reference, scaling, shared_start
from bench.report.build import GroupReport, Report
from bench.report.reference import ReferenceSection
from bench.report.tables import csv_text
from bench.retrieval.report import write_section

RETRIEVAL_DIR = "retrieval"  # bench.retrieval.report's section, under the report directory


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def _plots(g: GroupReport, plot_dir: Path) -> dict[str, Path]:
    from bench.report import plots  # matplotlib: imported only when plots are drawn

    layers = g.key.layer_sizes
    spec = g.key.spec_dict()
    title = f"layers {layers}\n{g.key.machine}, {g.key.device}, {g.key.dataset}"
    paths = {name: plot_dir / f"{g.slug}-{name}.png"
             for name in ("accuracy", "epoch-time", "retrieval-latency", "time-to-accuracy")}
    plots.accuracy_vs_epoch(g.summaries, f"Top-100 accuracy: {title}", spec,
                            paths["accuracy"])
    plots.epoch_time(g.summaries, f"Steady-state epoch time: {title}", paths["epoch-time"])
    plots.retrieval_latency(g.summaries, f"Top-100 retrieval: {title}",
                            paths["retrieval-latency"])
    plots.time_to_accuracy(g.summaries, f"Accuracy vs training time: {title}",
                           paths["time-to-accuracy"])
    return paths


def _scaling_plots(report: Report, plot_dir: Path) -> dict[str, dict[str, Path]]:
    """Per series, step time and peak memory against its axis (log-log, one line per impl)."""
    from bench.report import plots

    out: dict[str, dict[str, Path]] = {}
    for s in report.scaling:
        where = f"{s.points[0].key.machine}, {s.points[0].key.device}"
        paths = {name: plot_dir / f"{s.slug}-{name}.png" for name in ("step-time", "peak-memory")}
        plots.scaling({i: s.values(i, scaling.STEP) for i in s.impls},
                      f"Training step time against {s.against}: {where}", scaling.axis_label(s),
                      "train_step_ms (median)", paths["step-time"])
        plots.scaling({i: s.values(i, scaling.PEAK) for i in s.impls},
                      f"Peak memory against {s.against}: {where}", scaling.axis_label(s),
                      "peak RSS (MiB)", paths["peak-memory"], floor=scaling.need_line(s))
        out[s.slug] = paths
    return out


def _reference_plot(section: ReferenceSection, plot_dir: Path) -> dict[str, Path]:
    """Against the reference program: final accuracy over seeds per impl, one slot per group."""
    from bench.report import plots

    if not section.groups:
        return {}
    layers = [rg.group.key.layer_sizes for rg in section.groups]
    slots = [(f"layers {k}" + (f"\n{rg.group.slug}" if layers.count(k) > 1 else ""),
              rg.seed_values(), rg.published) for k, rg in zip(layers, section.groups, strict=True)]
    path = plot_dir / f"{reference.PLOT_NAME}.png"
    plots.accuracy_distributions(slots, f"Final top-100 accuracy over seeds: keras-reference* "
                                 f"and {reference.PRIMARY}", path)
    return {"accuracy-distributions": path}


def _retrieval_at_scale(report: Report, out: Path) -> Path | None:
    """bench.retrieval.report's section for the kind="retrieval" records, under out/retrieval.

    It writes `retrieval.md` and `plots/retrieval-*.png` there itself (where
    `bench retrieval` writes them by default); None when there is nothing to show.
    `out` is write()'s private folder: a bad record fails before anything is replaced.
    """
    records = report.retrieval_records
    if not records:
        return None
    write_section(records, out / RETRIEVAL_DIR)
    return out / RETRIEVAL_DIR / "retrieval.md"


def write(report: Report, out: Path, with_plots: bool = True) -> list[Path]:
    """Write README.md, the CSVs and (unless `with_plots` is False) the plots under `out`.

    All or nothing: every file is first written to a private folder inside
    `out`, and only when all of them exist is each moved over its old copy
    (a rename), so an error or an interrupt part way leaves the previous report
    as it was, or the new one whole; the private folder goes either way.
    Returns the paths written (the retrieval section's own files aside).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    except OSError as exc:
        raise UsageError(f"cannot write the report under {out}: {exc.strerror}") from None
    try:
        staged = _write_staged(report, stage, out, with_plots)
        moved = [p for p in sorted(stage.rglob("*")) if p.is_file()]
        with signals_deferred():  # every output exists: Ctrl-C waits for the last rename
            for path in moved:
                final = out / path.relative_to(stage)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, final)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [out / p.relative_to(stage) for p in staged]


def _data_parallel_csvs(dp: devices.DataParallel, stage: Path) -> list[Path]:
    """The 1-vs-N parity table (with the refusals) and the strong and weak scaling tables."""
    out = [_write_text(stage / "data_parallel_parity.csv",
                       csv_text([({}, devices.parity_table(dp))]))]
    for name, table in (("strong", devices.strong_table), ("weak", devices.weak_table)):
        rows = [(fam.csv_fields(), table(fam)) for fam in dp.families]
        if any(t.rows for _, t in rows):
            out.append(_write_text(stage / f"data_parallel_{name}.csv", csv_text(rows)))
    return out


def _reference_csvs(section: ReferenceSection, stage: Path) -> list[Path]:
    """The accuracy, cost and published-run tables of every group of the section."""
    out = []
    for i in range(3):
        rows = [(rg.group.csv_fields(), rg.tables()[i]) for rg in section.groups]
        if any(t.rows for _, t in rows):
            out.append(_write_text(stage / f"{rows[0][1].name}.csv", csv_text(rows)))
    return out


def _write_staged(report: Report, stage: Path, out: Path, with_plots: bool) -> list[Path]:
    """Every file of the report under `stage`, its links written as seen from `out`."""
    section = _retrieval_at_scale(report, stage)
    written: list[Path] = []
    plot_paths: dict[str, dict[str, Path]] = {}
    if with_plots:
        (stage / "plots").mkdir()
        for g in report.groups:
            staged = _plots(g, stage / "plots")
            written += staged.values()
            plot_paths[g.slug] = {k: out / p.relative_to(stage) for k, p in staged.items()}
        other = {**_scaling_plots(report, stage / "plots"),
                 reference.PLOT_NAME: _reference_plot(report.reference, stage / "plots")}
        for slug, staged in other.items():
            written += staged.values()
            plot_paths[slug] = {k: out / p.relative_to(stage) for k, p in staged.items()}
    kinds = ["training", "retrieval_latency", "parity"]
    for i, kind in enumerate(kinds):
        rows = [(g.csv_fields(), g.tables[i]) for g in report.groups]
        written.append(_write_text(stage / f"{kind}.csv", csv_text(rows)))
    if report.shared_start.found:
        ss = shared_start.table(report.shared_start)
        written.append(_write_text(stage / "shared_start_parity.csv", csv_text([({}, ss)])))
    if report.scaling:
        exponents = scaling.exponent_table(report.scaling)
        written.append(_write_text(stage / "scaling_exponents.csv", csv_text([({}, exponents)])))
        values = [({"against": s.against}, scaling.values_table(s)) for s in report.scaling]
        written.append(_write_text(stage / "scaling.csv", csv_text(values)))
    if report.data_parallel is not None and report.data_parallel.found:
        written += _data_parallel_csvs(report.data_parallel, stage)
    if report.reference.groups:
        written += _reference_csvs(report.reference, stage)
    if report.pytest_docs:
        pt = pytest_bench.table(report.pytest_docs)
        written.append(_write_text(stage / "pytest_benchmark.csv", csv_text([({}, pt)])))
    if section is not None:
        written.append(section)
    final_section = out / section.relative_to(stage) if section is not None else None
    text = markdown.render(report, out, plot_paths, final_section)
    written.append(_write_text(stage / "README.md", text))
    return written
