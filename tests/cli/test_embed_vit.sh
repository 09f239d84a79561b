#!/usr/bin/env bash
# The zoo's vision transformers (embed.backend = torchvision; issue 17): torchvision 0.14's
# vit_b_16 at full size (random weights, tools/vit_reference.py) and DINOv2 against
# tools/vit_reference.py's port of facebookresearch/dinov2 (random weights; ViT-S/14 width at
# reduced depth: the loader takes any depth from the tensors; L/14 width at depth 1), with 4
# registers and a 37 x 37 position table interpolated to the 16 x 16 grid, and without registers and with a 16 x 16
# table (no interpolation), on non-square PNGs: every listed layer pooled cls / mean / flatten
# within 1e-4 of the largest reference value; DINOv2's and torchvision's preprocessing within
# 1 grey level; vit_b_16's .pth in the pre-0.12 MLP naming (mlp.linear_1/2) = its safetensors
# bit for bit; 1 and 2 ranks identical; DINOv2 at run.threads=2 within 1e-4 of the reference and
# 1e-5 of run.threads=1; a missing, a surplus and a misshapen tensor, weights
# of the other family, an unknown layer and gap on tokens are errors naming them;
# OpenCLIP naming (clip-vit): a .pth with a text tower and open_clip_config.json against
# tools/clip_reference.py; `rdmlearn models` lists them all.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}" "${RDML_SRC:?}"
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/rdml-vit.XXXXXX"); trap 'rm -rf "$W"' EXIT
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0
fail() { echo "FAIL: $*"; fails=$((fails+1)); }

"${MPI[@]}" -n 1 "$RDMLEARN" synth "$W/ds" -q --set synth.subjects=1 --set synth.images=10 \
  --set synth.image_size=40 --set synth.lh_vertices=60 --set synth.rh_vertices=60 \
  --set synth.test_images=0 || { echo "FAIL: synth"; exit 1; }
$PY - "$W/ds" <<'PYEOF' || { echo "FAIL: writing images"; exit 1; }
import sys, glob, numpy as np
from PIL import Image
files = sorted(glob.glob(f"{sys.argv[1]}/subj01/training_split/training_images/*.png"))[:3]
rng = np.random.default_rng(11)
for f, (w, h) in zip(files, [(300, 257), (257, 310), (500, 301)]):
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([128 + 100 * np.sin(x / (5.0 + rng.random())), 128 + 90 * np.cos(y / 9.0),
                  rng.random((h, w)) * 255], -1)
    Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(f)
