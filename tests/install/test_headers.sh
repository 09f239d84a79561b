#!/usr/bin/env bash
# The public headers of the source tree (include/rdml/*.h) against this build's librdml.so:
# each compiles on its own (C and C++), includes no private header, and its usage example
# compiles and links (tests/install/check_headers.sh; the convention is in docs/install.md).
set -uo pipefail
: "${RDML_SRC:?}" "${RDML_BUILD:?}"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
[ -e "$RDML_BUILD/librdml.so" ] || { echo "FAIL: $RDML_BUILD/librdml.so is missing (build target rdml_shared)"; exit 1; }
bash "$RDML_SRC/tests/install/check_headers.sh" "$RDML_SRC/include" "$W" \
  -L"$RDML_BUILD" -lrdml -Wl,-rpath,"$RDML_BUILD"
