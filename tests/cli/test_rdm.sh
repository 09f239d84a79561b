#!/usr/bin/env bash
# `rdmlearn rdm` end to end on a synthetic dataset:
#  - RDMs, summaries and noise ceilings agree with numpy/scipy computed from the raw files
#    (tools/check_rdm_results.py: pdist within 1e-5) for several selections and metrics;
#  - 1, 2, 3 and 4 ranks give the same bits on the auto grid (RDMs, RSA, noise ceilings), and
#    different process grids the same results within 1e-6;
#  - rdm.noise_ceiling = rsatoolbox (rsatoolbox's pool_rdm) agrees with numpy at 1 and 3
#    ranks, and each /rsa/<selection>/<method> names its pooling (noise_ceiling_pool);
#  - bad input (mismatched lh/rh image counts, an empty ROI, a memory limit, a grid that does
#    not fit, an unknown rdm.noise_ceiling) stops every rank with a clear message and leaves the previous results intact;
#  - SIGTERM in the middle of the stage: exit status 10 on every rank within seconds, the
#    results file unchanged, and the same command then completes.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}" "${RDML_SRC:?}"
PY=/usr/bin/python3
CHECK="$PY $RDML_SRC/tools/check_rdm_results.py"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

"${MPI[@]}" -n 2 "$RDMLEARN" synth "$W/ds" -q --set synth.subjects=3 --set synth.images=150 \
  --set synth.image_size=24 --set synth.lh_vertices=700 --set synth.rh_vertices=800 \
  --set synth.test_images=0 || { echo "synth failed"; exit 1; }
SEL="V1,hV4,V1v+FFA-1,class:Faces,all"

for np in 1 2 3 4; do
  "${MPI[@]}" -n $np "$RDMLEARN" rdm "$W/ds" -q --set data.rois=$SEL \
    --set run.output="$W/np$np.h5" && ok || bad "rdm at $np ranks"
done
for s in "1 V1" "2 hV4" "3 V1v+FFA-1" "1 class:Faces" "2 all"; do
  $CHECK reference "$W/ds" "$W/np1.h5" $s >"$W/log" 2>&1 && ok || { bad "reference $s"; cat "$W/log"; }
done
for np in 2 3 4; do
  $CHECK same "$W/np1.h5" "$W/np$np.h5" >"$W/log" 2>&1 && ok || { bad "np1 vs np$np"; cat "$W/log"; }
done
# the auto (1 x P) grid: every RDM and noise ceiling the same bits on 1, 2, 3 and 4 ranks
$PY - "$W"/np{1,2,3,4}.h5 <<'PYEOF' && ok || bad "RDMs differ bit for bit between rank counts"
import sys, h5py, numpy as np
def items(path):
    out = {}
    with h5py.File(path, "r") as f:
        for s in f["/subjects"]:
            for sel, d in f[f"/subjects/{s}/rdm"].items():
                out[f"/subjects/{s}/rdm/{sel}"] = d[()]
        def visit(name, o):
            if isinstance(o, h5py.Dataset): out["/rsa/" + name] = o[()]
            for k in ("noise_ceiling_lower", "noise_ceiling_upper"):
                if k in o.attrs: out[f"/rsa/{name}@{k}"] = np.asarray(o.attrs[k])
        f["/rsa"].visititems(visit)
    return out
ref = items(sys.argv[1])
assert len([k for k in ref if "/rdm/" in k]) == 15, sorted(ref)
for path in sys.argv[2:]:
    got = items(path)
    assert sorted(got) == sorted(ref), path
    for k, a in ref.items():
        b = got[k]
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), \
            f"{path} {k}: {np.count_nonzero(a != b)} of {a.size} values differ from 1 rank's"
PYEOF
for g in 4x1 1x4 2x2; do
  "${MPI[@]}" -n 4 "$RDMLEARN" rdm "$W/ds" -q --set data.rois=V1,all --set data.subjects=1,2 \
    --set rdm.grid=$g --set rdm.block=7 --set run.output="$W/g$g.h5" && ok || bad "grid $g"
