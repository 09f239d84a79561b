#!/usr/bin/env bash
# The command line: help on every command, exit codes, `config --defaults` identical to
# configs/defaults.ini, overrides visible in the resolved config, info on a numpy-written
# dataset.
set -uo pipefail
: "${RDMLEARN:?}" "${RDML_SRC:?}" "${RDML_FIXTURES:?}"
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

"$RDMLEARN" --help >"$W/h" 2>&1 && grep -q 'Commands:' "$W/h" && ok || bad "--help"
cmds=$(awk '/^Commands:/{f=1;next} f&&/^  [a-z]/{print $1} f&&/^$/{exit}' "$W/h")
[[ $(wc -w <<<"$cmds") -ge 5 ]] && ok || bad "command list: $cmds"
for c in $cmds; do
  "$RDMLEARN" "$c" --help >"$W/c" 2>&1 && grep -q "usage: rdmlearn $c" "$W/c" && ok \
    || bad "$c --help: $(head -2 "$W/c")"
done
"$RDMLEARN" >/dev/null 2>&1; [[ $? -eq 3 ]] && ok || bad "no command should exit 3"
"$RDMLEARN" info --bogus >"$W/e" 2>&1; [[ $? -eq 3 ]] && grep -q -- '--bogus' "$W/e" && ok \
  || bad "unknown option: $(cat "$W/e")"
"$RDMLEARN" version | grep -q 'HDF5' && ok || bad "version"

"$RDMLEARN" config --defaults >"$W/d" && cmp -s "$W/d" "$RDML_SRC/configs/defaults.ini" && ok \
  || bad "configs/defaults.ini differs from 'rdmlearn config --defaults' (regenerate: build/rdmlearn config --defaults > configs/defaults.ini)"
# the documented defaults load back as a config file without error
"$RDMLEARN" config --config "$RDML_SRC/configs/defaults.ini" >/dev/null && ok || bad "defaults.ini does not load"
"$RDMLEARN" config --set data.images=25 --set synth.noise=0.5 >"$W/r" && grep -qE '^images *= *25' "$W/r" \
  && grep -qE '^noise *= *0.5' "$W/r" && ok || bad "overrides not in resolved config"
# later --config files override earlier ones; --set overrides both
printf '[data]\nimages = 7\n' >"$W/a.ini"; printf '[data]\nimages = 9\n' >"$W/b.ini"
"$RDMLEARN" config --config "$W/a.ini" --config "$W/b.ini" | grep -qE '^images *= *9' && ok || bad "file order"
"$RDMLEARN" config --set data.images=3 --config "$W/a.ini" | grep -qE '^images *= *3' && ok || bad "--set precedence"

"$RDMLEARN" info "$RDML_FIXTURES/algonauts_mini" >"$W/i" 2>&1 && grep -q 'subj01' "$W/i" \
  && grep -q 'subj03' "$W/i" && grep -q 'V1v' "$W/i" && grep -q 'FFA-1' "$W/i" && ok \
  || bad "info: $(head -5 "$W/i")"
echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
