#!/usr/bin/env bash
# `rdmlearn submit` without a cluster (fast; tests/slurm/test_slurm.sh runs the scripts on a
# real local SLURM): the scripts it writes match the templates slurm/rdmlearn.sbatch.in and
# slurm/submit.sh.in, carry the [slurm] options as #SBATCH lines, parse as bash, launch with
# srun --mpi=... or mpirun, pass the time-limit warning (SIGUSR1) on and requeue themselves;
# submission chains the jobs with --dependency=afterok (a fake sbatch records the calls), from
# rdmlearn and from submit.sh; launcher variables of an `mpirun rdmlearn submit` are not passed
# to the jobs.
# Bad input: sbatch missing from PATH, sbatch refusing (its message and exit status are shown),
# sbatch printing no job id, bad [slurm] values and --array values. Errors are checked at 1, 2
# and 3 ranks: every rank must stop with the same exit status (no hang).
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}" "${RDML_SRC:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset RDML_SBATCH
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
PY=/usr/bin/python3
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }
MPI=("$MPIEXEC" --oversubscribe --bind-to none)

printf '[data]\nroot = ds\n[run]\noutput = out/res.h5\n' > job.ini
mkdir -p ds/subj01 # submit checks that the data root holds the subjects (a folder listing)

# ---- dry run: files, options, templates
"$RDMLEARN" submit job.ini --dry-run --array 3 --set slurm.partition=debug,long \
  --set slurm.account=proj1 --set slurm.qos=high --set slurm.time=1-02:00:00 \
  --set slurm.nodes=2 --set slurm.ntasks=8 --set slurm.array_ntasks=2 \
  --set slurm.cpus_per_task=4 --set run.threads=4 --set slurm.mem=16G \
  --set slurm.requeue=true --set slurm.signal=300 \
  --set 'slurm.extra=--constraint=skylake --mail-type=END,FAIL' \
  --set 'slurm.setup=module load openmpi' > dry.out 2>&1 || { bad "dry run failed"; cat dry.out; }
D=$W/out/res.h5.slurm
for f in resolved.ini prepare.sbatch array.sbatch merge.sbatch submit.sh; do
  [[ -s $D/$f ]] && ok || bad "dry run did not write $D/$f"
done
[[ -e $D/run.sbatch ]] && bad "array dry run wrote run.sbatch" || ok
grep -q "dry run: nothing submitted" dry.out && ok || bad "dry run output: $(cat dry.out)"
has() { grep -qxF -- "$2" "$1" && ok || bad "$(basename "$1") lacks line: $2"; }
for f in prepare merge; do
  has "$D/$f.sbatch" "#SBATCH --nodes=2"
  has "$D/$f.sbatch" "#SBATCH --ntasks=8"
done
has "$D/array.sbatch" "#SBATCH --ntasks=2"
has "$D/array.sbatch" "#SBATCH --array=0-2"
has "$D/array.sbatch" "#SBATCH --output=$D/array-%A_%a.log"
has "$D/prepare.sbatch" "#SBATCH --output=$D/prepare-%j.log"
has "$D/prepare.sbatch" "#SBATCH --job-name=rdml-job-prepare"
has "$D/merge.sbatch" "#SBATCH --job-name=rdml-job-merge"
for f in prepare array merge; do
  s=$D/$f.sbatch
  for l in "#SBATCH --partition=debug,long" "#SBATCH --account=proj1" "#SBATCH --qos=high" \
           "#SBATCH --time=1-02:00:00" "#SBATCH --cpus-per-task=4" "#SBATCH --mem=16G" \
           "#SBATCH --signal=B:USR1@300" "#SBATCH --requeue" "#SBATCH --open-mode=append" \
           "#SBATCH --constraint=skylake" "#SBATCH --mail-type=END,FAIL" "#SBATCH --chdir=$W" \
           "module load openmpi" "THREADS=4" "REQUEUE=3" "JOB=$W/job.ini" "WORKDIR=$W" \
           "RDMLEARN=$(readlink -f "$RDMLEARN")"; do
    has "$s" "$l"
  done
  bash -n "$s" && ok || bad "$f.sbatch is not valid bash"
