#!/usr/bin/env bash
# The ml-100k headline study and the comparison with the reference program (issue 16):
# 10 seeds per implementation and depth, each seed on its own split (--split seed),
# on a quiet machine. Each command is appended to commands.txt before it first runs;
# `--resume` makes a rerun go on where an interrupted one stopped. It ran over three
# sessions: keras-reference and keras-jax at depths 1 and 3, then the other four at
# depth 1, then at depth 3, then all five at depth 2 (only there did keras-jax interleave
# with the other four; the report names the groups where it did not), then
# keras-reference-tf/-torch at depth 1 (a first try at depths 1 and 3 together was
# interrupted: its runs are the `interrupted` records).
set -euo pipefail
cd "$(dirname "$0")/../.."
run() {
  grep -qxF "python -m bench $*" results/runs/commands.txt 2>/dev/null ||
    echo "python -m bench $*" >> results/runs/commands.txt
  python -m bench "$@"
}
common=(--seed 0-9 --split seed --results results/runs --resume --no-progress)
run run --impl keras-reference,keras-jax --depth 1,3 "${common[@]}"
run run --impl keras-reference-tf,keras-reference-torch --depth 1 --seed 0 --split seed \
    --results results/runs --resume --no-progress
run run --impl jax,torch,keras-tf,keras-torch --depth 1 "${common[@]}"
run run --impl jax,torch,keras-tf,keras-torch --depth 1,3 "${common[@]}"
run run --impl keras-jax,jax,torch,keras-tf,keras-torch --depth 2 "${common[@]}"
run run --impl keras-reference-tf,keras-reference-torch --depth 1 "${common[@]}"
# The machine changed (Intel Xeon to AMD EPYC, a restart) after keras-reference-tf/-torch
# seeds 0-3: seeds 4-9 ran on the AMD machine, where the report groups them apart (groups
# are per machine) with no keras-jax to compare with. These top-ups ran once on the AMD
# machine so its group holds keras-jax, keras-reference-tf and -torch at seeds 0-9. They
# have no --resume (it matches runs recorded on any machine and would skip seeds 0-3),
# so a rerun of this script skips them once commands.txt lists them.
once() {
  grep -qxF "python -m bench $*" results/runs/commands.txt 2>/dev/null || run "$@"
}
once run --impl keras-jax,keras-reference-tf,keras-reference-torch --depth 1 --seed 0-3 \
    --split seed --results results/runs --no-progress
once run --impl keras-jax --depth 1 --seed 4-9 --split seed --results results/runs --no-progress
run report --results results/runs --out results
