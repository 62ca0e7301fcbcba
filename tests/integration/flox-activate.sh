#!/usr/bin/env bash
#
# tests/integration/flox-activate.sh RUNTIME      (RUNTIME: runc | crun)
#
# Activation parity with Flox (issue 8, part 7, the run half): containers on
# an EMPTY image run the vars and on-activate hooks of REAL manifests, read at
# test time from $FLOX_RUNC_SRCDIR/../shared/real-locks (never copied into the
# repository), with the test packages standing in for their store paths
# (busybox, which provides the tools these hooks call: mkdir, printf, chmod,
# sed, ls), published on the test FloxHub; the REAL runtime runs them and the
# process prints its environment (`env -0`), which is compared variable by
# variable with what Flox's rules give, computed here from the manifest:
#
#   - the variables the Flox CLI and activate script set (FLOX_ENV_*,
#     _FLOX_ACTIVE_ENVIRONMENTS, FLOX_PROMPT_ENVIRONMENTS, SSL_CERT_FILE,
#     NIX_SSL_CERT_FILE, FLOX_ENV_DIRS, PATH, MANPATH, INFOPATH,
#     XDG_DATA_DIRS; in dev mode CPATH, LIBRARY_PATH, PKG_CONFIG_PATH,
#     ACLOCAL_PATH), each written out below from Flox's source;
#   - the manifest's [vars]: `export NAME="VALUE"` lines evaluated by the
#     node's bash under `set -euo pipefail` against the container's base
#     environment plus the above (none of the chosen manifests' vars
#     reference each other, so their order is the name order);
#   - what each hook exports, and what it leaves in FLOX_ENV_CACHE (on the
#     node) or the rootfs, written out per manifest below.
#
# The manifests, chosen because their hooks use bash syntax ([[ ]], functions,
# `local`, &>) and FLOX_ENV_CACHE and can run with busybox standing in:
#   claude-code-router  barstoolbluz/agentic-development-with-flox: 16 vars
#                       (${X:-default}, $HOME/...), hook with functions, [[ ]]
#   aicr                NVIDIA/aicr: hook exports GOPATH/GOBIN under
#                       $FLOX_ENV_CACHE and creates them
#   r-posit             8BitTacoSupreme/r-posit: vars under $FLOX_ENV_CACHE,
#                       hook functions with `local`, `command -v`, an exported
#                       PATH; its `uv venv` step fails (no uv stands in) and
#                       the hook goes on, as under Flox (set +e)
#   llama-runtime       barstoolbluz/llama-demo: a ${FLOX_ENV} var, a warning
#                       on the hook's stdout (must reach stderr)
# Left out: hooks that need the network or tools no stand-in provides
# (comfyui: curl; n8n, keating, catnip: node, bun, npm; backlog-md: backlog).
#
# Also: a restarted container of the same pod finds FLOX_ENV_CACHE as the last
# one left it; deleting the pod's sandbox id removes it, and so does
# `flox-runc gc` once the runtime no longer knows the sandbox; an exec
# (containerd's process file) gets the same activation; dev mode.
#
# Environment as tests/integration/e2e.sh.  Must run as root.  Exit 0 pass, 77
# skip (not root, a needed tool or the real lockfiles missing; under CI=true
# each of these fails).

# shellcheck disable=SC2016 # jq programs and sh -c scripts are single-quoted on purpose
set -euo pipefail

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_runtime "${1:-}"
suite_needs --root --flox-runc --nix jq busybox sha256sum python3 git bash
[[ -x /bin/bash-static ]] || die "the node's bash for activations is missing: apt-get install bash-static (tests/deps.sh)"
REAL=$SRCDIR/../shared/real-locks
[[ -d "$REAL" ]] || skip_all "the real lockfiles are not at $REAL (CI checks out ../shared beside the repository)"

if [[ "$RT_NAME" == crun ]]; then
	crun_cgroup_workaround "$0" "$@"
fi

tmpdir_setup "flox-runc-activate-$RT_NAME"
nixcache_build
hub_start
nixcache_serve main signed

RROOT=$TEST_TMPDIR/runtime-root
STORE=$TEST_TMPDIR/store
STATE=$TEST_TMPDIR/state
CFG=$TEST_TMPDIR/config.json
jq -n --arg rt "$RT_BIN" --arg hub "$HUB_URL" --arg store "$STORE" --arg state "$STATE" \
	--arg sub "$(nixcache_url main)" --arg key "$NIX_FX_KEY" \
	'{runtime: $rt, floxhub_url: $hub, store_root: $store, state_dir: $state,
	  substituters: [$sub], trusted_public_keys: [$key], fresh_seconds: 0, deadline_seconds: 60}' >"$CFG"
export FLOX_RUNC_CONFIG=$CFG
SPEC_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CACHE=/run/flox/env-cache

fr() { "$FLOX_RUNC" --root "$RROOT" "$@"; }
rt() { "$RT_BIN" --root "$RROOT" "$@"; }

