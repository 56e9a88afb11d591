"""The report: comparison tables, plots and parity verdicts from stored records only.

    runs.py          stored record dicts -> comparable groups (machine, device,
                     dataset hash, spec minus impl/seed) and what was left out
    summary.py       per-implementation summaries of one group (accuracy over
                     seeds, timing spreads, retrieval latency, curves)
    parity.py        TOST equivalence verdicts against the baseline, and where
                     curves part
    tables.py        markdown + CSV tables;  plots.py  deterministic PNGs
    shared_start.py  the step-level shared-start parity artifact, when present
    scaling.py       "How cost grows": series of dataset sizes, fitted exponents
    devices.py       "Data parallel": 1-vs-N parity, strong and weak scaling
    pytest_bench.py  pytest-benchmark JSON import and export
    build.py         computes the whole report (a Report of GroupReports)
    markdown.py      renders README.md from a Report
    files.py         writes README.md, the CSVs, the plots and the retrieval section

`python -m bench report` (bench/commands/report.py) drives it. Nothing here imports
an ML framework; matplotlib is imported only when plots are drawn.
"""
