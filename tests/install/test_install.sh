#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then use it as an outside user would:
#  - the files are there: bin/rdmlearn, lib/librdml.a, lib/librdml.so.0.1.0 with SONAME
#    librdml.so.0 and its links, include/rdml/*.h (the source tree's), lib/pkgconfig/rdml.pc,
#    lib/cmake/rdml/ (config, version, targets), share/rdmlearn/{configs,jobs,slurm,docs};
#  - tests/install/rdml_app.c (public headers only) builds with
#    `mpicc $(pkg-config --cflags --libs rdml)` and with CMake find_package(rdml) (shared
#    rdml::rdml and static rdml::rdml_static); ldd shows librdml.so.0 from the prefix for the
#    shared builds and no librdml for the static one;
#  - each runs on 2 ranks: synthetic dataset + RDM through the library API, written to HDF5;
#    the dataset is byte-identical to `rdmlearn synth`'s and the RDM identical to
#    `rdmlearn rdm`'s (the installed binary) for the same settings;
#  - tests/install/rdml_exp_app.c runs the stages rdm, embed, svm and train through the
#    experiment layer (rdml/experiment.h) on 2 ranks: the same results file as the
#    installed rdmlearn's for the same settings (tools/compare_results.py, timings aside);
#  - the installed rdmlearn, run from a folder without configs/, finds building blocks
#    ([run] include, --config) in <prefix>/share/rdmlearn (and not in the source tree),
#    runs a job that includes one, writes the found path into `submit`'s batch script, and
#    names that folder when a block is nowhere;
#  - the installed headers pass tests/install/check_headers.sh with pkg-config's flags.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}" "${RDML_SRC:?}" "${RDML_BUILD:?}"
CMAKE=${CMAKE_COMMAND:-cmake}
PY=/usr/bin/python3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
P=$W/prefix
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

"$CMAKE" --install "$RDML_BUILD" --prefix "$P" >"$W/install.log" 2>&1 || { cat "$W/install.log"; echo "FAIL: cmake --install"; exit 1; }
VERSION=$(sed -n 's/^#define RDML_VERSION "\(.*\)"/\1/p' "$RDML_SRC/include/rdml/core.h")
MAJOR=${VERSION%%.*}
for f in bin/rdmlearn lib/librdml.a "lib/librdml.so.$VERSION" lib/pkgconfig/rdml.pc \
         lib/cmake/rdml/rdmlConfig.cmake lib/cmake/rdml/rdmlConfigVersion.cmake \
         lib/cmake/rdml/rdmlTargets.cmake share/rdmlearn/configs/defaults.ini \
         share/rdmlearn/configs/paper/svm-extremes.ini share/rdmlearn/jobs/demo.ini \
         share/rdmlearn/slurm/rdmlearn.sbatch.in share/rdmlearn/docs/install.md; do
  [ -f "$P/$f" ] && ok || bad "$f is not installed"
