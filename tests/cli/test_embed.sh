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
#  - SIGTERM in the middle of a long embedding: exit status 10 on every rank within seconds;
#    in the first subject the results file stays unchanged, in the second the first
#    subject's embeddings are kept (stage marked incomplete) and the rerun embeds only the
#    second subject.
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

# ---- SIGTERM during a long embedding (gabor, 2 subjects x 1500 images: several seconds on 2
# ranks): every rank stops at the next batch boundary with exit status 10 within seconds.
# During the first subject nothing is kept: the results file is as it was (no temporary file
# left). During the second, the first subject's embeddings are kept and the stage is marked
# incomplete; the rerun embeds only the second subject, and the kept rows equal a clean run's.
"$RDMLEARN" synth "$W/big" -q --set synth.subjects=2 --set synth.images=1500 --set synth.image_size=48 \
  --set synth.lh_vertices=60 --set synth.rh_vertices=60 --set synth.test_images=0 || bad "synth (big)"
term_embed() { # LOG PATTERN-TO-WAIT-FOR: start the embed, SIGTERM once PATTERN shows, wait
  rm -rf "$W/st"; mkdir "$W/st"
  RDML_STATUS_DIR="$W/st" "${MPI[@]}" -n 2 "$RDMLEARN" embed "$W/big" --set run.output="$W/np1.h5" \
    >"$1" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do grep -q "$2" "$1" && break; sleep 0.1; done
  sleep 0.5
  local t0; t0=$(date +%s%N)
  pkill -TERM -f "^$RDMLEARN embed $W/big"
  wait $pid; st=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "embed: exit status $st ${ms} ms after SIGTERM"
  [[ $st == 10 && $ms -lt 8000 ]] && ok || { bad "SIGTERM during embed: status $st after $ms ms"; cat "$1"; }
  [[ $(cat "$W"/st/*.status 2>/dev/null | cut -d' ' -f1 | sort -u) == 10 ]] && ok || bad "rank statuses after SIGTERM: $(cat "$W"/st/*.status)"
  ls "$W"/np1.h5.tmp* >/dev/null 2>&1 && bad "SIGTERM left a temporary file" || ok
}
before=$(md5sum <"$W/np1.h5")
term_embed "$W/logterm1" "embed: gabor backend"
grep -q "subj01: stopped by SIGTERM after [0-9]* of [0-9]* embedding batches; stage embed did not finish" "$W/logterm1" \
  && grep -q "run the same command again" "$W/logterm1" && ok || { bad "SIGTERM message (first subject)"; cat "$W/logterm1"; }
[[ "$(md5sum <"$W/np1.h5")" == "$before" ]] && ok || bad "SIGTERM in the first subject changed the results file"
term_embed "$W/logterm2" "subj01: 1500 images -> 512-d gabor embeddings"
grep -q "subj02: stopped by SIGTERM after [0-9]* of [0-9]* embedding batches; the embeddings of the 1 of 2 subject(s) finished are kept in $W/np1.h5" "$W/logterm2" \
  && ok || { bad "SIGTERM message (second subject)"; cat "$W/logterm2"; }
$PY - "$W/np1.h5" <<'PYEOF' && ok || bad "results file after SIGTERM in the second subject"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert f["/meta/done"].attrs["embed:gabor"].startswith("incomplete"), f["/meta/done"].attrs["embed:gabor"]
d = f["/subjects/subj01/embeddings/gabor"]
assert d.shape == (1500, 512) and len(d.attrs["stamp"]) == 16
e = f["/subjects/subj02"].get("embeddings/gabor")   # the earlier 23-image one, if any
assert e is None or e.shape[0] == 23
PYEOF
"${MPI[@]}" -n 2 "$RDMLEARN" embed "$W/big" --set run.output="$W/np1.h5" >"$W/logrerun" 2>&1 && ok || { bad "embed after SIGTERM"; cat "$W/logrerun"; }
grep -q "subj01: gabor embeddings already in the file for this configuration and these inputs" "$W/logrerun" && ! grep -q "subj01: 1500 images" "$W/logrerun" \
  && grep -q "subj02: 1500 images" "$W/logrerun" && ok || { bad "rerun after SIGTERM: subjects"; cat "$W/logrerun"; }
"${MPI[@]}" -n 2 "$RDMLEARN" embed "$W/big" -q --set data.subjects=1 --set run.output="$W/clean1.h5" || bad "clean embed"
$PY - "$W/np1.h5" "$W/clean1.h5" <<'PYEOF' && ok || bad "after SIGTERM + rerun: embeddings"
import sys, h5py, numpy as np
f, c = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert len(f["/meta/done"].attrs["embed:gabor"]) == 16
assert f["/subjects/subj02/embeddings/gabor"].shape == (1500, 512)
assert np.array_equal(f["/subjects/subj01/embeddings/gabor"][()], c["/subjects/subj01/embeddings/gabor"][()])
PYEOF

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
