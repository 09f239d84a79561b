#!/usr/bin/env bash
# Models and layers as a sweep axis (issue 17, item 4): a job over 3 networks x 4 layers, run
# end to end on a tiny synthetic dataset with random-weight checkpoints written here by
# torchvision. The job includes the shipped jobs/zoo-layers.ini (AlexNet from the job itself)
# and configs/zoo/resnet18.ini and configs/zoo/svr.ini (pairs.embeddings = all); the third
# network is a small DINOv2 (width 192, 3 blocks: tools/vit_reference.py) instead of the
# shipped ViT-B/16, which costs 17 GFLOP per image. Checks:
#  - the sweep table /sweep/zoo/svr has 12 embeddings x folds rows with the embedding,
#    architecture, layer and depth columns; its CSV copy the same; every embedding has its
#    own results group /experiments/zoo/svm@<embedding>, equal to the sweep table, and all
#    share the pairs and folds;
#  - encode (a job-level stage run after the experiments) fits all 12 embeddings;
#  - evaluate scores each per-embedding SVR (its model name says the embedding); the train
#    stage takes the same axis (an MLP on two embeddings, then on one: the other's results go);
#  - the report has the layer-curve figure (score against layer depth) and its table;
#  - the svm stage's results are identical at 1 and 3 ranks (tools/compare_results.py), and
#    for two --array shares and a merge;
#  - a second run is up to date; embeddings recomputed by an experiment rerun the svm stage;
#  - pairs.embeddings naming an embedding that does not exist fails on every rank with the
#    available ones listed, and leaves the results file as it was.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}" "${RDML_SRC:?}"
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/rdml-zl.XXXXXX"); [[ -n ${KEEP:-} ]] || trap 'rm -rf "$W"' EXIT
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0
fail() { echo "FAIL: $*"; fails=$((fails+1)); }
cd "$W" || exit 1

# random weights at the paths the shipped files name (weights/ under the folder run from)
$PY - "$RDML_SRC/tools" <<'PYEOF' || { echo "FAIL: writing weights"; exit 1; }
import sys, os, torch, torchvision
sys.path.insert(0, sys.argv[1])
from pth_to_safetensors import save_safetensors
from vit_reference import build
os.makedirs("weights", exist_ok=True)
torch.manual_seed(0)
torch.save(torchvision.models.alexnet(weights=None).state_dict(), "weights/alexnet-owt-7be5be79.pth")
torch.save(torchvision.models.resnet18(weights=None).state_dict(), "weights/resnet18-f37072fd.pth")
save_safetensors(build("dinov2", depth=3, width=192, pos_grid=16).state_dict(), "weights/dinov2-tiny.safetensors")
PYEOF

cat >dinov2.ini <<EOF
[embed]
backend = torchvision
model = dinov2
name = dinov2
weights = weights/dinov2-tiny.safetensors
layers = blocks.0, blocks.1, blocks.2, norm
[run]
stages = embed
EOF
cat >job.ini <<EOF
[run]
include = $RDML_SRC/jobs/zoo-layers.ini
experiments = $RDML_SRC/configs/zoo/resnet18.ini, $W/dinov2.ini, $RDML_SRC/configs/zoo/svr.ini
output = $W/prep/r.h5
log_level = warn
[synth]
subjects = 1
images = 32
image_size = 32
lh_vertices = 150
rh_vertices = 150
test_images = 0
[data]
root = $W/ds
subjects = 1
rois = V1
images = 32
[embed]
batch = 8
[pairs]
images = 32
[split]
folds = 3
[evaluate]
bootstrap = 20
permutations = 20
bootstrap_subjects = false
EOF
"$RDMLEARN" synth "$W/ds" --config job.ini -q || { echo "FAIL: synth"; exit 1; }
mkdir -p prep np1 np3
# the experiments' own keys override the job's: 3 folds and 40 images from the command line
run() { local np=$1; shift; "${MPI[@]}" -n "$np" "$RDMLEARN" run job.ini --set split.folds=3 --set pairs.images=32 "$@"; }
t0=$(date +%s.%N)
run 2 --until embed >log.prep 2>&1 || { fail "embed"; cat log.prep; }
t1=$(date +%s.%N)
cp prep/r.h5 np1/r.h5; cp prep/r.h5 np3/r.h5
run 1 --set run.output="$W/np1/r.h5" >log.np1 2>&1 || { fail "run at 1 rank"; cat log.np1; }
t2=$(date +%s.%N)
run 3 --set run.output="$W/np3/r.h5" >log.np3 2>&1 || { fail "run at 3 ranks"; cat log.np3; }
echo "embed (2 ranks) $(echo "$t1 - $t0" | bc) s; svm, evaluate, report (1 rank) $(echo "$t2 - $t1" | bc) s"
$PY "$RDML_SRC/tools/compare_results.py" np1/r.h5 np3/r.h5 --ignore config --ignore ranks >cmp.log 2>&1 \
  && echo "1 and 3 ranks: identical results" || { fail "results differ between 1 and 3 ranks"; head -20 cmp.log; }