done
# every job passes the command line's --config/--set on to run (quoted where needed)
SETS="--set slurm.partition=debug,long --set slurm.account=proj1 --set slurm.qos=high --set slurm.time=1-02:00:00 --set slurm.nodes=2 --set slurm.ntasks=8 --set slurm.array_ntasks=2 --set slurm.cpus_per_task=4 --set run.threads=4 --set slurm.mem=16G --set slurm.requeue=true --set slurm.signal=300 --set 'slurm.extra=--constraint=skylake --mail-type=END,FAIL' --set 'slurm.setup=module load openmpi'"
has "$D/prepare.sbatch" "RDML_ARGS=(run \"\$JOB\" --until embed $SETS)"
has "$D/array.sbatch" "RDML_ARGS=(run \"\$JOB\" --array \"\${SLURM_ARRAY_TASK_ID:?not a job array}/3\" $SETS)"
has "$D/merge.sbatch" "RDML_ARGS=(run \"\$JOB\" $SETS)"
bash -n "$D/submit.sh" && ok || bad "submit.sh is not valid bash"
# the recorded resolution reloads to the configuration the jobs will resolve
"$RDMLEARN" config --config "$D/resolved.ini" > frozen.txt 2>&1 &&
  "$RDMLEARN" config --config job.ini --set slurm.partition=debug,long --set slurm.account=proj1 \
    --set slurm.qos=high --set slurm.time=1-02:00:00 --set slurm.nodes=2 --set slurm.ntasks=8 \
    --set slurm.array_ntasks=2 --set slurm.cpus_per_task=4 --set run.threads=4 \
    --set slurm.mem=16G --set slurm.requeue=true --set slurm.signal=300 \
    --set 'slurm.extra=--constraint=skylake --mail-type=END,FAIL' \
    --set 'slurm.setup=module load openmpi' > direct.txt 2>&1
cmp -s frozen.txt direct.txt && ok || { bad "resolved.ini does not reload to the submitted configuration"; diff frozen.txt direct.txt | head; }

# every script is its template with the placeholders filled in (the C copy of the templates
# and slurm/*.in must not drift apart)
"$PY" - "$RDML_SRC/slurm" "$D" <<'PYEOF' && ok || bad "scripts do not match the templates in slurm/"
import re, sys, os
src, d = sys.argv[1], sys.argv[2]
def pattern(tmpl):
    out = []
    for line in tmpl.splitlines(keepends=True):
        if line == "@SBATCH@\n": out.append(r"(?:#SBATCH [^\n]*\n)+")
        elif line == "@SETUP@\n": out.append(r"(?:[^\n]*\n)?")
        else:
            parts = re.split(r"@[A-Z_]+@", line)
            out.append(r"[^\n]*?".join(re.escape(p) for p in parts))
    return "".join(out)
ok = True
tmpl = open(os.path.join(src, "rdmlearn.sbatch.in")).read()
for f in ("prepare.sbatch", "array.sbatch", "merge.sbatch"):
    if not re.fullmatch(pattern(tmpl), open(os.path.join(d, f)).read()):
        print("  %s does not match slurm/rdmlearn.sbatch.in" % f); ok = False
if not re.fullmatch(pattern(open(os.path.join(src, "submit.sh.in")).read()),
                    open(os.path.join(d, "submit.sh")).read()):
    print("  submit.sh does not match slurm/submit.sh.in"); ok = False
sys.exit(0 if ok else 1)
PYEOF

# single submission: one script; the scripts of the array submission are removed
"$RDMLEARN" submit job.ini --dry-run --set slurm.launcher=mpirun --set slurm.mpirun=/opt/mpi/bin/mpirun \
  --set slurm.binary=/opt/rdmlearn --set slurm.job_name=myjob -q > /dev/null 2>&1 || bad "single dry run failed"
