#!/usr/bin/env bash
# Strong scaling of a sweep: the same svm sweep (subjects x selections x 5 folds, each fold a
# task of the dynamic farm) on 1 and on 2 ranks of this machine, from the same prepared RDMs
# and embeddings, REPS alternating repetitions; prints the medians, the speed-up and the
# parallel efficiency T1 / (2 T2). Also checks the two runs' results are identical.
#   bash bench/sweep/run.sh [IMAGES] [REPS]
# Environment: RDMLEARN (default build/rdmlearn), BENCH_CORETYPE (bench/common/blas_env.sh;
# the kernel is printed).
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/common/blas_env.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
R=${RDMLEARN:-build/rdmlearn}
N=${1:-300}
REPS=${2:-3}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=(mpirun --oversubscribe --bind-to none)
cat >"$W/job.ini" <<INI
[synth]
subjects = 2
images = $N
image_size = 32
[data]
root = $W/ds
rois = V1, hV4, class:Faces, all
[embed]
backend = gabor
[pairs]
k = 30
[run]
stages = rdm, embed, svm
log_level = warn
INI
bench_blas_line exe "$R"
"$R" synth "$W/ds" --config "$W/job.ini" -q
"${MPI[@]}" -n 2 "$R" run "$W/job.ini" --until embed --set run.output="$W/prep.h5"
t1=() t2=()
for rep in $(seq 1 "$REPS"); do
  for np in 1 2; do
    cp "$W/prep.h5" "$W/np$np.h5"
    s=$(date +%s.%N)
    "${MPI[@]}" -n $np "$R" run "$W/job.ini" --set run.output="$W/np$np.h5"
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if [[ $np == 1 ]]; then t1+=("$t"); else t2+=("$t"); fi
    echo "rep $rep, $np rank(s): $t s"
  done
done
/usr/bin/python3 - "$W/np1.h5" "$W/np2.h5" "${t1[*]}" "${t2[*]}" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
x, y = a["/sweep/main/svm/tasks/metrics"][()], b["/sweep/main/svm/tasks/metrics"][()]
assert np.array_equal(x, y, equal_nan=True), "1-rank and 2-rank results differ"
t1 = np.median([float(v) for v in sys.argv[3].split()])
t2 = np.median([float(v) for v in sys.argv[4].split()])
print(f"sweep of {x.shape[0]} tasks: median 1 rank {t1:.2f} s, 2 ranks {t2:.2f} s, "
      f"speed-up {t1 / t2:.2f}, parallel efficiency {100 * t1 / (2 * t2):.0f}% (results identical)")
PY
