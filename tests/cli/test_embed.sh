#!/usr/bin/env bash
# `rdmlearn embed` end to end on a synthetic dataset:
#  - gabor, pixels, clip-vit (the tiny fixture model, batch 3 so blocks span several
#    batches) and file embeddings are bit-identical for 1, 2, 3 and 4 ranks (h5py);
#  - pixels rows equal Pillow's convert('L').resize(BILINEAR) min-max on the PNGs;
#  - the file backend reproduces rows matched by NSD id (a shuffled copy + id list, .npy and
#    HDF5) and by image order; L2 normalisation gives unit rows;
#  - bad input (an unreadable image, a features file with the wrong row count, an id list
#    missing an image, missing weights) stops every rank with a message naming the file and
#    leaves the results file untouched;
#  - SIGTERM in the middle of a long embedding: exit status 10 on every rank within seconds,
#    the results file unchanged, and the same command then completes.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}" "${RDML_SRC:?}"
PY=/usr/bin/python3
FX=${RDML_FIXTURES:-$RDML_SRC/tests/fixtures}/embed
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

"${MPI[@]}" -n 2 "$RDMLEARN" synth "$W/ds" -q --set synth.subjects=2 --set synth.images=23 \
  --set synth.image_size=40 --set synth.lh_vertices=60 --set synth.rh_vertices=60 \
  --set synth.test_images=0 || { echo "synth failed"; exit 1; }
E=("$RDMLEARN" embed "$W/ds" -q)

for np in 1 2 3 4; do
  "${MPI[@]}" -n $np "${E[@]}" --set run.output="$W/np$np.h5" && ok || bad "gabor at $np ranks"
  "${MPI[@]}" -n $np "${E[@]}" --set embed.backend=pixels --set embed.size=12 \
    --set run.output="$W/np$np.h5" && ok || bad "pixels at $np ranks"
  "${MPI[@]}" -n $np "${E[@]}" --set embed.backend=clip-vit --set embed.batch=3 \
    --set embed.weights="$FX/clip_hf/model.safetensors" --set run.output="$W/np$np.h5" \
    && ok || bad "clip-vit at $np ranks"
  "${MPI[@]}" -n $np "${E[@]}" --set embed.backend=clip-vit --set embed.batch=4 --set embed.name=clip_l1 \
    --set embed.layer=1 --set embed.pooling=mean --set embed.normalize=true \
    --set embed.weights="$FX/clip_openai/model.safetensors" --set embed.heads=2 \
    --set run.output="$W/np$np.h5" && ok || bad "clip-vit layer 1 at $np ranks"
done
$PY - "$W" <<'PYEOF' && ok || bad "rank invariance / contents"
import sys, h5py, numpy as np
W = sys.argv[1]
ref = h5py.File(f"{W}/np1.h5", "r")
for s in ("subj01", "subj02"):
    g = ref[f"/subjects/{s}/embeddings"]
    assert sorted(g) == ["clip-vit", "clip_l1", "gabor", "pixels"], sorted(g)
    assert g["gabor"].shape[1] == 512 and g["pixels"].shape[1] == 144 and g["clip-vit"].shape[1] == 16
    assert g["clip_l1"].shape[1] == 16 and g["gabor"].dtype == np.float32
    assert g["gabor"].shape[0] == len(ref[f"/subjects/{s}/images/nsd_id"])
    a = g["clip-vit"].attrs
    assert a["backend"] == "clip-vit" and a["dims"] == 16 and "Hugging Face" in a["model"], dict(a)
    assert "BICUBIC" in a["preprocessing"] and a["normalized"] == 0
    assert np.allclose(np.linalg.norm(g["clip_l1"][()], axis=1), 1, atol=1e-5)
    for np_ in (2, 3, 4):
        f = h5py.File(f"{W}/np{np_}.h5", "r")
        for k in g:
            assert np.array_equal(g[k][()], f[f"/subjects/{s}/embeddings/{k}"][()]), (s, k, np_)
        assert f["/meta/stages/embed"].attrs["ranks"] == np_