[[ -s $D/run.sbatch && ! -e $D/prepare.sbatch && ! -e $D/array.sbatch ]] && ok || bad "single dry run files: $(ls "$D")"
has "$D/run.sbatch" "#SBATCH --job-name=myjob"
has "$D/run.sbatch" "RDMLEARN=/opt/rdmlearn"
has "$D/run.sbatch" "MPIRUN=/opt/mpi/bin/mpirun"
has "$D/run.sbatch" "LAUNCHER=mpirun"
has "$D/run.sbatch" "REQUEUE=0"
has "$D/run.sbatch" 'RDML_ARGS=(run "$JOB" --set slurm.launcher=mpirun --set slurm.mpirun=/opt/mpi/bin/mpirun --set slurm.binary=/opt/rdmlearn --set slurm.job_name=myjob)'
grep -q '^#SBATCH --signal=B:USR1@120$' "$D/run.sbatch" && ok || bad "default signal line missing"
grep -q 'requeue' "$D/run.sbatch" | grep -q SBATCH && bad "requeue without slurm.requeue" || ok
# --config files are passed on with absolute paths, in order, before the --set overrides
printf '[slurm]\ntime = 30\n' > extra.ini
"$RDMLEARN" submit job.ini --dry-run --set slurm.qos=x --config extra.ini -q > /dev/null 2>&1 || bad "dry run with --config failed"
has "$D/run.sbatch" "RDML_ARGS=(run \"\$JOB\" --config $W/extra.ini --set slurm.qos=x)"
has "$D/run.sbatch" "#SBATCH --time=30"
# script_dir and a name with spaces (single-quoted in the script)
mkdir -p "sp ace"
"$RDMLEARN" submit job.ini --dry-run --set slurm.script_dir=jobs/s1 --set "slurm.binary=$W/sp ace/rdml" \
  -q > /dev/null 2>&1 || bad "dry run with script_dir failed"
has "$W/jobs/s1/run.sbatch" "RDMLEARN='$W/sp ace/rdml'"

