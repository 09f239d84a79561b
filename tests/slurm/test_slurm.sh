#!/usr/bin/env bash
# A real single-node SLURM started by this test (munged, slurmctld, slurmd of Debian's munge and
# slurm-wlm, generated slurm.conf in a temporary folder; see slurm_local.sh), and what
# `rdmlearn submit` writes run on it: a single job with 2 MPI ranks (srun --mpi=pmix when the
# cluster offers pmix, else mpirun), and an array submission (prepare, a 3-element array,
# merge, chained with --dependency=afterok, launcher mpirun). Every job must complete with exit
# code 0 (the cluster's job-completion record and the job logs), the array elements must have
# run indices 0, 1 and 2, and both results files must equal (h5py: same datasets, same values)
# a direct `mpirun -n 2` run of the same job. Then the time-limit path: SIGUSR1 to a running
# job's script (what --signal=B:USR1@N does) stops the ranks with status 10, the job requeues
# itself and its second attempt takes the finished tasks from the journal (run only once
# src/core/stop.c takes SIGUSR1 as a stop request). The daemons are always stopped (trap EXIT).
# If they cannot start, the test FAILS with their logs. RDML_KEEP=1 keeps the work folder.
#
# Payload: `rdmlearn run` when the binary has it. Before it existed the test ran the same
# machinery with the rdm stage as payload (RDML_SLURM_PAYLOAD=rdm forces that): a wrapper
# given as RDML_SBATCH rewrites each script's RDML_ARGS line before passing it to sbatch.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/slurm_local.sh"
PY=/usr/bin/python3
W=$(mktemp -d /tmp/rdml-slurm.XXXXXX)
S=$W/cluster
mkdir -p "$S"
fails=0 passes=0
T0=$(date +%s)

