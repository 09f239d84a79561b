#!/usr/bin/env bash
# What happens to run.output around a run (docs/run.md, "The output"):
#  - the lock: a command holding run.output (here a stand-in holding <output>.lock with its
#    host/PID/time) makes `run`, `rdm` and `svm` on that output fail fast, naming the holder,
#    on every rank alike, without touching the file; two runs of different experiments
#    started together on one output (jobs/paper.ini and jobs/paper-mlp-depths.ini do that):
#    one is refused or waits, the other's results are intact, and after a rerun both
#    experiments are in the HDF5 file and the CSV tables; a holder killed with kill -9 does
#    not block the next run;
#  - the CSV tables follow the committed HDF5 file: a run killed between the commit and the
#    CSV (simulated: table removed / stale, temporary CSV and journal records left) is
#    repaired by the rerun, although every stage is up to date;
#  - a damaged results file: a flipped byte in a dataset fails its Fletcher-32 checksum with a
#    hint; a truncated file: the message says what to do, --force keeps the damaged file
#    aside as <output>.damaged-<time> and starts a fresh one.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}"
PY=/usr/bin/python3
W=$(mktemp -d)
HOLDER=
cleanup() { [[ -n $HOLDER ]] && kill "$HOLDER" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

cat >"$W/job.ini" <<EOF
[synth]
subjects = 1
images = 100
image_size = 24
lh_vertices = 200
rh_vertices = 200
test_images = 0
[data]
root = $W/ds
rois = V1
[embed]
backend = pixels
[pairs]
k = 20
[split]
folds = 3
[run]
stages = rdm, embed, svm
output = $W/out/results.h5
log_level = warn
EOF
"$RDMLEARN" synth "$W/ds" --config "$W/job.ini" -q || { echo "synth failed"; exit 1; }
OUT=$W/out/results.h5
run() { "${MPI[@]}" -n "$1" "$RDMLEARN" run "$W/job.ini" "${@:2}"; }

# ---- two runs of different experiments started together on a new output
printf '[pairs]\nexperiment = second\nk = 15\n' >"$W/second.ini"
run 2 >"$W/logA" 2>&1 & pa=$!
run 2 --config "$W/second.ini" >"$W/logB" 2>&1 & pb=$!
wait $pa; sa=$?; wait $pb; sb=$?
echo "together: exit $sa and $sb"
for x in A B; do
  grep -q "cannot reopen\|cannot rename\|cannot open" "$W/log$x" && bad "run $x broke on the other's files: $(cat "$W/log$x")" || ok
done
if [[ $sa != 0 || $sb != 0 ]]; then
  [[ $sa == 0 || $sb == 0 ]] && ok || bad "both runs failed: $(cat "$W/logA" "$W/logB")"
  cat "$W/logA" "$W/logB" | grep -q "is in use: held by \`rdmlearn run $W/job.ini\` (PID [0-9]* on host $(hostname), since " \
    && ok || bad "the refused run does not name the holder: $(cat "$W/logA" "$W/logB")"
fi
# the refused run again, now alone; then both experiments are in the file and the tables
[[ $sa == 0 ]] || { run 2 >"$W/logA2" 2>&1 && ok || bad "rerun A: $(cat "$W/logA2")"; }
[[ $sb == 0 ]] || { run 2 --config "$W/second.ini" >"$W/logB2" 2>&1 && ok || bad "rerun B: $(cat "$W/logB2")"; }
check_tables() { # the CSV tables equal the sweep tables of the HDF5 file
  $PY - "$OUT" "${OUT%.h5}.sweep.csv" "${OUT%.h5}.summary.csv" "$@" <<'PYEOF'
import sys, csv, h5py
f = h5py.File(sys.argv[1], "r")
want = set(sys.argv[4:])
rows = list(csv.DictReader(open(sys.argv[2])))
sums = list(csv.DictReader(open(sys.argv[3])))
have = {e + "/" + m for e in f["/sweep"] for m in f["/sweep"][e]}
assert have == want, (have, want)
assert {r["experiment"] + "/" + r["model"] for r in rows} == want
for key in want:
    e, m = key.split("/")
    t = f["/sweep/%s/%s/tasks" % (e, m)]
    cols = t["metrics"].attrs["columns"].split(",")
    mine = [r for r in rows if r["experiment"] == e and r["model"] == m]
    assert len(mine) == t["metrics"].shape[0] * len(cols), (key, len(mine))
    for r in mine:
        k = [i for i in range(t["fold"].shape[0]) if t["fold"][i] == int(r["fold"])
             and t["selection"].asstr()[i] == r["selection"]]
        assert len(k) == 1 and float(r["value"]) == t["metrics"][k[0], cols.index(r["metric"])], r
    s = f["/sweep/%s/%s/summary" % (e, m)]
    mine = [r for r in sums if r["experiment"] == e and r["model"] == m]
    assert len(mine) == s["mean"].shape[0] * len(cols)
    for r in mine:
        assert float(r["mean"]) == s["mean"][0, cols.index(r["metric"])], r
    assert "experiments/%s/svm" % e in f, key
PYEOF
}
check_tables main/svm second/svm && ok || bad "after the runs together: the file or the tables lost an experiment"

# ---- the lock, held by a stand-in (a POSIX lock conflicts with the OFD lock rdmlearn takes)
[[ ! -e $OUT.lock ]] && ok || bad "the lock file stayed after the runs"
cp "$OUT" "$W/before.h5"
$PY - "$OUT.lock" "$W/held" <<'PYEOF' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, b"host=node-x\npid=4242\nsince=2026-01-02T03:04:05Z\ncommand=rdmlearn run other.ini\n")
open(sys.argv[2], "w").close()
time.sleep(120)
PYEOF
HOLDER=$!
for _ in $(seq 100); do [[ -e $W/held ]] && break; sleep 0.1; done
for cmd in run rdm svm; do
  st=$W/st-$cmd; mkdir -p "$st"
  if [[ $cmd == run ]]; then args=(run "$W/job.ini"); else args=("$cmd" --config "$W/job.ini"); fi
  t0=$(date +%s.%N)
  out=$(RDML_STATUS_DIR=$st "${MPI[@]}" -n 2 "$RDMLEARN" "${args[@]}" 2>&1); rc=$?
  dt=$(echo "$(date +%s.%N) - $t0" | bc)
  [[ $rc == 5 ]] && ok || bad "$cmd on a locked output: exit $rc (5 expected): $out"
  grep -qF "is in use" <<<"$out" && grep -qF "rdmlearn run other.ini" <<<"$out" \
    && grep -qF "PID 4242 on host node-x" <<<"$out" && grep -qF "since 2026-01-02T03:04:05Z" <<<"$out" \
    && ok || bad "$cmd on a locked output: the holder is not named: $out"
  grep -qF "rank 0:" <<<"$out" && bad "$cmd: rank-prefixed lock message: $out" || ok
  [[ $(cat "$st"/rank*.status | sort -u) == "5 io" && $(ls "$st" | wc -l) == 2 ]] && ok \
    || bad "$cmd: not every rank stopped with the same error: $(cat "$st"/rank*.status)"
  (( $(echo "$dt < 15" | bc) )) && ok || bad "$cmd on a locked output took $dt s"
