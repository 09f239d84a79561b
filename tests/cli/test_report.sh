#!/usr/bin/env bash
# `rdmlearn report` on a small results file built by the stages (synth -> rdm -> embed -> svm
# [extremes, colours, grid] -> train), then:
#  - every expected figure exists as a valid SVG (xml.etree) and a PNG (Pillow) of the same,
#    expected size, and report.html references each with that size;
#  - the numbers in report.html are the stored ones (SVM means, fold R^2), and the RDM heat
#    map's pixels follow the stored RDM in the order of scipy's average-linkage clustering
#    (binary panel: dissimilar cells yellow exactly where the value is above the threshold;
#    continuous panel: colour rank-correlates with value); the order file equals scipy's
#    leaves_list; sections come in reading order (model scores, RSA, ..., RDM figures);
#    extreme pairs are named by NSD id; the subject x subject map's colours sit on a fixed
#    [-1, 1] range;
#  - report.html loads in headless Chromium without console errors, every image loads (a probe
#    copy counts them), and a screenshot is kept: $RDML_BUILD/test_report_artifacts/;
#  - the report is the same on 2 ranks as on 1 (figures byte-identical);
#  - a synthetic 9841 x 9841 RDM (h5py) renders block-averaged and clustered within seconds,
#    the caption says so, the blocks show the matrix's structure and its planted clusters are
#    contiguous in the order;
#  - bad input: a file missing stages (the report lists what is absent and renders the rest),
#    images not found (said, rest rendered), a truncated file, a non-HDF5 file, a path that
#    does not exist, an unwritable output directory: clear errors naming the file.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}"
PY=/usr/bin/python3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
ART=${RDML_BUILD:-$W}/test_report_artifacts
mkdir -p "$ART"
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

D=(--set data.root="$W/ds" -q)
"$RDMLEARN" synth "$W/ds" -q --set synth.subjects=2 --set synth.images=80 --set synth.image_size=24 \
  --set synth.lh_vertices=300 --set synth.rh_vertices=300 --set synth.test_images=0 \
  --set synth.color_fraction=0.5 || { echo "synth failed"; exit 1; }
"$RDMLEARN" rdm "${D[@]}" --set data.rois=V1,hV4 --set rdm.noise_ceiling=rsatoolbox --set run.output="$W/only_rdm.h5" \
  || { echo "rdm failed"; exit 1; }
cp "$W/only_rdm.h5" "$W/r.h5"
E=("${D[@]}" --set embed.backend=gabor --set run.output="$W/r.h5")
"$RDMLEARN" embed "${E[@]}" --set data.rois=V1 || { echo "embed failed"; exit 1; }
"$RDMLEARN" svm "${E[@]}" --set data.rois=V1,hV4 --set pairs.k=8 || { echo "svm failed"; exit 1; }
"$RDMLEARN" svm "${E[@]}" --set data.rois=V1 --set pairs.set=colors --set pairs.experiment=colors \
  --set split.scheme=holdout || { echo "svm colors failed"; exit 1; }
"$RDMLEARN" svm "${E[@]}" --set data.subjects=1 --set data.rois=V1 --set pairs.k=8 --set pairs.experiment=grid \
  --set grid.svm_c=0.1,1 --set grid.inner_folds=2 || { echo "svm grid failed"; exit 1; }
"$RDMLEARN" train "${E[@]}" --set data.rois=V1 --set pairs.experiment=net --set pairs.set=all --set train.tower=16,8 --set train.head=8 \
  --set train.epochs=3 || { echo "train failed"; exit 1; }
"$RDMLEARN" evaluate "${E[@]}" --set data.rois=V1,hV4 --set evaluate.bootstrap=50 --set evaluate.permutations=100 \
  || { echo "evaluate failed"; exit 1; }

t0=$(date +%s%N)
"$RDMLEARN" report "$W/r.h5" -o "$W/rep1" -q && ok || bad "report"
t1=$(date +%s%N)
echo "report of the small file: $(( (t1 - t0) / 1000000 )) ms"
"${MPI[@]}" -n 2 "$RDMLEARN" report "$W/r.h5" -o "$W/rep2" -q && ok || bad "report on 2 ranks"
# default directory: report/ beside the results file
"$RDMLEARN" report "$W/r.h5" -q && [ -f "$W/report/report.html" ] && ok || bad "default report directory"

