# tests/lib/containerd-config.sh: the one containerd 1.6 configuration every
# test, fixture capture and benchmark starts its private containerd with.
# Sourced (bash); defines functions only, no side effects.
#
# containerd_config_toml ROOT STATE SOCK PAUSE_IMAGE STREAM_PORT RUNC_ROOT CNI_DIR [FLOX_BINARY]
#   prints a version-2 config.toml on stdout: every path private (root,
#   state, gRPC/ttrpc sockets, CNI dirs), the native snapshotter, the CRI
#   plugin's default runtime `runc` (runc v2 shim, runc --root RUNC_ROOT)
#   and, when FLOX_BINARY is given, a runtime `flox` (BinaryName
#   FLOX_BINARY, the same root) that passes `flox.dev/*` pod and container
#   annotations through.  Without FLOX_BINARY there is no flox runtime: what
#   a node looks like before `flox-runc install` registers one.
containerd_config_toml() {
	local root=$1 state=$2 sock=$3 pause=$4 port=$5 runc_root=$6 cni=$7 flox=${8:-}
	cat <<EOF
version = 2
root = "$root"
state = "$state"
plugin_dir = ""
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause"
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "$port"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$runc_root"
EOF
	[ -z "$flox" ] || cat <<EOF

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.flox]
      runtime_type = "io.containerd.runc.v2"
      pod_annotations = ["flox.dev/*"]
      container_annotations = ["flox.dev/*"]
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.flox.options]
        BinaryName = "$flox"
        Root = "$runc_root"
EOF
	cat <<EOF

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni/bin"
    conf_dir = "$cni/conf"
EOF
}