done
cmp -s "$OUT" "$W/before.h5" && ok || bad "a refused command changed the results file"
kill "$HOLDER"; wait "$HOLDER" 2>/dev/null; HOLDER=

# an experiment file cannot send its results elsewhere: the job's lock covers the job's output
printf '[pairs]\nexperiment = elsewhere\n[run]\noutput = %s\n' "$W/other/r.h5" >"$W/elsewhere.ini"
sed 's|^\[run\]$|[run]\nexperiments = elsewhere.ini|' "$W/job.ini" >"$W/expjob.ini"
out=$("${MPI[@]}" -n 2 "$RDMLEARN" run "$W/expjob.ini" 2>&1) && bad "an experiment's own run.output was accepted" || {
  grep -qF "run.output = $W/other/r.h5 differs from the job's $OUT" <<<"$out" && grep -qF "(nothing was run)" <<<"$out" \
    && [[ ! -e $W/other/r.h5 ]] && ok || bad "experiment with its own run.output: $out"; }

# ---- a holder killed with kill -9 does not block the next run
run 2 --force >"$W/logK" 2>&1 & pk=$!
# (the stand-in's lock file is still there, as a crashed holder leaves it: it is reused)
holder=
for _ in $(seq 300); do
  holder=$(sed -n 's/^pid=//p' "$OUT.lock" 2>/dev/null)
  [[ -n $holder ]] && grep -q rdmlearn "/proc/$holder/cmdline" 2>/dev/null && break
  holder=; sleep 0.05
done
[[ -n $holder ]] && ok || bad "no rdmlearn holder recorded in $OUT.lock"
[[ -n $holder ]] && kill -9 "$holder"
wait $pk 2>/dev/null
for _ in $(seq 100); do kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
pkill -9 -f "^$RDMLEARN run $W/job.ini" 2>/dev/null
sleep 0.3
run 2 --set run.log_level=info >"$W/logK2" 2>&1 && ok || bad "the run after a kill -9'd holder: $(cat "$W/logK2")"
grep -q "is in use" "$W/logK2" && bad "a dead holder blocked the next run" || ok
check_tables main/svm second/svm && ok || bad "after the kill -9 and rerun: tables"

