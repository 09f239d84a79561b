#!/usr/bin/env bash
# The model zoo (embed.backend = torchvision; issue 17): AlexNet, VGG-16, ResNet-18 and
# ResNet-50 with random weights (tools/make_zoo_fixtures.py: torch.manual_seed, batch-norm
# statistics randomised) against torchvision 0.14 on the same non-square PNGs, several
# layers each (the first, middle ones, the last, containers), pooled gap / flatten, within
# 1e-4 of the largest reference value, and the preprocessed images within 1 grey level of
# torchvision's transform (test_zoo --preprocess); the .pth state dict gives bit-identical features to
# its safetensors copy; ResNet-50 with 6 layers (one of them `project`) is bit-identical at 1
# and 3 ranks and the projection keeps distances; at run.threads=2 (convolution tiles on both
# threads) it equals torchvision's within 1e-4 and the 1-thread run within 1e-5, and CLIP's
# named layers equal the 1-thread ones bit for bit; crafted malicious .pth files (a posix.system
# global, a REDUCE payload on an allowed callable, builtins.eval via STACK_GLOBAL, INST, an
# unknown opcode, a truncated archive and a truncated pickle) are refused naming what, and
# execute nothing (the marker file they would create stays absent); weights of another
# architecture name the first tensor that does not fit, a missing and a surplus tensor are
# named, an unknown layer lists the valid ones; `rdmlearn models` lists the layers. CLIP's
# blocks are addressable by name too (embed.layers with clip-vit: the tiny fixture model),
# and give bit for bit the single-layer (embed.layer) results.
# VGG-16's 528 MB of weights are made once, in the temp dir, and run on 2 images.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}" "${RDML_SRC:?}"
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/rdml-zoo.XXXXXX"); trap 'rm -rf "$W"' EXIT
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0
fail() { echo "FAIL: $*"; fails=$((fails+1)); }

"${MPI[@]}" -n 1 "$RDMLEARN" synth "$W/ds" -q --set synth.subjects=1 --set synth.images=10 \
  --set synth.image_size=40 --set synth.lh_vertices=60 --set synth.rh_vertices=60 \
  --set synth.test_images=0 || { echo "FAIL: synth"; exit 1; }
# non-square images of several shapes replace the first five (exercising resize and crop)
$PY - "$W/ds" <<'PYEOF' || { echo "FAIL: writing images"; exit 1; }
import sys, glob, numpy as np
from PIL import Image
files = sorted(glob.glob(f"{sys.argv[1]}/subj01/training_split/training_images/*.png"))[:5]
rng = np.random.default_rng(7)
for f, (w, h) in zip(files, [(300, 257), (257, 300), (320, 241), (224, 224), (500, 301)]):
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([128 + 100 * np.sin(x / (5.0 + rng.random())), 128 + 90 * np.cos(y / 9.0),
                  rng.random((h, w)) * 255], -1)
    Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(f)
