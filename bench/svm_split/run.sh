#!/usr/bin/env bash
# One holdout C-SVC fit split over the ranks (svm stage, the farm's tail on a group of ranks,
# rdml_svm_fit_comm) against the same fit on one rank: the paper's extremes experiment
# (configs/paper/svm-extremes.ini: poly-2 SVC, k = 50, holdout 0.36) on a synthetic subject of
# IMAGES images, gabor embeddings, REPS alternating repetitions of 1 and 2 ranks from the same
# prepared file. Prints the medians of the fit time (fit_seconds) and of the stage, the
# speed-up and the ranks-busy figure of the 2-rank runs, and checks that the results files
# are identical (tools/compare_results.py). The split exchanges two small messages per SMO
# iteration, so it only pays when the ranks run on cores of their own (not on a loaded or
# oversubscribed machine).
#   bash bench/svm_split/run.sh [IMAGES=500] [REPS=3]
# Environment: RDMLEARN (default build/rdmlearn), BENCH_CORETYPE (bench/common/blas_env.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/common/blas_env.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
R=$(realpath "${RDMLEARN:-build/rdmlearn}")
CFG=$PWD/configs/paper/svm-extremes.ini
N=${1:-500}
REPS=${2:-3}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=(mpirun --oversubscribe --bind-to none)
SET=(--set data.root="$W/ds" --set embed.backend=gabor --set run.log_level=info)
bench_blas_line exe "$R"
"$R" synth "$W/ds" -q --set synth.subjects=1 --set synth.images="$N" --set synth.image_size=32
"$R" rdm "$W/ds" -q "${SET[@]}" --set run.output="$W/prep.h5"
"$R" embed "$W/ds" -q "${SET[@]}" --set run.output="$W/prep.h5"
fit1=() fit2=() st1=() st2=()
for rep in $(seq 1 "$REPS"); do
  for np in 1 2; do
    mkdir -p "$W/np$np"
    cp "$W/prep.h5" "$W/np$np/out.h5"
    (cd "$W/np$np" && "${MPI[@]}" -n $np "$R" svm "$W/ds" --config "$CFG" \
      "${SET[@]}" --set run.output=out.h5) >"$W/log$np" 2>&1 || { tail "$W/log$np"; exit 1; }
    f=$(/usr/bin/python3 -c "import h5py,sys; print(h5py.File(sys.argv[1],'r')['/experiments/extremes/svm/subj01/all/fold_0'].attrs['fit_seconds'])" "$W/np$np/out.h5")
    s=$(grep -Eo 'ranks busy .*; [0-9.]+ s\)' "$W/log$np" | grep -Eo '[0-9.]+ s\)$' | grep -Eo '^[0-9.]+')
    if [[ $np == 1 ]]; then fit1+=("$f"); st1+=("$s"); else fit2+=("$f"); st2+=("$s"); fi
    echo "rep $rep, $np rank(s): fit $f s, stage $s s; $(grep -o 'ranks busy.*' "$W/log$np")"
  done
done
/usr/bin/python3 tools/compare_results.py "$W/np1/out.h5" "$W/np2/out.h5" --ignore ranks | tail -1
grep -o 'svm: ranks busy.*' "$W/log2"
/usr/bin/python3 - "${fit1[*]}" "${fit2[*]}" "${st1[*]}" "${st2[*]}" <<'PY'
import sys, statistics as S
f1, f2, s1, s2 = ([float(v) for v in a.split()] for a in sys.argv[1:5])
print(f"holdout C-SVC fit: median 1 rank {S.median(f1):.2f} s, 2 ranks {S.median(f2):.2f} s, "
      f"speed-up {S.median(f1) / S.median(f2):.2f}; stage {S.median(s1):.2f} s vs {S.median(s2):.2f} s")
PY