done
$CHECK same "$W/g4x1.h5" "$W/g1x4.h5" >"$W/log" 2>&1 && ok || { bad "grid 4x1 vs 1x4"; cat "$W/log"; }
$CHECK same "$W/g4x1.h5" "$W/g2x2.h5" >"$W/log" 2>&1 && ok || { bad "grid 4x1 vs 2x2"; cat "$W/log"; }
for m in euclidean cosine sqeuclidean spearman; do
  "${MPI[@]}" -n 3 "$RDMLEARN" rdm "$W/ds" -q --set data.rois=V1 --set data.subjects=1 \
    --set rdm.metric=$m --set data.images=90 --set run.output="$W/$m.h5" && ok || bad "metric $m"
  $CHECK reference "$W/ds" "$W/$m.h5" 1 V1 $m >"$W/log" 2>&1 && ok || { bad "reference $m"; cat "$W/log"; }
done
# rdm.arithmetic = int16: within its rounding of scipy (3e-3 / sqrt(V)), named in the RDM's
# attributes, the same bits on 1 and 3 ranks
for np in 1 3; do
  "${MPI[@]}" -n $np "$RDMLEARN" rdm "$W/ds" -q --set data.rois=V1,all --set data.subjects=1 \
    --set rdm.arithmetic=int16 --set run.output="$W/i16_$np.h5" && ok || bad "rdm.arithmetic=int16 at $np ranks"
done
for s in V1 all; do
  $CHECK reference "$W/ds" "$W/i16_1.h5" 1 $s correlation int16 >"$W/log" 2>&1 && ok || { bad "int16 reference $s"; cat "$W/log"; }
done
$PY - "$W/i16_1.h5" "$W/i16_3.h5" <<'PYEOF' && ok || bad "int16 RDMs differ between 1 and 3 ranks"
import sys, h5py
a, b = (h5py.File(p, "r")["/subjects/subj01/rdm"] for p in sys.argv[1:])
for s in ("V1", "all"):
    assert a[s].attrs["arithmetic"] == "int16" and a[s][()].tobytes() == b[s][()].tobytes(), s
PYEOF

# the paper's euclidean threshold is the off-diagonal median
$PY - "$W/euclidean.h5" <<'PYEOF' && ok || bad "euclidean threshold is not the median"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r"); d = f["/subjects/subj01/rdm/V1"]; R = d[()]
med = np.median(R[~np.eye(len(R), dtype=bool)])
assert abs(d.attrs["threshold"] - med) < 1e-9, (d.attrs["threshold"], med)
assert abs(d.attrs["dissimilar_fraction"] - np.mean(R[np.triu_indices(len(R), 1)] > med)) < 1e-12
PYEOF

# rdm.noise_ceiling: the default pools by the plain mean (checked above against numpy and
# named in an attribute); rsatoolbox pools as rsatoolbox's pool_rdm (z-scores for pearson,
# average ranks for spearman / kendall_tau_a), checked against numpy here, same at 1 and 3 ranks
for np in 1 3; do
  "${MPI[@]}" -n $np "$RDMLEARN" rdm "$W/ds" -q --set data.rois=V1 --set data.images=60 \
    --set rdm.noise_ceiling=rsatoolbox --set run.output="$W/nc$np.h5" && ok || bad "rdm.noise_ceiling=rsatoolbox at $np ranks"
done
$CHECK same "$W/nc1.h5" "$W/nc3.h5" >"$W/log" 2>&1 && ok || { bad "rsatoolbox pooling np1 vs np3"; cat "$W/log"; }
$CHECK reference "$W/ds" "$W/nc1.h5" 1 V1 >"$W/log" 2>&1 && ok || { bad "reference check of the rsatoolbox-pooled file"; cat "$W/log"; }
$PY - "$W/nc1.h5" "$W/np1.h5" <<'PYEOF' && ok || bad "rsatoolbox-pooled noise ceiling differs from numpy"
import sys, h5py, numpy as np, scipy.stats as st
f, f0 = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for meth in ("spearman", "pearson", "kendall_tau_a"):
    assert f0[f"/rsa/V1/{meth}"].attrs["noise_ceiling_pool"] == "mean"