# ---- the scripts run: launcher lines, the time-limit warning (SIGUSR1) passed on to the
# launcher (which forwards it to the ranks), SIGTERM not passed on (SLURM signals every process
# of a cancelled job itself; a second SIGTERM would stop rdmlearn at once). Fake srun/mpirun.
mkdir -p fakebin
cat > fakebin/srun <<'SH'
#!/bin/bash
stop() { kill $sl; echo "$1" > "$FAKE_DIR/sig"; exit ${FAKE_RC:-0}; }
trap 'stop USR1' USR1
trap 'stop TERM' TERM
sleep 20 &
sl=$!
echo $$ > "$FAKE_DIR/launch.pid"
echo "srun $*" > "$FAKE_DIR/launch.args"
wait
SH
cp fakebin/srun fakebin/mpirun
sed -i 's/echo "srun/echo "mpirun/' fakebin/mpirun
printf '#!/bin/bash\necho "scontrol $*" >> "$FAKE_DIR/scontrol.calls"\n' > fakebin/scontrol
chmod +x fakebin/*
export FAKE_DIR=$W
# start_job DIR ENV...: run DIR/run.sbatch in the background (pid in $job) until the fake
# launcher runs
start_job() {
  local d=$1 i; shift
  rm -f launch.args launch.pid sig scontrol.calls
  env PATH="$W/fakebin:$PATH" "$@" bash "$d/run.sbatch" > "$d.log" 2>&1 &
  job=$!
  for ((i = 0; i < 100; i++)); do [[ -s launch.args ]] && break; sleep 0.1; done
}
"$RDMLEARN" submit job.ini --dry-run --set slurm.script_dir=run1 --set slurm.srun_mpi=pmi2 -q >/dev/null 2>&1
start_job run1 SLURM_NTASKS=3 SLURM_JOB_ID=77
grep -qx "srun --mpi=pmi2 --kill-on-bad-exit=1 $(readlink -f "$RDMLEARN") run $W/job.ini --set slurm.script_dir=run1 --set slurm.srun_mpi=pmi2" launch.args \
  && ok || bad "srun line: $(cat launch.args 2>/dev/null)"
kill -USR1 $job
wait $job; rc=$?
[[ $rc -eq 0 && "$(cat sig 2>/dev/null)" == USR1 ]] && ok || bad "SIGUSR1 was not passed on to srun (script rc $rc)"
grep -q "time limit near (SIGUSR1): passing it on to the ranks" run1.log && grep -q "exit status 0$" run1.log \
  && ! grep -q requeueing run1.log && ok || { bad "run1.log"; cat run1.log; }
"$RDMLEARN" submit job.ini --dry-run --set slurm.script_dir=run2 --set slurm.launcher=mpirun -q >/dev/null 2>&1
start_job run2 SLURM_NTASKS=3 SLURM_CPUS_PER_TASK=2
grep -qx "mpirun -n 3 --map-by slot:PE=2 --bind-to core $(readlink -f "$RDMLEARN") run $W/job.ini --set slurm.script_dir=run2 --set slurm.launcher=mpirun" launch.args \
  && ok || bad "mpirun line: $(cat launch.args 2>/dev/null)"
kill -USR1 $job
wait $job; rc=$?
[[ $rc -eq 0 && "$(cat sig 2>/dev/null)" == USR1 ]] && grep -q "exit status 0$" run2.log && ok \
  || bad "SIGUSR1 was not passed on to mpirun (rc $rc): $(cat run2.log)"

# requeue: after the time-limit warning the ranks stop with status 10 and the job requeues
# itself, at most slurm.max_requeue times; a job stopped by SIGTERM (scancel) never requeues
"$RDMLEARN" submit job.ini --dry-run --set slurm.script_dir=run3 --set slurm.requeue=true \
  --set slurm.max_requeue=2 -q >/dev/null 2>&1
has run3/run.sbatch "#SBATCH --requeue"
has run3/run.sbatch "REQUEUE=2"
start_job run3 FAKE_RC=10 SLURM_JOB_ID=88 SLURM_RESTART_COUNT=0
kill -USR1 $job
wait $job; rc=$?
[[ $rc -eq 0 && "$(cat scontrol.calls 2>/dev/null)" == "scontrol requeue 88" ]] && ok \
  || { bad "USR1 at restart 0: rc $rc, scontrol: $(cat scontrol.calls 2>/dev/null)"; cat run3.log; }
start_job run3 FAKE_RC=10 SLURM_JOB_ID=88 SLURM_RESTART_COUNT=2
kill -USR1 $job
wait $job; rc=$?
[[ $rc -eq 10 && ! -e scontrol.calls ]] && grep -q "after 2 restart(s); submit again" run3.log && ok \
  || { bad "USR1 after max_requeue: rc $rc"; cat run3.log; }
start_job run3 FAKE_RC=10 SLURM_JOB_ID=88 SLURM_RESTART_COUNT=0
kill -TERM $job
sleep 0.5
[[ ! -e sig ]] && ok || bad "SIGTERM to the job script reached the launcher ($(cat sig))"
kill -TERM "$(cat launch.pid)" # as SLURM signals every process of a cancelled job
wait $job; rc=$?
[[ $rc -eq 10 && "$(cat sig 2>/dev/null)" == TERM && ! -e scontrol.calls ]] && grep -q "exit status 10$" run3.log \
  && ok || { bad "SIGTERM: rc $rc, scontrol: $(cat scontrol.calls 2>/dev/null)"; cat run3.log; }

# ---- submission through a fake sbatch: the dependency chain
cat > fake-sbatch <<'SH'
#!/bin/bash
n=$(( $(cat "$FAKE_DIR/count" 2>/dev/null || echo 100) + 1 ))
echo $n > "$FAKE_DIR/count"
echo "$*" >> "$FAKE_DIR/sbatch.calls"
env > "$FAKE_DIR/sbatch.env"
if [[ -n "${FAKE_FAIL_AT:-}" && $n -eq $FAKE_FAIL_AT ]]; then
  echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2; exit 1
fi
echo "$n;cluster0"
SH
chmod +x fake-sbatch
rm -f count sbatch.calls
RDML_SBATCH=$W/fake-sbatch "$RDMLEARN" submit job.ini --array 4 -q > sub.out 2>&1 || bad "fake submit failed: $(cat sub.out)"
mapfile -t calls < sbatch.calls
[[ "${calls[0]}" == "--parsable $D/prepare.sbatch" && "${calls[1]}" == "--parsable --dependency=afterok:101 $D/array.sbatch" \
   && "${calls[2]}" == "--parsable --dependency=afterok:102 $D/merge.sbatch" ]] && ok || bad "sbatch calls: $(cat sbatch.calls)"
[[ "$(cat sub.out)" == "submitted prepare.sbatch as job 101
submitted array.sbatch as job 102
submitted merge.sbatch as job 103" ]] && ok || bad "submit output: $(cat sub.out)"
has "$D/array.sbatch" "#SBATCH --array=0-3"
# the driver does the same
rm -f count sbatch.calls
RDML_SBATCH=$W/fake-sbatch bash "$D/submit.sh" > drv.out 2>&1 || bad "submit.sh failed: $(cat drv.out)"
mapfile -t calls2 < sbatch.calls
[[ "${calls2[*]}" == "${calls[*]}" ]] && ok || bad "submit.sh sbatch calls: $(cat sbatch.calls)"
cmp -s drv.out sub.out && ok || bad "submit.sh output: $(cat drv.out)"
# under mpirun: the launcher's variables stay out of the jobs' environment, the user's stay in
rm -f count sbatch.calls
"${MPI[@]}" -n 2 -x RDML_SBATCH=$W/fake-sbatch -x MY_SETTING=7 "$RDMLEARN" submit job.ini -q > sub2.out 2>&1 \
  || bad "submit under mpirun -n 2 failed: $(cat sub2.out)"
[[ $(wc -l < sbatch.calls) -eq 1 ]] && ok || bad "under mpirun -n 2 sbatch ran $(wc -l < sbatch.calls) times (expected once)"
if grep -qE '^(PMIX_|OMPI_COMM_WORLD_|OMPI_MCA_orte_|OMPI_MCA_ess)' sbatch.env; then
  bad "launcher variables reach sbatch: $(grep -oE '^(PMIX_|OMPI_COMM_WORLD_|OMPI_MCA_orte_)[A-Z_a-z]*' sbatch.env | head -3 | tr '\n' ' ')"
else ok; fi
grep -q '^MY_SETTING=7$' sbatch.env && grep -q '^OMPI_ALLOW_RUN_AS_ROOT=1$' sbatch.env && ok \
  || bad "user variables did not reach sbatch"

# ---- bad input: expect NP CODE SUBSTRING -- args (rdmlearn submit ...)
expect() {
  local np=$1 code=$2 sub=$3; shift 4
  rm -rf st; mkdir -p st
  local out rc n sf good=1
  # one rank: a singleton (mpirun takes 2 s to wind down after a failure)
  if [[ $np -eq 1 ]]; then out=$(RDML_STATUS_DIR=$W/st timeout 60 "$@" 2>&1); rc=$?
  else out=$(RDML_STATUS_DIR=$W/st timeout 60 "${MPI[@]}" -n "$np" "$@" 2>&1); rc=$?; fi
  if [[ $rc -eq 124 ]]; then echo "HANG: np=$np $*"; good=0; fi
  if [[ $rc -eq 0 ]]; then echo "expected failure, got success: np=$np $*"; good=0; fi
  grep -qF -- "$sub" <<<"$out" || { echo "message lacks \"$sub\": np=$np $*"; good=0; }
  n=$(ls st | wc -l)
  [[ $n -eq $np ]] || { echo "$n of $np ranks finished: $*"; good=0; }
  for sf in st/*.status; do
    [[ -e $sf ]] || continue
    [[ "$(cut -d' ' -f1 "$sf")" == "$code" ]] || { echo "$(basename "$sf"): $(cat "$sf"), expected $code: $*"; good=0; }
  done
  if [[ $good -eq 1 ]]; then ok; else fails=$((fails + 1)); echo "$out" | head -5; fi
}
# a PATH without sbatch (but with what Open MPI's singleton start needs)
mkdir -p nobin
for f in /usr/bin/*; do
  case ${f##*/} in sbatch | srun | salloc) ;; *) ln -s "$f" "nobin/${f##*/}" ;; esac