# ---- the CSV tables follow the HDF5 file (a kill between the commit and the tables)
SW=${OUT%.h5}.sweep.csv SU=${OUT%.h5}.summary.csv
cp "$SW" "$W/sweep.good"
rm "$SW"
sed -i 's/^main,svm,1,V1,accuracy,0\.[0-9]*/main,svm,1,V1,accuracy,0.123/' "$SU"
touch -d '2000-01-01' "$SU"
echo "half a table" >"$SW.tmp-99999"
run 2 --set run.log_level=info >"$W/logC" 2>&1 && ok || bad "rerun after a lost table: $(cat "$W/logC")"
n=$(grep -c 'up to date' "$W/logC"); [[ $n == 3 ]] && ok || bad "rerun: $n of 3 stages up to date"
cmp -s "$SW" "$W/sweep.good" && ok || bad "the missing sweep table was not rewritten"
grep -q '0\.123' "$SU" && bad "the stale summary table was kept" || ok
check_tables main/svm second/svm && ok || bad "after the repair: tables"
ls "$W/out" | grep -q 'tmp-' && bad "temporary files left: $(ls "$W/out")" || ok
# records of committed results left in the journal: an array share journals every task,
# then the plain run finds the stage up to date and clears them
run 1 --array 0/1 >"$W/logJ" 2>&1 && ok || bad "array share: $(cat "$W/logJ")"
n=$(ls "$OUT.journal" 2>/dev/null | grep -c '\.rec$'); [[ $n == 3 ]] && ok || bad "array share journaled $n of 3"
run 2 --set run.log_level=info >"$W/logJ2" 2>&1 && ok || bad "run after the array share: $(cat "$W/logJ2")"
grep -q "removed 3 journal record" "$W/logJ2" && [[ ! -e $OUT.journal ]] && ok \
  || bad "journal records of committed results stayed: $(ls "$OUT.journal" 2>&1) $(cat "$W/logJ2")"
# the other experiment's records stay until its own run finds them up to date
run 1 --array 0/1 --config "$W/second.ini" >/dev/null 2>&1
run 2 >/dev/null 2>&1
n=$(ls "$OUT.journal" 2>/dev/null | grep -c '\.rec$'); [[ $n == 3 ]] && ok || bad "another experiment's records: $n of 3 left"
run 2 --config "$W/second.ini" >/dev/null 2>&1
[[ ! -e $OUT.journal ]] && ok || bad "the second experiment's records stayed"

# ---- a damaged results file
# a flipped byte inside a dataset is a read error (Fletcher-32 checksums), not a wrong number
cp "$OUT" "$W/flip.h5"
$PY - "$W/flip.h5" <<'PYEOF' && ok || bad "could not damage a chunk"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    d = f["/subjects/subj01/rdm/V1"]
    assert d.fletcher32, "no checksum on the RDM"
    off = d.id.get_chunk_info(0).byte_offset
with open(sys.argv[1], "r+b") as g:
    g.seek(off + 100)
    b = g.read(1)
    g.seek(off + 100)
    g.write(bytes([b[0] ^ 0x10]))
PYEOF
out=$("${MPI[@]}" -n 2 "$RDMLEARN" svm --config "$W/job.ini" --set run.output="$W/flip.h5" 2>&1) \
  && bad "a flipped byte in the RDM went unnoticed" || {
  grep -q "Fletcher32" <<<"$out" && grep -qF "rerun the stage that wrote it with --force" <<<"$out" \
    && ok || bad "flipped byte: no checksum error with a hint: $out"; }
cp "$OUT" "$W/good.h5"
truncate -s 30000 "$OUT"
out=$(run 2 2>&1) && bad "a truncated results file was accepted" || {
  grep -qF "$OUT is damaged" <<<"$out" && grep -qF -- "--force" <<<"$out" \
    && grep -qF "damaged-<time>" <<<"$out" && ok || bad "no hint for a damaged file: $out"; }
out=$("${MPI[@]}" -n 2 "$RDMLEARN" svm --config "$W/job.ini" 2>&1) && bad "svm on a damaged file succeeded" || {
  grep -qF -- "--force" <<<"$out" && ok || bad "svm: no hint for a damaged file: $out"; }
[[ $(stat -c %s "$OUT") == 30000 ]] && ok || bad "the damaged file was changed without --force"
run 2 --force --set run.log_level=info >"$W/logF" 2>&1 && ok || bad "--force on a damaged file: $(cat "$W/logF")"
d=$(ls "$W/out" | grep '^results\.h5\.damaged-' | head -1)
[[ -n $d && $(stat -c %s "$W/out/$d") == 30000 ]] && ok || bad "the damaged file was not kept aside: $(ls "$W/out")"
grep -qF "kept it as $W/out/$d" "$W/logF" && ok || bad "the log does not say where the damaged file went: $(cat "$W/logF")"
ls "$W/out" | grep -q '^results\.sweep\.csv\.damaged-' && ok || bad "the damaged file's tables were not kept aside"
$PY -c "import h5py,sys; f=h5py.File(sys.argv[1],'r'); assert 'svm' in f['/meta/stages']" "$OUT" \
  && ok || bad "--force did not write a fresh results file"
check_tables main/svm && ok || bad "tables of the fresh file"

echo "$passes passed, $fails failed"
[[ $fails == 0 ]]