print("\n".join(files))
PYEOF
mapfile -t PNGS < <(ls "$W"/ds/subj01/training_split/training_images/*.png | sort | head -5)

embed() { # NP OUT ARCH WEIGHTS LAYERS POOLING IMAGES [more --set]
  local np=$1 out=$2 arch=$3 w=$4 layers=$5 pool=$6 n=$7; shift 7
  "${MPI[@]}" -n "$np" "$RDMLEARN" embed "$W/ds" -q --set embed.backend=torchvision \
    --set embed.model="$arch" --set embed.weights="$w" --set embed.layers="$layers" \
    --set embed.pooling="$pool" --set data.images="$n" --set embed.batch=2 \
    --set run.output="$out" "$@"
}
compare() { # OUT ARCH LAYERS POOLING IMAGES: rdmlearn's rows against torchvision's
  $PY - "$W" "$@" <<'PYEOF'
import sys, h5py, numpy as np
W, out, arch, layers, pools, n = sys.argv[1:7]
layers, pools, n = layers.split(","), pools.split(","), int(n)
if len(pools) == 1: pools = pools * len(layers)
f = h5py.File(out, "r")
worst = 0
for layer, pool in zip(layers, pools):
    d = f[f"/subjects/subj01/embeddings/torchvision.{layer}"]
    ref = np.load(f"{W}/fx/{arch}.{layer}.npy")[:n].astype(np.float64)
    want = pool if pool != "auto" else "gap" if ref.ndim == 4 else "flatten"
    if want == "gap": ref = ref.mean((2, 3))
    ref = ref.reshape(n, -1)
    got = d[()]
    assert got.shape == ref.shape, (layer, got.shape, ref.shape)
    assert d.attrs["layer"] == layer and d.attrs["architecture"] == arch, dict(d.attrs)
    assert d.attrs["pooling"] == want, (layer, d.attrs["pooling"], want)
    rel = np.abs(got - ref).max() / np.abs(ref).max()
    worst = max(worst, rel)
    assert rel < 1e-4, (arch, layer, rel)
    assert np.abs(ref).max() > 0 and np.abs(ref[0] - ref[1]).max() > 0, layer
print(f"{arch}: {len(layers)} layers equal torchvision's within {worst:.2e} (max |diff| / max |ref|)")
PYEOF
}

# ---- AlexNet, ResNet-18 (+ .pth), ResNet-50, VGG-16 against torchvision ----
AL=features.0,features.7,avgpool,classifier.4,classifier
R18=bn1,layer1.0,layer2,layer3.1,layer4,avgpool,fc
R50=maxpool,layer1,layer3.5,layer4,avgpool,fc
VG=features.0,features.16,features,classifier.1,classifier.6
$PY "$RDML_SRC/tools/make_zoo_fixtures.py" "$W/fx" alexnet "$AL" "${PNGS[@]}" || fail "alexnet fixture"
$PY "$RDML_SRC/tools/make_zoo_fixtures.py" "$W/fx" resnet18 "$R18" "${PNGS[@]}" --pth || fail "resnet18 fixture"
$PY "$RDML_SRC/tools/make_zoo_fixtures.py" "$W/fx" resnet50 "$R50" "${PNGS[@]}" || fail "resnet50 fixture"
# preprocessing: rdmlearn's (test_zoo --preprocess) against torchvision's transform, in grey levels
"${RDML_BUILD:?}/tests/test_zoo" --preprocess "$W/pre.npy" "${PNGS[@]}" || fail "test_zoo --preprocess"
$PY - "$W" <<'PYEOF' || fail "preprocessing differs from torchvision's"
import sys, numpy as np
W = sys.argv[1]
a, b = np.load(f"{W}/pre.npy"), np.load(f"{W}/fx/resnet18.input.npy")
assert a.shape == b.shape == (5, 3, 224, 224), (a.shape, b.shape)
std = np.array([0.229, 0.224, 0.225])[None, :, None, None]
grey = np.abs(a.astype(np.float64) - b) * std * 255
assert grey.max() <= 1.0, grey.max()
print(f"preprocessing: max difference to torchvision {grey.max():.2e} grey levels "
      f"({(grey > 0.01).sum()} of {grey.size} values differ by more than 0.01)")
PYEOF
embed 1 "$W/al.h5" alexnet "$W/fx/alexnet.safetensors" "$AL" flatten,gap,flatten,auto,auto 5 && compare "$W/al.h5" alexnet "$AL" flatten,gap,flatten,auto,auto 5 || fail "alexnet"
embed 1 "$W/r18.h5" resnet18 "$W/fx/resnet18.safetensors" "$R18" gap,flatten,gap,gap,flatten,auto,auto 5 && compare "$W/r18.h5" resnet18 "$R18" gap,flatten,gap,gap,flatten,auto,auto 5 || fail "resnet18"
embed 1 "$W/r18p.h5" resnet18 "$W/fx/resnet18.pth" "$R18" gap,flatten,gap,gap,flatten,auto,auto 5 || fail "resnet18 .pth"
for np in 1 3; do
  embed $np "$W/r50_$np.h5" resnet50 "$W/fx/resnet50.safetensors" "$R50" gap,gap,project,flatten,auto,auto 5 --set embed.dims=256 || fail "resnet50 at $np ranks"
done
compare "$W/r50_1.h5" resnet50 maxpool,layer1,layer4,avgpool,fc gap,gap,flatten,auto,auto 5 || fail "resnet50"
# run.threads = 2 with all 5 images in one batch, so that most convolutions run as tiles on
# both threads (run_conv): torchvision's within 1e-4, the 1-thread run within 1e-5 (OpenBLAS's
# threaded GEMMs of the small convolutions change the last bits)
for t in 1 2; do
  embed 1 "$W/r50t$t.h5" resnet50 "$W/fx/resnet50.safetensors" "$R50" gap,gap,project,flatten,auto,auto 5 \
    --set embed.dims=256 --set embed.batch=5 --set run.threads=$t || fail "resnet50 at run.threads=$t"
done
compare "$W/r50t2.h5" resnet50 maxpool,layer1,layer4,avgpool,fc gap,gap,flatten,auto,auto 5 || fail "resnet50 at run.threads=2"
$PY - "$W/r50t1.h5" "$W/r50t2.h5" <<'PYEOF' || fail "resnet50: run.threads=2 differs from run.threads=1"
import sys, h5py, numpy as np
a, b = (h5py.File(f)["/subjects/subj01/embeddings"] for f in sys.argv[1:3])
assert sorted(a) == sorted(b) and len(a) == 6, sorted(a)
worst = 0
for k in a:  # OpenBLAS's threaded GEMMs round differently in the last bits; a race would not
    x, y = a[k][()].astype(np.float64), b[k][()].astype(np.float64)
    rel = np.abs(x - y).max() / np.abs(x).max()
    assert rel < 1e-5, (k, rel)
    worst = max(worst, rel)
print(f"resnet50: run.threads=2 = run.threads=1 within {worst:.1e} (6 layers, max |diff| / max)")
PYEOF
$PY - "$W" <<'PYEOF' || fail ".pth = safetensors; ranks; projection"
import sys, h5py, numpy as np
W = sys.argv[1]
a, b = h5py.File(f"{W}/r18.h5", "r"), h5py.File(f"{W}/r18p.h5", "r")
g = "/subjects/subj01/embeddings"
assert sorted(a[g]) == sorted(b[g]) and len(a[g]) == 7, sorted(a[g])
for k in a[g]: assert np.array_equal(a[g][k][()], b[g][k][()]), k
one, three = h5py.File(f"{W}/r50_1.h5", "r"), h5py.File(f"{W}/r50_3.h5", "r")
assert len(one[g]) == 6
for k in one[g]: assert np.array_equal(one[g][k][()], three[g][k][()]), k
p = one[g]["torchvision.layer3.5"]
assert p.shape == (5, 256) and p.attrs["pooling"] == "project", (p.shape, dict(p.attrs))
x = np.load(f"{W}/fx/resnet50.layer3.5.npy").reshape(5, -1).astype(np.float64)
y = p[()].astype(np.float64)
dx = np.linalg.norm(x[:, None] - x[None], axis=2)[np.triu_indices(5, 1)]
dy = np.linalg.norm(y[:, None] - y[None], axis=2)[np.triu_indices(5, 1)]
ratio = dy / dx  # a Gaussian projection with N(0, 1/dims) entries keeps distances (JL)
assert np.all(np.abs(ratio - 1) < 0.25), ratio
assert one[g]["torchvision.layer1"].attrs["depth"] < one[g]["torchvision.fc"].attrs["depth"]
print(f"resnet18 .pth = safetensors (7 layers); resnet50 identical at 1 and 3 ranks; projected distances / true: {ratio.min():.3f}..{ratio.max():.3f}")
PYEOF
# the projection follows embed.projection_seed, not run.seed
for v in "a --set embed.projection_seed=42" "b --set embed.projection_seed=7" "c --set run.seed=5"; do
  set -- $v
  embed 1 "$W/seed_$1.h5" resnet18 "$W/fx/resnet18.pth" layer4 project 2 --set embed.dims=64 "${@:2}" || fail "projection seed $1"
done
$PY - "$W" <<'PYEOF' || fail "projection seed"
import sys, h5py, numpy as np
W = sys.argv[1]
x = {k: h5py.File(f"{W}/seed_{k}.h5")["/subjects/subj01/embeddings/torchvision"][()] for k in "abc"}
assert x["a"].shape == (2, 64) and not np.array_equal(x["a"], x["b"]) and np.array_equal(x["a"], x["c"])
print("project: another embed.projection_seed gives another projection; run.seed does not change it")
PYEOF
rm -f "$W"/fx/resnet50.* "$W"/fx/alexnet.*
$PY "$RDML_SRC/tools/make_zoo_fixtures.py" "$W/fx" vgg16 "$VG" "${PNGS[@]:0:2}" || fail "vgg16 fixture"
embed 1 "$W/vg.h5" vgg16 "$W/fx/vgg16.safetensors" "$VG" gap,gap,gap,auto,auto 2 && compare "$W/vg.h5" vgg16 "$VG" gap,gap,gap,auto,auto 2 || fail "vgg16"
rm -f "$W"/fx/vgg16.*

# ---- bad weights and layers ----
$PY - "$W" <<'PYEOF' || fail "writing bad state dicts"
import sys, os, torch
sys.path.insert(0, os.environ["RDML_SRC"] + "/tools")
from pth_to_safetensors import save_safetensors
W = sys.argv[1]
sd = torch.load(f"{W}/fx/resnet18.pth", weights_only=True)
miss = dict(sd); del miss["layer2.1.bn2.running_var"]
save_safetensors(miss, f"{W}/missing.safetensors")
extra = dict(sd); extra["head.weight"] = torch.zeros(3, 3)
torch.save(extra, f"{W}/extra.pth")
PYEOF
expect_err() { # WHAT PATTERN cmd...: exit status non-zero, stderr has PATTERN
  local what=$1 pat=$2; shift 2
  local err; err=$("$@" 2>&1 >/dev/null) && { fail "$what: accepted"; return; }
  grep -qF -- "$pat" <<<"$err" || fail "$what: message lacks '$pat': $err"
}
expect_err "resnet18 weights as resnet50" "tensor 'layer1.0.conv1.weight' has shape [64, 64, 3, 3] but resnet50 expects [64, 64, 1, 1]" \
  embed 1 "$W/x.h5" resnet50 "$W/fx/resnet18.pth" fc auto 2
expect_err "resnet18 weights as alexnet" "tensor 'features.0.weight' (shape [64, 3, 11, 11]) is missing" \
  embed 1 "$W/x.h5" alexnet "$W/fx/resnet18.safetensors" classifier.6 auto 2
expect_err "missing tensor" "tensor 'layer2.1.bn2.running_var' (shape [128]) is missing" \
  embed 1 "$W/x.h5" resnet18 "$W/missing.safetensors" fc auto 2
expect_err "surplus tensor" "1 tensor is not part of torchvision's resnet18: 'head.weight'" \
  embed 1 "$W/x.h5" resnet18 "$W/extra.pth" fc auto 2
expect_err "unknown layer" "resnet18 has no layer 'layer5' (its layers, as torchvision names the modules: bn1, relu, maxpool, layer1.0," \
  embed 2 "$W/x.h5" resnet18 "$W/fx/resnet18.pth" layer4,layer5 auto 2
expect_err "cls pooling on a conv map" "pooling = cls does not apply to resnet18 layer layer4" \
  embed 1 "$W/x.h5" resnet18 "$W/fx/resnet18.pth" layer4 cls 2
[ -e "$W/x.h5" ] && fail "a failed embed wrote $W/x.h5"

# ---- malicious and broken .pth files: refused, nothing executed ----
$PY - "$W" <<'PYEOF' || fail "writing malicious pickles"
import sys, os, pickle, zipfile
W = sys.argv[1]
marker = f"{W}/marker"
class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {marker}",))
def pth(name, pkl):
    with zipfile.ZipFile(f"{W}/{name}.pth", "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
cmd = f"touch {marker}".encode()
pth("global", pickle.dumps({"fc.weight": Evil()}, protocol=2))
pth("reduce", b"\x80\x02ccollections\nOrderedDict\nX" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R.")
pth("stackglobal", b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93X" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R.")
pth("inst", b"\x80\x02(X" + len(cmd).to_bytes(4, "little") + cmd + b"ios\nsystem\n.")
pth("opcode", b"\x80\x02}\xff.")
good = open(f"{W}/fx/resnet18.pth", "rb").read()
open(f"{W}/truncated.pth", "wb").write(good[: len(good) // 2])
with zipfile.ZipFile(f"{W}/fx/resnet18.pth") as z:
    pkl = z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])
pth("shortpkl", pkl[: len(pkl) // 2])
PYEOF
expect_err "os.system global" "the global posix.system (GLOBAL at byte" embed 1 "$W/x.h5" resnet18 "$W/global.pth" fc auto 2
expect_err "REDUCE payload" "OrderedDict is called with arguments" embed 1 "$W/x.h5" resnet18 "$W/reduce.pth" fc auto 2
expect_err "STACK_GLOBAL eval" "the global builtins.eval (STACK_GLOBAL" embed 1 "$W/x.h5" resnet18 "$W/stackglobal.pth" fc auto 2
expect_err "INST opcode" "pickle opcode 'i' (INST)" embed 1 "$W/x.h5" resnet18 "$W/inst.pth" fc auto 2
expect_err "unknown opcode" "pickle opcode '\\xff' (unknown opcode)" embed 1 "$W/x.h5" resnet18 "$W/opcode.pth" fc auto 2
expect_err "truncated archive" "not a readable zip archive" embed 1 "$W/x.h5" resnet18 "$W/truncated.pth" fc auto 2
expect_err "truncated pickle" "(truncated file?)" embed 2 "$W/x.h5" resnet18 "$W/shortpkl.pth" fc auto 2
[ -e "$W/marker" ] && fail "a pickle payload ran: $W/marker exists"
for f in global reduce stackglobal inst; do # the payloads are there (the test tests something)
  $PY -c "import zipfile, sys; sys.exit(b'touch' not in zipfile.ZipFile(sys.argv[1]).read('archive/data.pkl'))" "$W/$f.pth" || fail "$f.pth holds no payload"
done

# ---- CLIP's blocks by name (embed.layers): one pass = the single-layer runs, bit for bit ----
CL=vision_model.pre_layrnorm,vision_model.encoder.layers.0,visual_projection
FX="${RDML_FIXTURES:?}/embed"
C=(--set embed.backend=clip-vit --set embed.weights="$FX/clip_hf/model.safetensors" --set embed.batch=2 --set data.images=5)
"${MPI[@]}" -n 2 "$RDMLEARN" embed "$W/ds" -q "${C[@]}" --set embed.layers="$CL" --set embed.pooling=cls,mean,auto   --set run.output="$W/clip.h5" || fail "clip-vit with embed.layers"
"${MPI[@]}" -n 1 "$RDMLEARN" embed "$W/ds" -q "${C[@]}" --set embed.layer=0 --set embed.name=l0 --set run.output="$W/clip1.h5" &&
"${MPI[@]}" -n 1 "$RDMLEARN" embed "$W/ds" -q "${C[@]}" --set embed.layer=1 --set embed.pooling=mean --set embed.name=l1 --set run.output="$W/clip1.h5" &&
"${MPI[@]}" -n 1 "$RDMLEARN" embed "$W/ds" -q "${C[@]}" --set embed.name=proj --set run.output="$W/clip1.h5" || fail "clip-vit single layers"
# run.threads = 2 (attention, LayerNorm, quick_gelu on 2 threads) = run.threads = 1, bit for bit
for t in 1 2; do
  "${MPI[@]}" -n 1 "$RDMLEARN" embed "$W/ds" -q "${C[@]}" --set embed.batch=5 --set run.threads=$t --set embed.layers="$CL" \
    --set embed.pooling=cls,mean,auto --set run.output="$W/clipt$t.h5" || fail "clip-vit at run.threads=$t"
done
$PY - "$W/clipt1.h5" "$W/clipt2.h5" <<'PYEOF' || fail "clip-vit: run.threads=2 differs from run.threads=1"
import sys, h5py, numpy as np
a, b = (h5py.File(f)["/subjects/subj01/embeddings"] for f in sys.argv[1:3])
assert sorted(a) == sorted(b) and len(a) == 3, sorted(a)
for k in a: assert np.array_equal(a[k][()], b[k][()]), (k, np.abs(a[k][()] - b[k][()]).max())
print("clip-vit: run.threads=2 = run.threads=1 bit for bit (3 layers)")
PYEOF
$PY - "$W" <<'PYEOF' || fail "clip-vit layers differ from the single-layer runs"
import sys, h5py, numpy as np
W = sys.argv[1]
g, s = h5py.File(f"{W}/clip.h5")["/subjects/subj01/embeddings"], h5py.File(f"{W}/clip1.h5")["/subjects/subj01/embeddings"]
for name, single, pool, depth in [("vision_model.pre_layrnorm", "l0", "cls", 0),
                                  ("vision_model.encoder.layers.0", "l1", "mean", 1),
                                  ("visual_projection", "proj", "projection", 3)]:
    d = g["clip-vit." + name]
    assert np.array_equal(d[()], s[single][()]), name
    assert d.attrs["layer"] == name and d.attrs["pooling"] == pool and d.attrs["depth"] == depth, dict(d.attrs)
print("clip-vit: 3 named layers in one pass equal the single-layer runs bit for bit")
PYEOF
expect_err "clip-vit unknown layer" "this CLIP ViT has no layer 'blocks.1' (its layers: vision_model.pre_layrnorm, vision_model.encoder.layers.0,"   "${MPI[@]}" -n 1 "$RDMLEARN" embed "$W/ds" -q "${C[@]}" --set embed.layers=blocks.1 --set run.output="$W/x.h5"

# ---- rdmlearn models ----
out=$("$RDMLEARN" models 2>&1) || fail "rdmlearn models"
for s in "resnet50  (embed.backend = torchvision" "layer3.5       1024 x 14 x 14" "features.30" \
         "classifier.6   1000" "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" "clip-vit"; do
  grep -qF "$s" <<<"$out" || fail "rdmlearn models lacks '$s'"
done
expect_err "models foo" "no model foo" "$RDMLEARN" models foo

[ $fails -eq 0 ] && echo "test_embed_zoo: all passed"
[ $fails -eq 0 ]