done
cat > refuse <<'SH'
#!/bin/bash
echo "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified" >&2
exit 1
SH
printf '#!/bin/bash\necho "Submitted batch job"\n' > noid
chmod +x refuse noid
touch notexec
R=$RDMLEARN
# the main cases at 1, 2 and 3 ranks, the rest at 1 rank (each mpirun costs half a second)
for np in 2 3; do
  expect $np 5 'sbatch not found in PATH' -- env PATH="$W/nobin" "$R" submit job.ini
  expect $np 4 'slurm.time' -- "$R" submit job.ini --dry-run --set slurm.time=abc
done
expect 2 5 'Invalid account or account/partition combination' -- env RDML_SBATCH="$W/refuse" "$R" submit job.ini
expect 2 3 '--array "0"' -- "$R" submit job.ini --dry-run --array 0
for np in 1; do
  # sbatch missing (exit 5): names PATH and suggests --dry-run; the scripts are still written
  expect $np 5 'sbatch not found in PATH' -- env PATH="$W/nobin" "$R" submit job.ini
  expect $np 5 '--dry-run' -- env PATH="$W/nobin" "$R" submit job.ini
  expect $np 5 'RDML_SBATCH="/nonexistent/sbatch"' -- env RDML_SBATCH=/nonexistent/sbatch "$R" submit job.ini
  expect $np 5 'not an executable' -- env RDML_SBATCH="$W/notexec" "$R" submit job.ini
  # sbatch refusing: its message and exit status
  expect $np 5 'Invalid account or account/partition combination' -- env RDML_SBATCH="$W/refuse" "$R" submit job.ini
  expect $np 5 'exit status 1' -- env RDML_SBATCH="$W/refuse" "$R" submit job.ini
  expect $np 5 'instead of a job id' -- env RDML_SBATCH="$W/noid" "$R" submit job.ini
  # refused in the middle of a chain: says which jobs are already queued
  rm -f count
  expect $np 5 'scancel 101 102' -- env RDML_SBATCH="$W/fake-sbatch" FAKE_FAIL_AT=103 "$R" submit job.ini --array 2
  # bad [slurm] values (exit 4) and usage (exit 3)
  expect $np 4 'slurm.time' -- "$R" submit job.ini --dry-run --set slurm.time=abc
  expect $np 4 'not a time limit' -- "$R" submit job.ini --dry-run --set slurm.time=1:2:3:4
  expect $np 4 'it must be > 0' -- "$R" submit job.ini --dry-run --set slurm.time=0
  expect $np 4 'not a memory size' -- "$R" submit job.ini --dry-run --set slurm.mem=16GB
  expect $np 4 'not a partition name' -- "$R" submit job.ini --dry-run --set 'slurm.partition=a b'
  expect $np 4 'slurm.launcher' -- "$R" submit job.ini --dry-run --set slurm.launcher=ssh
  expect $np 4 'slurm.nodes' -- "$R" submit job.ini --dry-run --set slurm.nodes=0
  expect $np 4 'ntasks = 2 is less than nodes = 4' -- "$R" submit job.ini --dry-run --set slurm.nodes=4 --set slurm.ntasks=2
  expect $np 4 'is not an sbatch option' -- "$R" submit job.ini --dry-run --set slurm.extra=constraint=x
  expect $np 4 'set by rdmlearn submit itself' -- "$R" submit job.ini --dry-run --set slurm.extra=--array=1-4
  expect $np 4 'not a job name' -- "$R" submit job.ini --dry-run --set 'slurm.job_name=a$b'
  expect $np 4 'slurm.script_dir' -- "$R" submit job.ini --dry-run --set 'slurm.script_dir=a b'
  expect $np 3 '--array "0"' -- "$R" submit job.ini --dry-run --array 0
  expect $np 3 '--array "2/3"' -- "$R" submit job.ini --dry-run --array 2/3
  expect $np 3 '--array needs a value' -- "$R" submit job.ini --dry-run --array
  expect $np 3 'takes 1 to 1 arguments' -- "$R" submit --dry-run
  expect $np 5 'nope.ini' -- "$R" submit nope.ini --dry-run
