#!/usr/bin/env bash
# tools/cost_model.py (docs/scaling.md) on the committed job files, in seconds, no run:
#  - every job in jobs/ parses (includes, experiments, defaults) and every stage it lists gets
#    a positive predicted time and memory; the committed coefficients record the machine
#    and the BLAS kernel they were measured with;
#  - the experiments are merged as `rdmlearn run` merges them: the stages the model predicts
#    are exactly the job's run.stages plus each experiment's model stage;
#  - predictions grow with the images (1000 < 3000 < 9841) and the rdm stage shrinks with
#    more ranks; the NSD prediction on 4 nodes is faster than on 1;
#  - the log parser reads rdmlearn's stage lines;
#  - jobs/full-subject.ini's prediction on 2 ranks is printed (for the record).
set -uo pipefail
SRC=${RDML_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
/usr/bin/python3 - "$SRC" <<'PYEOF'
import glob, importlib.util, io, json, os, sys, contextlib
src = sys.argv[1]
spec = importlib.util.spec_from_file_location("cm", os.path.join(src, "tools", "cost_model.py"))
cm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cm)
fails = passes = 0
def check(ok, what):
    global fails, passes
    if ok:
        passes += 1
    else:
        fails += 1
        print("FAIL:", what)

def run(args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cm.main(args + ["--json"])
    check(rc == 0, f"exit status of {args}")
    return json.loads(out.getvalue())

coef = json.load(open(os.path.join(src, "tools", "cost_model.json")))
for k in ("kernel", "cpu", "cores", "date"):
    check(k in coef.get("machine", {}), f"tools/cost_model.json records the machine's {k}")
check(len(coef.get("measurements", [])) >= 4 and
      {m["ranks"] for m in coef["measurements"]} == {1, 2},
      "calibrated from measured runs on 1 and 2 ranks")

jobs = sorted(glob.glob(os.path.join(src, "jobs", "*.ini")))
check(len(jobs) >= 7, f"jobs found: {len(jobs)}")
for job in jobs:
    name = os.path.basename(job)
    r = run([job, "--images", "2000", "--vertices", "20000"])
    c, exps = cm.job_configs(job, [])
    want = [s for s in cm.STAGES if s in cm.listv(c.get("run.stages"))
            and s not in ("svm", "train")]
    for _, e in exps:
        if "embed" in cm.listv(e.get("run.stages")) and "embed" not in want:
            want.append("embed")
    nmodel = sum(s in ("svm", "train") for _, e in exps for s in cm.listv(e.get("run.stages")))
    got = [s["stage"] for s in r["stages"]]
    check(sorted(set(got) - {"svm", "train"}) == sorted(want),
          f"{name}: stages {got}, job lists {want}")
    check(sum(s in ("svm", "train") for s in got) == nmodel,
          f"{name}: {nmodel} model stage(s) of its experiments, predicted {got}")
    for s in r["stages"]:
        check(s["seconds"] > 0 and s["peak_bytes_per_rank"] > 0,
              f"{name}: {s['stage']} predicted {s['seconds']} s, {s['peak_bytes_per_rank']} B")
    tot = [run([job, "--images", str(n), "--vertices", "39548", "--set", "data.images=0"])
           ["total_seconds"]
           for n in (1000, 3000, 9841)]
    check(tot[0] < tot[1] < tot[2], f"{name}: total not increasing in images: {tot}")

# the keys the model reads resolve as rdmlearn resolves them (job + experiment, includes,
# defaults): `rdmlearn config --config JOB --config EXPERIMENT`
import subprocess
exe = os.environ.get("RDMLEARN") or os.path.join(src, "build", "rdmlearn")
KEYS = ["data.rois", "data.images", "data.subjects", "split.scheme", "split.folds",
        "split.test_size", "pairs.set", "pairs.k", "pairs.images", "svm.solver", "svm.rank",
        "train.model", "train.epochs", "train.batch", "train.tower", "encode.n_alphas",
        "encode.block", "evaluate.bootstrap", "evaluate.permutations", "embed.backend",
        "run.stages"]
def rdml_config(files):
    out = subprocess.run([exe, "config"] + sum((["--config", f] for f in files), []),
                         capture_output=True, text=True)
    check(out.returncode == 0, f"rdmlearn config {files}: {out.stderr[-300:]}")
    d, sec = {}, None
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("["):
            sec = line[1:-1]
        elif "=" in line and not line.startswith(";"):
            k, v = line.split("=", 1)
            d[f"{sec}.{k.strip()}"] = v.strip().strip('"')
    return d
norm = lambda v: "".join(str(v).split())
if os.path.exists(exe):
    for job in jobs:
        c, exps = cm.job_configs(job, [])
        pairs = [([job], c)] + [([job, cm.resolve(n, os.path.dirname(job))], e)
                                for n, e in exps]
        for files, cc in pairs:
            ref = rdml_config(files)
            for k in KEYS:
                check(norm(cc.get(k)) == norm(ref.get(k)),
                      f"{[os.path.basename(f) for f in files]}: {k} = {cc.get(k)!r}, "
                      f"rdmlearn says {ref.get(k)!r}")
else:
    check(False, f"no rdmlearn at {exe} (set RDMLEARN)")

full = os.path.join(src, "jobs", "full-subject.ini")
r1 = run([full, "--ranks", "1"])
r2 = run([full, "--ranks", "2"])
rdm = lambda r: [s["seconds"] for s in r["stages"] if s["stage"] == "rdm"][0]
check(rdm(r2) < rdm(r1), f"rdm on 2 ranks {rdm(r2)} s not below 1 rank {rdm(r1)} s")
n1 = run([full, "--nsd", "--nodes", "1", "--cores", "64"])
n4 = run([full, "--nsd", "--nodes", "4", "--cores", "64"])
check(len(n1["subjects"]) == 8 and n1["subjects"][3][1] == 8779, "the NSD's 8 subjects")
check(n4["total_seconds"] < n1["total_seconds"], "NSD: 4 nodes faster than 1")

bad = subprocess.run([sys.executable, os.path.join(src, "tools", "cost_model.py"),
                      os.path.join(src, "jobs", "no-such-job.ini")], capture_output=True, text=True)
check(bad.returncode != 0 and "no-such-job.ini not found" in bad.stderr + bad.stdout,
      f"a missing job file is named: {bad.returncode} {bad.stderr[-200:]}")
warn = io.StringIO()
with contextlib.redirect_stdout(warn):
    cm.main([full, "--nsd", "--nodes", "1", "--cores", "64", "--node-mem-gib", "64"])
check("warning: 64 ranks need" in warn.getvalue(), "node memory warning (evaluate's pair list)")

log = """run: stage rdm
run: stage rdm done in 2.6 s
run: svm: stage svm done in 10.4 s
run: sia: stage train done in 14.9 s
run: stage evaluate done in 4.1 s
run: finished in 40.0 s; results in x.h5"""
st = cm.parse_log(log)
check(st == {"rdm": 2.6, "svm": 10.4, "train": 14.9, "evaluate": 4.1, "total": 40.0,
             "report": 40.0 - 2.6 - 10.4 - 14.9 - 4.1} or abs(st["report"] - 8.0) < 1e-9,
      f"parse_log: {st}")

out = io.StringIO()
with contextlib.redirect_stdout(out):
    cm.main([full, "--ranks", "2"])
print(out.getvalue())
print(f"{passes} passed, {fails} failed")
sys.exit(1 if fails else 0)
PYEOF