PYEOF
$PY - "$W" <<'PYEOF' && ok || bad "pixels vs Pillow"
import sys, os, h5py, numpy as np
from PIL import Image
W = sys.argv[1]
f = h5py.File(f"{W}/np1.h5", "r")
names = f["/subjects/subj02/images/names"].asstr()[()]
X = f["/subjects/subj02/embeddings/pixels"][()]
d = f"{W}/ds/subj02/training_split/training_images"
for i, n in enumerate(names):
    a = np.asarray(Image.open(os.path.join(d, n)).convert("L").resize((12, 12), Image.BILINEAR)).astype(np.float64)
    want = (a - a.min()) / (a.max() - a.min())
    assert np.abs(X[i] - want.ravel()).max() < 1e-6, i
PYEOF

# ---- file backend: a shuffled copy of subj01+subj02 gabor rows with their NSD ids ----
$PY - "$W" <<'PYEOF' || bad "making feature files"
import sys, h5py, numpy as np
W = sys.argv[1]
f = h5py.File(f"{W}/np1.h5", "r")
X = np.concatenate([f[f"/subjects/subj0{s}/embeddings/gabor"][()] for s in (1, 2)])
ids = np.concatenate([f[f"/subjects/subj0{s}/images/nsd_id"][()] for s in (1, 2)])
ids, keep = np.unique(ids, return_index=True)
X = X[keep]
perm = np.random.RandomState(1).permutation(len(ids))
np.save(f"{W}/feat.npy", X[perm].astype(np.float64)); np.save(f"{W}/ids.npy", ids[perm])
np.save(f"{W}/ids_short.npy", ids[perm][:-1]); np.save(f"{W}/feat_short.npy", X[perm][:-1])
with h5py.File(f"{W}/feat.h5", "w") as g:
    g["/deep/features"] = X[perm].astype(np.float32)
np.save(f"{W}/subj01.npy", f["/subjects/subj01/embeddings/gabor"][()])
np.save(f"{W}/subj01_short.npy", f["/subjects/subj01/embeddings/gabor"][:-1])
PYEOF
for np in 1 3 4; do
  "${MPI[@]}" -n $np "${E[@]}" --set embed.backend=file --set embed.file="$W/feat.npy" \
    --set embed.ids="$W/ids.npy" --set embed.name=imported --set run.output="$W/f$np.h5" && ok || bad "file npy at $np"
  "${MPI[@]}" -n $np "${E[@]}" --set embed.backend=file --set embed.file="$W/feat.h5" \
    --set embed.dataset=/deep/features --set embed.ids="$W/ids.npy" --set embed.name=imported_h5 \
    --set run.output="$W/f$np.h5" && ok || bad "file h5 at $np"
  "${MPI[@]}" -n $np "${E[@]}" --set embed.backend=file --set embed.file="$W/subj01.npy" \
    --set data.subjects=1 --set embed.name=ordered --set run.output="$W/f$np.h5" && ok || bad "file order at $np"
done
$PY - "$W" <<'PYEOF' && ok || bad "file backend rows"
import sys, h5py, numpy as np
W = sys.argv[1]
ref = h5py.File(f"{W}/np1.h5", "r")
for np_ in (1, 3, 4):
    f = h5py.File(f"{W}/f{np_}.h5", "r")
    for s in ("subj01", "subj02"):
        g = ref[f"/subjects/{s}/embeddings/gabor"][()]
        for k in ("imported", "imported_h5"):
            assert np.array_equal(f[f"/subjects/{s}/embeddings/{k}"][()], g), (np_, s, k)
    assert np.array_equal(f["/subjects/subj01/embeddings/ordered"][()], ref["/subjects/subj01/embeddings/gabor"][()])
    assert f["/subjects/subj01/embeddings/imported"].attrs["backend"] == "file"
PYEOF

