#!/usr/bin/env bash
# tests/docs/config-keys.sh - docs/configuration.md's key table and lib/config.c's
# key table name the same keys: every key flox-runc reads is documented in the
# one table (a blank line once cut two keys out of it), and the table names no
# key flox-runc does not read.  No root, no build; in the unit suite so that
# whoever adds a key runs it.  TAP.
set -euo pipefail
SRCDIR=${FLOX_RUNC_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CONFIG_C=${CONFIG_C:-$SRCDIR/lib/config.c}
DOC=${CONFIG_DOC:-$SRCDIR/docs/configuration.md}

# lib/config.c: `{ "name", KEY_TYPE, CHECK, F(field), min, max },` in `keys[]`
code=$(awk '/^static const struct key_def keys\[\] = \{/ {on = 1; next}
	on && /^\};/ {exit}
	on && match($0, /^ *\{ *"[a-z_0-9]+", *KEY_/) {
		name = $0; sub(/^ *\{ *"/, "", name); sub(/".*/, "", name); print name
	}' "$CONFIG_C" | LC_ALL=C sort)
# docs: the first table whose header starts with "| key |", up to the first
# line that is not a table row; the keys are the backquoted names of column 1.
doc=$(awk '/^\| key \|/ {on = 1; next}
	on && !/^\|/ {exit}
	on && /^\|---/ {next}
	on {
		split($0, col, "|"); c = col[2]
		while (match(c, /`[a-z_0-9]+`/)) {
			print substr(c, RSTART + 1, RLENGTH - 2); c = substr(c, RSTART + RLENGTH)
		}
	}' "$DOC" | LC_ALL=C sort)

n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; }

if [[ $(wc -l <<<"$code") -ge 10 ]]; then
	ok "lib/config.c's key table read ($(wc -l <<<"$code") keys)"
else
	notok "lib/config.c's key table read: only [$code]"
fi
missing=$(comm -23 <(printf '%s\n' "$code") <(printf '%s\n' "$doc"))
if [[ -z "$missing" ]]; then
	ok "every key of lib/config.c is in docs/configuration.md's table"
else
	notok "keys of lib/config.c missing from docs/configuration.md's table: $(tr '\n' ' ' <<<"$missing")"
fi
extra=$(comm -13 <(printf '%s\n' "$code") <(printf '%s\n' "$doc"))
if [[ -z "$extra" ]]; then
	ok "the table names no key lib/config.c does not read"
else
	notok "docs/configuration.md's table names keys lib/config.c does not read: $(tr '\n' ' ' <<<"$extra")"
fi
echo "1..$n"
exit "$fail"
