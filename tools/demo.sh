#!/usr/bin/env bash
# The README's main command: set-up (packages, build), then the pipeline on a freshly
# generated synthetic dataset, on 2 MPI ranks, ending with a report.
#   bash tools/demo.sh [OUTDIR]       (default: build/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bash tools/setup.sh
OUT=${1:-build/demo}
NP=${RDML_NP:-2}
MPIRUN=(mpirun --oversubscribe --bind-to none -n "$NP")
RDML=build/rdmlearn

mkdir -p "$OUT"
rm -rf "$OUT/data"
echo "== synthetic dataset -> $OUT/data (jobs/demo.ini)"
"${MPIRUN[@]}" "$RDML" synth "$OUT/data" --config jobs/demo.ini
echo "== dataset report"
"$RDML" info "$OUT/data" | tee "$OUT/info.txt"
echo "== demo finished: dataset in $OUT/data, report in $OUT/info.txt"
