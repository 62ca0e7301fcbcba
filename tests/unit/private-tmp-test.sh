#!/usr/bin/env bash
# Checks tests/unit/private-tmp.sh, which gives each unit test program a
# /tmp of its own: what a failing program leaves in /tmp is gone when it
# ends, its status comes through, and a run killed with its wrapper is
# swept by the next run.
set -euo pipefail
wrap=${1:?usage: private-tmp-test.sh PATH/private-tmp.sh}
name=frc-test-privtmp-$$
fail() { echo "not ok: $*" >&2; exit 1; }
trap 'rm -rf /tmp/$name' EXIT

# 1. a failing program's leftovers in /tmp do not outlive it; status 3 kept
status=0
"$wrap" sh -c "mkdir /tmp/$name && touch /tmp/$name/f && exit 3" || status=$?
[[ $status -eq 3 ]] || fail "the program's status 3 came back as $status"
[[ ! -e /tmp/$name ]] || fail "/tmp/$name outlived the program"
echo "ok 1 - a failing program's /tmp is removed, its status kept"

# 2. the program saw a writable /tmp of its own: nothing of the node's
# /tmp but the entries holding the checkout, the build and ../shared
touch "/tmp/$name.outside"
trap 'rm -rf /tmp/$name /tmp/$name.outside' EXIT
out=$("$wrap" sh -c "[ ! -e /tmp/$name.outside ] && echo hidden; touch /tmp/x && echo w")
[[ $out == $'hidden\nw' ]] || fail "the program's /tmp showed the node's files or was not writable: $out"
echo "ok 2 - a writable /tmp of its own"

# 2b. a checkout under /tmp (a CI clone) and the build directory stay
# visible and writable in place
src=$(cd "$(dirname "$wrap")/../.." && pwd -P)
out=$("$wrap" sh -c "cat '$src/tests/unit/private-tmp.sh' >/dev/null && touch '$(pwd -P)/.private-tmp-$$' && echo seen")
[[ $out == seen && -e $(pwd -P)/.private-tmp-$$ ]] || fail "the source or build directory was hidden: $out"
rm -f "$(pwd -P)/.private-tmp-$$"
echo "ok 2b - the checkout and the build directory stay in place"

# 3. a run killed together with its wrapper is swept by the next run (its
# directory: the one that was not there before it started, since other
# checkouts' unit tests may be running beside this one)
mkdir -p /var/tmp/flox-runc-unit
before=$(find /var/tmp/flox-runc-unit -mindepth 1 -maxdepth 1 -type d | sort)
# in a process group of its own, killed whole once its program runs (as
# meson's timeout kills a test): no helper of the wrapper's keeps its lock
setsid "$wrap" sleep 30 &
pid=$!
left=
for _ in $(seq 50); do
	left=$(find /var/tmp/flox-runc-unit -mindepth 1 -maxdepth 1 -type d | sort | comm -13 <(printf '%s\n' "$before") - | head -1)
	[[ -n $left ]] && pgrep -g "$pid" -x sleep >/dev/null && break
	sleep 0.1
done
[[ -n $left ]] || fail "no directory for the running program"
kill -KILL -- "-$pid"
wait "$pid" 2>/dev/null || true
for _ in $(seq 50); do
	pgrep -g "$pid" >/dev/null || break
	sleep 0.1
done
# (a wrapper killed with SIGKILL removes nothing; another checkout's unit
# test starting now may sweep the directory before this one does)
"$wrap" true
[[ ! -d $left ]] || fail "the killed run's $left was not swept"
echo "ok 3 - a killed run's directory is swept by the next run"