cat >"$W/check.py" <<'PYEOF'
import sys, re, os, h5py, numpy as np
import xml.etree.ElementTree as ET
from PIL import Image
from scipy import stats
rep, h5 = sys.argv[1], sys.argv[2]
html = open(os.path.join(rep, "report.html"), encoding="utf-8").read()
f = h5py.File(h5, "r")
# figure name -> expected (w, h) where the layout fixes it (docs/report.md)
expect = {"fig_rdm_subj01_V1": (1760, 520), "fig_rdm_subj01_hV4": (1760, 520),
          "fig_rdm_subj02_V1": (1760, 520), "fig_rdm_subj02_hV4": (1760, 520),
          "fig_pairs_subj01_V1": (1120, 670), "fig_pairs_subj02_hV4": (1120, 670),
          "fig_colors_subj01": (1080, 650),
          "fig_confusion_main": None, "fig_confusion_colors": None, "fig_confusion_grid": None,
          "fig_folds_net_siamese_subj01_V1": (1330, 450), "fig_folds_net_siamese_subj02_V1": (1330, 450),
          "fig_scatter_net_siamese_subj01_V1": (760, 540), "fig_loss_net_siamese_subj02_V1": (760, 480),
          "fig_sweep_main_svm": None, "fig_sweep_net_siamese": None,
          "fig_rsa_V1": None, "fig_rsa_hV4": None,
          "fig_eval_V1_spearman": None, "fig_eval_hV4_spearman": None,
          "fig_evalfolds_main_V1_spearman": None, "fig_evalfolds_net_V1_spearman": None}
imgs = re.findall(r'<img src="([^"]+)\.png" width="(\d+)" height="(\d+)"', html)
shown = {n: (int(w), int(h)) for n, w, h in imgs}
for name, size in expect.items():
    assert name in shown, ("not in report.html", name)
for name, (w, h) in shown.items():
    root = ET.parse(os.path.join(rep, name + ".svg")).getroot()
    assert root.tag.endswith("svg"), name
    assert root.get("width") == f"{w}px" and root.get("height") == f"{h}px", (name, root.attrib)
    assert len(list(root.iter())) > 20, name   # something was drawn
    im = Image.open(os.path.join(rep, name + ".png"))
    assert im.format == "PNG" and im.size == (w, h), (name, im.format, im.size)
    if expect.get(name): assert (w, h) == expect[name], (name, w, h)
    assert f'href="{name}.svg"' in html, name
print(len(shown), "figures valid")
# tags balanced (static HTML, parsed by the standard library)
from html.parser import HTMLParser
stack, errs = [], []
class P(HTMLParser):
    def handle_starttag(self, t, a):
        if t not in ("meta", "img", "br"): stack.append(t)
    def handle_endtag(self, t):
        if stack and stack[-1] == t: stack.pop()
        else: errs.append((t, self.getpos()))
P().feed(html)
assert not stack and not errs, (stack, errs[:3])
links = re.findall(r'(?:src|href)="([^"]+)"', html)
assert links and all(":" not in l and not l.startswith("/") for l in links), links  # relative only
for l in links:
    if not l.startswith("#"): assert os.path.exists(os.path.join(rep, l)), l
assert "<script" not in html
# numbers: SVM means and a fold's R^2 as stored
g = f["/experiments/main/svm/subj01/V1"]
for m in ("accuracy", "f1", "roc_auc"):
    s = "%.3f &plusmn; %.3f" % (g.attrs["mean_" + m], g.attrs["std_" + m])
    assert s in html, s
n = f["/experiments/net/siamese/subj02/V1/fold_3"]
assert ("<td>%.3f</td>" % n.attrs["r2"]) in html or ("%.3g" % n.attrs["r2"]) in html
# the noise-ceiling table names the pooling of each row
for meth in ("spearman", "pearson"):
    row = "<td>V1</td><td>%s</td><td>rsatoolbox</td><td>%d</td>" % (meth, f["/rsa/V1"].attrs["n_shared_images"])
    assert row in html, row
# each experiment names its data: images and pairs of the stored pair groups
for exp, subj in (("main", "subj01"), ("net", "subj02")):
    pg = f[f"/experiments/{exp}/pairs/{subj}/V1"]
    s = "%s <code>V1</code>: the first %d images, %d pairs" % (subj, pg.attrs["n_images"], pg.attrs["n_pairs"])
    assert s in html, s