# a SLURM-array split of the 12 x 3 tasks (two shares, then the merge) gives the same file
mkdir -p arr; cp prep/r.h5 arr/r.h5
for i in 0 1; do run 1 --set run.output="$W/arr/r.h5" --array $i/2 >log.arr$i 2>&1 || { fail "array share $i"; tail -3 log.arr$i; }; done
run 2 --set run.output="$W/arr/r.h5" --set run.log_level=info >log.merge 2>&1 || { fail "array merge"; tail -3 log.merge; }
grep -q "svm: 36 tasks: 36 from the journal, 0 computed" log.merge || fail "the merge recomputed tasks: $(grep 'svm: 36' log.merge)"
$PY "$RDML_SRC/tools/compare_results.py" np1/r.h5 arr/r.h5 --ignore config --ignore ranks >cmp2.log 2>&1 \
  || { fail "array shares + merge differ from one run"; head -5 cmp2.log; }

$PY - "$W/np1/r.h5" "$W/np1/r.sweep.csv" "$W/np1/r.summary.csv" <<'PYEOF' || fail "sweep table / results layout"
import sys, csv, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["/sweep/zoo/svr/tasks"]
emb = t["embedding"].asstr()[()]
arch = t["architecture"].asstr()[()]
layer = t["layer"].asstr()[()]
depth, rel = t["depth"][()], t["relative_depth"][()]
M = t["metrics"][()]
names = sorted(set(emb))
assert len(names) == 12 and M.shape == (12 * 3, 4), (names, M.shape)
assert sorted(set(arch)) == ["alexnet", "dinov2", "resnet18"], set(arch)
for a in set(arch):
    assert len({e for e, b in zip(emb, arch) if b == a}) == 4, a
for e in names:  # the columns are the embedding's attributes
    d = f[f"/subjects/subj01/embeddings/{e}"]
    i = list(emb).index(e)
    assert (arch[i], layer[i], depth[i]) == (d.attrs["architecture"], d.attrs["layer"], d.attrs["depth"]), e
    assert abs(rel[i] - d.attrs["depth"] / (d.attrs["n_modules"] - 1)) < 1e-12 and 0 <= rel[i] <= 1, e
    assert d.attrs["relative_depth"] == rel[i]
    g = f[f"/experiments/zoo/svm@{e}/subj01/V1"]
    assert g.attrs["embedding"] == e
    rows = [k for k in range(len(emb)) if emb[k] == e]
    assert np.array_equal(g["fold_metrics"][()], M[rows]), e
    # every embedding's model on the same pairs and folds
    assert g.attrs["pairs"] == "/experiments/zoo/pairs/subj01/V1"
    tp0 = f[f"/experiments/zoo/svm@{names[0]}/subj01/V1/fold_1/test_pairs"][()]
    assert np.array_equal(g["fold_1/test_pairs"][()], tp0), e
assert np.isfinite(M).all() and len({round(float(x), 12) for x in M[:, 0]}) > 12, M[:, 0]
assert "svm" not in f["/experiments/zoo"], list(f["/experiments/zoo"])
# the CSV copies carry the columns
rows = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == 36 * 4 and {r["embedding"] for r in rows} == set(names), len(rows)
for r in rows:
    k = [i for i in range(36) if emb[i] == r["embedding"] and t["fold"][i] == int(r["fold"])]
    assert len(k) == 1 and r["architecture"] == arch[k[0]] and float(r["value"]) == M[k[0], ["r2", "mse", "pearson", "spearman"].index(r["metric"])], r
sums = list(csv.DictReader(open(sys.argv[3])))
assert len(sums) == 12 * 4 and all(r["layer"] for r in sums), len(sums)
# evaluate: every per-embedding SVR is a model of the fold comparison
ev = f["/evaluate/folds/zoo/V1/subj01"]
models = list(ev["models"].asstr()[()])
for e in names:
    assert f"svm@{e}" in models and f"embedding:{e}" in models, (e, models)
# encode ran after the experiments: an encoding model for every one of the 12 embeddings
enc = sorted(f["/encode"].keys())
assert enc == names, ("encode did not see every experiment's embeddings", enc)
for e in names:
    assert "V1" in f[f"/encode/{e}/subj01"], e
print(f"sweep table: {M.shape[0]} rows = 12 embeddings x 3 folds; CSV, groups, encode and evaluate agree")
PYEOF

# the report: the layer-curve figure and table
R=np1/report/report.html
[[ -f np1/report/layers_V1.svg && -f np1/report/layers_V1.png ]] || fail "no layer-curve figure: $(ls np1/report | head)"
grep -q 'id="layers"' "$R" && grep -q 'Score against layer depth, selection V1' "$R" \
  && grep -q 'layers_V1.png' "$R" && grep -q 'href="#layers"' "$R" || fail "the report has no layer curves"
for l in features.12 layer3 blocks.1; do
  grep -q "<td>$l</td>" "$R" || fail "the layer table lacks $l"