g = f["/rsa/V1"]
subs = list(g["subjects"][()])
ids = [f[f"/subjects/subj{s:02d}/images/nsd_id"][()] for s in subs]
shared = sorted(set(ids[0]).intersection(*map(set, ids[1:])))
vec = []
for s, idl in zip(subs, ids):
    pos = {v: i for i, v in enumerate(idl)}
    ix = np.array([pos[v] for v in shared])
    R = f[f"/subjects/subj{s:02d}/rdm/V1"][()].astype(np.float64)[np.ix_(ix, ix)]
    vec.append(R[np.triu_indices(len(ix), 1)])
def pool(v, meth):   # rsatoolbox pool_rdm: 'corr' z-scores, 'spearman' / 'tau-a' ranks
    v = np.array(v)
    if meth == "pearson":
        v = (v - v.mean(1, keepdims=True)) / v.std(1, keepdims=True)
    else:
        v = np.array([st.rankdata(x) for x in v])
    return v.mean(0)
def tau_a(a, b):
    sa, sb = np.sign(a[:, None] - a[None, :]), np.sign(b[:, None] - b[None, :])
    return np.sum(np.triu(sa * sb, 1)) / (len(a) * (len(a) - 1) / 2)
cmp = {"pearson": lambda a, b: st.pearsonr(a, b)[0],
       "spearman": lambda a, b: st.spearmanr(a, b)[0], "kendall_tau_a": tau_a}
for meth, fn in cmp.items():
    a = f[f"/rsa/V1/{meth}"].attrs
    assert a["noise_ceiling_pool"] == "rsatoolbox", a["noise_ceiling_pool"]
    up = np.mean([fn(v, pool(vec, meth)) for v in vec])
    lo = np.mean([fn(v, pool(vec[:k] + vec[k + 1:], meth)) for k, v in enumerate(vec)])
    got = (a["noise_ceiling_lower"], a["noise_ceiling_upper"])
    print(meth, got, (lo, up))
    assert abs(got[0] - lo) < 1e-9 and abs(got[1] - up) < 1e-9, (meth, got, lo, up)
PYEOF