assert "Absent parts" in html and "None: the file holds every part" in html
# the model comparison: each subject's score, interval, p and q as stored (/evaluate)
ev = f["/evaluate/rdm/V1/spearman"]
row = "<td>V1</td><td>subj02</td><td>gabor</td><td>spearman</td><td>%.3f</td><td>[%.3f, %.3f]</td>" % (
    ev["score"][1, 0], ev["ci_low"][1, 0], ev["ci_high"][1, 0])
assert row in html, row
assert "<td>net</td><td>V1</td><td>subj01</td><td>siamese</td><td>spearman</td>" in html
assert "Grid search of grid: subj01 V1" in html and 'class="chosen"' in html
# the sweep engine's summary, when the stages wrote one (src/experiment/sweep.c)
if "/sweep/main/svm/summary/mean" in f:
    m, sd = f["/sweep/main/svm/summary/mean"][()], f["/sweep/main/svm/summary/std"][()]
    sel = f["/sweep/main/svm/summary/selection"].asstr()[()]
    row = "<td>%s</td><td>%.3f &plusmn; %.3f</td>" % (sel[0], m[0, 0], sd[0, 0])
    assert row in html, row
# sections in reading order: the model scores and RSA first, the RDM figures after the
# experiments; a table of contents links them
pos = [html.find(f'<section id="{s}">') for s in
       ("summary", "evaluate", "rsa", "absent", "experiments", "sweep", "rdm", "embeddings", "provenance")]
assert all(p >= 0 for p in pos) and pos == sorted(pos), pos
first_rdm_fig = html.find('<figure id="fig_rdm_')
assert first_rdm_fig > html.find('<figure id="fig_rsa_V1"') > html.find("Model scores"), "figure order"
assert html.find('<nav id="contents">') < pos[0] and '<a href="#summary">' in html
# the summary table holds every model result with its stored mean +- std
for path, m in (("/experiments/main/svm/subj01/V1", "accuracy"), ("/experiments/main/svm/subj02/hV4", "roc_auc"),
                ("/experiments/net/siamese/subj02/V1", "r2"), ("/experiments/net/siamese/subj01/V1", "spearman")):
    a = f[path].attrs
    cellv = "<b>%.3f &plusmn; %.3f</b>" % (a["mean_" + m], a["std_" + m])
    assert cellv in html[pos[0]:pos[1]], (path, cellv)
# RDM rows and columns in the order of scipy's average-linkage clustering of the same RDM
from scipy.cluster.hierarchy import linkage, leaves_list
from scipy.spatial.distance import squareform
orders = {}
for s_ in ("subj01", "subj02"):
    ids = f[f"/subjects/{s_}/images/nsd_id"][()]
    for sel in ("V1", "hV4"):
        Rs = f[f"/subjects/{s_}/rdm/{sel}"][()].astype(np.float64)
        ref = leaves_list(linkage(squareform(Rs, checks=False), "average"))
        csv = np.loadtxt(os.path.join(rep, f"fig_rdm_{s_}_{sel}_order.csv"), delimiter=",", skiprows=1, dtype=np.int64)
        assert np.array_equal(csv[:, 0], np.arange(len(ref))), "positions"
        assert np.array_equal(csv[:, 1], ref), ("order differs from scipy", s_, sel)
        assert np.array_equal(csv[:, 2], ids[ref]), "NSD ids of the order"
        adj = lambda o: sum(Rs[o[k], o[k + 1]] for k in range(len(o) - 1))
        assert adj(ref) < 0.9 * adj(np.arange(len(ref))), "clustering did not bring similar images together"
        orders[s_, sel] = ref
