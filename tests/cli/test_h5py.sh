#!/bin/bash
# h5py reads what rdml/h5.h writes: the MPI test binary writes its main results file with 2
# ranks and keeps it (--keep), then tools/check_h5.py checks every dataset, attribute and
# string list with h5py (values, dtypes, str not bytes).
set -euo pipefail
BIN="${RDML_BUILD:?RDML_BUILD not set}/tests/test_h5"
SRC="${RDML_SRC:?RDML_SRC not set}"
MPIEXEC="${MPIEXEC:-mpiexec}"
[ -x "$BIN" ] || { echo "missing $BIN (build the test_h5 target)"; exit 1; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/rdml_h5py.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
# run in $OUT so the test's scratch files never meet those of the CTest runs
( cd "$OUT" && "$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none -n 2 "$BIN" --keep "$OUT/results.h5" )
[ -f "$OUT/results.h5" ] || { echo "test_h5 did not leave $OUT/results.h5"; exit 1; }
if ls "$OUT"/results.h5.tmp-* >/dev/null 2>&1; then echo "temporary file left behind"; exit 1; fi
/usr/bin/python3 "$SRC/tools/check_h5.py" "$OUT/results.h5"
# and the other way round: objects written by h5py (1-D and int32 datasets, fixed-length
# strings as h5py writes np.bytes_, vlen strings, int32 attributes) read through rdml/h5.h
/usr/bin/python3 - "$OUT/python.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    g = f.create_group("py")
    g["vec"] = (np.arange(11) * 0.5).astype(np.float32)
    g["int32"] = (np.arange(12).reshape(4, 3) - 5).astype(np.int32)
    g["fixed"] = np.array([b"ab", b"c", b""], dtype="S2")
    g.create_dataset("vlen", data=["Grüße", "x y"], dtype=h5py.string_dtype())
    g.attrs["fixed_attr"] = np.bytes_(b"hello")
    g.attrs["str_attr"] = "ünïcode"
    g.attrs["i32"] = np.array([1, -2, 3], dtype=np.int32)
PY
( cd "$OUT" && "$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none -n 2 "$BIN" --read-python "$OUT/python.h5" )