PYEOF
mapfile -t PNGS < <(ls "$W"/ds/subj01/training_split/training_images/*.png | sort | head -3)

embed() { # NP OUT ARCH WEIGHTS LAYERS POOLING [more --set]
  local np=$1 out=$2 arch=$3 w=$4 layers=$5 pool=$6; shift 6
  "${MPI[@]}" -n "$np" "$RDMLEARN" embed "$W/ds" -q --set embed.backend=torchvision \
    --set embed.model="$arch" --set embed.weights="$w" --set embed.layers="$layers" \
    --set embed.pooling="$pool" --set data.images=3 --set embed.batch=2 \
    --set run.output="$out" "$@"
}
compare() { # OUT FX ARCH LAYERS POOLING PREFIX: rdmlearn's rows against the reference's
  $PY - "$@" <<'PYEOF'
import sys, h5py, numpy as np
out, fx, arch, layers, pools, prefix = sys.argv[1:7]
layers, pools, prefix = layers.split(","), pools.split(","), int(prefix)
f = h5py.File(out, "r")
worst = 0
for layer, pool in zip(layers, pools):
    d = f[f"/subjects/subj01/embeddings/torchvision.{layer}"]
    ref = np.load(f"{fx}/{arch}.{layer}.npy").astype(np.float64)
    want = pool if pool != "auto" else "cls" if ref.ndim == 3 else "flatten"
    if want == "cls": ref = ref[:, 0]
    if want == "mean": ref = ref[:, prefix:].mean(1)
    ref = ref.reshape(len(ref), -1)
    got = d[()]
    assert got.shape == ref.shape, (layer, got.shape, ref.shape)
    assert d.attrs["layer"] == layer and d.attrs["architecture"] == arch, dict(d.attrs)
    assert d.attrs["pooling"] == want, (layer, d.attrs["pooling"], want)
    rel = np.abs(got - ref).max() / np.abs(ref).max()
    worst = max(worst, rel)
    assert rel < 1e-4, (arch, layer, pool, rel)
    assert np.abs(ref[0] - ref[1]).max() > 0, layer
print(f"{arch} ({fx.split('/')[-1]}): {len(layers)} layers equal the reference within {worst:.2e} (max |diff| / max |ref|)")
PYEOF
}
grey() { # RDML.npy REF.npy: preprocessed images within 1 grey level
  $PY - "$@" <<'PYEOF'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape == (3, 3, 224, 224), (a.shape, b.shape)
g = np.abs(a.astype(np.float64) - b) * np.array([0.229, 0.224, 0.225])[None, :, None, None] * 255
assert g.max() <= 1.0, g.max()
print(f"preprocessing {sys.argv[2].split('/')[-1]}: max difference {g.max():.2e} grey levels")
PYEOF
}

# ---- torchvision vit_b_16, full size ----
TV=encoder.layers.encoder_layer_0,encoder.layers.encoder_layer_6,encoder.layers.encoder_layer_11,encoder.ln,heads
$PY "$RDML_SRC/tools/vit_reference.py" "$W/tv" vit_b_16 "$TV" "${PNGS[@]}" --pth || fail "vit_b_16 reference"
embed 1 "$W/tv.h5" vit_b_16 "$W/tv/vit_b_16.safetensors" "$TV" cls,mean,flatten,auto,auto &&
  compare "$W/tv.h5" "$W/tv" vit_b_16 "$TV" cls,mean,flatten,auto,auto 1 || fail "vit_b_16"
# the .pth in torchvision's pre-0.12 MLP naming (renamed on load by MLPBlock._load_from_state_dict)
$PY - "$W" <<'PYEOF' || fail "writing old-naming vit_b_16"
import sys, torch
W = sys.argv[1]
sd = torch.load(f"{W}/tv/vit_b_16.pth", weights_only=True)
old = {k.replace("mlp.0.", "mlp.linear_1.").replace("mlp.3.", "mlp.linear_2."): v for k, v in sd.items()}
assert sum("linear_1" in k for k in old) == 24
torch.save(old, f"{W}/old.pth")
PYEOF
embed 1 "$W/tvp.h5" vit_b_16 "$W/old.pth" "$TV" cls,mean,flatten,auto,auto || fail "vit_b_16 old-naming .pth"
"${RDML_BUILD:?}/tests/test_zoo" --preprocess "$W/pre_tv.npy" "${PNGS[@]}" && grey "$W/pre_tv.npy" "$W/tv/vit_b_16.input.npy" || fail "vit_b_16 preprocessing"
$PY - "$W" <<'PYEOF' || fail "vit_b_16 .pth != safetensors"
import sys, h5py, numpy as np
W = sys.argv[1]
a, b = h5py.File(f"{W}/tv.h5")["/subjects/subj01/embeddings"], h5py.File(f"{W}/tvp.h5")["/subjects/subj01/embeddings"]
assert sorted(a) == sorted(b) and len(a) == 5
for k in a: assert np.array_equal(a[k][()], b[k][()]), k
print("vit_b_16: the .pth in the old MLP naming = the safetensors, bit for bit")
PYEOF
rm -f "$W"/tv/*.pth "$W/old.pth"

# ---- DINOv2: S/14 width, 4 registers, 37 x 37 positions (interpolated); no registers, 16 x 16 ----
DL=blocks.0,blocks.2,norm,norm
$PY "$RDML_SRC/tools/vit_reference.py" "$W/dr" dinov2 blocks.0,blocks.2,norm "${PNGS[@]}" --width 384 --depth 3 --registers 4 --pos-grid 37 || fail "dinov2 reference (registers)"
$PY "$RDML_SRC/tools/vit_reference.py" "$W/dn" dinov2 blocks.0,blocks.2,norm "${PNGS[@]}" --width 384 --depth 3 --pos-grid 16 --seed 3 --pth || fail "dinov2 reference"
for np in 1 2; do
  "${MPI[@]}" -n $np "$RDMLEARN" embed "$W/ds" -q --set embed.backend=torchvision --set embed.model=dinov2 \
    --set embed.weights="$W/dr/dinov2.safetensors" --set data.images=3 --set embed.batch=2 \
    --set embed.layers=blocks.0,blocks.2,norm --set embed.pooling=cls,flatten,mean \
    --set run.output="$W/dr$np.h5" || fail "dinov2 with registers at $np ranks"
done
compare "$W/dr1.h5" "$W/dr" dinov2 blocks.0,blocks.2,norm cls,flatten,mean 5 || fail "dinov2 with registers"
# run.threads = 2: attention, LayerNorm, GELU and residual passes on 2 threads (tfops.c) give
# torch's features within 1e-4 and the 1-thread ones within 1e-5 (same batch; the weight
# GEMMs' threads change the last bits)
for t in 1 2; do
  "${MPI[@]}" -n 1 "$RDMLEARN" embed "$W/ds" -q --set embed.backend=torchvision --set embed.model=dinov2 \
    --set embed.weights="$W/dr/dinov2.safetensors" --set data.images=3 --set embed.batch=3 \
    --set embed.layers=blocks.0,blocks.2,norm --set embed.pooling=cls,flatten,mean --set run.threads=$t \
    --set run.output="$W/drt$t.h5" || fail "dinov2 at run.threads=$t"
done
compare "$W/drt2.h5" "$W/dr" dinov2 blocks.0,blocks.2,norm cls,flatten,mean 5 || fail "dinov2 at run.threads=2"
$PY - "$W/drt1.h5" "$W/drt2.h5" <<'PYEOF' || fail "dinov2: run.threads=2 differs from run.threads=1"
import sys, h5py, numpy as np
a, b = (h5py.File(f)["/subjects/subj01/embeddings"] for f in sys.argv[1:3])
assert sorted(a) == sorted(b) and len(a) == 3, sorted(a)
worst = 0
for k in a:  # OpenBLAS's threaded GEMMs round differently in the last bits; a race would not
    x, y = a[k][()].astype(np.float64), b[k][()].astype(np.float64)
    rel = np.abs(x - y).max() / np.abs(x).max()
    assert rel < 1e-5, (k, rel)
    worst = max(worst, rel)
print(f"dinov2: run.threads=2 = run.threads=1 within {worst:.1e} (3 layers, max |diff| / max)")
PYEOF
embed 1 "$W/dn.h5" dinov2 "$W/dn/dinov2.pth" blocks.0,blocks.2,norm mean,cls,auto &&
  compare "$W/dn.h5" "$W/dn" dinov2 blocks.0,blocks.2,norm mean,cls,auto 1 || fail "dinov2 without registers"
# L/14 width (1024, 16 heads), 4 registers, one block
$PY "$RDML_SRC/tools/vit_reference.py" "$W/dl" dinov2 blocks.0,norm "${PNGS[@]}" --width 1024 --depth 1 --registers 4 --seed 5 || fail "dinov2 L reference"
embed 1 "$W/dl.h5" dinov2 "$W/dl/dinov2.safetensors" blocks.0,norm mean,cls &&
  compare "$W/dl.h5" "$W/dl" dinov2 blocks.0,norm mean,cls 5 || fail "dinov2 L/14 width"
rm -f "$W"/dl/*.safetensors
"$RDML_BUILD/tests/test_zoo" --preprocess-dinov2 "$W/pre_dino.npy" "${PNGS[@]}" && grey "$W/pre_dino.npy" "$W/dr/dinov2.input.npy" || fail "dinov2 preprocessing"
$PY - "$W" <<'PYEOF' || fail "dinov2 ranks"
import sys, h5py, numpy as np
W = sys.argv[1]
a, b = h5py.File(f"{W}/dr1.h5")["/subjects/subj01/embeddings"], h5py.File(f"{W}/dr2.h5")["/subjects/subj01/embeddings"]
assert len(a) == 3
for k in a: assert np.array_equal(a[k][()], b[k][()]), k
assert a["torchvision.blocks.2"].shape == (3, 261 * 384)
print("dinov2: identical at 1 and 2 ranks")
PYEOF

# ---- bad weights and layers ----
$PY - "$W" <<'PYEOF' || fail "writing bad state dicts"
import sys, os, torch
sys.path.insert(0, os.environ["RDML_SRC"] + "/tools")
from pth_to_safetensors import save_safetensors
W = sys.argv[1]
sd = torch.load(f"{W}/dn/dinov2.pth", weights_only=True)
m = dict(sd); del m["blocks.1.ls2.gamma"]; torch.save(m, f"{W}/missing.pth")
m = dict(sd); m["head.weight"] = torch.zeros(3, 3); torch.save(m, f"{W}/extra.pth")
m = dict(sd); m["blocks.2.mlp.fc2.weight"] = torch.zeros(384, 1000); torch.save(m, f"{W}/shape.pth")
PYEOF
expect_err() { # WHAT PATTERN cmd...: exit status non-zero, stderr has PATTERN
  local what=$1 pat=$2; shift 2
  local err; err=$("$@" 2>&1 >/dev/null) && { fail "$what: accepted"; return; }
  grep -qF -- "$pat" <<<"$err" || fail "$what: message lacks '$pat': $err"
}
expect_err "missing tensor" "tensor 'blocks.1.ls2.gamma' (shape [384]) of DINOv2 is missing" embed 1 "$W/x.h5" dinov2 "$W/missing.pth" norm auto
expect_err "surplus tensor" "1 tensor is not part of DINOv2: 'head.weight'" embed 1 "$W/x.h5" dinov2 "$W/extra.pth" norm auto
expect_err "wrong shape" "tensor 'blocks.2.mlp.fc2.weight' has shape [384, 1000] but DINOv2 expects [384, 1536]" embed 1 "$W/x.h5" dinov2 "$W/shape.pth" norm auto
expect_err "dinov2 weights as vit_b_16" "tensor 'class_token' is missing: not torchvision's ViT weights" embed 1 "$W/x.h5" vit_b_16 "$W/dn/dinov2.pth" heads auto
expect_err "unknown layer" "dinov2 has no layer 'blocks.3' (its layers, as torchvision names the modules: blocks.0, blocks.1, blocks.2, norm)" embed 2 "$W/x.h5" dinov2 "$W/dn/dinov2.pth" blocks.3 auto
expect_err "gap on tokens" "pooling = gap does not apply to dinov2 layer norm" embed 1 "$W/x.h5" dinov2 "$W/dn/dinov2.pth" norm gap

# ---- OpenCLIP naming (visual.*, the text tower beside it), open_clip_config.json, a .pth ----
mkdir -p "$W/oc"
$PY - "$W" "${PNGS[@]}" <<'PYEOF' || fail "OpenCLIP reference"
import sys, os, json, torch, numpy as np
from PIL import Image
sys.path.insert(0, os.environ["RDML_SRC"] + "/tools")
import clip_reference as cr
W, pngs = sys.argv[1], sys.argv[2:]
torch.manual_seed(4)
sd = {}
for name, shape in cr.vitgen_tensors(image=64, patch=16, width=128, layers=2, mlp=512, proj=64):
    if name.endswith("norm.weight") or "layrnorm.weight" in name or "layer_norm" in name and name.endswith(".weight"):
        sd[name] = 1 + 0.1 * torch.randn(shape)
    elif name.endswith(".bias") or len(shape) == 1:
        sd[name] = 0.1 * torch.randn(shape)
    else:
        sd[name] = torch.randn(shape) * (1.5 / np.sqrt(np.prod(shape[1:])) if len(shape) > 1 else 0.1)
x = torch.from_numpy(np.stack([cr.preprocess(Image.open(p), 64)[0] for p in pngs]))
with torch.no_grad():
    for act in ("gelu", "quick_gelu"):
        proj, hidden = cr.CLIPVisionRef(sd, 2, act=act)(x)
        np.save(f"{W}/oc/ref_{act}_proj.npy", proj.numpy())
        np.save(f"{W}/oc/ref_{act}_block1_mean.npy", hidden[2][:, 1:].mean(1).numpy())
oc = cr.hf_to_openai(sd)
for k, shape in [("token_embedding.weight", (50, 32)), ("positional_embedding", (8, 32)),
                 ("transformer.resblocks.0.ln_1.weight", (32,)), ("ln_final.weight", (32,)),
                 ("text_projection", (32, 64)), ("logit_scale", ()), ("logit_bias", ())]:
    oc[k] = torch.randn(shape)
torch.save(oc, f"{W}/oc/open_clip_pytorch_model.bin")
cfg = {"model_cfg": {"embed_dim": 64, "quick_gelu": False,
                     "vision_cfg": {"image_size": 64, "layers": 2, "width": 128, "patch_size": 16},
                     "text_cfg": {"context_length": 8, "vocab_size": 50, "width": 32, "heads": 1, "layers": 1}},
       "preprocess_cfg": {"mean": list(cr.MEAN), "std": list(cr.STD)}}
json.dump(cfg, open(f"{W}/oc/open_clip_config.json", "w"))
cfg["model_cfg"]["embed_dim"] = 32
os.makedirs(f"{W}/oc_bad", exist_ok=True)
json.dump(cfg, open(f"{W}/oc_bad/open_clip_config.json", "w"))
os.link(f"{W}/oc/open_clip_pytorch_model.bin", f"{W}/oc_bad/open_clip_pytorch_model.bin")
PYEOF
OC=(--set embed.backend=clip-vit --set embed.batch=2 --set data.images=3 --set embed.layers=visual.transformer.resblocks.1,visual.proj --set embed.pooling=mean,auto)
"${MPI[@]}" -n 1 "$RDMLEARN" embed "$W/ds" -q "${OC[@]}" --set embed.weights="$W/oc/open_clip_pytorch_model.bin" --set run.output="$W/oc.h5" || fail "OpenCLIP .pth"
"${MPI[@]}" -n 1 "$RDMLEARN" embed "$W/ds" -q "${OC[@]}" --set embed.weights="$W/oc/open_clip_pytorch_model.bin" --set embed.hidden_act=quick_gelu --set run.output="$W/ocq.h5" || fail "OpenCLIP .pth, quick_gelu"
$PY - "$W" <<'PYEOF' || fail "OpenCLIP features differ from the reference"
import sys, h5py, numpy as np
W = sys.argv[1]
for out, act in (("oc", "gelu"), ("ocq", "quick_gelu")):
    g = h5py.File(f"{W}/{out}.h5")["/subjects/subj01/embeddings"]
    for name, ref in (("visual.transformer.resblocks.1", "block1_mean"), ("visual.proj", "proj")):
        got, want = g["clip-vit." + name][()].astype(np.float64), np.load(f"{W}/oc/ref_{act}_{ref}.npy").astype(np.float64)
        other = np.load(f"{W}/oc/ref_{'quick_gelu' if act == 'gelu' else 'gelu'}_{ref}.npy")
        rel = np.abs(got - want).max() / np.abs(want).max()
        assert got.shape == want.shape and rel < 1e-4, (act, name, rel)
        assert np.abs(got - other).max() / np.abs(want).max() > 1e-3, (act, name, "act makes no difference")
    print(f"OpenCLIP naming ({act}): visual.transformer.resblocks.1 (mean), visual.proj within 1e-4 of the reference")
PYEOF
expect_err "open_clip_config.json of another model" "open_clip_config.json: embed_dim = 32 but the weights" \
  "${MPI[@]}" -n 1 "$RDMLEARN" embed "$W/ds" -q "${OC[@]}" --set embed.weights="$W/oc_bad/open_clip_pytorch_model.bin" --set run.output="$W/x.h5"
[ -e "$W/x.h5" ] && fail "a failed embed wrote $W/x.h5"

out=$("$RDMLEARN" models 2>&1 | tr -s ' ') || fail "rdmlearn models"
for s in "vit_b_16 (embed.backend = torchvision" "encoder.layers.encoder_layer_11 197 x 768 cls" "heads 1000 the vector" \
         "https://download.pytorch.org/models/vit_b_16-c867db91.pth" "dinov2 (embed.backend" \
         "blocks.11 257 x 768 cls" "dinov2_vit{s,b,l}14_reg4_pretrain.pth" "Resize(256, BICUBIC)" "open_clip_pytorch_model.bin and open_clip_config.json"; do
  grep -qF "$s" <<<"$out" || fail "rdmlearn models lacks '$s'"
done

[ $fails -eq 0 ] && echo "test_embed_vit: all passed"
[ $fails -eq 0 ]