done
grep -q 'RDM spearman' "$R" || fail "the layer table lacks the evaluate column"
grep -q 'encoding median r' "$R" || fail "the layer curves lack the encoding models"

# a second run: every stage up to date
run 2 --set run.output="$W/np1/r.h5" --set run.log_level=info >log.again 2>&1 || fail "second run"
grep -q "svm.*up to date" log.again || { fail "second run: svm not up to date"; grep -i "svm" log.again | head -5; }
# recomputed embeddings (another pooling in one experiment) rerun the svm stage: the svm
# experiment's own configuration did not change, the embeddings' stamps did
cp np1/r.h5 old.h5
sed -i 's/^layers = blocks.0, blocks.1, blocks.2, norm$/&\npooling = mean/' dinov2.ini
run 2 --set run.output="$W/np1/r.h5" --set run.log_level=info --set run.stages=rdm,embed,svm >log.new 2>&1 \
  || { fail "run with recomputed embeddings"; tail -5 log.new; }
grep -q "zoo: stage svm is up to date" log.new && fail "recomputed embeddings did not rerun svm"
$PY - old.h5 np1/r.h5 <<'PYEOF' || fail "recomputed embeddings: results"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert b["/subjects/subj01/embeddings/dinov2.norm"].attrs["pooling"] == "mean"
for e in ("dinov2.norm", "alexnet.features.2"):
    same = np.array_equal(a[f"/experiments/zoo/svm@{e}/subj01/V1/fold_metrics"][()],
                          b[f"/experiments/zoo/svm@{e}/subj01/V1/fold_metrics"][()])
    assert same == e.startswith("alexnet"), e
print("recomputed embeddings reran the svm stage (dinov2 changed, alexnet the same)")
PYEOF

# the train stage takes the same axis (a 2-epoch MLP on two embeddings; `rdmlearn train`)
cp np3/r.h5 tr.h5
"${MPI[@]}" -n 2 "$RDMLEARN" train --config job.ini --set run.output="$W/tr.h5" --set pairs.experiment=nets \
  --set pairs.embeddings="alexnet.features.2, resnet18.layer4" --set pairs.set=all --set pairs.labels=continuous \
  --set train.model=mlp --set train.epochs=2 --set train.null_shuffles=10 --set split.folds=3 >log.train 2>&1 \
  || { fail "train with pairs.embeddings"; tail -5 log.train; }
$PY - tr.h5 <<'PYEOF' || fail "train: per-embedding results"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert sorted(f["/experiments/nets"]) == ["mlp@alexnet.features.2", "mlp@resnet18.layer4", "pairs"], list(f["/experiments/nets"])
t = f["/sweep/nets/mlp/tasks"]
assert list(t["embedding"].asstr()[()]) == ["alexnet.features.2"] * 3 + ["resnet18.layer4"] * 3
for e in ("alexnet.features.2", "resnet18.layer4"):
    g = f[f"/experiments/nets/mlp@{e}/subj01/V1"]
    assert g.attrs["embedding"] == e and g.attrs["model"] == "mlp"
print("train: one MLP per embedding")
PYEOF
# fewer embeddings: the results of the one left out go (no stale model for evaluate, report)
"${MPI[@]}" -n 2 "$RDMLEARN" train --config job.ini --set run.output="$W/tr.h5" --set pairs.experiment=nets \
  --set pairs.embeddings=alexnet.features.2 --set pairs.set=all --set pairs.labels=continuous \
  --set train.model=mlp --set train.epochs=2 --set train.null_shuffles=10 --set split.folds=3 >log.train2 2>&1 \
  || { fail "train with one embedding"; tail -5 log.train2; }
$PY -c "import h5py, sys; k = sorted(h5py.File('tr.h5')['/experiments/nets']); sys.exit(k != ['mlp@alexnet.features.2', 'pairs'])" \
  || fail "train: a dropped embedding's results stayed"

# a name that does not exist: every rank stops with the available ones, the file unchanged
cp np3/r.h5 before.h5
run 2 --set run.output="$W/np3/r.h5" \
  --set pairs.embeddings=alexnet.features.2,resnet18.layer9 --set run.stages=svm >log.bad 2>&1; rc=$?
[[ $rc != 0 ]] || fail "an unknown embedding was accepted"
grep -q "pairs.embeddings names 'resnet18.layer9', but subj01 has no such embedding" log.bad \
  && grep -q "available: alexnet.classifier.4, alexnet.features.12" log.bad || { fail "unclear error: $(cat log.bad)"; }
n=$(grep -c "resnet18.layer9" log.bad); [[ $n -ge 1 ]] || fail "no error message"
cmp -s before.h5 np3/r.h5 || fail "a failed run changed the results file"
"${MPI[@]}" -n 2 "$RDMLEARN" svm --config job.ini --set run.output="$W/np3/r.h5" \
  --set pairs.embeddings=nosuch >log.bad2 2>&1 && fail "rdmlearn svm took an unknown embedding"
grep -q "available:" log.bad2 || fail "rdmlearn svm: unclear error: $(cat log.bad2)"

if [[ $fails -gt 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "OK"
