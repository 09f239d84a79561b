#!/usr/bin/env bash
# Checks the public headers of an include folder, as an outside program sees them:
#   check_headers.sh INCLUDE_DIR WORK_DIR LINK_FLAGS...
#  1. every rdml/*.h compiles on its own with `mpicc -std=c11 -pedantic -Wall -Wextra -Werror
#     -fsyntax-only` (and as C++ with mpicxx when there is one) and includes only system
#     headers and other rdml/ headers of the same folder (never a private src/ header);
#  2. every header carries a usage example and the example compiles and links against the
#     library (LINK_FLAGS, e.g. -L build -lrdml or `pkg-config --libs rdml`), so an example
#     that calls a function with the wrong arguments, or one that no longer exists, fails.
# The example convention (docs/install.md): in the header's first comment, a line
# ` * Example:` (or ` * Example (words):`), then the code, every line indented by three
# spaces after ` * ` (blank ` *` lines allowed), up to the first line that is not (prose or
# the end of the comment). The code is file-scope C: complete functions (no main), with any
# #include it needs beyond its own header and <stdio.h>, <stdlib.h>, <string.h>, <mpi.h>.
# It is compiled with the same warnings as errors (unused parameters allowed), under #line
# directives, so a message names the header's own line. RDML_OUTSIDE_CFLAGS (e.g.
# -fsanitize=address,undefined for a sanitizer build's library) is added to that command.
set -uo pipefail
INC=${1:?include dir}; W=${2:?work dir}; shift 2
CC=${MPICC:-mpicc}
CXX=${MPICXX:-$(command -v mpicxx || true)}
CFLAGS=(-std=c11 -pedantic -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror)
mkdir -p "$W"
fails=0 n=0
bad() { echo "FAIL: $*"; fails=$((fails+1)); }
shopt -s nullglob
headers=("$INC"/rdml/*.h)
[ ${#headers[@]} -gt 0 ] || { echo "FAIL: no headers in $INC/rdml"; exit 1; }
for h in "${headers[@]}"; do
  b=$(basename "$h" .h); n=$((n+1))
  # includes: <system> headers, or "rdml/x.h" that exists in this folder
  while read -r inc; do
    case "$inc" in
      '"rdml/'*'"') f=${inc#\"}; f=${f%\"}; [ -f "$INC/$f" ] || bad "$h includes $inc, which is not a public header" ;;
      '<'*'>') ;;
      *) bad "$h includes $inc (public headers include only <system> and \"rdml/...\" headers)" ;;
    esac
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*\([<"][^>"]*[>"]\).*/\1/p' "$h")
  printf '#include <rdml/%s.h>\n' "$b" > "$W/alone_$b.c"
  "$CC" "${CFLAGS[@]}" -fsyntax-only -I"$INC" "$W/alone_$b.c" 2>"$W/log" || { bad "$h does not compile on its own (C)"; cat "$W/log"; }
  if [ -n "$CXX" ]; then
    printf '#include <rdml/%s.h>\n' "$b" > "$W/alone_$b.cpp"
    "$CXX" -DOMPI_SKIP_MPICXX -Wall -Wextra -Werror -fsyntax-only -I"$INC" "$W/alone_$b.cpp" 2>"$W/log" || { bad "$h does not compile on its own (C++)"; cat "$W/log"; }
  fi
  # the example
  src="$W/example_$b.c"
  { printf '#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <mpi.h>\n#include <rdml/%s.h>\n' "$b"
    awk -v F="$h" '
      done { next }
      !started && /^ \* Example( \([^)]*\))?:$/ { started = 1; printf "#line %d \"%s\"\n", NR + 1, F; next }
      !started && index($0, "*/") { exit }
      started {
        if ($0 == " *") { print ""; next }
        if (substr($0, 1, 5) == " *   ") { print substr($0, 6); next }
        done = 1
      }
      END { if (!started) exit 3 }' "$h" || { echo "#error no example"; bad "$h has no \" * Example:\" block in its first comment"; }
    printf '#line 1 "example main"\nint main(void) { return 0; }\n'
  } > "$src"
  "$CC" "${CFLAGS[@]}" -Wno-unused-parameter ${RDML_OUTSIDE_CFLAGS:-} -I"$INC" "$src" -o "$W/example_$b" "$@" 2>"$W/log" || { bad "the example of $h does not compile or link:"; cat "$W/log"; }
done
echo "check_headers: $n headers in $INC, $fails failure(s)"
[ "$fails" -eq 0 ]
