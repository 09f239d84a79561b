#!/usr/bin/env bash
# The README's main command: set-up (packages, build), then the whole pipeline on a freshly
# generated synthetic dataset, on 2 MPI ranks, ending with a report:
#   synth -> info -> check -> rdmlearn run jobs/demo.ini (RDMs + noise ceilings, Gabor
#   embeddings, the paper's pair SVM, the paper's siamese network, report.html)
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
rm -rf "$OUT/data" "$OUT/results.h5" "$OUT/results.h5.journal" "$OUT/report"
SET=(--set data.root="$OUT/data" --set run.output="$OUT/results.h5")
echo "== 1. synthetic dataset -> $OUT/data"
"${MPIRUN[@]}" "$RDML" synth "$OUT/data" --config jobs/demo.ini "${SET[@]}"
echo "== 2. dataset description"
"$RDML" info "$OUT/data" --config jobs/demo.ini "${SET[@]}" | tee "$OUT/info.txt"
echo "== 3. check: every subject x selection loads, every value finite, every image decodes"
"${MPIRUN[@]}" "$RDML" check --config jobs/demo.ini "${SET[@]}"
echo "== 4. the job: RDMs, embeddings, encoding models, pair SVM, siamese network, model comparison, report (docs/run.md)"
"${MPIRUN[@]}" "$RDML" run jobs/demo.ini "${SET[@]}" 2>&1 | tee "$OUT/run.log"
echo "== demo finished in ${SECONDS} s: dataset $OUT/data, results $OUT/results.h5 (docs/results.md),"
echo "   tables $OUT/results.sweep.csv and $OUT/results.summary.csv, log $OUT/run.log,"
echo "   report $OUT/report/report.html"
