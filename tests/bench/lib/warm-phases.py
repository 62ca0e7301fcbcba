#!/usr/bin/env python3
"""warm-phases.py TRACE...: the phases of warm starts in an ftrace text dump
(tests/bench/lib/warm-trace.sh: sched_process_exec/fork/exit, mount,
pivot_root and the container process's write, each run between
"MARK BEGIN <size> <variant> <round> <containerd's pid>" and "MARK END ..." lines of
trace_marker).  Prints one markdown table: per variant, the median of each
phase in ms (docs/performance.md, "Lever: the warm start's parts, traced").

A run's phases: the shim's exec of the runtime binary (flox-runc's create
or runc), runc's exec when flox-runc execs it, runc init (the child of
runc:[1:CHILD]) and its first mount(2), the fork and exit of a hook it
runs (a child that execs), its pivot_root, runc create's exit, the exec
of `start` (and of runc start), the container process's exec and its first
write."""
import re
import statistics
import sys
from collections import defaultdict

EV = re.compile(r'^\s*(.+?)-(\d+)\s+\(\s*(\d+|-+)\)\s+\[\d+\]\s+\S+\s+([\d.]+): (\w+):?(.*)$')
FORK = re.compile(r'comm=(\S+) pid=(\d+) child_comm=\S+ child_pid=(\d+)')
NOT_RUNTIME = ('/usr/bin/ctr', 'containerd-shim')


def runs(path):
    """Each run's events, only those of the bench's containerd (its pid
    on the BEGIN line) and what it forked: other containers on the
    machine are left out (the dump has every process's)."""
    cur = None
    ours = set()
    for line in open(path, errors='replace'):
        m = EV.match(line)
        if not m:
            continue
        pid, tgid = int(m.group(2)), m.group(3)
        t, ev, rest = float(m.group(4)) * 1000, m.group(5), m.group(6)
        tgid = int(tgid) if tgid.isdigit() else pid
        if ev == 'tracing_mark_write':
            w = rest.split()
            if len(w) >= 6 and w[0] == 'MARK' and w[1] == 'BEGIN':
                cur = {'v': w[3], 't0': t, 'ev': []}
                ours = {int(w[5])}
            elif len(w) >= 2 and w[0] == 'MARK' and w[1] == 'END' and cur:
                yield cur
                cur = None
            continue
        if cur is None:
            continue
        if ev == 'sched_process_fork' and (tgid in ours or pid in ours):
            ours.add(int(FORK.search(rest).group(3)))
        if tgid in ours or pid in ours:
            cur['ev'].append((t, pid, ev, rest))


def phases(r):
    p = {}
    create = init = hook = start = None
    created = False
    for t, pid, ev, rest in r['ev']:
        if ev == 'sched_process_exec':
            fn = re.search(r'filename=(\S+)', rest).group(1)
            runtime = not fn.startswith(NOT_RUNTIME[0]) and NOT_RUNTIME[1] not in fn
            if create is None and runtime:
                create = pid
                p['create'] = t
            elif pid == create and not created and 'runc_create' not in p:
                p['runc_create'] = t
            elif pid == hook:
                p['hook_exec'] = t
            elif created and start is None and runtime and pid != init:
                start = pid
                p['start'] = t
            elif pid == start and 'runc_start' not in p:
                p['runc_start'] = t
            elif pid == init and 'pivot' in p:
                p['process'] = t
        elif ev == 'sched_process_fork':
            m = FORK.search(rest)
            if m.group(1) == 'runc:[1:CHILD]' and init is None:
                init = int(m.group(3))
            elif init is not None and int(m.group(2)) == init and 'pivot' not in p and 'hook_exit' not in p:
                hook, p['hook_fork'] = int(m.group(3)), t
        elif ev == 'sched_process_exit':
            if pid == hook and 'hook_exec' in p:
                p['hook_exit'] = t
            if pid == create and not created:
                p['create_exit'], created = t, True
        elif pid == init and ev == 'sys_mount' and '->' not in rest and 'pivot' not in p:
            p.setdefault('mount0', t)
            p['mounts'] = p.get('mounts', 0) + 1
        elif pid == init and ev == 'sys_pivot_root' and '->' not in rest:
            p['pivot'] = t
        elif pid == init and ev == 'sys_write' and 'process' in p and 'write' not in p:
            p['write'] = t
    if 'runc_create' not in p:
        p['runc_create'] = p.get('create')  # the image: runc itself
    if 'runc_start' not in p:
        p['runc_start'] = p.get('start')
    return {k: (v - r['t0'] if k != 'mounts' else v) for k, v in p.items() if v is not None}


COLUMNS = [
    ('the runtime binary: exec to exec of runc (flox-runc create)', 'create', 'runc_create'),
    ('runc init: first spec mount to pivot_root', 'mount0', 'pivot'),
    ('of which the hook, fork to exit', 'hook_fork', 'hook_exit'),
    ('start: exec to exec of runc', 'start', 'runc_start'),
    ('runc start to the process exec', 'runc_start', 'process'),
    ('mark to first write', None, 'write'),
]


def main():
    by = defaultdict(list)
    for path in sys.argv[1:]:
        for r in runs(path):
            by[r['v']].append(phases(r))
    print('| variant | runs | ' + ' | '.join(c[0] for c in COLUMNS) + ' | mount(2) calls before pivot_root |')
    print('|---|---|' + '---|' * (len(COLUMNS) + 1))
    for v, L in by.items():
        cells = []
        for _, a, b in COLUMNS:
            d = [x[b] - (x[a] if a else 0) for x in L if b in x and (a is None or a in x)]
            cells.append('%.2f' % statistics.median(d) if d else '—')
        m = [x['mounts'] for x in L if 'mounts' in x]
        cells.append('%d' % statistics.median(m) if m else '—')
        print('| %s | %d | %s |' % (v, len(L), ' | '.join(cells)))


if __name__ == '__main__':
    main()