finish() {
  local rc=$?
  slurm_stop "$S"
  if [[ $fails -ne 0 || $rc -ne 0 ]]; then
    echo "---- job logs"
    for f in "$W"/*.slurm/*.log; do [[ -e "$f" ]] && { echo "== $f"; tail -n 30 "$f"; }; done
    [[ -e "$S/jobcomp.txt" ]] && { echo "---- jobcomp"; cat "$S/jobcomp.txt"; }
    slurm_logs "$S"
  fi
  if [[ -n "${RDML_KEEP:-}" ]]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap finish EXIT

ok() { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }

cd "$W" || exit 1

# ---- the cluster
if ! slurm_start "$S"; then
  bad "could not start a local SLURM (munged, slurmctld, slurmd)"
  echo "$passes passed, $fails failed"
  exit 1
fi
ok "local SLURM up: $(sinfo -h -o '%P %D %c %t') in $(( $(date +%s) - T0 )) s"
LAUNCHER=mpirun
if srun --mpi=list 2>&1 | grep -qw pmix; then LAUNCHER=srun; fi

# ---- payload
PAYLOAD=${RDML_SLURM_PAYLOAD:-}
if [[ -z "$PAYLOAD" ]]; then
  if "$RDMLEARN" run --help >/dev/null 2>&1; then PAYLOAD=run; else PAYLOAD=rdm; fi
fi
echo "payload: $PAYLOAD; single job launcher: $LAUNCHER"

# ---- a small synthetic dataset and the job
"$MPIEXEC" -n 2 --oversubscribe --bind-to none "$RDMLEARN" synth ds --set synth.subjects=1 \
  --set synth.images=60 --set synth.image_size=32 --set synth.lh_vertices=200 \
  --set synth.rh_vertices=200 --set synth.test_images=0 -q || { bad "synth failed"; exit 1; }
cat > job.ini <<INI
[data]
root = ds
subjects = 1
rois = V1,all
images = 60
[pairs]
k = 10
[split]
folds = 3
[slurm]
ntasks = 2
time = 10
INI
if [[ $PAYLOAD == run ]]; then printf '[run]\nstages = rdm,embed,svm\n' >> job.ini; fi

if [[ $PAYLOAD == run ]]; then
  direct=("$RDMLEARN" run job.ini --set run.output=direct.h5)
else
  direct=("$RDMLEARN" rdm --config job.ini --set run.output=direct.h5)
  # the scripts run `rdmlearn run`; rewrite their payload to stages that exist
  cat > sbatch-payload <<'SH'
#!/bin/bash
script=${!#}
case $(basename "$script") in
  run.sbatch | prepare.sbatch) e='s#^RDML_ARGS=\(run "\$JOB"( --until embed)?#RDML_ARGS=(rdm --config "$JOB"#' ;;
  array.sbatch) e='s#^RDML_ARGS=\(run "\$JOB" --array "[^"]*"#RDML_ARGS=(config --config "$JOB"#' ;;
  *) e='s#^RDML_ARGS=\(run "\$JOB"#RDML_ARGS=(check --config "$JOB"#' ;;
esac
sed -i -E "$e" "$script"
exec sbatch "$@"
SH
  chmod +x sbatch-payload
  export RDML_SBATCH=$W/sbatch-payload
fi
if "$MPIEXEC" -n 2 --oversubscribe --bind-to none "${direct[@]}" > direct.log 2>&1; then
  ok "direct run (mpirun -n 2)"
else
  bad "direct run failed"; tail -n 20 direct.log
fi

# ---- submit: one single job, one array submission
ids_of() { awk '/^submitted .* as job [0-9]+$/ {print $NF}' "$1"; }
if "$RDMLEARN" submit job.ini --set run.output=single.h5 --set slurm.launcher=$LAUNCHER \
   > submit-single.out 2>&1; then
  ok "submit (single): $(ids_of submit-single.out | tr '\n' ' ')"
else
  bad "submit (single) failed"; cat submit-single.out
fi
if "$RDMLEARN" submit job.ini --array 3 --set run.output=array.h5 --set slurm.launcher=mpirun \
   > submit-array.out 2>&1; then
  ok "submit --array 3: $(ids_of submit-array.out | tr '\n' ' ')"
else
  bad "submit --array 3 failed"; cat submit-array.out
fi
mapfile -t single_ids < <(ids_of submit-single.out)
mapfile -t array_ids < <(ids_of submit-array.out)
[[ ${#single_ids[@]} -eq 1 ]] && ok "one job id for the single submission" || bad "single ids: ${single_ids[*]}"
[[ ${#array_ids[@]} -eq 3 ]] && ok "three job ids (prepare, array, merge)" || bad "array ids: ${array_ids[*]}"
# the chain as SLURM sees it
if [[ ${#array_ids[@]} -eq 3 ]]; then
  dep=$(scontrol show job "${array_ids[2]}" 2>/dev/null | grep -o 'Dependency=[^ ]*' | head -n 1)
  case $dep in
    *afterok:${array_ids[1]}*) ok "merge depends on the array ($dep)" ;;
    "Dependency=(null)") ok "merge dependency already satisfied" ;;
    *) bad "merge dependency: \"$dep\" (expected afterok:${array_ids[1]})" ;;
  esac
fi

# ---- wait until the queue is empty
deadline=$(( $(date +%s) + 300 ))
while [[ -n "$(squeue -h -o %i)" ]]; do
  if (( $(date +%s) > deadline )); then
    bad "jobs still queued after 300 s"; squeue -o '%i %j %t %r'; break
  fi
  # a failed job leaves the ones after it waiting forever: stop at once
  if squeue -h -o %r | grep -q DependencyNeverSatisfied; then
    bad "a job failed, so the jobs depending on it can never run:"; squeue -o '%i %j %t %r'
    scancel --user="$(id -un)"; sleep 1
  fi
  sleep 1
done
ok "queue drained $(( $(date +%s) - T0 )) s after start"

# ---- every job completed with exit code 0
njobs=$(grep -c '^JobId=' "$S/jobcomp.txt" 2>/dev/null || echo 0)
nok=$(grep '^JobId=' "$S/jobcomp.txt" 2>/dev/null | grep -c 'JobState=COMPLETED .*ExitCode=0:0')
# 1 single + prepare + 3 array elements + merge
if [[ $njobs -eq 6 && $nok -eq 6 ]]; then ok "6 jobs COMPLETED with exit code 0"
else bad "$nok of $njobs job records COMPLETED with exit code 0 (expected 6 of 6)"; fi
sdir=single.h5.slurm adir=array.h5.slurm
for f in "$sdir"/run-*.log "$adir"/prepare-*.log "$adir"/merge-*.log; do
  if [[ -e "$f" ]] && grep -q 'rdmlearn job: .* exit status 0$' "$f"; then ok "log $f: exit status 0"
  else bad "log $f lacks 'exit status 0'"; fi
done
for i in 0 1 2; do
  f=$(ls "$adir"/array-*_"$i".log 2>/dev/null | head -n 1)
  if [[ -n "$f" ]] && grep -q "(array index $i)" "$f" && grep -q 'exit status 0$' "$f"; then
    ok "array element $i ran and exited 0"
  else bad "array element $i: no log with index $i and exit status 0"; fi
done
if [[ $PAYLOAD == run ]]; then
  # the array elements did the model tasks, the merge only collected them (run's log lines
  # "svm: N tasks: J from the journal, C computed")
  for i in 0 1 2; do
    if grep -qE ' [1-9][0-9]* computed' "$adir"/array-*_"$i".log 2>/dev/null; then ok "array element $i computed tasks"
    else bad "array element $i computed no task"; fi
  done
  if grep -qE ' tasks: [1-9][0-9]* from the journal, 0 computed' "$adir"/merge-*.log 2>/dev/null; then
    ok "the merge took every task from the journal"
  else bad "the merge did not take every task from the journal"; fi
fi
if grep -q "srun --mpi=pmix\|mpirun -n 2" "$sdir"/run-*.log 2>/dev/null && \
   grep -q ': 2 rank(s) x 1 thread(s)' "$sdir"/run-*.log; then
  ok "the single job ran 2 ranks with $LAUNCHER"
else bad "the single job's log does not show 2 ranks via $LAUNCHER"; fi

# ---- the results equal the direct run
compare() {
  "$PY" - "$1" "$2" <<'PYEOF'
import re, sys
import h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
skip_attr = re.compile(r"time|elapsed|second|date|host|rank|thread|config|version|wall|output|path", re.I)
def walk(f):
    out = {}
    f.visititems(lambda n, o: out.__setitem__(n, o))
    return {n: o for n, o in out.items() if not n.startswith("meta")}
wa, wb = walk(a), walk(b)
bad = []
if set(wa) != set(wb):
    bad.append("objects differ: only in first %s, only in second %s"
               % (sorted(set(wa) - set(wb))[:5], sorted(set(wb) - set(wa))[:5]))
ndata, exact = 0, True
for n in sorted(set(wa) & set(wb)):
    oa, ob = wa[n], wb[n]
    for k in oa.attrs:
        if skip_attr.search(k): continue
        va, vb = oa.attrs[k], ob.attrs.get(k)
        if vb is None or np.asarray(va).shape != np.asarray(vb).shape or not np.array_equal(np.asarray(va), np.asarray(vb)) and not (
                np.asarray(va).dtype.kind == "f" and np.allclose(va, vb, rtol=0, atol=1e-6, equal_nan=True)):
            bad.append("%s attribute %s: %r vs %r" % (n, k, va, vb))
    if isinstance(oa, h5py.Dataset):
        ndata += 1
        x, y = oa[()], ob[()]
        if np.asarray(x).shape != np.asarray(y).shape:
            bad.append("%s: shape %s vs %s" % (n, np.shape(x), np.shape(y))); continue
        if np.array_equal(x, y, equal_nan=np.asarray(x).dtype.kind == "f"):
            continue
        exact = False
        if np.asarray(x).dtype.kind == "f" and np.allclose(x, y, rtol=0, atol=1e-6, equal_nan=True):
            continue
        bad.append("%s: values differ" % n)
for m in bad[:10]: print("  " + m)
print("%d datasets compared, %s" % (ndata, "bit-identical" if exact else "equal within 1e-6"))
sys.exit(1 if bad or ndata == 0 else 0)
PYEOF
}
for r in single array; do
  if [[ ! -e $r.h5 ]]; then bad "$r.h5 was not written"; continue; fi
  if out=$(compare direct.h5 $r.h5 2>&1); then ok "$r.h5 equals the direct run: $out"
  else bad "$r.h5 differs from the direct run:"; echo "$out"; fi
done

# ---- the time-limit warning and requeue: SIGUSR1 reaches the job script (as --signal=B:USR1@N
# sends it), the ranks stop after their current tasks with status 10, the job requeues itself,
# and the second attempt takes the finished tasks from the journal. Needs rdmlearn to take
# SIGUSR1 as a stop request (src/core/stop.c).
if [[ $PAYLOAD == run ]] && grep -q SIGUSR1 "${RDML_SRC:-/nonexistent}/src/core/stop.c" 2>/dev/null; then
  "$MPIEXEC" -n 2 --oversubscribe --bind-to none "$RDMLEARN" synth ds2 --set synth.subjects=1 \
    --set synth.images=250 --set synth.image_size=32 --set synth.lh_vertices=200 \
    --set synth.rh_vertices=200 --set synth.test_images=0 -q || bad "synth ds2 failed"
  sed -e 's/^root = ds$/root = ds2/' -e 's/^images = 60$/images = 250/' -e 's/^k = 10$/k = 20/' \
    -e 's/^folds = 3$/folds = 5/' job.ini > job2.ini
  if "$RDMLEARN" submit job2.ini --set run.output=rq.h5 --set slurm.requeue=true > submit-rq.out 2>&1; then
    rq=$(ids_of submit-rq.out)
    log=rq.h5.slurm/run-$rq.log
    # signal once the first tasks are done (run's progress line "svm folds: K/T")
    for ((i = 0; i < 600; i++)); do grep -qE '^svm folds: [1-9]' "$log" 2>/dev/null && break; sleep 0.1; done
    scancel --signal=USR1 --batch "$rq"
    # a requeued job waits two minutes before it is eligible again: release it as soon as
    # slurmd has finished the first attempt's step and batch script (earlier, the new srun
    # collides with the old step and fails to launch)
    for ((i = 0; i < 300; i++)); do
      if grep -q 'requeueing job' "$log" 2>/dev/null && squeue -h -j "$rq" -o %t 2>/dev/null | grep -q PD \
         && grep -q "\[$rq.0\] done with job" "$S/slurmd.log" \
         && grep -q "\[$rq.batch\] done with job" "$S/slurmd.log"; then
        sleep 2
        scontrol update JobId="$rq" StartTime=now >/dev/null 2>&1; break
      fi
      [[ -z "$(squeue -h -o %i)" ]] && break
      sleep 0.2
    done
    for ((i = 0; i < 300; i++)); do [[ -z "$(squeue -h -o %i)" ]] && break; sleep 1; done
    if grep -q 'exit status 10$' "$log" && grep -q "requeueing job $rq (restart 1" "$log"; then
      ok "SIGUSR1 stopped the ranks (status 10) and the job requeued itself"
    else bad "no stop with status 10 and requeue after SIGUSR1"; fi
    # the tasks the first attempt recorded are exactly those the second takes from the journal
    # (run's lines "stopped by a signal after N of T tasks" and "T tasks: N from the journal")
    n1=$(grep -oE 'stopped by a signal after [0-9]+ of' "$log" | grep -oE '[0-9]+' | head -n 1)
    n2=$(grep -oE 'tasks: [0-9]+ from the journal' "$log" | grep -oE '[0-9]+' | tail -n 1)
    if [[ -n "$n1" && "$n1" -gt 0 && "$n1" == "$n2" && "$(tail -n 1 "$log")" == *"exit status 0" ]] && \
       grep -q "^JobId=$rq .*JobState=COMPLETED .*ExitCode=0:0" "$S/jobcomp.txt"; then
      ok "the requeued job took the $n1 task(s) the first attempt finished from the journal and completed"
    else bad "the requeued job: first attempt recorded \"$n1\" task(s), second took \"$n2\" from the journal"; fi
  else
    bad "submit with requeue failed"; cat submit-rq.out
  fi
else
  echo "note: time-limit requeue scenario not run (needs the run payload and SIGUSR1 in src/core/stop.c)"
fi

echo "slurm test took $(( $(date +%s) - T0 )) s"
echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