# ---- bad input: every rank stops, same status, results file untouched ----
expect_fail() { # NP CODE SUBSTRING args...
  local np=$1 code=$2 sub=$3; shift 3
  local before; before=$(md5sum "$W/np1.h5")
  rm -rf "$W/st"; mkdir "$W/st"
  out=$(RDML_STATUS_DIR="$W/st" timeout 120 "${MPI[@]}" -n $np "$RDMLEARN" embed "$@" \
        --set run.output="$W/np1.h5" 2>&1); rc=$?
  local good=1
  [[ $rc -ne 0 && $rc -ne 124 ]] || { echo "rc=$rc"; good=0; }
  grep -qF -- "$sub" <<<"$out" || { echo "message lacks \"$sub\""; good=0; }
  [[ $(cat "$W"/st/*.status 2>/dev/null | cut -d' ' -f1 | sort -u) == "$code" ]] || { echo "statuses: $(cat "$W"/st/*.status)"; good=0; }
  [[ "$(md5sum "$W/np1.h5")" == "$before" ]] || { echo "results file changed"; good=0; }
  ls "$W"/np1.h5.tmp* >/dev/null 2>&1 && { echo "temporary file left"; good=0; }
  if [[ $good -eq 1 ]]; then ok; else bad "expect_fail $*"; echo "$out" | head -5; fi
}
cp -r "$W/ds" "$W/broken"
IMG=$(ls "$W/broken/subj02/training_split/training_images" | sed -n 17p)
head -c 100 "$W/ds/subj02/training_split/training_images/$IMG" > "$W/broken/subj02/training_split/training_images/$IMG"
for np in 1 3; do
  expect_fail $np 6 "$IMG" "$W/broken"
  expect_fail $np 6 "$IMG" "$W/broken" --set embed.backend=clip-vit --set embed.weights="$FX/clip_hf/model.safetensors"
done
expect_fail 2 7 "has 22 rows but subj01 has 23 images" "$W/ds" --set embed.backend=file --set embed.file="$W/subj01_short.npy"
expect_fail 3 7 "has no row for NSD id" "$W/ds" --set embed.backend=file --set embed.file="$W/feat_short.npy" --set embed.ids="$W/ids_short.npy"
expect_fail 2 7 "ids but $W/feat_short.npy has" "$W/ds" --set embed.backend=file --set embed.file="$W/feat_short.npy" --set embed.ids="$W/ids.npy"
expect_fail 2 5 "$W/nothere.safetensors" "$W/ds" --set embed.backend=clip-vit --set embed.weights="$W/nothere.safetensors"
expect_fail 2 4 "embed.weights" "$W/ds" --set embed.backend=clip-vit
expect_fail 2 4 "embed.dataset" "$W/ds" --set embed.backend=file --set embed.file="$W/feat.h5"

# ---- SIGTERM during a long embedding (gabor, 3000 images: several seconds on 2 ranks):
# every rank stops at the next batch boundary with exit status 10 within seconds, the
# results file is as it was (nothing of the stage written, no temporary file), and the
# same command then completes
"$RDMLEARN" synth "$W/big" -q --set synth.subjects=1 --set synth.images=3000 --set synth.image_size=48 \
  --set synth.lh_vertices=60 --set synth.rh_vertices=60 --set synth.test_images=0 || bad "synth (big)"
before=$(md5sum <"$W/np1.h5")
rm -rf "$W/st"; mkdir "$W/st"
RDML_STATUS_DIR="$W/st" "${MPI[@]}" -n 2 "$RDMLEARN" embed "$W/big" --set run.output="$W/np1.h5" \
  >"$W/logterm" 2>&1 &
pid=$!
for _ in $(seq 1 600); do ls "$W"/np1.h5.tmp-* >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.5
t0=$(date +%s%N)
pkill -TERM -f "^$RDMLEARN embed $W/big"
wait $pid; st=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "embed: exit status $st ${ms} ms after SIGTERM"
[[ $st == 10 && $ms -lt 8000 ]] && ok || { bad "SIGTERM during embed: status $st after $ms ms"; cat "$W/logterm"; }
[[ $(cat "$W"/st/*.status 2>/dev/null | cut -d' ' -f1 | sort -u) == 10 ]] && ok || bad "rank statuses after SIGTERM: $(cat "$W"/st/*.status)"
grep -q "subj01: stopped by SIGTERM after [0-9]* of [0-9]* embedding batches; stage embed did not finish" "$W/logterm" \
  && grep -q "run the same command again" "$W/logterm" && ok || { bad "SIGTERM message"; cat "$W/logterm"; }
[[ "$(md5sum <"$W/np1.h5")" == "$before" ]] && ok || bad "SIGTERM changed the results file"
ls "$W"/np1.h5.tmp* >/dev/null 2>&1 && bad "SIGTERM left a temporary file" || ok
"${MPI[@]}" -n 2 "$RDMLEARN" embed "$W/big" -q --set run.output="$W/np1.h5" && ok || bad "embed after SIGTERM"
$PY -c "import h5py,sys; assert h5py.File(sys.argv[1],'r')['/subjects/subj01/embeddings/gabor'].shape == (3000, 512)" \
  "$W/np1.h5" && ok || bad "embed after SIGTERM: no 3000 x 512 embedding"

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