# ---- bad input: every rank stops, same status, results file untouched ----
expect_fail() { # NP CODE SUBSTRING args...
  local np=$1 code=$2 sub=$3; shift 3
  local before; before=$(md5sum "$W/np1.h5")
  rm -rf "$W/st"; mkdir "$W/st"
  out=$(RDML_STATUS_DIR="$W/st" timeout 120 "${MPI[@]}" -n $np "$RDMLEARN" rdm "$@" \
        --set run.output="$W/np1.h5" 2>&1); rc=$?
  local good=1
  [[ $rc -ne 0 && $rc -ne 124 ]] || { echo "rc=$rc"; good=0; }
  grep -qF -- "$sub" <<<"$out" || { echo "message lacks \"$sub\""; good=0; }
  [[ $(cat "$W"/st/*.status 2>/dev/null | cut -d' ' -f1 | sort -u) == "$code" ]] || { echo "statuses: $(cat "$W"/st/*.status)"; good=0; }
  [[ $(ls "$W/st" | wc -l) -eq $np ]] || good=0
  [[ "$(md5sum "$W/np1.h5")" == "$before" ]] || { echo "results file changed"; good=0; }
  ls "$W"/np1.h5.tmp* >/dev/null 2>&1 && { echo "temporary file left"; good=0; }
  if [[ $good -eq 1 ]]; then ok; else bad "expect_fail $*"; echo "$out" | head -5; fi
}
cp -r "$W/ds" "$W/bad"
$PY - "$W/bad/subj02/training_split/training_fmri/rh_training_fmri.npy" <<'PYEOF'
import sys, numpy as np
x = np.load(sys.argv[1]); np.save(sys.argv[1], x[:-3])   # rh loses 3 image rows
PYEOF
cp -r "$W/ds" "$W/empty"   # subj01's FFA-1 emptied in both hemispheres
$PY - "$W/empty/subj01/roi_masks" <<'PYEOF'
import sys, numpy as np
d = sys.argv[1]
code = {v: k for k, v in np.load(f"{d}/mapping_floc-faces.npy", allow_pickle=True).item().items()}["FFA-1"]
for h in ("lh", "rh"):
    m = np.load(f"{d}/{h}.floc-faces_challenge_space.npy"); m[m == code] = 0
    np.save(f"{d}/{h}.floc-faces_challenge_space.npy", m)
PYEOF
for np in 1 3; do
  expect_fail $np 7 'rh_training_fmri.npy' "$W/bad" --set data.rois=V1
  expect_fail $np 7 'ROIs with vertices: V1v' "$W/empty" --set data.rois=FFA-1 --set data.subjects=1
  expect_fail $np 7 'per rank' "$W/ds" --set data.rois=all --set rdm.max_memory_gb=0.0000001
  expect_fail $np 4 'grid' "$W/ds" --set rdm.grid=5x1
  expect_fail $np 4 'arithmetic = int16 does not support metric = euclidean' "$W/ds" \
    --set rdm.arithmetic=int16 --set rdm.metric=euclidean
  expect_fail $np 4 'rdm.noise_ceiling=rsatoolbx' "$W/ds" --set rdm.noise_ceiling=rsatoolbx
done

# ---- SIGTERM in the middle of the stage (eight 3000-image RDMs, several seconds on 2 ranks),
# sent to ONE rank only: every rank stops at the next RDM or Gram panel (they agree on the
# stop, nobody hangs) with exit status 10 within seconds, the results file is as it was, and
# the same command then completes
"$RDMLEARN" synth "$W/big" -q --set synth.subjects=1 --set synth.images=3000 --set synth.image_size=16 \
  --set synth.lh_vertices=600 --set synth.rh_vertices=600 --set synth.test_images=0 || bad "synth (big)"
BIG=(--set data.rois=all,class:Visual,class:Places,V1,hV4,early,class:Faces,class:Bodies --set run.output="$W/np1.h5")
before=$(md5sum <"$W/np1.h5")
rm -rf "$W/st"; mkdir "$W/st"
RDML_STATUS_DIR="$W/st" "${MPI[@]}" -n 2 "$RDMLEARN" rdm "$W/big" "${BIG[@]}" >"$W/logterm" 2>&1 &
pid=$!
for _ in $(seq 1 600); do ls "$W"/np1.h5.tmp-* >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$(pgrep -f "^$RDMLEARN rdm $W/big" | head -1)"
wait $pid; st=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "rdm: exit status $st ${ms} ms after SIGTERM"
[[ $st == 10 && $ms -lt 8000 ]] && ok || { bad "SIGTERM during rdm: status $st after $ms ms"; cat "$W/logterm"; }
[[ $(cat "$W"/st/*.status 2>/dev/null | cut -d' ' -f1 | sort -u) == 10 ]] && ok || bad "rank statuses after SIGTERM: $(cat "$W"/st/*.status)"
grep -Eq "stopped by SIGTERM (before the RDM of subj01 .* \([0-7] of 8 RDMs done\)|after [0-9]+ of [0-9]+ RDM panels|while reading image rows|after reading the RDM input).*stage rdm did not finish" "$W/logterm" \
  && grep -q "run the same command again" "$W/logterm" && ok || { bad "SIGTERM message"; cat "$W/logterm"; }
[[ "$(md5sum <"$W/np1.h5")" == "$before" ]] && ok || bad "SIGTERM changed the results file"
ls "$W"/np1.h5.tmp* >/dev/null 2>&1 && bad "SIGTERM left a temporary file" || ok
"${MPI[@]}" -n 2 "$RDMLEARN" rdm "$W/big" -q "${BIG[@]}" && ok || bad "rdm after SIGTERM"
$PY -c "import h5py,sys; assert h5py.File(sys.argv[1],'r')['/subjects/subj01/rdm/class:Bodies'].shape == (3000, 3000)" \
  "$W/np1.h5" && ok || bad "rdm after SIGTERM: no 3000 x 3000 RDM"

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