assert "ordered by average-linkage hierarchical clustering of this RDM" in html
# extreme pairs named by NSD id (rows in small print)
ids = f["/subjects/subj01/images/nsd_id"][()]
lp = f["/subjects/subj01/rdm_summary/V1/low_pairs"][()].reshape(-1, 2)
s = "<td>NSD %d, NSD %d <span" % (ids[lp[0, 0]], ids[lp[0, 1]])
assert s in html, s
assert "rows %d, %d" % (lp[0, 0], lp[0, 1]) in html
# the subject x subject map: colour range fixed at [-1, 1], labelled colour bar with the noise
# ceiling marked: every cell's colour is found on the bar at its value
C = f["/rsa/V1/spearman/subject_corr"][()]
ns = C.shape[0]
rp = np.asarray(Image.open(os.path.join(rep, "fig_rsa_V1.png")).convert("RGB")).astype(int)
bx, by = 110 + ns * 80 + 20 + 120 + 8, 60
bh = max(ns * 36, 150, 7.5 * len("Spearman rho between RDMs") + 24)
bar = rp[by + 3:int(by + bh) - 3, bx]
val = 1 - 2 * (np.arange(by + 3, int(by + bh) - 3) - by) / bh   # value at each bar row if the range is [-1, 1]
for i in range(ns):
    for j in range(ns):
        c = rp[60 + i * 36 + 4, 110 + j * 80 + 4]
        k = np.argmin(((bar - c) ** 2).sum(1))
        assert abs(val[k] - C[i, j]) < 0.03, ("cell colour is not its value on [-1, 1]", i, j, C[i, j], val[k])
assert "Colour range fixed at -1 to 1" in html and "noise ceiling: lower" in html
print("sections ordered, clustering = scipy, NSD ids shown, RSA colour range [-1, 1]")
# heat-map pixels against the stored RDM in the clustered order (n = 80: one cell is 5 x 5 px,
# no downsampling)
o = orders["subj01", "V1"]
R = f["/subjects/subj01/rdm/V1"][()].astype(np.float64)[np.ix_(o, o)]
thr = f["/subjects/subj01/rdm/V1"].attrs["threshold"]
N = R.shape[0]
px = np.asarray(Image.open(os.path.join(rep, "fig_rdm_subj01_V1.png")).convert("RGB")).astype(int)
cell = 400 / N
i, j = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
cy = (70 + (i + 0.5) * cell).astype(int); cxa = (80 + (j + 0.5) * cell).astype(int)
cxb = (680 + (j + 0.5) * cell).astype(int)
off = i != j
binpix = px[cy, cxb]                     # yellow (dissimilar) has red > 200, purple < 100
yellow = binpix[..., 0] > 200
assert np.array_equal(yellow[off], (R > thr)[off]), "binary panel disagrees with the RDM"
green = px[cy, cxa][..., 1]              # viridis green rises with the value
rho = stats.spearmanr(R[off], green[off])[0]
assert rho > 0.99, rho
print("heat-map pixels follow the RDM: binary exact, continuous rho = %.4f" % rho)
PYEOF
$PY "$W/check.py" "$W/rep1" "$W/r.h5" >"$W/log" 2>&1 && ok || bad "figures / numbers"; cat "$W/log"