done

# ---- a job that cannot run is not submitted: submit checks what the jobs will read (data
# root and subjects, weights, feature files, experiment and include files) first, and then
# neither writes scripts nor calls sbatch
fresh_out() { rm -rf out count sbatch.calls; }
nothing_done() {
  [[ ! -e sbatch.calls && ! -e out ]] && ok || bad "$1: sbatch was called or scripts written: $(cat sbatch.calls 2>/dev/null) $(ls out 2>/dev/null)"
}
S=(env RDML_SBATCH="$W/fake-sbatch" "$R" submit)
fresh_out; expect 1 5 "job.ini cannot run as configured" -- "${S[@]}" job.ini --set data.root=nods
nothing_done "missing data root"
fresh_out; expect 2 5 "dataset root 'nods' does not exist" -- "${S[@]}" job.ini --set data.root=nods
nothing_done "missing data root at 2 ranks"
fresh_out; expect 1 7 "data.subjects lists 4 but ds has no subj04 folder (available: 1)" -- "${S[@]}" job.ini --set data.subjects=1,4
nothing_done "missing subject"
fresh_out; expect 1 5 "embed.weights = w/model.safetensors: No such file or directory" -- "${S[@]}" job.ini \
  --set embed.backend=clip-vit --set embed.weights=w/model.safetensors
