#!/usr/bin/env bash
#
# tests/integration/hub-tls.sh - FloxHub over HTTPS, as FloxHub serves it:
# the test hub behind TLS on 127.0.0.1 with a test CA made here (openssl):
#   trusted through the node config's ca_file, and through a CA bundle named
#   by $SSL_CERT_FILE (the system bundle plus the test CA, a private file);
#   an untrusted, an expired certificate and a wrong host name each fail
#   with one line naming which and the fix; a redirect from https to http is
#   refused (the plain-http hub sees no request), https to https followed.
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR.  TAP output; 77 = skipped (under CI=true: a failure).

set -euo pipefail
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_needs --root --flox-runc jq python3 git openssl

tmpdir_setup flox-runc-tls
hub_start # plain http: the target of the refused redirect
STATE=$TEST_TMPDIR/state
P1=/nix/store/0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-1
make_lock "$TEST_TMPDIR/l1" "hello=$P1"
hub_publish acme/hello "$TEST_TMPDIR/l1" >/dev/null

# ---- the PKI: a test CA, certificates signed by it, one by another CA
PKI=$TEST_TMPDIR/pki
mkdir -p "$PKI"
ca() { # ca NAME
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=flox-runc test CA $1" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign \
		-keyout "$PKI/$1.key" -out "$PKI/$1.pem" 2>/dev/null
}
csr() { # csr NAME SAN
	openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$1" -addext "subjectAltName=$2" \
		-keyout "$PKI/$1.key" -out "$PKI/$1.csr" 2>/dev/null
}
sign() { # sign NAME CA STARTDATE ENDDATE
	mkdir -p "$PKI/db.$1"
	: >"$PKI/db.$1/index.txt"
	echo 01 >"$PKI/db.$1/serial"
	cat >"$PKI/db.$1/ca.cnf" <<CNF
[ca]
default_ca = tca
[tca]
dir = $PKI/db.$1
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
default_md = sha256
policy = pol
copy_extensions = copy
unique_subject = no
[pol]
commonName = supplied
CNF
	openssl ca -batch -notext -config "$PKI/db.$1/ca.cnf" -cert "$PKI/$2.pem" \
		-keyfile "$PKI/$2.key" -in "$PKI/$1.csr" -out "$PKI/$1.pem" \
		-startdate "$3" -enddate "$4" 2>/dev/null
}
NOW=$(date -u +%Y%m%d%H%M%SZ)
LATER=$(date -u -d '+2 days' +%Y%m%d%H%M%SZ)
ca testca
ca otherca
csr good "DNS:localhost,IP:127.0.0.1"
sign good testca "$NOW" "$LATER"
csr expired "DNS:localhost,IP:127.0.0.1"
sign expired testca 20200101000000Z 20200102000000Z
csr wronghost "DNS:elsewhere.invalid"
sign wronghost testca "$NOW" "$LATER"
csr untrusted "DNS:localhost,IP:127.0.0.1"
sign untrusted otherca "$NOW" "$LATER"
chmod 600 "$PKI"/*.key

# tls_hub NAME: a TLS hub with certificate NAME over the same repositories;
# sets TLS_PORT, TLS_CTL, TLS_LOG.
tls_hub() { # tls_hub NAME [CERT]
	local d=$TEST_TMPDIR/tls.$1 cert=${2:-$1}
	mkdir -p "$d"
	python3 "$HUB_PY/floxhub.py" --root "$HUB_ROOT" --port 0 --port-file "$d/port" \
		--tls-cert "$PKI/$cert.pem" --tls-key "$PKI/$cert.key" --control "$d/ctl" \
		--log "$d/log" --quiet &
	cleanup_pid "$!"
	wait_for test -s "$d/port" || die "the TLS hub $1 did not start"
	eval "TLS_PORT_$1=\$(cat \"\$d/port\")"
	: >"$d/log"
}
for n in good expired wronghost untrusted; do tls_hub "$n"; done
tls_hub good2 good

# config URL [KEY=JSON...]
config() {
	local url=$1 extra="{}" kv
	shift
	for kv in "$@"; do
		extra=$(jq -c --argjson v "${kv#*=}" --arg k "${kv%%=*}" '. + {($k): $v}' <<<"$extra")
	done
	jq -n --arg hub "$url" --arg st "$STATE" --argjson x "$extra" \
		'{floxhub_url: $hub, state_dir: $st, deadline_seconds: 20, fresh_seconds: 0} + $x' \
		>"$TEST_TMPDIR/config.json"
	export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
	rm -rf "$STATE"
}
resolve() { capture "$FLOX_RUNC" resolve --json "$@"; }
last_line() { tail -n 1 <<<"$CAP_ERR"; }
CA_FILE="ca_file=\"$PKI/testca.pem\""

t_ca_file() {
	config "https://localhost:$TLS_PORT_good" "$CA_FILE"
	resolve acme/hello:1
	assert_rc 0 "resolved over HTTPS with ca_file: $CAP_ERR"
	assert_eq "$P1" "$(jq -r '.packages[0].store_paths[0]' <<<"$CAP_OUT")" "its lockfile"
	assert_eq hub "$(jq -r .source <<<"$CAP_OUT")" "from the TLS hub"
}

t_system_bundle() {
	local bundle=$TEST_TMPDIR/bundle.pem
	cat /etc/ssl/certs/ca-certificates.crt "$PKI/testca.pem" >"$bundle"
	config "https://127.0.0.1:$TLS_PORT_good"
	capture env SSL_CERT_FILE="$bundle" "$FLOX_RUNC" resolve --json acme/hello:1
	assert_rc 0 "resolved with the CA in \$SSL_CERT_FILE's bundle: $CAP_ERR"
	assert_eq "$P1" "$(jq -r '.packages[0].store_paths[0]' <<<"$CAP_OUT")" "its lockfile"
	# the machine's own bundle does not know the test CA
	config "https://127.0.0.1:$TLS_PORT_good"
	capture env -u SSL_CERT_FILE "$FLOX_RUNC" resolve --json acme/hello:1
	assert_rc 1 "refused with the system bundle alone"
	assert_contains "$(last_line)" "its TLS certificate is not signed by a CA in the system's CA bundle" "says which"
}

t_untrusted() {
	config "https://localhost:$TLS_PORT_untrusted" "$CA_FILE"
	resolve acme/hello:1
	assert_rc 1 "a certificate of another CA"
	assert_contains "$(last_line)" "its TLS certificate is not signed by a CA in the ca_file of the node config" "which"
	assert_contains "$(last_line)" "set ca_file in the node config to the CA that signs it" "fix"
}

t_expired() {
	config "https://localhost:$TLS_PORT_expired" "$CA_FILE"
	resolve acme/hello:1
	assert_rc 1 "an expired certificate"
	assert_contains "$(last_line)" "its TLS certificate has expired" "which"
	assert_contains "$(last_line)" "the server must renew it" "fix"
}

t_wrong_host() {
	config "https://localhost:$TLS_PORT_wronghost" "$CA_FILE"
	resolve acme/hello:1
	assert_rc 1 "a certificate for another name"
	assert_contains "$(last_line)" "its TLS certificate is for another host name" "which"
	assert_contains "$(last_line)" "use the host name the certificate names" "fix"
}

t_redirect() {
	local before
	printf '{"redirect": "%s"}\n' "$HUB_URL" >"$TEST_TMPDIR/tls.good2/ctl"
	config "https://localhost:$TLS_PORT_good2" "$CA_FILE"
	before=$(hub_requests)
	resolve acme/hello:1
	assert_rc 1 "https -> http redirect"
	assert_contains "$(last_line)" "redirects to a plain http URL, which flox-runc refuses" "says so"
	assert_eq "$before" "$(hub_requests)" "the plain-http hub saw no request"
	# https -> https is followed (to the hub with the same certificate; the
	# discovery GET: curl turns a redirected POST into a GET, as git's
	# client never redirects its POSTs)
	printf '{"redirect": "https://localhost:%s", "only_paths_matching": "service="}\n' \
		"$TLS_PORT_good" >"$TEST_TMPDIR/tls.good2/ctl"
	printf '{}\n' >"$TEST_TMPDIR/tls.good/ctl"
	: >"$TEST_TMPDIR/tls.good/log"
	config "https://localhost:$TLS_PORT_good2" "$CA_FILE"
	resolve acme/hello:1
	printf '{}\n' >"$TEST_TMPDIR/tls.good2/ctl"
	assert_rc 0 "https -> https redirect followed: $CAP_ERR"
	[[ -s $TEST_TMPDIR/tls.good/log ]] || { diag "the redirect target saw no request"; return 1; }
	# a moved repository on the same server: discovery is redirected, the
	# POSTs then go to where it ended (as git's client does), not through a
	# redirect that would turn them into GETs
	printf '{"redirect": "https://localhost:%s/git/acme", "redirect_strip": "/git/oldacme", "only_paths_matching": "/git/oldacme/"}\n' \
		"$TLS_PORT_good" >"$TEST_TMPDIR/tls.good/ctl"
	: >"$TEST_TMPDIR/tls.good/log"
	config "https://localhost:$TLS_PORT_good" "$CA_FILE"
	resolve oldacme/hello:1
	printf '{}\n' >"$TEST_TMPDIR/tls.good/ctl"
	assert_rc 0 "a moved repository: $CAP_ERR"
	assert_eq "$P1" "$(jq -r '.packages[0].store_paths[0]' <<<"$CAP_OUT")" "its lockfile"
	assert_eq 1 "$(grep -c '"status": 302' "$TEST_TMPDIR/tls.good/log")" "one redirect: discovery only"
}

# doctor checks TLS trust on the path to FloxHub and says which check failed
t_doctor() {
	config "https://localhost:$TLS_PORT_good" "$CA_FILE"
	capture "$FLOX_RUNC" doctor
	assert_contains "$CAP_OUT" "FloxHub git service https://localhost:$TLS_PORT_good/git" "checked"
	assert_not_contains "$(grep "FloxHub git service" <<<"$CAP_OUT")" "problem" "trusted through ca_file"
	config "https://localhost:$TLS_PORT_expired" "$CA_FILE"
	capture "$FLOX_RUNC" doctor
	assert_contains "$(grep "FloxHub git service" <<<"$CAP_OUT")" "its TLS certificate has expired" "expired"
	config "https://localhost:$TLS_PORT_untrusted" "$CA_FILE"
	capture "$FLOX_RUNC" doctor
	assert_contains "$(grep "FloxHub git service" <<<"$CAP_OUT")" "not signed by a CA in the ca_file" "untrusted"
	config "https://localhost:$TLS_PORT_wronghost" "$CA_FILE"
	capture "$FLOX_RUNC" doctor
	assert_contains "$(grep "FloxHub git service" <<<"$CAP_OUT")" "for another host name" "wrong host"
}

tap_test "HTTPS trusted through ca_file" t_ca_file
tap_test "HTTPS trusted through the bundle in \$SSL_CERT_FILE; not the system's alone" t_system_bundle
tap_test "untrusted certificate: one line, which and the fix" t_untrusted
tap_test "expired certificate: one line, which and the fix" t_expired
tap_test "wrong host name: one line, which and the fix" t_wrong_host
tap_test "a redirect from https to http is refused" t_redirect
tap_test "doctor: TLS trust to FloxHub, which check fails" t_doctor
tap_done
