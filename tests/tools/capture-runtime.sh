#!/bin/bash
# capture-runtime.sh: a transparent OCI runtime wrapper that records how an
# engine calls its runtime, then execs the real runtime with argv untouched.
#
#   create/run:         copies <bundle>/config.json to $CAPTURE_DIR/<n>-<cmd>-config.json
#   exec --process F:   copies F                    to $CAPTURE_DIR/<n>-exec-process.json
#   every call:         appends "<n> cwd=<dir> <argv...>" to $CAPTURE_DIR/argv.log
#
# <n> is a zero-padded sequence number shared by all calls into the same
# CAPTURE_DIR, so captured files can be matched with their argv.log line.
#
# Configuration (environment):
#   CAPTURE_DIR      where to write (default /tmp/capture-runtime)
#   CAPTURE_RUNTIME  the real runtime to exec (default: runc found on PATH,
#                    falling back to /usr/sbin/runc)
# Engines that scrub the environment of the runtime (podman/conmon keep only
# LC_*, LANG, HOME, XDG_RUNTIME_DIR, ...) can be configured through a file
# next to the invoked path instead: if "$0.env" exists (e.g. a symlink
# /tmp/x/runtime -> capture-runtime.sh with /tmp/x/runtime.env beside it),
# its CAPTURE_DIR=... and CAPTURE_RUNTIME=... lines are read; the
# environment wins over the file.
#
# The wrapper never writes to stdout (engines parse the runtime's stdout for
# state/ps/features) and a failure to capture never fails the runtime call.

set -u

read_env_file() {
	local f="$1" line key val
	[[ -f "$f" ]] || return 0
	while IFS= read -r line || [[ -n "$line" ]]; do
		[[ "$line" =~ ^[[:space:]]*# ]] && continue
		[[ "$line" == *=* ]] || continue
		key="${line%%=*}"
		val="${line#*=}"
		case "$key" in
		CAPTURE_DIR) [[ -n "${CAPTURE_DIR:-}" ]] || CAPTURE_DIR="$val" ;;
		CAPTURE_RUNTIME) [[ -n "${CAPTURE_RUNTIME:-}" ]] || CAPTURE_RUNTIME="$val" ;;
		esac
	done <"$f"
}

read_env_file "$0.env"
CAPTURE_DIR="${CAPTURE_DIR:-/tmp/capture-runtime}"
if [[ -z "${CAPTURE_RUNTIME:-}" ]]; then
	CAPTURE_RUNTIME="$(command -v runc 2>/dev/null || true)"
	self="$(readlink -f "$0" 2>/dev/null || echo "$0")"
	if [[ -z "$CAPTURE_RUNTIME" ]] || [[ "$(readlink -f "$CAPTURE_RUNTIME")" == "$self" ]]; then
		CAPTURE_RUNTIME=/usr/sbin/runc
	fi
fi

warn() { printf 'capture-runtime: %s\n' "$*" >&2; }

# --- argv parsing -----------------------------------------------------------
# Global flags of runc (and crun) that take a value, in any of the forms
# --flag V, --flag=V, -flag V, -flag=V.
global_takes_value() {
	case "$1" in
	root | log | log-format | criu | rootless | cgroup-manager | log-level) return 0 ;;
	esac
	return 1
}

# Per-subcommand flags that take a value (runc 1.1 / crun 1.8).
sub_takes_value() {
	local sub="$1" name="$2"
	case "$sub" in
	create | run | restore)
		case "$name" in
		bundle | b | console-socket | pidfd-socket | pid-file | preserve-fds | \
			image-path | work-path | parent-path | page-server | manage-cgroups-mode | \
			empty-ns | lsm-profile | lsm-mount-context | status-fd | auto-dedup)
			return 0 ;;
		esac ;;
	exec)
		case "$name" in
		console-socket | pidfd-socket | cwd | env | e | user | u | additional-gids | g | \
			process | p | apparmor | process-label | pid-file | cap | c | preserve-fds | cgroup)
			return 0 ;;
		esac ;;
	esac
	return 1
}

# flag_name "--root=/x" -> "root"; "-b" -> "b"
flag_name() {
	local a="${1#-}"
	a="${a#-}"
	printf '%s' "${a%%=*}"
}

args=("$@")
n_args=${#args[@]}
sub=""
sub_idx=-1
i=0
while ((i < n_args)); do
	a="${args[i]}"
	case "$a" in
	--)
		((i + 1 < n_args)) && { sub="${args[i + 1]}"; sub_idx=$((i + 1)); }
		break ;;
	-?*)
		name="$(flag_name "$a")"
		if [[ "$a" != *=* ]] && global_takes_value "$name"; then
			i=$((i + 1))
		fi ;;
	*)
		sub="$a"
		sub_idx=$i
		break ;;
	esac
	i=$((i + 1))
done

bundle=""
process=""
container_id=""
if ((sub_idx >= 0)); then
	i=$((sub_idx + 1))
	while ((i < n_args)); do
		a="${args[i]}"
		case "$a" in
		--)
			((i + 1 < n_args)) && [[ -z "$container_id" ]] && container_id="${args[i + 1]}"
			break ;;
		-?*)
			name="$(flag_name "$a")"
			val=""
			if [[ "$a" == *=* ]]; then
				val="${a#*=}"
			elif sub_takes_value "$sub" "$name"; then
				i=$((i + 1))
				val="${args[i]:-}"
			fi
			case "$name" in
			bundle | b) bundle="$val" ;;
			process | p) [[ "$sub" == exec ]] && process="$val" ;;
			esac ;;
		*)
			if [[ -z "$container_id" ]]; then
				container_id="$a"
				# runc exec: everything after the id is the command to run
				[[ "$sub" == exec ]] && break
			fi ;;
		esac
		i=$((i + 1))
	done
fi

# --- capture ------------------------------------------------------------------
capture() {
	mkdir -p "$CAPTURE_DIR" || return 1
	local seqfile="$CAPTURE_DIR/.seq" n line q
	# one lock for the sequence number and the log line, so lines stay whole
	exec 9>>"$CAPTURE_DIR/.lock" || return 1
	flock 9 2>/dev/null || true
	n=$(($(cat "$seqfile" 2>/dev/null || echo 0) + 1))
	echo "$n" >"$seqfile"
	n=$(printf '%03d' "$n")

	line="$n cwd=$(printf '%q' "$PWD") $(printf '%q' "$0")"
	for q in "$@"; do
		line+=" $(printf '%q' "$q")"
	done
	printf '%s\n' "$line" >>"$CAPTURE_DIR/argv.log"

	case "$sub" in
	create | run)
		local cfg="${bundle:-.}/config.json"
		if [[ -f "$cfg" ]]; then
			cp -- "$cfg" "$CAPTURE_DIR/$n-$sub-config.json" || warn "cannot copy $cfg"
		else
			warn "no $cfg"
		fi ;;
	exec)
		if [[ -n "$process" ]]; then
			cp -- "$process" "$CAPTURE_DIR/$n-exec-process.json" || warn "cannot copy $process"
		fi ;;
	esac
	flock -u 9 2>/dev/null || true
	exec 9>&-
}

capture "$@" || warn "capture failed (continuing)"

exec "$CAPTURE_RUNTIME" "$@"