nothing_done "missing weights"
fresh_out; expect 1 4 "embed.weights is empty" -- "${S[@]}" job.ini --set embed.backend=clip-vit
nothing_done "empty weights"
fresh_out; expect 1 5 "embed.file = feats.npy" -- "${S[@]}" job.ini --set embed.backend=file --set embed.file=feats.npy
nothing_done "missing features"
# the weights only matter when the job embeds
fresh_out; "${S[@]}" job.ini --set embed.backend=clip-vit --set run.stages=rdm -q > st.out 2>&1 && [[ -s sbatch.calls ]] \
  && ok || bad "a job without the embed stage was refused for its weights: $(cat st.out)"
# experiments: each is the job plus its file (relative to the job's folder); their own inputs
mkdir -p exp
printf '[data]\nroot = ds\n[run]\noutput = out/res.h5\nexperiments = exp/a.ini, exp/b.ini\n' > job2.ini
printf '[pairs]\nexperiment = a\n' > exp/a.ini
fresh_out; expect 1 5 "run.experiments: exp/b.ini: cannot open config file" -- "${S[@]}" job2.ini
nothing_done "missing experiment file"
printf '[pairs]\nexperiment = b\n[embed]\nbackend = clip-vit\nweights = /nonexistent/model.safetensors\n' > exp/b.ini
fresh_out; expect 1 5 "run.experiments: exp/b.ini: embed.weights = /nonexistent/model.safetensors" -- "${S[@]}" job2.ini
nothing_done "experiment with missing weights"
printf '[pairs]\nexperiment = b\n' > exp/b.ini
fresh_out; "${S[@]}" job2.ini -q > st.out 2>&1 && [[ -s sbatch.calls ]] && ok || bad "good experiments refused: $(cat st.out)"
# includes are read with the job file
printf '[run]\ninclude = blocks/missing.ini\noutput = out/res.h5\n[data]\nroot = ds\n' > job3.ini
fresh_out; expect 1 5 "[run] include = blocks/missing.ini: cannot open config file" -- "${S[@]}" job3.ini
nothing_done "missing include"
# run.output naming a folder
mkdir -p resdir
fresh_out; expect 1 5 "run.output = resdir is a folder, not a results file" -- "${S[@]}" job.ini --set run.output=resdir
# a dry run still writes the scripts, with a warning
fresh_out; "$R" submit job.ini --dry-run --set data.root=nods > st.out 2>&1 && [[ -s out/res.h5.slurm/run.sbatch ]] \
  && grep -q "warning: the jobs would fail as things are: data.root: dataset root 'nods' does not exist" st.out \
  && ok || bad "dry run with a missing root: $(cat st.out)"
rm -rf out

# a good dry run at 2 ranks writes the scripts once and exits 0 on every rank
rm -rf out
if "${MPI[@]}" -n 2 "$RDMLEARN" submit job.ini --dry-run > np2.out 2>&1 && [[ -s out/res.h5.slurm/run.sbatch ]] \
   && [[ $(grep -c '^wrote ' np2.out) -eq 2 ]]; then ok; else bad "dry run at 2 ranks: $(cat np2.out)"; fi

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
