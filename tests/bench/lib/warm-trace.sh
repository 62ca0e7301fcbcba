# shellcheck shell=bash
# tests/bench/lib/warm-trace.sh, sourced by vs-image.sh for
# FLOX_RUNC_BENCH_TRACE=DIR: an ftrace instance of its own recording, for
# each warm start between two trace_mark lines, process execs, forks and
# exits and the mount(2), pivot_root(2) and unshare(2) calls system-wide,
# and the container process's write; lib/warm-phases.py turns a dump into
# the phases of each run (docs/performance.md, "Lever: the warm start's
# parts, traced").  tracefs is mounted when it is not (and unmounted after).
# About 1 µs an event, a few hundred events a start: on both sides alike.
WT_ROOT=/sys/kernel/tracing
WT=""
trace_start() {
	local e
	if [[ ! -d $WT_ROOT/instances ]]; then
		mount -t tracefs nodev "$WT_ROOT" || die "warm-trace.sh: cannot mount tracefs at $WT_ROOT"
		cleanup_add umount "$WT_ROOT"
	fi
	if [[ -z $WT ]]; then
		WT=$WT_ROOT/instances/flox-runc-bench-$$
		mkdir "$WT" || die "warm-trace.sh: cannot make the ftrace instance $WT"
		cleanup_add rmdir "$WT"
	fi
	echo 0 >"$WT/tracing_on"
	echo 16384 >"$WT/buffer_size_kb"
	echo 1 >"$WT/options/record-tgid"
	for e in sched:sched_process_exec sched:sched_process_fork sched:sched_process_exit \
		syscalls:sys_enter_mount syscalls:sys_exit_mount syscalls:sys_enter_pivot_root \
		syscalls:sys_exit_pivot_root syscalls:sys_enter_unshare syscalls:sys_enter_write; do
		echo "$e" >>"$WT/set_event" || die "warm-trace.sh: this kernel has no event $e"
	done
	echo '!(comm ~ "runc*") && !(comm ~ "containerd*") && comm != "bash" && comm != "ctr"' \
		>"$WT/events/syscalls/sys_enter_write/filter"
	echo >"$WT/trace"
	echo 1 >"$WT/tracing_on"
}
# trace_mark BEGIN|END SIZE VARIANT ROUND: the bench's containerd added (warm-phases.py
# keeps its descendants' events only)
trace_mark() { echo "MARK $* ${CD_PID:?}" >"$WT/trace_marker"; }
# trace_stop FILE: the dump, and the instance emptied and stopped
trace_stop() {
	echo 0 >"$WT/tracing_on"
	cat "$WT/trace" >"$1"
	echo >"$WT/set_event"
	echo >"$WT/trace"
}