# publish_real SHORT FILE: the real manifest's vars and hook over the busybox
# stand-in, as real/SHORT.
L=$TEST_TMPDIR/locks
mkdir -p "$L"
declare -A REALF
publish_real() {
	local short=$1 lock=$REAL/$2 kv args=()
	[[ -f "$lock" ]] || die "the real lockfile $lock is missing"
	while IFS= read -r -d '' kv; do
		args+=(--var "$kv")
	done < <(jq -j '.manifest.vars // {} | to_entries[] | .key, "=", .value, "\u0000"' "$lock")
	jq -j '.manifest.hook["on-activate"] // ""' "$lock" >"$L/$short.hook"
	[[ -s "$L/$short.hook" ]] || die "$lock has no hook"
	nixcache_lock "$L/$short" busybox "${args[@]}" --hook-file "$L/$short.hook"
	hub_publish "real/$short" "$L/$short" >/dev/null
	REALF[$short]=$lock
}
publish_real claude-code-router barstoolbluz__agentic-development-with-flox__claude-code-router.lock
publish_real aicr NVIDIA__aicr.lock
publish_real r-posit 8BitTacoSupreme__r-posit.lock
publish_real llama-runtime barstoolbluz__llama-demo__llama-runtime.lock
# not a real manifest: the test package with what the activation probes
nixcache_lock "$L/langtools" busybox langtools --var LT_VAR=from-vars --var LT_OVERRIDE=vars
hub_publish local/langtools "$L/langtools" >/dev/null
# not real manifests: hooks that change what Flox's activate script, a
# process of its own, keeps from the command (its cwd, umask), or end it
printf '%s\n' 'echo hook-says-hi' 'cd /nix' 'umask 077' 'export FROM_HOOK="a b"' 'unset DROPME' \
	'( sleep 600; : ) >/dev/null 2>&1 &' >"$L/hooky.hook"
nixcache_lock "$L/hooky" busybox --var 'V=$HOME/v' --hook-file "$L/hooky.hook"
hub_publish local/hooky "$L/hooky" >/dev/null
printf '%s\n' 'mkdir -p "$FLOX_ENV_CACHE/bin"' \
	'printf "#!%s/bin/sh\necho from-the-hook\n" "$FLOX_ENV" >"$FLOX_ENV_CACHE/bin/cachetool"' \
	'chmod +x "$FLOX_ENV_CACHE/bin/cachetool"' 'export PATH="$FLOX_ENV_CACHE/bin:$PATH"' >"$L/hooktool.hook"
nixcache_lock "$L/hooktool" busybox --hook-file "$L/hooktool.hook"
hub_publish local/hooktool "$L/hooktool" >/dev/null
printf '%s\n' 'echo hook-ran >&2' 'export HOOK_TOKEN="t$RANDOM$RANDOM$RANDOM"' 'unset DROPME' >"$L/hookattach.hook"
nixcache_lock "$L/hookattach" busybox --hook-file "$L/hookattach.hook"
hub_publish local/hookattach "$L/hookattach" >/dev/null
# hookslow's hook runs until the test creates /hook-go in the container (60 s
# at most): a fixed `sleep 2` ended before a loaded machine's exec looked
printf '%s\n' 'echo hook-ran >&2' 'i=0; while [ ! -e /hook-go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done' \
	'export HOOK_TOKEN="t$RANDOM$RANDOM$RANDOM"' >"$L/hookslow.hook"
nixcache_lock "$L/hookslow" busybox --hook-file "$L/hookslow.hook"
hub_publish local/hookslow "$L/hookslow" >/dev/null
printf 'exit 0\n' >"$L/hookexit.hook"
nixcache_lock "$L/hookexit" busybox --hook-file "$L/hookexit.hook"
hub_publish local/hookexit "$L/hookexit" >/dev/null

# owner_of SHORT: real/ for the real manifests, local/ for the others
owner_of() { if [[ -n ${REALF[$1]:-} ]]; then echo real; else echo local; fi; }

# bundle DIR SHORT EXTRA-ENV-JSON ARG...: an empty rootfs (writable, as a
# pod's), the pod sandbox sb-SHORT, HOME=/root and EXTRA-ENV in the spec.
bundle() {
	local dir=$1 short=$2 extra=$3 tag
	shift 3
	mkdir -p "$dir/rootfs"
	rm -f "$dir/config.json"
	(cd "$dir" && "$RT_BIN" spec) || die "$RT_NAME spec failed"
	tag=$(printf '%s' "$dir" | sha256sum | cut -c1-12)
	bundle_jq "$dir" '.process.terminal = false | .process.args = $args | .root.readonly = false
		| .process.env = ["PATH=" + $path, "TERM=xterm", "HOME=/root"] + $extra
		| .linux.cgroupsPath = $cg
		| .annotations["io.kubernetes.cri.container-type"] = "container"
		| .annotations["io.kubernetes.cri.container-name"] = "app"
		| .annotations["io.kubernetes.cri.sandbox-id"] = $sb
		| .annotations["flox.dev/environment"] = $owner + "/" + $short' \
		--arg cg "/flox-runc-test-$TEST_ID-$tag" --argjson args "$(json_array "$@")" \
		--arg path "$SPEC_PATH" --argjson extra "$extra" --arg short "$short" --arg sb "sb-$short-$TEST_ID" \
		--arg owner "$(owner_of "$short")"
}

