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
rm -rf "$OUT/data" "$OUT/results.h5"
CFG=(--config jobs/demo.ini --set data.root="$OUT/data" --set run.output="$OUT/results.h5")
echo "== 1. synthetic dataset -> $OUT/data"
"${MPIRUN[@]}" "$RDML" synth "$OUT/data" "${CFG[@]}"
echo "== 2. dataset description"
"$RDML" info "$OUT/data" "${CFG[@]}" | tee "$OUT/info.txt"
echo "== 3. check: every subject x selection loads, every value finite, every image decodes"
"${MPIRUN[@]}" "$RDML" check "${CFG[@]}"
echo "== 4. RDMs, summaries, inter-subject noise ceilings -> $OUT/results.h5"
"${MPIRUN[@]}" "$RDML" rdm "${CFG[@]}" 2>&1 | tee "$OUT/rdm.log"
echo "== 5. image embeddings (Gabor filter bank) -> $OUT/results.h5"
"${MPIRUN[@]}" "$RDML" embed "${CFG[@]}"
echo "== 6. the paper's pair SVM (extremes, poly-2, 5 image-disjoint folds) on subj01"
"${MPIRUN[@]}" "$RDML" svm "${CFG[@]}" --set data.subjects=1 --set data.rois=V1,class:Faces \
  2>&1 | tee "$OUT/svm.log"
echo "== demo finished: dataset $OUT/data, results $OUT/results.h5 (layout: docs/results.md),"
echo "   report: $OUT/info.txt, $OUT/rdm.log and $OUT/svm.log"