done
[ "$(readlink "$P/lib/librdml.so.$MAJOR")" = "librdml.so.$VERSION" ] && ok || bad "lib/librdml.so.$MAJOR does not link to librdml.so.$VERSION"
[ "$(readlink "$P/lib/librdml.so")" = "librdml.so.$MAJOR" ] && ok || bad "lib/librdml.so does not link to librdml.so.$MAJOR"
readelf -d "$P/lib/librdml.so.$VERSION" | grep -q "SONAME.*\[librdml.so.$MAJOR\]" && ok || bad "SONAME is not librdml.so.$MAJOR"
(cd "$RDML_SRC/include/rdml" && ls *.h) >"$W/src_h"; (cd "$P/include/rdml" && ls *.h) >"$W/inst_h"
cmp -s "$W/src_h" "$W/inst_h" && ok || bad "installed headers differ from include/rdml: $(diff "$W/src_h" "$W/inst_h" | tr '\n' ' ')"
for h in "$RDML_SRC"/include/rdml/*.h; do cmp -s "$h" "$P/include/rdml/$(basename "$h")" || bad "$h differs when installed"; done

# ---- an outside program: pkg-config, CMake shared, CMake static ----
export PKG_CONFIG_PATH=$P/lib/pkgconfig
[ "$(pkg-config --modversion rdml)" = "$VERSION" ] && ok || bad "pkg-config --modversion rdml is not $VERSION"
LIBDIR=$(pkg-config --variable=libdir rdml)
XF=${RDML_OUTSIDE_CFLAGS:-}  # the sanitizer runtime, for a sanitizer build's library
mpicc -std=c11 -Wall -Wextra -Werror $XF "$RDML_SRC/tests/install/rdml_app.c" -o "$W/app_pc" \
  $(pkg-config --cflags --libs rdml) -Wl,-rpath,"$LIBDIR" 2>"$W/log" && ok || { bad "mpicc with pkg-config"; cat "$W/log"; }
for kind in shared static; do
  st=OFF; [ $kind = static ] && st=ON
  if "$CMAKE" -S "$RDML_SRC/tests/install" -B "$W/cm_$kind" -DCMAKE_PREFIX_PATH="$P" \
       -DRDML_APP_STATIC=$st -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$XF" >"$W/log" 2>&1 &&
     "$CMAKE" --build "$W/cm_$kind" >>"$W/log" 2>&1; then
    cp "$W/cm_$kind/rdml_app" "$W/app_$kind"; ok
  else bad "CMake find_package(rdml) build ($kind)"; cat "$W/log"; fi
done
# the shared builds load librdml.so.0 from the prefix; the static one has no librdml
for app in app_pc app_shared; do
  lib=$(ldd "$W/$app" 2>/dev/null | awk '$1 == "librdml.so.'"$MAJOR"'" {print $3}')
  [ -n "$lib" ] && [ "$(realpath "$lib")" = "$(realpath "$P/lib/librdml.so.$VERSION")" ] && ok ||
    { bad "ldd $app does not show librdml.so.$MAJOR from $P/lib"; ldd "$W/$app"; }
done
ldd "$W/app_static" 2>/dev/null | grep -q librdml && bad "app_static loads a shared librdml" || ok

SYN=(--set synth.subjects=1 --set synth.images=48 --set synth.test_images=0
     --set synth.image_size=16 --set synth.lh_vertices=300 --set synth.rh_vertices=340)
for app in app_pc app_shared app_static; do
  [ -x "$W/$app" ] || continue
  "${MPI[@]}" -n 2 "$W/$app" "$W/ds_$app" "$W/$app.h5" V1 >"$W/log" 2>&1 && ok || { bad "$app on 2 ranks"; cat "$W/log"; }
done
"${MPI[@]}" -n 2 "$P/bin/rdmlearn" synth "$W/ds_cli" -q "${SYN[@]}" && ok || bad "installed rdmlearn synth"
diff -rq -x synth_truth "$W/ds_app_pc" "$W/ds_cli" >"$W/log" 2>&1 && ok || { bad "the library's synthetic dataset differs from rdmlearn synth's"; cat "$W/log"; }
cmp -s "$W/ds_app_pc/synth_truth/subj01_category.npy" "$W/ds_cli/synth_truth/subj01_category.npy" && ok || bad "synth_truth differs"
"${MPI[@]}" -n 2 "$P/bin/rdmlearn" rdm "$W/ds_cli" -q --set data.rois=V1 --set data.subjects=1 \
  --set run.output="$W/cli.h5" && ok || bad "installed rdmlearn rdm"
$PY - "$W/cli.h5" "$W"/app_*.h5 <<'PYEOF' && ok || bad "the library's RDMs differ from rdmlearn rdm's"
import sys, h5py, numpy as np
ref = h5py.File(sys.argv[1], "r")["/subjects/subj01/rdm/V1"][()]
assert ref.shape == (48, 48) and np.isfinite(ref).all() and ref.std() > 0, ref.shape
assert len(sys.argv) == 5, sys.argv  # app_pc, app_shared, app_static
for p in sys.argv[2:]:
    got = h5py.File(p, "r")["/subjects/subj01/rdm/V1"][()]
    assert got.dtype == ref.dtype and np.array_equal(got, ref), (p, np.abs(got - ref).max())
PYEOF

# ---- the stages through the experiment layer (rdml/experiment.h): rdml_exp_app.c (public
# headers only, no command line) runs rdm, embed, svm and train on 2 ranks; its results file
# equals the installed rdmlearn's for the same settings, every dataset and attribute but
# timings (tools/compare_results.py). Both write to the same path, one after the other, so
# that the stored configurations match.
mpicc -std=c11 -Wall -Wextra -Werror $XF "$RDML_SRC/tests/install/rdml_exp_app.c" -o "$W/exp_app" \
  $(pkg-config --cflags --libs rdml) -Wl,-rpath,"$LIBDIR" 2>"$W/log" && ok || { bad "mpicc rdml_exp_app.c"; cat "$W/log"; }
EXP=(data.rois=V1 data.subjects=1 embed.backend=gabor pairs.set=all split.folds=3 train.epochs=2
     train.tower=16 train.head=8)
SETS=(); for a in "${EXP[@]}"; do SETS+=(--set "$a"); done
mkdir -p "$W/exp"
for st in rdm embed svm train; do
  more=(); [ $st = train ] && more=(--set pairs.experiment=net)
  "${MPI[@]}" -n 2 "$P/bin/rdmlearn" $st "$W/ds_cli" -q "${SETS[@]}" "${more[@]}" --set run.output="$W/exp/out.h5" \
    >"$W/log" 2>&1 || { bad "installed rdmlearn $st"; cat "$W/log"; }
done
mv "$W/exp/out.h5" "$W/exp_cli.h5"; rm -f "$W"/exp/out.*
if [ -x "$W/exp_app" ]; then
  "${MPI[@]}" -n 2 "$W/exp_app" "$W/ds_cli" "$W/exp/out.h5" "${EXP[@]}" --train pairs.experiment=net >"$W/log" 2>&1 \
    && ok || { bad "rdml_exp_app on 2 ranks"; cat "$W/log"; }
  $PY "$RDML_SRC/tools/compare_results.py" "$W/exp_cli.h5" "$W/exp/out.h5" >"$W/log" 2>&1 && ok \
    || { bad "the experiment layer's results differ from rdmlearn's"; cat "$W/log"; }
fi

# ---- the installed rdmlearn finds its building blocks in <prefix>/share/rdmlearn ----
E=$W/elsewhere; mkdir -p "$E"
# a marker only the installed copy has: proves the lookup reads the prefix, not the source tree
printf '\n[svm]\nC = 0.125\n' >>"$P/share/rdmlearn/configs/demo/svm.ini"
printf '[run]\ninclude = ../configs/demo/svm.ini\nstages = rdm\noutput = out/results.h5\n[data]\nroot = %s\nsubjects = 1\n' \
  "$W/ds_cli" >"$E/job.ini"
(cd "$E" && "$P/bin/rdmlearn" config --config job.ini) >"$W/cfg" 2>&1 && ok || { bad "installed rdmlearn config --config job.ini"; cat "$W/cfg"; }
grep -qx "k = 20" "$W/cfg" && grep -qx "experiment = svm" "$W/cfg" && grep -qx "c = 0.125" "$W/cfg" && ok ||
  { bad "the include was not read from $P/share/rdmlearn/configs/demo/svm.ini"; cat "$W/cfg"; }
(cd "$E" && "$RDMLEARN" config --config job.ini) >"$W/cfg_build" 2>&1 && grep -qx "k = 20" "$W/cfg_build" &&
  ! grep -qx "c = 0.125" "$W/cfg_build" && ok || { bad "the build-tree rdmlearn does not read the source tree's configs"; cat "$W/cfg_build"; }
(cd "$E" && "$P/bin/rdmlearn" config --config paper/svm-extremes.ini) >"$W/cfg2" 2>&1 &&
  grep -qx "experiment = extremes" "$W/cfg2" && ok || { bad "--config paper/svm-extremes.ini"; cat "$W/cfg2"; }
(cd "$E" && "${MPI[@]}" -n 2 "$P/bin/rdmlearn" run job.ini -q) >"$W/log" 2>&1 && ok || { bad "installed rdmlearn run job.ini"; cat "$W/log"; }
$PY - "$E/out/results.h5" <<'PYEOF' && ok || bad "run job.ini did not use the included data.rois"
import sys, h5py
g = h5py.File(sys.argv[1], "r")["/subjects/subj01/rdm"]
assert sorted(g) == ["V1", "class:Faces"], sorted(g)   # data.rois of configs/demo/svm.ini
PYEOF
# submit writes the block it found into the batch script, absolute (the job may cd elsewhere)
(cd "$E" && "$P/bin/rdmlearn" submit job.ini --dry-run --config paper/svm-extremes.ini) >"$W/log" 2>&1 &&
  grep -qF -- "--config $(realpath "$P")/share/rdmlearn/configs/paper/svm-extremes.ini" "$E/out/results.h5.slurm/run.sbatch" && ok ||
  { bad "submit --config paper/svm-extremes.ini: the script does not name the installed block"; cat "$W/log"; grep RDML_ARGS "$E"/out/*.slurm/*.sbatch; }
printf '[run]\ninclude = demo/no-such-block.ini\n' >"$E/bad.ini"
(cd "$E" && "$P/bin/rdmlearn" config --config bad.ini) >"$W/log" 2>&1 && bad "a missing block was accepted" ||
  { grep -q "bad.ini: \[run\] include = demo/no-such-block.ini: cannot open config file.*then in $(realpath "$P")/share/rdmlearn and" "$W/log" && ok ||
    { bad "a missing block's message does not name the share folder"; cat "$W/log"; }; }

# ---- the installed headers, as pkg-config users compile them ----
bash "$RDML_SRC/tests/install/check_headers.sh" "$P/include" "$W/hdr" $(pkg-config --libs rdml) \
  -Wl,-rpath,"$LIBDIR" >"$W/log" 2>&1 && ok || { bad "installed headers"; cat "$W/log"; }

echo "test_install: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