# run_fg ID BUNDLE, and capture0 CMD...: capture for a command whose
# stdout is `env -0` output (CAP_OUT without the NULs).
capture0() {
	CAP_OUT_FILE=$TEST_TMPDIR/.out0.$RANDOM
	CAP_ERR_FILE=$CAP_OUT_FILE.err
	CAP_RC=0
	"$@" >"$CAP_OUT_FILE" 2>"$CAP_ERR_FILE" || CAP_RC=$?
	CAP_OUT=$(tr -d '\0' <"$CAP_OUT_FILE")
	CAP_ERR=$(cat "$CAP_ERR_FILE")
}
run_fg() {
	cleanup_container "$RT_BIN" "$RROOT" "$1"
	capture0 fr --log "$2/log.json" --log-format json run --bundle "$2" "$1"
}

node_cache() {
	local owner
	owner=$(owner_of "$1")
	printf '%s/env-cache/sandbox/sb-%s-%s/%s/%s\n' "$STATE" "$1" "$TEST_ID" "$owner" "$1"
}

declare -A ACT EXP

# read_env FILE: `env -0` output into ACT.
read_env() {
	local kv
	ACT=()
	while IFS= read -r -d '' kv; do
		ACT[${kv%%=*}]=${kv#*=}
	done <"$1"
}

# expect_flox SHORT MODE BASE-ENV-JSON: EXP from Flox's rules for FLOX_ENV
# ${ACT[FLOX_ENV]}, then the manifest's vars evaluated by bash.
expect_flox() {
	local short=$1 mode=$2 base=$3 fe=${ACT[FLOX_ENV]:-} kv envrc=$TEST_TMPDIR/$1.envrc
	local -a pairs=()
	assert_match "$fe" '^/nix/var/flox-runc/envs/[0-9a-f]+$' "FLOX_ENV"
	EXP=()
	while IFS= read -r -d '' kv; do
		EXP[${kv%%=*}]=${kv#*=}
	done < <(jq -j '.[] | ., "\u0000"' <<<"$base")
	# the CLI's exports (cli/flox-activations/src/attach_diff/mod.rs:328-392);
	# a FloxHub environment's project is the cwd (remote_environment.rs:469)
	EXP[FLOX_ENV]=$fe
	EXP[FLOX_ENV_CACHE]=$CACHE
	EXP[FLOX_ENV_PROJECT]=/
	local owner
	owner=$(owner_of "$short")
	EXP[FLOX_ENV_DESCRIPTION]=$owner/$short
	# a pod starts no services (attach_diff/mod.rs:362-367)
	EXP[FLOX_ACTIVATE_START_SERVICES]=false
	# cli/flox/src/utils/active_environments.rs (serde), the url crate's "/"
	EXP[_FLOX_ACTIVE_ENVIRONMENTS]=$(jq -cn --arg n "$short" --arg u "$HUB_URL/" --arg m "$mode" --arg o "$owner" \
		'[{environment: {type: "remote", owner: $o, name: $n, floxhub_url: $u, version: 1}, mode: $m}]')
	EXP[FLOX_PROMPT_ENVIRONMENTS]=$short
	# flox-core/src/util/mod.rs:21-49: no SSL_CERT_FILE and no bundle in the
	# environment: the node's, mounted
	EXP[SSL_CERT_FILE]=/run/flox/ca-bundle.crt
	EXP[NIX_SSL_CERT_FILE]=/run/flox/ca-bundle.crt
	# set-env-dirs, fix-paths (fix_paths.rs:132-178)
	EXP[FLOX_ENV_DIRS]=$fe
	EXP[PATH]=$fe/bin:${EXP[PATH]}
	EXP[MANPATH]=$fe/share/man:
	# profile.d/0100_common-run-mode-paths.sh
	EXP[INFOPATH]=$fe/share/info:
	EXP[XDG_DATA_DIRS]=$fe/share
	if [[ $mode == dev ]]; then # 0101_common-dev-mode-additional-paths.sh
		EXP[CPATH]=$fe/include
		EXP[LIBRARY_PATH]=$fe/lib
		EXP[PKG_CONFIG_PATH]=$fe/lib/pkgconfig:$fe/share/pkgconfig
		EXP[ACLOCAL_PATH]=$fe/share/aclocal
	fi
	# [vars]: buildenv.nix:83 `export NAME="VALUE"`, sourced under set -euo pipefail
	jq -r '.manifest.vars // {} | to_entries | sort_by(.key)[] | "export \(.key)=\"\(.value)\""' \
		"${REALF[$short]:-$L/$short}" >"$envrc"
	for kv in "${!EXP[@]}"; do
		pairs+=("$kv=${EXP[$kv]}")
	done
	local -A had=()
	for kv in PWD _ OLDPWD; do
		[[ -z ${EXP[$kv]+x} ]] || had[$kv]=1
	done
	while IFS= read -r -d '' kv; do
		EXP[${kv%%=*}]=${kv#*=}
	done < <(env -i "${pairs[@]}" bash -c 'set -euo pipefail; . "$1"; env -0' _ "$envrc")
	# what this bash and env add themselves, not the vars
	for kv in PWD _ OLDPWD; do
		[[ -n ${had[$kv]:-} ]] || unset "EXP[$kv]"
	done
}

# compare WHAT: ACT against EXP, every variable but SHLVL, which bash's exec
# of the command exports (0 when the container set none: a documented
# divergence; Flox execs the command from flox-activations).
compare() {
	local k what=$1
	for k in SHLVL; do
		unset "ACT[$k]" "EXP[$k]"
	done
	assert_eq "$(printf '%s\n' "${!EXP[@]}" | LC_ALL=C sort)" "$(printf '%s\n' "${!ACT[@]}" | LC_ALL=C sort)" "$what: the variables"
	for k in "${!EXP[@]}"; do
		assert_eq "${EXP[$k]}" "${ACT[$k]-<unset>}" "$what: $k"
	done
}

# activate SHORT MODE EXTRA-ENV-JSON: run `env -0` in real/SHORT; ACT, EXP
activate() {
	local short=$1 mode=$2 extra=$3 b=$TEST_TMPDIR/$1-$2 base
	bundle "$b" "$short" "$extra" env -0
	[[ $mode == run ]] || bundle_annotate "$b" flox.dev/activate-mode "$mode"
	base=$(jq -c .process.env "$b/config.json")
	run_fg "act-$short-$mode" "$b"
	assert_rc 0 "real/$short ($mode) runs"
	ROOTFS=$b/rootfs
	read_env "$CAP_OUT_FILE"
	expect_flox "$short" "$mode" "$base"
}

t_claude_code_router() {
	activate claude-code-router run '["CCR_PORT=9999", "OPENAI_API_KEY=sk-from-pod"]'
	compare "claude-code-router"
	assert_eq 9999 "${ACT[CCR_PORT]}" "\${CCR_PORT:-3456} takes the pod's value"
	assert_eq /root/.claude-code-router/config.json "${ACT[CCR_CONFIG_FILE]}" "\$HOME expanded"
	# the hook: functions and [[ ]] ran, its output on stderr only
	assert_contains "$CAP_ERR" "Claude Code Router environment ready (headless mode)" "the hook's output on stderr"
	assert_contains "$CAP_ERR" "No configuration found" "check_ccr_config ([[ -f ]]) ran"
	assert_not_contains "$(tr '\0' '\n' <"$CAP_OUT_FILE")" "Claude Code Router" "nothing of the hook on stdout"
	[[ -d "$ROOTFS/root/.claude-code-router/plugins" ]] || {
		diag "FAIL: the hook's mkdir -p \"\$CCR_CONFIG_DIR/plugins\" did not happen"
		return 1
	}
}

t_aicr() {
	activate aicr run '[]'
	# the hook: export GOPATH="$FLOX_ENV_CACHE/go"; export GOBIN="$GOPATH/bin"
	EXP[GOPATH]=$CACHE/go
	EXP[GOBIN]=$CACHE/go/bin
	compare "aicr"
	assert_eq -mod=vendor "${ACT[GOFLAGS]}" "GOFLAGS"
	[[ -d "$(node_cache aicr)/go/bin" ]] || {
		diag "FAIL: \$GOBIN was not created in FLOX_ENV_CACHE on the node ($(node_cache aicr))"
		return 1
	}
}

t_r_posit() {
	activate r-posit run '[]'
	# setup_glibtoolize: export PATH="${FLOX_ENV_CACHE}/bin:${PATH}"
	EXP[PATH]=$CACHE/bin:${EXP[PATH]}
	compare "r-posit"
	assert_eq "$CACHE/r-libs" "${ACT[R_LIBS_USER]}" "a var under \$FLOX_ENV_CACHE"
	local c
	c=$(node_cache r-posit)
	[[ -x "$c/bin/pkg-config" && -d "$c/r-libs" ]] || {
		diag "FAIL: the hook's pkg-config wrapper and r-libs are not in FLOX_ENV_CACHE ($c)"
		return 1
	}
	assert_contains "$(cat "$c/bin/pkg-config")" 'exec "" $(echo "$@" | sed "s/--static//g")' "printf through local and command -v"
}

t_llama_dev() {
	activate llama-runtime dev '[]'
	compare "llama-runtime (dev)"
	assert_eq "${ACT[FLOX_ENV]}/share/models/llama-2-7b-hf" "${ACT[MODEL_PATH]}" "\${FLOX_ENV} in a var"
	assert_contains "$CAP_ERR" "Warning: MODEL_PATH not found: ${ACT[FLOX_ENV]}/share/models/llama-2-7b-hf" "the hook's warning on stderr"
	[[ -d "$(node_cache llama-runtime)/logs" ]] || {
		diag "FAIL: the hook's mkdir -p \"\$FLOX_ENV_CACHE/logs\" did not happen"
		return 1
	}
}

# What Flox's activation decides from the environment's files, both modes:
# its own CA bundle and locales; dev: the profile.d scripts' variables.
t_langtools() {
	local fe mode
	for mode in run dev; do
		activate langtools "$mode" '["PYTHONPATH=/opt/py", "JUPYTER_PATH=/opt/j"]'
		fe=${ACT[FLOX_ENV]}
		# util/mod.rs + default envrc: the environment's bundle, no node mount
		EXP[SSL_CERT_FILE]=$fe/etc/ssl/certs/ca-bundle.crt
		EXP[NIX_SSL_CERT_FILE]=$fe/etc/ssl/certs/ca-bundle.crt
		EXP[LOCALE_ARCHIVE]=$fe/lib/locale/locale-archive
		if [[ $mode == dev ]]; then
			EXP[RUST_SRC_PATH]=$fe                                          # 0501_rust.sh
			EXP[JUPYTER_PATH]=$fe/share/jupyter:/opt/j                      # 0502_jupyter.sh
			EXP[JAVA_HOME]=$fe                                              # 0503_java.sh
			EXP[PYTHONPATH]=$fe/lib/python3.11/site-packages:/opt/py        # setup_python
			EXP[PIP_CONFIG_FILE]=$CACHE/pip.ini                             # setup_python
			EXP[CMAKE_PREFIX_PATH]=$fe                                      # setup_cmake
			# the plugin profile.d scripts after [vars] (activate:272-284):
			# 0900_langtools.sh reads a var and overrides one; 0501_rust.sh
			# (the interpreter's name) and notes.txt are not sourced
			EXP[LANGTOOLS_PLUGIN]=saw:from-vars
			EXP[LT_OVERRIDE]=plugin
		fi
		compare "langtools ($mode)"
		assert_json "$TEST_TMPDIR/langtools-$mode/config.json" \
			'([.mounts[] | select(.destination == "/run/flox/ca-bundle.crt")] | length == 0)
			and ([(.hooks.createContainer // [])[].args[] | select(. == "/run/flox/ca-bundle.crt")] | length == 0)' "no node bundle mounted (spec or hook)"
	done
	assert_eq $'  [global]\n  require-virtualenv = true' "$(cat "$(node_cache langtools)/pip.ini")" "pip.ini as setup_python writes it"
}

# Flox sources envrc and the hook in its activate script, a process of its
# own, and applies what they export or unset to the command it execs
# (cli/flox-activations/src/start.rs:98-118, attach.rs:262-280): the hook's
# cd and umask stay behind; its background job does not hold the command
# back; the command's argv[0] is its name, found through the PATH the hook
# leaves (a tool it puts in FLOX_ENV_CACHE). An `exit` in the hook fails the
# activation with exit 1 and the command does not run.
t_hook_process() {
	activate hooky run '["DROPME=1"]'
	EXP[FROM_HOOK]="a b"
	unset 'EXP[DROPME]'
	compare "hooky"
	assert_contains "$CAP_ERR" "hook-says-hi" "the hook's output on stderr"
	local b=$TEST_TMPDIR/hooky-cwd
	bundle "$b" hooky '[]' sh -c 'pwd; umask'
	bundle_jq "$b" '.process.cwd = "/root"'
	mkdir -p "$b/rootfs/root"
	run_fg hooky-cwd "$b"
	assert_rc 0 "hooky runs"
	assert_eq $'/root\n0022' "$CAP_OUT" "the container's cwd and umask, not the hook's"
	b=$TEST_TMPDIR/hooky-argv0
	bundle "$b" hooky '[]' cat /proc/self/cmdline
	run_fg hooky-argv0 "$b"
	assert_rc 0 "hooky runs cat"
	assert_eq "cat/proc/self/cmdline" "$CAP_OUT" "argv[0] is the name, not the path (bash wrapper)"
	b=$TEST_TMPDIR/langtools-argv0
	bundle "$b" langtools '[]' cat /proc/self/cmdline
	run_fg langtools-argv0 "$b"
	assert_rc 0 "langtools runs"
	assert_eq "cat/proc/self/cmdline" "$CAP_OUT" "argv[0] is the name, not the path (no bash wrapper)"
	# a command the hook puts on PATH, in neither the environment nor the image
	b=$TEST_TMPDIR/hooktool
	bundle "$b" hooktool '[]' cachetool
	run_fg hooktool "$b"
	assert_rc 0 "a command the hook provides runs"
	assert_eq from-the-hook "$CAP_OUT" "found through the hook's PATH"
	bundle "$b" hooktool '[]' nosuchtool
	run_fg hooktool-missing "$b"
	assert_rc 1 "a command nowhere fails"
	assert_contains "$CAP_ERR" "nosuchtool: command not found" "Flox's message"
	b=$TEST_TMPDIR/hookexit
	bundle "$b" hookexit '[]' echo the-command-ran
	run_fg hookexit "$b"
	assert_rc 1 "an exit in the hook fails the activation"
	assert_contains "$CAP_ERR" "The hook.on-activate script did not complete normally." "Flox's message"
	assert_not_contains "$CAP_OUT" "the-command-ran" "the command did not run"
}

# A container restarted in the same pod (new id, same sandbox) finds
# FLOX_ENV_CACHE as the last one left it; deleting the sandbox removes it.
t_cache_lifecycle() {
	local b1=$TEST_TMPDIR/cache1 b2=$TEST_TMPDIR/cache2 c
	c=$(node_cache aicr)
	bundle "$b1" aicr '[]' sh -c 'echo "from the first container" >"$FLOX_ENV_CACHE/marker"'
	run_fg cache-1 "$b1"
	assert_rc 0 "first container"
	bundle "$b2" aicr '[]' cat "$CACHE/marker"
	run_fg cache-2 "$b2"
	assert_rc 0 "restarted container"
	assert_eq "from the first container" "$CAP_OUT" "FLOX_ENV_CACHE survives the restart"
	capture fr delete "sb-aicr-$TEST_ID"
	[[ ! -e "$c" && ! -e "$STATE/env-cache/sandbox/sb-aicr-$TEST_ID" ]] || {
		diag "FAIL: the sandbox's delete left $c"
		return 1
	}
}

# Flox's second activation attaches to the first (activate.rs:154-278): the
# hook does not run again and its recorded changes are applied.  An exec
# (containerd's process file) into a container whose first activation ran
# its hook gets the token that hook exported and its unset, without the
# hook running again; an exec as another user runs it (Flox's activations
# are per user); so does one whose record is another user's or incomplete;
# one while the first activation's hook still runs waits for it.
# create_start ID BUNDLE: the container created and started through flox-runc
create_start() {
	cleanup_container "$RT_BIN" "$RROOT" "$1"
	capture fr create --bundle "$2" "$1"
	assert_rc 0 "create $1"
	capture fr start "$1"
	assert_rc 0 "start $1"
}

t_exec_attach() {
	local b=$TEST_TMPDIR/attach pf=$TEST_TMPDIR/attach-process.json tok fe
	bundle "$b" hookattach '["DROPME=1"]' sh -c 'echo "$HOOK_TOKEN" >/main-token; exec sleep 86400'
	create_start attach-1 "$b"
	wait_for test -s "$b/rootfs/main-token"
	tok=$(cat "$b/rootfs/main-token")
	assert_match "$tok" '^t[0-9]+$' "the first activation's hook token"
	jq '.process | .args = ["sh", "-c", "echo \"$HOOK_TOKEN|${DROPME-unset}\""] | .terminal = false' "$b/config.json" >"$pf"
	capture fr exec --process "$pf" attach-1
	assert_rc 0 "exec"
	assert_eq "$tok|unset" "$CAP_OUT" "the exec has the first activation's export and unset"
	assert_not_contains "$CAP_ERR" "hook-ran" "the hook did not run again"
	# another user: its own activation
	jq '.user.uid = 1000 | .user.gid = 1000' "$pf" >"$pf.1000"
	capture fr exec --process "$pf.1000" attach-1
	assert_rc 0 "exec as uid 1000"
	assert_contains "$CAP_ERR" "hook-ran" "the hook ran for another user"
	assert_match "$CAP_OUT" '^t[0-9]+\|unset$' "uid 1000's own token"
	[[ "$CAP_OUT" != "$tok|unset" ]] || {
		diag "FAIL: uid 1000 got the first activation's token"
		return 1
	}
	# a record of another user's, then one without its end mark: not used
	fe=$(jq -r '.process.env[] | select(startswith("FLOX_ENV=")) | .[9:]' "$b/config.json")
	# as the container's root with CAP_CHOWN, straight through the runtime
	# (a process file: crun 1.8.1's exec --cap crashes)
	tamper() {
		jq --arg sh "$fe/bin/sh" --arg c "$1" '.process | .args = [$sh, "-c", $c] | .terminal = false
			| .capabilities |= with_entries(.value += ["CAP_CHOWN"])' "$b/config.json" >"$pf.tamper"
		capture rt exec --process "$pf.tamper" attach-1
	}
	tamper 'chown 1000 /run/flox/activation'
	assert_rc 0 "chown the record"
	capture fr exec --process "$pf" attach-1
	assert_contains "$CAP_ERR" "hook-ran" "a record of another user's is not used"
	tamper 'chown 0 /run/flox/activation && head -c 100 /run/flox/activation >/run/flox/cut && cat /run/flox/cut >/run/flox/activation'
	assert_rc 0 "cut the record"
	capture fr exec --process "$pf" attach-1
	assert_contains "$CAP_ERR" "hook-ran" "an incomplete record is not used"
	capture fr kill attach-1 9
	wait_for sh -c "! $RT_BIN --root '$RROOT' state attach-1 2>/dev/null | grep -q running"
	capture fr delete --force attach-1

	# an exec while the first activation's hook still runs waits for it
	local bs=$TEST_TMPDIR/attach-slow
	bundle "$bs" hookslow '[]' sh -c 'echo "$HOOK_TOKEN" >/main-token; exec sleep 86400'
	create_start attach-2 "$bs"
	fe=$(jq -r '.process.env[] | select(startswith("FLOX_ENV=")) | .[9:]' "$bs/config.json")
	wait_for rt exec attach-2 "$fe/bin/test" -e /run/flox/activation
	[[ ! -s "$bs/rootfs/main-token" ]] || {
		diag "FAIL: the slow hook had already completed"
		return 1
	}
	jq '.process | .args = ["sh", "-c", "echo \"$HOOK_TOKEN\""] | .terminal = false' "$bs/config.json" >"$pf.slow"
	local epid
	fr exec --process "$pf.slow" attach-2 >"$bs/exec.out" 2>"$bs/exec.err" &
	epid=$!
	cleanup_add kill -9 "$epid"
	WAIT_TIMEOUT=60 wait_for grep -q "Waiting for the container's first activation to complete" "$bs/exec.err"
	[[ ! -s "$bs/rootfs/main-token" ]] || {
		diag "FAIL: the slow hook had already completed"
		return 1
	}
	touch "$bs/rootfs/hook-go"
	CAP_RC=0
	wait "$epid" || CAP_RC=$?
	CAP_OUT=$(cat "$bs/exec.out")
	CAP_ERR=$(cat "$bs/exec.err")
	assert_rc 0 "exec during the first activation"
	assert_not_contains "$CAP_ERR" "hook-ran" "the hook did not run again"
	assert_eq "$(cat "$bs/rootfs/main-token")" "$CAP_OUT" "the exec has the first activation's token"
	capture fr kill attach-2 9
	wait_for sh -c "! $RT_BIN --root '$RROOT' state attach-2 2>/dev/null | grep -q running"
	capture fr delete --force attach-2
}

# containerd's exec: the container's process with the exec's args, through
# --process: the same activation (aicr's hook exports, t_exec_attach: it is
# not run again).
t_exec() {
	local b=$TEST_TMPDIR/exec pf=$TEST_TMPDIR/exec-process.json base
	bundle "$b" aicr '[]' sleep 86400
	base=$(jq -c .process.env "$b/config.json")
	cleanup_container "$RT_BIN" "$RROOT" exec-1
	capture fr create --bundle "$b" exec-1
	assert_rc 0 "create"
	capture fr start exec-1
	assert_rc 0 "start"
	jq '.process | .args = ["env", "-0"] | .terminal = false' "$b/config.json" >"$pf"
	capture0 fr exec --process "$pf" exec-1
	assert_rc 0 "exec"
	read_env "$CAP_OUT_FILE"
	expect_flox aicr run "$base"
	EXP[GOPATH]=$CACHE/go
	EXP[GOBIN]=$CACHE/go/bin
	compare "exec into aicr"
	capture fr kill exec-1 9
	wait_for sh -c "! $RT_BIN --root '$RROOT' state exec-1 2>/dev/null | grep -q running"
	capture fr delete --force exec-1
	assert_rc 0 "delete"
}

# `flox-runc gc` removes the FLOX_ENV_CACHE of a pod sandbox the runtime no
# longer knows and keeps a live one's; the live sandbox's delete removes it.
t_gc() {
	local live=sb-live-$TEST_ID gone=sb-gone-$TEST_ID bs=$TEST_TMPDIR/gc-sandbox b1=$TEST_TMPDIR/gc-1 b2=$TEST_TMPDIR/gc-2
	make_busybox_bundle "$bs" sleep 86400 # the pod's pause container: passes through
	bundle_annotate "$bs" io.kubernetes.cri.container-type sandbox
	cleanup_container "$RT_BIN" "$RROOT" "$live"
	capture fr create --bundle "$bs" "$live"
	assert_rc 0 "create the sandbox"
	capture fr start "$live"
	assert_rc 0 "start the sandbox"
	bundle "$b1" aicr '[]' true
	bundle_annotate "$b1" io.kubernetes.cri.sandbox-id "$live"
	run_fg gc-1 "$b1"
	assert_rc 0 "a container of the live sandbox"
	bundle "$b2" aicr '[]' true
	bundle_annotate "$b2" io.kubernetes.cri.sandbox-id "$gone"
	run_fg gc-2 "$b2"
	assert_rc 0 "a container of a sandbox that is gone"
	touch -d '-1 hour' "$STATE/env-cache/sandbox/$live" "$STATE/env-cache/sandbox/$gone"
	capture fr gc
	assert_rc 0 "gc"
	assert_contains "$CAP_OUT" "FLOX_ENV_CACHE of a deleted pod sandbox: $STATE/env-cache/sandbox/$gone" "gc names it"
	[[ ! -e "$STATE/env-cache/sandbox/$gone" && -d "$STATE/env-cache/sandbox/$live/real/aicr" ]] || {
		diag "FAIL: gc must remove $gone's cache and keep $live's"
		return 1
	}
	capture fr kill "$live" 9
	wait_for sh -c "! $RT_BIN --root '$RROOT' state '$live' 2>/dev/null | grep -q running"
	capture fr delete "$live"
	assert_rc 0 "delete the sandbox"
	[[ ! -e "$STATE/env-cache/sandbox/$live" ]] || {
		diag "FAIL: the sandbox's delete left its FLOX_ENV_CACHE"
		return 1
	}
}

# crio_bundle DIR SANDBOX ARG...: bundle's aicr container as CRI-O writes
# it: its own keys (set after the pod's annotations, which it copies all).
crio_bundle() {
	local dir=$1 sb=$2
	shift 2
	bundle "$dir" aicr '[]' "$@"
	bundle_jq "$dir" 'del(.annotations["io.kubernetes.cri.container-type", "io.kubernetes.cri.container-name",
		"io.kubernetes.cri.sandbox-id"])
		| .annotations["io.kubernetes.cri-o.ContainerType"] = "container"
		| .annotations["io.kubernetes.cri-o.SandboxID"] = $sb
		| .annotations["io.kubernetes.container.name"] = "app"' --arg sb "$sb"
}

# A pod on CRI-O naming another pod's sandbox in containerd's key (a pod
# annotation CRI-O copies into the spec) gets its own FLOX_ENV_CACHE, not
# the other pod's.
t_crio_sandbox_spoof() {
	local victim=sb-victim-$TEST_ID attacker=sb-attacker-$TEST_ID
	local bv=$TEST_TMPDIR/crio-victim ba=$TEST_TMPDIR/crio-attacker
	crio_bundle "$bv" "$victim" sh -c 'echo "victim secret" >"$FLOX_ENV_CACHE/marker"'
	run_fg crio-victim "$bv"
	assert_rc 0 "the victim's container"
	[[ -f "$STATE/env-cache/sandbox/$victim/real/aicr/marker" ]] || {
		diag "FAIL: the victim's FLOX_ENV_CACHE is not its sandbox's"
		return 1
	}
	crio_bundle "$ba" "$attacker" sh -c 'cat "$FLOX_ENV_CACHE/marker"; echo planted >"$FLOX_ENV_CACHE/planted"'
	bundle_annotate "$ba" io.kubernetes.cri.sandbox-id "$victim"
	run_fg crio-attacker "$ba"
	assert_not_contains "$CAP_OUT" "victim secret" "the attacker reads the victim's FLOX_ENV_CACHE"
	# the two engines' sandbox ids disagree: the container's own cache
	# (removed with the container, test_annotations test_identity_crio_spoof)
	[[ ! -e "$STATE/env-cache/sandbox/$victim/real/aicr/planted" && ! -e "$STATE/env-cache/sandbox/$attacker/real/aicr/planted" ]] || {
		diag "FAIL: the attacker's FLOX_ENV_CACHE must be neither sandbox's"
		return 1
	}
	assert_contains "$CAP_ERR$CAP_OUT" "marker" "the attacker's cat found no marker in its own cache"
	capture fr delete "$victim"
	capture fr delete "$attacker"
}

# A pod's PATH of 200,000 entries (a pod spec holds it) costs the create
# no more than a few seconds of the node's CPU (its de-duplication took
# ~60 s as root, per variable, at every retry of the pod).
t_hostile_path() {
	local b=$TEST_TMPDIR/hostile-path start
	bundle "$b" aicr '[]' true
	seq -f '/d%.0f' 0 199999 | paste -sd: >"$TEST_TMPDIR/hostile-path.txt"
	bundle_jq "$b" '.process.env |= map(if startswith("PATH=") then "PATH=" + $p + ":" + . [5:] else . end)' \
		--rawfile p "$TEST_TMPDIR/hostile-path.txt"
	cleanup_container "$RT_BIN" "$RROOT" hostile-path
	start=$SECONDS
	capture fr create --bundle "$b" hostile-path
	assert_rc 0 "create"
	((SECONDS - start <= 15)) || {
		diag "FAIL: the create took $((SECONDS - start)) s"
		return 1
	}
	assert_match "$(jq -r '.process.env[] | select(startswith("PATH="))' "$b/config.json" | cut -c1-200)" \
		'^PATH=/nix/var/flox-runc/envs/[0-9a-f]+/bin:/d0:/d1:' "PATH"
	capture fr delete --force hostile-path
	assert_rc 0 "delete"
}

# CRI-O (drop_infra_ctr) runs a pod without a sandbox container: gc keeps
# the FLOX_ENV_CACHE of a sandbox the runtime does not know while a live
# container of it uses it, and removes it once that one is gone.
t_crio_gc_live() {
	local sb=sb-crio-live-$TEST_ID b=$TEST_TMPDIR/crio-live
	crio_bundle "$b" "$sb" sleep 86400
	cleanup_container "$RT_BIN" "$RROOT" crio-live
	capture fr create --bundle "$b" crio-live
	assert_rc 0 "create"
	capture fr start crio-live
	assert_rc 0 "start"
	touch -d '-1 hour' "$STATE/env-cache/sandbox/$sb"
	capture fr gc
	assert_rc 0 "gc"
	[[ -d "$STATE/env-cache/sandbox/$sb/real/aicr" ]] || {
		diag "FAIL: gc removed the FLOX_ENV_CACHE of a live container's sandbox"
		return 1
	}
	capture fr kill crio-live 9
	wait_for sh -c "! $RT_BIN --root '$RROOT' state crio-live 2>/dev/null | grep -q running"
	capture fr delete --force crio-live
	assert_rc 0 "delete"
	touch -d '-1 hour' "$STATE/env-cache/sandbox/$sb"
	capture fr gc
	assert_rc 0 "gc after the delete"
	[[ ! -e "$STATE/env-cache/sandbox/$sb" ]] || {
		diag "FAIL: gc kept the FLOX_ENV_CACHE of a sandbox with no container"
		return 1
	}
}

tap_test "claude-code-router: 16 vars, a bash hook with functions and [[ ]]" t_claude_code_router
tap_test "aicr: the hook's exports under FLOX_ENV_CACHE reach the command" t_aicr
tap_test "r-posit: vars and a hook of functions under FLOX_ENV_CACHE" t_r_posit
tap_test "llama-runtime in dev mode: \${FLOX_ENV} var, warning to stderr" t_llama_dev
tap_test "langtools: the environment's CA bundle, locales, dev profile variables and plugin profile.d scripts" t_langtools
tap_test "the hook runs apart from the command: cwd, umask, exit; argv[0]; its PATH finds the command" t_hook_process
tap_test "FLOX_ENV_CACHE survives a restart in the pod, goes with its sandbox" t_cache_lifecycle
tap_test "exec gets the container's activation" t_exec
tap_test "exec attaches to the first activation: the hook does not run again (per user)" t_exec_attach
tap_test "gc removes the FLOX_ENV_CACHE of a gone sandbox, keeps a live one's" t_gc
tap_test "a PATH of 200,000 entries costs the create seconds, not minutes" t_hostile_path
tap_test "CRI-O: gc keeps the FLOX_ENV_CACHE of a live container whose sandbox the runtime does not know" t_crio_gc_live
tap_test "CRI-O: a pod's containerd sandbox-id annotation does not choose another pod's FLOX_ENV_CACHE" t_crio_sandbox_spoof
tap_done
