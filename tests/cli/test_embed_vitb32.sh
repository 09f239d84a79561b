#!/usr/bin/env bash
# CLIP ViT-B/32-shape correctness (issue 4): hidden 768, 12 layers, 12 heads, patch 32,
# image 224, projection 512, quick_gelu, with ~350 MB of random weights regenerated from the
# seed in tests/fixtures/embed/vitb32.txt (generator rdml-vitgen-1, tools/clip_reference.py;
# fixture made by tools/make_embed_vitb32_fixture.py). `test_embed_clip --vitb32 DIR` checks
# the generated values' checksum, compares get_image_features and the hidden-6 mean patch
# token of img0..img2 with the float64 PyTorch reference (1e-4 relative) and checks that
# the OpenAI-named file gives bit-identical features. Then `rdmlearn embed` with the same
# ViT-B/32 weights (no config.json: heads = 768 / 64) on the first 5 images of a synthetic subject at 1, 2
# and 3 ranks with batch 2: 512-d rows, bit-identical for every rank count. The features of
# batch 1 and of 2 BLAS threads differ from batch 3 / 1 thread below 2e-6 (not bit for bit),
# as the embed.batch / run.threads help and docs/embed.md say (checked at the end).
# A CLI test rather than a unit test so that the valgrind pass over the serial unit tests
# (tools/test.sh) does not run 26 GFLOP under memcheck; the ASan build runs it as a CLI test.
set -uo pipefail
: "${RDML_BUILD:?}"
T="$RDML_BUILD/tests/test_embed_clip"
[ -x "$T" ] || { echo "FAIL: $T is not built"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/rdml-vitb32.XXXXXX"); trap 'rm -rf "$W"' EXIT
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} # CTest sets 1
fails=0
"$T" --vitb32 "$W" || { echo "FAIL: test_embed_clip --vitb32"; fails=$((fails+1)); }

: "${RDMLEARN:?}" "${MPIEXEC:?}"
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
mkdir -p "$W/vit"
"$T" --write-vitb32 "$W/vit/model.safetensors" >/dev/null || { echo "FAIL: writing the weights"; exit 1; }
"${MPI[@]}" -n 1 "$RDMLEARN" synth "$W/ds" -q --set synth.subjects=1 --set synth.images=10 \
  --set synth.image_size=40 --set synth.lh_vertices=60 --set synth.rh_vertices=60 \
  --set synth.test_images=0 || { echo "FAIL: synth"; exit 1; }
for np in 1 2 3; do
  "${MPI[@]}" -n $np "$RDMLEARN" embed "$W/ds" -q --set embed.backend=clip-vit --set embed.batch=2 --set data.images=5 \
    --set embed.weights="$W/vit/model.safetensors" --set run.output="$W/np$np.h5" ||
    { echo "FAIL: rdmlearn embed at $np ranks"; fails=$((fails+1)); }
done
/usr/bin/python3 - "$W" <<'PYEOF' || { echo "FAIL: rank invariance / contents"; fails=$((fails+1)); }
import sys, h5py, numpy as np
W = sys.argv[1]
ref = h5py.File(f"{W}/np1.h5", "r")["/subjects/subj01/embeddings/clip-vit"]
X = ref[()]
assert X.shape == (5, 512) and X.dtype == np.float32 and np.isfinite(X).all(), X.shape
assert "width 768" in ref.attrs["model"] and "12 layers" in ref.attrs["model"], ref.attrs["model"]
d = np.abs(X[:, None] - X[None]).max(2)
assert (d + np.eye(5) > 1e-3).all(), d  # every image gets its own features
for np_ in (2, 3):
    assert np.array_equal(X, h5py.File(f"{W}/np{np_}.h5", "r")["/subjects/subj01/embeddings/clip-vit"][()]), np_
print("rdmlearn embed ViT-B/32: 5 x 512 rows, identical at 1, 2, 3 ranks; model:", ref.attrs["model"])
PYEOF
# what the help and docs say of embed.batch / run.threads matches the check above (features
# change in the last bits, below 2e-6; they used to say "results do not depend on it")
help=$("$RDMLEARN" config --defaults | tr '\n' ' ' | tr -s ' ;' ' ')
grep -qF "The features change with it in the last bits" <<<"$help" \
  || { echo "FAIL: embed.batch help text"; fails=$((fails+1)); }
grep -qF "clip-vit features change with it in the last bits" <<<"$help" || { echo "FAIL: run.threads help text"; fails=$((fails+1)); }
tr '\n' ' ' <"${RDML_SRC:?}/docs/embed.md" | tr -s ' ' | grep -qF "not bit-identical across \`embed.batch\` or \`run.threads\`" \
  || { echo "FAIL: docs/embed.md on embed.batch / run.threads"; fails=$((fails+1)); }
[ $fails -eq 0 ] && echo "test_embed_vitb32: all passed"
[ $fails -eq 0 ]
