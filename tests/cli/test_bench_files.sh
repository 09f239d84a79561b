#!/usr/bin/env bash
# The repository is self-contained, and so are its benchmarks:
#  - no tracked file points outside the clone (the sibling directory of shared notes, or a
#    variable naming it): a clone must build, test and benchmark on its own;
#  - every file a benchmark runs exists in the repository: paths the bench scripts name
#    relative to their own directory ($HERE/...), the repository ($SRC/..., or after cd to
#    it), modules the bench Python files import (stdlib or a known package, else a .py file
#    beside the script, in bench/common or tools), and quoted relative C includes;
#  - every bench/*/run.sh takes its BLAS environment from bench/common/blas_env.sh, and no
#    other bench file sets or unsets OPENBLAS_CORETYPE (one kernel for both sides of a ratio).
# Static checks only (seconds); nothing is built or timed.
set -uo pipefail
SRC=${RDML_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
/usr/bin/python3 - "$SRC" <<'PYEOF'
import ast, os, re, subprocess, sys

src = sys.argv[1]
fails = passes = 0
def check(ok, what):
    global fails, passes
    if ok:
        passes += 1
    else:
        fails += 1
        print("FAIL:", what)

try:
    files = subprocess.run(["git", "-C", src, "ls-files"], capture_output=True, text=True,
                           check=True).stdout.split()
except (OSError, subprocess.CalledProcessError):       # not a git checkout: every file
    files = [os.path.relpath(os.path.join(d, f), src) for d, ds, fs in os.walk(src)
             for f in fs if not any(p.startswith((".git", "build")) for p in os.path.relpath(d, src).split(os.sep))]
check(len(files) > 50 and "bench/rdm/run.sh" in files, "the file list looks incomplete: %d files" % len(files))

# 1. nothing points outside the clone (patterns split so that this file does not match itself)
outside = ["..", "/shared", "/work", "/shared", "shared", "/bench", "RDML_", "SHARED"]
pats = [outside[0] + outside[1], outside[2] + outside[3], outside[4] + outside[5], outside[6] + outside[7]]
for f in files:
    p = os.path.join(src, f)
    try:
        text = open(p, encoding="utf-8", errors="replace").read()
    except (IsADirectoryError, FileNotFoundError):
        continue
    for pat in pats:
        for ln, line in enumerate(text.splitlines(), 1):
            if pat in line:
                check(False, f"{f}:{ln} points outside the repository ({pat!r}): {line.strip()[:100]}")
check(True, "outside references")

bench = [f for f in files if f.startswith("bench/")]
check(any(f.endswith(".sh") for f in bench), "no bench scripts found")
std = set(sys.stdlib_module_names)
known = {"numpy", "scipy", "sklearn", "h5py", "torch", "torchvision", "PIL", "threadpoolctl"}
for f in bench:
    p = os.path.join(src, f)
    here = os.path.dirname(p)
    text = open(p, encoding="utf-8", errors="replace").read()
    if f.endswith(".sh"):
        # 2a. $HERE/..., $SRC/... and (after cd to the repository) bench/..., jobs/... paths
        refs = [(here, m) for m in re.findall(r'\$\{?HERE\}?/([\w./-]+\.(?:py|sh|c|h|ini|txt))(?![\w.])', text)]
        refs += [(src, m) for m in re.findall(r'\$\{?SRC\}?/([\w./-]+\.(?:py|sh|c|h|ini|txt))(?![\w.])', text)]
        if re.search(r'cd "\$\(dirname "\$0"\)/\.\./\.\."', text):
            refs += [(src, m) for m in re.findall(r'(?<![\w$/.])((?:bench|jobs|tools|configs)/[\w./-]+\.(?:py|sh|c|h|ini))(?![\w.])', text)]
        for base, rel in refs:
            q = os.path.normpath(os.path.join(base, rel))
            check(os.path.isfile(q) and q.startswith(os.path.normpath(src) + os.sep),
                  f"{f} runs {rel}, which is not a file in the repository ({q})")
        # 3. one BLAS environment for every benchmark
        if re.fullmatch(r"bench/[^/]+/run\.sh", f):
            check(re.search(r'^\. .*common/blas_env\.sh"?$', text, re.M) is not None,
                  f"{f} does not source bench/common/blas_env.sh")
    if f.endswith(".py"):
        # 2b. imports resolvable inside the repository
        tree = ast.parse(text, f)
        mods = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.add(node.module.split(".")[0])
        for m in sorted(mods - std - known):
            where = [os.path.join(here, m + ".py"), os.path.join(src, "bench", "common", m + ".py"),
                     os.path.join(src, "tools", m + ".py")]
            check(any(os.path.isfile(w) for w in where), f"{f} imports {m}, found nowhere in the repository")
    if f.endswith((".c", ".h")):
        for inc in re.findall(r'#include "(\.\./[^"]+)"', text):
            check(os.path.isfile(os.path.join(here, inc)), f"{f} includes {inc}, which does not exist")
    if not f.endswith(".md") and not f.startswith("bench/common/"):
        for ln, line in enumerate(text.splitlines(), 1):
            if re.search(r"(-u\s+OPENBLAS_CORETYPE|unset\s+[\w\s]*OPENBLAS_CORETYPE|OPENBLAS_CORETYPE=|"
                         r"environ\[.OPENBLAS_CORETYPE)", line) and not line.lstrip().startswith(("#", "*", "//")):
                check(False, f"{f}:{ln} sets the BLAS kernel itself (use bench/common/blas_env.sh): {line.strip()}")
print(f"{passes} passed, {fails} failed")
sys.exit(1 if fails else 0)
PYEOF
