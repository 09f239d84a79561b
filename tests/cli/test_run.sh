#!/usr/bin/env bash
# `rdmlearn run JOB.ini` end to end on a synthetic dataset:
#  - stages run in order, a second run skips every stage (config hash), a changed key
#    reruns only the stages that depend on it, --force reruns all;
#  - the sweep's results (/experiments) are identical for 1, 2, 3 and 4 ranks;
#  - kill -9 at random moments (several times), then a plain rerun: the results equal a
#    clean run, the committed file is never corrupt, some tasks came from the journal;
#  - the stage hash covers the inputs: a dataset regenerated at the same root reruns the
#    stages, unchanged inputs are skipped, a touched fMRI file reruns rdm and svm only;
#  - SIGTERM to the ranks: the tasks in progress finish, exit status 10 (cancelled), the
#    journal keeps them, the rerun ends with the same results;
#  - SIGTERM during embed: exit 10 within seconds, svm not started, rdm kept, embed not
#    marked done, the rerun completes;
#  - SLURM-array style: --until embed, then --array I/3 for I = 0, 1, 2 (each its own
#    mpirun), then a plain run merges: identical results, nothing recomputed;
#  - bad input: an unknown model in an experiment file (refused before anything runs),
#    unknown stage, unreachable root, empty sweep, bad --array, an array share
#    before the preparation.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}"
PY=/usr/bin/python3
W=$(mktemp -d)
cleanup() { pkill -9 -f "^$RDMLEARN run $W" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

cat >"$W/job.ini" <<EOF
[synth]
subjects = 2
images = 160
image_size = 24
lh_vertices = 300
rh_vertices = 300
test_images = 0
[data]
root = $W/ds
rois = V1, class:Faces
[embed]
backend = gabor
[pairs]
k = 30
[run]
stages = rdm, embed, svm
output = $W/clean/results.h5
log_level = warn
EOF
"$RDMLEARN" synth "$W/ds" --config "$W/job.ini" -q || { echo "synth failed"; exit 1; }

run() { # run NP OUTPUT [args...]
  local np=$1 out=$2; shift 2
  "${MPI[@]}" -n "$np" "$RDMLEARN" run "$W/job.ini" --set run.output="$out" "$@"
}

# ---- stages, caching, hashes
run 2 "$W/clean/results.h5" >"$W/log1" 2>&1 && ok || { bad "clean run"; cat "$W/log1"; }
run 2 "$W/clean/results.h5" --set run.log_level=info >"$W/log2" 2>&1 && ok || bad "second run"
n=$(grep -c 'up to date' "$W/log2"); [[ $n == 3 ]] && ok || { bad "second run skipped $n of 3 stages"; cat "$W/log2"; }
run 2 "$W/clean/results.h5" --set run.log_level=info --set svm.c=1.0 >"$W/log3" 2>&1 && ok || bad "same value"
n=$(grep -c 'up to date' "$W/log3"); [[ $n == 3 ]] && ok || bad "an unchanged value reran a stage"
cp "$W/clean/results.h5" "$W/changed.h5"
run 2 "$W/changed.h5" --set run.log_level=info --set pairs.k=15 >"$W/log4" 2>&1 && ok || bad "changed k"
grep -q 'stage rdm is up to date' "$W/log4" && grep -q 'stage embed is up to date' "$W/log4" \
  && grep -q 'run: stage svm$' "$W/log4" && ok || { bad "pairs.k change: expected only svm to rerun"; cat "$W/log4"; }
run 1 "$W/changed.h5" --set run.log_level=info --set pairs.k=15 --force >"$W/log5" 2>&1 && ok || bad "--force"
n=$(grep -c 'up to date' "$W/log5"); [[ $n == 0 ]] && ok || bad "--force skipped $n stages"
[[ ! -e "$W/clean/results.h5.journal" ]] && ok || bad "journal left after a finished run"

# ---- the stage hash covers the input files (size and modification time): a dataset
# regenerated at the same root with another seed (same file sizes, new contents) reruns every
# stage, unchanged inputs are still skipped, and a touched fMRI file reruns rdm and svm but not
# embed (which reads only the images)
D2=(--set data.root="$W/ds2" --set run.log_level=info)
"$RDMLEARN" synth "$W/ds2" --config "$W/job.ini" -q || bad "synth ds2"
run 2 "$W/data/results.h5" "${D2[@]}" >"$W/logd1" 2>&1 && ok || { bad "run on ds2"; cat "$W/logd1"; }
cp "$W/data/results.h5" "$W/data/first.h5"
rm -rf "$W/ds2"; "$RDMLEARN" synth "$W/ds2" --config "$W/job.ini" --set run.seed=7 -q || bad "synth ds2 again"
run 2 "$W/data/results.h5" "${D2[@]}" >"$W/logd2" 2>&1 && ok || { bad "run on the regenerated ds2"; cat "$W/logd2"; }
n=$(grep -c 'up to date' "$W/logd2"); [[ $n == 0 ]] && ok || { bad "regenerated dataset: $n stages up to date"; cat "$W/logd2"; }
$PY - "$W/data/first.h5" "$W/data/results.h5" <<'PYEOF' && ok || bad "the rerun on new data kept the old results"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for p in ("/subjects/subj01/rdm/V1", "/subjects/subj01/embeddings/gabor"):
    assert a[p].shape == b[p].shape and not np.array_equal(a[p][()], b[p][()]), p
PYEOF
run 2 "$W/data/results.h5" "${D2[@]}" >"$W/logd3" 2>&1 && ok || bad "third run on ds2"
n=$(grep -c 'up to date' "$W/logd3"); [[ $n == 3 ]] && ok || { bad "unchanged inputs: $n of 3 stages skipped"; cat "$W/logd3"; }
touch "$W/ds2/subj01/training_split/training_fmri/lh_training_fmri.npy"
run 2 "$W/data/results.h5" "${D2[@]}" >"$W/logd4" 2>&1 && ok || bad "run after touching an fMRI file"
grep -q 'run: stage rdm$' "$W/logd4" && grep -q 'stage embed is up to date' "$W/logd4" \
  && grep -q 'run: stage svm$' "$W/logd4" && ok || { bad "touched fMRI: expected rdm and svm to rerun, not embed"; cat "$W/logd4"; }

cat >"$W/same.py" <<'PYEOF'
# Compare /experiments of two results files: every dataset bit-identical and every
# attribute equal except timings.
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
skip = {"fit_seconds", "pairs_per_second", "seconds"}
names = []
a["/experiments"].visit(names.append)
names2 = []
b["/experiments"].visit(names2.append)
assert sorted(names) == sorted(names2), "different trees"
n = 0
for nm in names:
    x, y = a["/experiments/" + nm], b["/experiments/" + nm]
    if isinstance(x, h5py.Dataset):
        assert x.dtype == y.dtype and x.shape == y.shape, nm
        assert np.array_equal(x[()], y[()], equal_nan=x.dtype.kind == "f"), nm
        n += 1
    for k in x.attrs:
        if k in skip: continue
        u, v = x.attrs[k], y.attrs[k]
        if isinstance(u, np.ndarray) or isinstance(u, float):
            assert np.array_equal(np.asarray(u), np.asarray(v), equal_nan=True), (nm, k, u, v)
        else:
            assert u == v, (nm, k, u, v)
assert n > 20, n
print("same", n, "datasets")
PYEOF
same() { $PY "$W/same.py" "$1" "$2" >/dev/null 2>"$W/same.err" && ok || { bad "$3"; cat "$W/same.err"; }; }

# ---- ranks: the same RDMs and embeddings (prepared once), the sweep at 1, 3, 4 ranks
run 2 "$W/prep/results.h5" --until embed >/dev/null 2>&1 && ok || bad "--until embed"
$PY - "$W/prep/results.h5" <<'PYEOF' && ok || bad "--until embed wrote model results"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert "rdm" in f["/meta/stages"] and "embed" in f["/meta/stages"] and "svm" not in f["/meta/stages"]
assert "experiments" not in f
PYEOF
mkdir -p "$W/ref"; cp "$W/prep/results.h5" "$W/ref/results.h5"
run 2 "$W/ref/results.h5" >/dev/null 2>&1 && ok || bad "reference run"
for np in 1 3 4; do
  mkdir -p "$W/np$np"; cp "$W/prep/results.h5" "$W/np$np/results.h5"
  run "$np" "$W/np$np/results.h5" >"$W/lognp$np" 2>&1 && ok || { bad "run at $np ranks"; cat "$W/lognp$np"; }
  same "$W/ref/results.h5" "$W/np$np/results.h5" "results at $np ranks differ from 2 ranks"
done

# the sweep table: one row per task in /sweep/svm/tasks and the long-format CSV, the
# summary equal to the per-group mean / std that the svm stage stored
$PY - "$W/ref/results.h5" "$W/ref/results.sweep.csv" "$W/ref/results.summary.csv" <<'PYEOF' && ok || bad "sweep table"
import sys, csv, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["/sweep/main/svm/tasks"]
M = t["metrics"][()]
cols = t["metrics"].attrs["columns"].split(",")
assert M.shape == (20, 5) and cols[0] == "accuracy", (M.shape, cols)
sel = t["selection"].asstr()[()]
rows = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == 20 * 5, len(rows)
for r in rows:
    i = [k for k in range(20) if t["subject"][k] == int(r["subject"]) and sel[k] == r["selection"]
         and t["fold"][k] == int(r["fold"])]
    assert len(i) == 1 and float(r["value"]) == M[i[0], cols.index(r["metric"])], r
for r in csv.DictReader(open(sys.argv[3])):
    g = f["/experiments/main/svm/subj%02d/%s" % (int(r["subject"]), r["selection"])]
    assert abs(float(r["mean"]) - g.attrs["mean_" + r["metric"]]) < 1e-12, r
    assert abs(float(r["std"]) - g.attrs["std_" + r["metric"]]) < 1e-12, r
print("table ok")
PYEOF

# wait until the journal of OUTPUT holds at least one record (the sweep is under way)
await_record() {
  for _ in $(seq 1 600); do
    ls "$1.journal" 2>/dev/null | grep -q '\.rec$' && return 0
    sleep 0.1
  done
  return 1
}

# ---- kill -9 at random moments of the sweep, then resume
mkdir -p "$W/kill"; cp "$W/prep/results.h5" "$W/kill/results.h5"
RANDOM=7
for round in 1 2 3; do
  run 2 "$W/kill/results.h5" >"$W/logkill$round" 2>&1 &
  pid=$!
  await_record "$W/kill/results.h5"
  sleep "0.$(( RANDOM % 10 ))$(( RANDOM % 10 ))"
  pkill -9 -f "^$RDMLEARN run $W/job.ini" ; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  # the committed file is always complete and readable
  $PY -c "import h5py,sys; h5py.File(sys.argv[1],'r')['/meta/stages/embed']" "$W/kill/results.h5" \
    && ok || bad "results file unreadable after kill -9 round $round"
done
ls "$W/kill" | grep -q 'tmp-' && echo "(kill left a temporary file; the next run removes it)"
run 2 "$W/kill/results.h5" --set run.log_level=info >"$W/logresume" 2>&1 && ok || { bad "resume"; tail "$W/logresume"; }
ls "$W/kill" | grep -q 'tmp-' && bad "temporary results file left after the resume" || ok
same "$W/ref/results.h5" "$W/kill/results.h5" "results after kill -9 + resume differ from a clean run"
j=$(grep -Eo '[0-9]+ from the journal' "$W/logresume" | grep -Eo '^[0-9]+' || echo 0)
echo "resume: $j of 20 tasks came from the journal"
[[ ${j:-0} -gt 0 ]] && ok || { bad "no task was journaled before the kills"; cat "$W/logresume"; }

# ---- SIGTERM (SLURM preemption): finish the tasks in progress, exit 10, resume
mkdir -p "$W/term"; cp "$W/prep/results.h5" "$W/term/results.h5"
run 2 "$W/term/results.h5" --set run.log_level=info >"$W/logterm" 2>&1 &
pid=$!
await_record "$W/term/results.h5"
pkill -TERM -f "^$RDMLEARN run $W/job.ini"
wait $pid; st=$?
if grep -q 'svm: results in' "$W/logterm"; then
  echo "(SIGTERM came after the last task; nothing to check)"
else
  [[ $st == 10 ]] && ok || { bad "SIGTERM: exit status $st, expected 10"; cat "$W/logterm"; }
  grep -q 'stopped by a signal' "$W/logterm" && grep -q 'run the same command again' "$W/logterm" \
    && ok || { bad "SIGTERM message"; cat "$W/logterm"; }
  n=$(ls "$W/term/results.h5.journal" 2>/dev/null | grep -c '\.rec$')
  [[ $n -gt 0 ]] && ok || bad "SIGTERM: no record journaled"
fi
run 2 "$W/term/results.h5" >/dev/null 2>&1 && ok || bad "resume after SIGTERM"
same "$W/ref/results.h5" "$W/term/results.h5" "results after SIGTERM + resume differ"

# ---- SIGTERM in the middle of a preparation stage (embed of 3000 images): every rank stops
# at the next batch with exit status 10 within seconds, the next stage (svm) does not start,
# the results file keeps rdm and does not mark embed done, and the rerun skips rdm and completes
"$RDMLEARN" synth "$W/big" -q --set synth.subjects=1 --set synth.images=3000 --set synth.image_size=48 \
  --set synth.lh_vertices=100 --set synth.rh_vertices=100 --set synth.test_images=0 || bad "synth (big)"
BIG=(--set data.root="$W/big" --set data.rois=V1 --set pairs.images=120 --set run.log_level=info)
run 2 "$W/bigrun/results.h5" "${BIG[@]}" >"$W/logbig" 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q 'run: stage embed$' "$W/logbig" && break; sleep 0.1; done
sleep 0.5
t0=$(date +%s%N)
pkill -TERM -f "^$RDMLEARN run $W/job.ini"
wait $pid; st=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "run: exit status $st ${ms} ms after SIGTERM during embed"
[[ $st == 10 && $ms -lt 8000 ]] && ok || { bad "SIGTERM during embed: status $st after $ms ms"; cat "$W/logbig"; }
grep -q "stage embed: subj01: stopped by SIGTERM after [0-9]* of [0-9]* embedding batches" "$W/logbig" \
  && ok || { bad "SIGTERM during embed: message"; cat "$W/logbig"; }
grep -q 'run: stage svm' "$W/logbig" && bad "svm started after SIGTERM" || ok
$PY - "$W/bigrun/results.h5" <<'PYEOF' && ok || bad "results file after SIGTERM during embed"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
done = dict(f["/meta/done"].attrs)
assert "rdm:V1" in done and not any(k.startswith("embed") for k in done), done
assert "/subjects/subj01/rdm/V1" in f and "embeddings" not in f["/subjects/subj01"]
PYEOF
run 2 "$W/bigrun/results.h5" "${BIG[@]}" >"$W/logbig2" 2>&1 && ok || { bad "rerun after SIGTERM during embed"; cat "$W/logbig2"; }
grep -q 'stage rdm is up to date' "$W/logbig2" && grep -q 'run: stage embed$' "$W/logbig2" \
  && grep -q 'run: stage svm$' "$W/logbig2" && ok || { bad "rerun after SIGTERM: stages"; cat "$W/logbig2"; }

# ---- SLURM-array style: prepare, three shares, merge
mkdir -p "$W/arr"; cp "$W/prep/results.h5" "$W/arr/results.h5"
for i in 0 1 2; do
  run $(( i % 2 + 1 )) "$W/arr/results.h5" --array $i/3 >"$W/logarr$i" 2>&1 && ok || { bad "array $i/3"; cat "$W/logarr$i"; }
done
$PY -c "import h5py,sys; assert 'experiments' not in h5py.File(sys.argv[1],'r')" "$W/arr/results.h5" \
  && ok || bad "an array share wrote the results file"
n=$(ls "$W/arr/results.h5.journal" | grep -c '\.rec$'); [[ $n == 20 ]] && ok || bad "array shares journaled $n of 20 tasks"
run 2 "$W/arr/results.h5" --set run.log_level=info >"$W/logmerge" 2>&1 && ok || { bad "merge"; cat "$W/logmerge"; }
grep -q '20 from the journal, 0 computed' "$W/logmerge" && ok || { bad "merge recomputed tasks"; cat "$W/logmerge"; }
same "$W/ref/results.h5" "$W/arr/results.h5" "array + merge results differ from a clean run"

# ---- experiments: an SVM and a siamese network from one job, shared RDMs and embeddings
mkdir -p "$W/exp" "$W/blocks"
printf '[pairs]\nexperiment = ext\n[run]\nstages = svm\n' >"$W/blocks/svm.ini"
printf '[pairs]\nexperiment = reg\nset = all\n[train]\nmodel = siamese\nepochs = 2\n[run]\nstages = rdm, embed, train\n' >"$W/blocks/siamese.ini"
cp "$W/job.ini" "$W/expjob.ini"
sed -i 's|^stages = rdm, embed, svm$|stages = rdm, embed, svm, train|' "$W/expjob.ini"
sed -i 's|^\[run\]$|[run]\nexperiments = blocks/svm.ini, blocks/siamese.ini|' "$W/expjob.ini"
"${MPI[@]}" -n 2 "$RDMLEARN" run "$W/expjob.ini" --set run.output="$W/exp/r.h5" --set run.log_level=info \
  >"$W/logexp" 2>&1 && ok || { bad "experiments run"; tail -20 "$W/logexp"; }
n=$(grep -c 'stage rdm$' "$W/logexp"); [[ $n == 1 ]] && ok || bad "experiments: rdm ran $n times (once expected)"
$PY - "$W/exp/r.h5" "$W/exp/r.sweep.csv" <<'PYEOF' && ok || bad "experiments results"
import sys, csv, h5py
f = h5py.File(sys.argv[1], "r")
assert "/experiments/ext/svm/subj01/V1" in f and "/experiments/reg/siamese/subj02/class:Faces" in f
assert f["/sweep/ext/svm/tasks/metrics"].shape == (20, 5)
assert f["/sweep/reg/siamese/tasks/metrics"].shape == (20, 6)
rows = list(csv.DictReader(open(sys.argv[2])))
assert {(r["experiment"], r["model"]) for r in rows} == {("ext", "svm"), ("reg", "siamese")}
assert "ext" in f["/meta/done"].attrs["svm:ext"] or len(f["/meta/done"].attrs["svm:ext"]) == 16
PYEOF
"${MPI[@]}" -n 2 "$RDMLEARN" run "$W/expjob.ini" --set run.output="$W/exp/r.h5" --set run.log_level=info \
  >"$W/logexp2" 2>&1 && ok || bad "experiments rerun"
n=$(grep -c 'up to date' "$W/logexp2"); [[ $n == 6 ]] && ok || { bad "experiments rerun: $n of 6 stages skipped"; cat "$W/logexp2"; }

# an unknown model in the last experiment file is found before anything runs
printf '[pairs]\nexperiment = tr\n[train]\nmodel = transformer\n[run]\nstages = train\n' >"$W/blocks/typo.ini"
cp "$W/expjob.ini" "$W/typojob.ini"
sed -i 's|^experiments = .*$|experiments = blocks/svm.ini, blocks/typo.ini|' "$W/typojob.ini"
out=$("${MPI[@]}" -n 2 "$RDMLEARN" run "$W/typojob.ini" --set run.output="$W/typo/r.h5" 2>&1) && bad "unknown model accepted" || {
  grep -qF "experiment blocks/typo.ini (nothing was run)" <<<"$out" && grep -qF "transformer" <<<"$out" \
    && grep -qF "typo.ini" <<<"$out" && grep -q "siamese" <<<"$out" && [ ! -e "$W/typo/r.h5" ] \
    && ok || bad "unknown model in an experiment: $out"; }

# ---- bad input
expect_fail() { # expect_fail "what" "message part" args...
  local what=$1 msg=$2; shift 2
  local out; out=$("${MPI[@]}" -n 2 "$RDMLEARN" run "$W/job.ini" "$@" 2>&1) && { bad "$what: succeeded"; return; }
  grep -qF -- "$msg" <<<"$out" && ok || { bad "$what: message lacks '$msg': $out"; }
}
expect_fail "unknown stage" "siamese" --set run.stages=rdm,siamese --set run.output="$W/bad.h5"
expect_fail "unreachable root" "no such directory" --set data.root="$W/nowhere" --set run.output="$W/bad.h5"
expect_fail "empty sweep" "data.rois" --set data.rois= --set run.output="$W/bad.h5"
expect_fail "bad --array" "expected I/N" --array 3/3 --set run.output="$W/bad.h5"
expect_fail "array before prepare" "--until embed" --array 0/2 --set run.output="$W/bad2.h5"
expect_fail "unknown until" "not a stage" --until fit --set run.output="$W/bad.h5"
[[ ! -e "$W/bad.h5" ]] && ok || bad "a failed run left a results file"

echo "$passes passed, $fails failed"
[[ $fails == 0 ]]