# 1 rank and 2 ranks draw the same figures
same=1
for p in "$W"/rep1/*.png; do cmp -s "$p" "$W/rep2/$(basename "$p")" || { same=0; echo "differs: $(basename "$p")"; }; done
[ $same = 1 ] && ok || bad "figures differ between 1 and 2 ranks"

# ---- headless Chromium: no console errors, every image loads, screenshot kept ----
CHR=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHR" ]; then
  bad "chromium not installed (apt-get install chromium; tools/setup.sh lists it)"
else
  CFLAGS=(--headless=new --no-sandbox --disable-gpu --enable-logging=stderr --v=0 --virtual-time-budget=5000
          --disable-background-networking --disable-component-update --disable-sync --no-first-run
          --user-data-dir="$W/chromium-profile")
  HOME="$W" timeout 120 "$CHR" "${CFLAGS[@]}" --window-size=1200,3000 --screenshot="$ART/report.png" \
    "file://$W/rep1/report.html" >"$W/chr.out" 2>"$W/chr.err"
  if grep -E "INFO:CONSOLE|Uncaught|ERR_FILE_NOT_FOUND|Not allowed to load" "$W/chr.err"; then
    bad "console errors loading report.html"
  elif [ ! -s "$ART/report.png" ]; then bad "no screenshot"; cat "$W/chr.err" | tail -5
  else ok; echo "screenshot: $ART/report.png"; fi
  # a probe copy beside it (same relative links) counts the images that loaded
  sed 's|</body>|<script>window.addEventListener("load",function(){var b=0,g=0;for(const i of document.images){if(i.complete\&\&i.naturalWidth>0)g++;else{b++;console.log("BROKEN "+i.getAttribute("src"));}}console.log("IMAGES ok="+g+" broken="+b);});</script></body>|' \
    "$W/rep1/report.html" >"$W/rep1/probe.html"
  HOME="$W" timeout 120 "$CHR" "${CFLAGS[@]}" --dump-dom "file://$W/rep1/probe.html" >"$W/dom.html" 2>"$W/probe.err"
  nimg=$(grep -c '<img src=' "$W/rep1/report.html")
  if grep -q "IMAGES ok=$nimg broken=0" "$W/probe.err" && grep -q "Experiment <code>main</code>" "$W/dom.html"; then ok
  else bad "images did not all load in Chromium ($nimg expected)"; grep CONSOLE "$W/probe.err"; fi
  rm -f "$W/rep1/probe.html"
  cp "$W/rep1/report.html" "$W"/rep1/fig_rdm_subj01_V1.png "$ART/" 2>/dev/null
fi

# ---- sweep tables in the layout of the sweep engine (src/experiment/sweep.c), added with h5py ----
cp "$W/r.h5" "$W/sweep.h5"
$PY - "$W/sweep.h5" <<'PYEOF' || bad "h5py sweep table"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    if "/sweep" in f: del f["/sweep"]          # what the stages wrote: replaced by known values
    g = f.create_group("/sweep/main/svm/summary")
    g["subject"] = np.array([1, 2], dtype="i8")
    g.create_dataset("selection", data=["V1", "V1v+V1d"], dtype=h5py.string_dtype())
    g["mean"] = np.array([[0.8125, 0.5], [0.25, np.nan]]); g["mean"].attrs["columns"] = "accuracy,f1"
    g["std"] = np.array([[0.0625, 0.125], [0.5, np.nan]]); g["std"].attrs["columns"] = "accuracy,f1"
    t = f.create_dataset("/sweep/table", data=np.array([[1.5, 2.25]]))
    t.attrs["rows"] = "r0"; t.attrs["columns"] = "a,b"
PYEOF
"$RDMLEARN" report "$W/sweep.h5" -o "$W/sweep" -q && ok || bad "report with sweep tables"
if grep -q "<tr><td>subj01</td><td>V1</td><td>0.812 &plusmn; 0.062</td><td>0.500 &plusmn; 0.125</td></tr>" "$W/sweep/report.html" \
   && grep -q "<td>subj02</td><td>V1v+V1d</td><td>0.250 &plusmn; 0.500</td><td>n/a</td>" "$W/sweep/report.html" \
   && grep -q "<td>r0</td><td>1.500</td><td>2.250</td>" "$W/sweep/report.html"; then ok
else bad "sweep tables not rendered"; grep -A4 "Sweep summary" "$W/sweep/report.html"; fi

# ---- a 9841-image RDM (h5py): block-averaged, in seconds ----
$PY - "$W/big.h5" <<'PYEOF' || { echo "h5py big RDM failed"; exit 1; }
import sys, h5py, numpy as np
n = 9841
rng = np.random.default_rng(5)
c = np.arange(n) * 4 // n                      # four clusters of consecutive images
with h5py.File(sys.argv[1], "w") as f:
    d = f.create_dataset("/subjects/subj01/rdm/V1", (n, n), dtype="f4", chunks=(26, n))
    d.attrs["threshold"] = 0.5; d.attrs["metric"] = "correlation"; d.attrs["n_images"] = n
    for lo in range(0, n, 1000):
        hi = min(n, lo + 1000)
        blk = 0.2 + 0.7 * (c[lo:hi, None] != c[None, :]) + 0.05 * rng.standard_normal((hi - lo, n))
        blk[np.arange(hi - lo), np.arange(lo, hi)] = 0
        d[lo:hi] = blk.astype("f4")
PYEOF
t0=$(date +%s%N)
"$RDMLEARN" report "$W/big.h5" -o "$W/big" -q && ok || bad "report of the 9841-image RDM"
t1=$(date +%s%N)
secs=$(( (t1 - t0) / 1000000 ))e-3
echo "report of a 9841 x 9841 RDM: $secs s (file read, block averaging, SVG + PNG, HTML)"
$PY - "$W/big" "$secs" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "big RDM figure"; cat "$W/log"; }
import sys, os, numpy as np
from PIL import Image
rep, secs = sys.argv[1], float(sys.argv[2])
assert secs < 30, secs
html = open(os.path.join(rep, "report.html")).read()
assert "9841 x 9841 RDM is shown as 985 x 985 blocks of 10 x 10 entries" in html
px = np.asarray(Image.open(os.path.join(rep, "fig_rdm_subj01_V1.png")).convert("RGB")).astype(int)
n = 9841
def at(x0, i, j): return px[int(70 + (i + 0.5) / n * 400), int(x0 + (j + 0.5) / n * 400)]
# binary panel: share 0 inside a cluster (dark purple), 1 between clusters (yellow)
assert at(680, 1200, 300)[0] < 100 and at(680, 1200, 6000)[0] > 200, (at(680, 1200, 300), at(680, 1200, 6000))
# continuous panel: between-cluster blocks brighter than within
assert at(80, 1200, 6000)[1] > at(80, 1200, 300)[1] + 100
# parts the synthetic file lacks are listed, the rest rendered
assert "Absent parts" in html and "rdmlearn svm" in html and "rdmlearn embed" in html
# clustered at full size: the order file lists all 9841 rows, each planted cluster in one run
o = np.loadtxt(os.path.join(rep, "fig_rdm_subj01_V1_order.csv"), delimiter=",", skiprows=1, dtype=np.int64)[:, 1]
assert np.array_equal(np.sort(o), np.arange(n))
c = (o * 4 // n)
assert (np.diff(c) != 0).sum() == 3, "planted clusters not contiguous in the order"
assert "ordered by average-linkage hierarchical clustering" in html
print("ok")
PYEOF
cat "$W/log"

# ---- bad input ----
# a file with only the RDM stage: renders, lists the absent parts
"$RDMLEARN" report "$W/only_rdm.h5" -o "$W/part" -q && ok || bad "report of an rdm-only file"
$PY - "$W/part" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "absent parts"; cat "$W/log"; }
import sys, os
rep = sys.argv[1]
html = open(os.path.join(rep, "report.html")).read()
for s in ("This results file does not hold", "run <code>rdmlearn svm</code>", "run <code>rdmlearn train</code>",
          "run <code>rdmlearn embed</code>", "No experiments in this file"):
    assert s in html, s
assert os.path.exists(os.path.join(rep, "fig_rdm_subj02_hV4.png"))
assert os.path.exists(os.path.join(rep, "fig_pairs_subj01_V1.png"))
assert not any(n.startswith("fig_confusion") for n in os.listdir(rep))
PYEOF
# images not found: said in the report, the rest rendered
"$RDMLEARN" report "$W/r.h5" -o "$W/noimg" -q --set data.root="$W/nowhere" && ok || bad "report without images"
if grep -q "dataset images were not found at data.root = $W/nowhere" "$W/noimg/report.html" \
   && [ -f "$W/noimg/fig_rdm_subj01_V1.png" ] && [ ! -f "$W/noimg/fig_pairs_subj01_V1.png" ] \
   && [ -f "$W/noimg/fig_confusion_main.png" ]; then ok; else bad "missing images not reported"; fi

expect_fail() { # what, pattern, args...
  local what=$1 pat=$2; shift 2
  if "$RDMLEARN" report "$@" >"$W/out" 2>&1; then bad "$what: succeeded"
  elif ! grep -q -- "$pat" "$W/out"; then bad "$what: message lacks '$pat'"; cat "$W/out"
  else ok; fi
}
head -c 20000 "$W/r.h5" >"$W/trunc.h5"
expect_fail "truncated file" "trunc.h5: .*truncated" "$W/trunc.h5" -o "$W/t"
echo "not hdf5" >"$W/text.h5"
expect_fail "not HDF5" "text.h5: not a readable HDF5 file" "$W/text.h5" -o "$W/t"
expect_fail "missing file" "$W/nope.h5: cannot open results file: No such file" "$W/nope.h5"
expect_fail "unwritable output" "/proc/rdml_report: cannot create" "$W/r.h5" -o /proc/rdml_report
expect_fail "no argument" "takes 1 to 1 arguments"
"${MPI[@]}" -n 2 "$RDMLEARN" report "$W/trunc.h5" -o "$W/t" >"$W/out" 2>&1
[ $? -ne 0 ] && grep -q "truncated" "$W/out" && ok || { bad "truncated file on 2 ranks"; cat "$W/out"; }

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
