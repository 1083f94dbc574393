#!/usr/bin/env bash
# tls_runtime_config.sh BIN: clients pull over TLS with the mirror configuration
# `runtime-config` writes when registry.tls is set (a test CA issued the listener's
# certificate; registry.tls.caFile names the CA):
#   - containerd: hosts.toml has [host."https://SAT"] with ca = the CA; a private containerd
#     (`ctr images pull --hosts-dir`) pulls through it (?ns=) and gets the pushed digest; the
#     same hosts.toml without the ca line fails verification;
#   - podman/CRI-O: the drop-in's mirror is not insecure, certs.d/SAT/ca.crt holds the CA;
#     podman pulls through the drop-in with that certs.d directory, and fails without it;
#   - skopeo with the certs.d directory pulls, without it is refused;
#   - k3s registries.yaml: https endpoint and configs."SAT".tls.ca_file; Docker:
#     registry-mirrors https and certs.d/SAT/ca.crt (files checked; no k3s/dockerd here);
#   - a second runtime-config run changes nothing.
# The upstream is 127.0.0.1:<closed port>: a fallback there is refused locally, so a pull
# can only succeed through satellite-lite.
# Cost: ~20 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
for t in skopeo podman containerd ctr openssl jq python3 curl; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
T=$E2E_TMP
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}
SAT=127.0.0.1:$(free_port)
UP=127.0.0.1:$(free_port)   # nothing listens: the fallback is refused

tls_ca_and_leaf "$T"

CFG=$T/config.json
jq -n --arg s "$T/store" --arg l "$SAT" --arg c "$T/cert.pem" --arg k "$T/key.pem" --arg ca "$T/ca.pem" --arg u "http://$UP" \
    '{profile:"generic-amd64", storage:{path:$s}, registry:{listen:$l, tls:{certFile:$c, keyFile:$k, caFile:$ca}}, upstream:{url:$u}}' > "$CFG"
"$BIN" serve --config "$CFG" > "$T/serve.log" 2>&1 &
SAT_PID=$!
on_exit "kill_wait $SAT_PID"
wait_until 30 "serve over HTTPS" 'curl -s --max-time 2 --cacert "$T/ca.pem" -o /dev/null "https://$SAT/v2/"' "$T/serve.log"
APP=$(python3 "$MKIMAGE" single --platform linux/amd64 --layers 2 --size 200000 "oci:$T/app:v1") || fail "mkimage.py failed"
mkdir -p "$T/pushcerts" && cp "$T/ca.pem" "$T/pushcerts/ca.crt"
run_or_fail "skopeo push over TLS" e2e_skopeo copy -q --preserve-digests --dest-cert-dir "$T/pushcerts" "oci:$T/app:v1" "docker://$SAT/e2e/app:v1"

# ---------------------------------------------------------------- runtime-config
R=$T/root
mkdir -p "$R/etc/containerd"
printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n' > "$R/etc/containerd/config.toml"
for rt in containerd podman crio k3s docker; do
    "$BIN" runtime-config --config "$CFG" --runtime $rt --root "$R" > "$T/rc-$rt.out" 2>&1 \
        || fail "runtime-config --runtime $rt failed: $(tail -n 3 "$T/rc-$rt.out" | tr '\n' ' ')"
done
for rt in containerd podman crio k3s docker; do
    "$BIN" runtime-config --config "$CFG" --runtime $rt --root "$R" > "$T/rc2-$rt.out" 2>&1 || fail "second runtime-config --runtime $rt failed"
    grep -q "nothing to change" "$T/rc2-$rt.out" || fail "a second runtime-config --runtime $rt changed something: $(head -n 3 "$T/rc2-$rt.out" | tr '\n' ' ')"
done
HOSTS=$R/etc/containerd/certs.d/$UP/hosts.toml
grep -qxF "[host.\"https://$SAT\"]" "$HOSTS" || fail "$HOSTS: satellite-lite is not an https host: $(tr '\n' '~' < "$HOSTS")"
grep -qxF "  ca = \"$T/ca.pem\"" "$HOSTS" || fail "$HOSTS: no ca = \"$T/ca.pem\" for the mirror: $(tr '\n' '~' < "$HOSTS")"
CERTS=$R/etc/containers/certs.d/$SAT
cmp -s "$CERTS/ca.crt" "$T/ca.pem" || fail "$CERTS/ca.crt is not the CA"
DROPIN=$R/etc/containers/registries.conf.d/50-satellite-lite.conf
grep -qF "location = \"$SAT\"" "$DROPIN" || fail "the drop-in lacks the mirror $SAT"
# The upstream entry is insecure (it is plain HTTP); the mirror entry must not be.
sed -n '/^\[\[registry.mirror\]\]/,$p' "$DROPIN" | grep -q insecure && fail "the drop-in marks the TLS mirror insecure: $(tr '\n' '~' < "$DROPIN")"
K3S=$R/etc/rancher/k3s/registries.yaml
grep -qF "\"https://$SAT\"" "$K3S" || fail "registries.yaml has no https endpoint: $(tr '\n' '~' < "$K3S")"
python3 -c 'import sys; sys.exit(0 if sys.argv[2] in open(sys.argv[1]).read() else 1)' "$K3S" \
    "$(printf 'configs:\n  "%s":\n    tls:\n      ca_file: "%s"\n' "$SAT" "$T/ca.pem")" \
    || fail "registries.yaml: configs.\"$SAT\".tls.ca_file is not the CA: $(tr '\n' '~' < "$K3S")"
jq -e --arg m "https://$SAT" '.["registry-mirrors"][0] == $m and (has("insecure-registries") | not)' "$R/etc/docker/daemon.json" >/dev/null \
    || fail "daemon.json: $(tr '\n' ' ' < "$R/etc/docker/daemon.json")"
cmp -s "$R/etc/docker/certs.d/$SAT/ca.crt" "$T/ca.pem" || fail "/etc/docker/certs.d/$SAT/ca.crt is not the CA"
log "runtime-config over TLS: containerd ca, certs.d ca.crt (podman/CRI-O, Docker), k3s ca_file; second run unchanged"

# ---------------------------------------------------------------- skopeo
run_or_fail "skopeo pull with the certs.d directory" e2e_skopeo copy -q --src-cert-dir "$CERTS" "docker://$SAT/e2e/app:v1" "oci:$T/back:v1"
[[ $(jq -r '.manifests[0].digest' "$T/back/index.json") == "$APP" ]] || fail "skopeo pulled another digest"
if e2e_skopeo inspect --raw "docker://$SAT/e2e/app:v1" > "$T/noca.out" 2>&1; then fail "skopeo without the CA pulled"; fi

# ---------------------------------------------------------------- podman
isolated_podman "$T/podman" "$DROPIN"
run_or_fail "podman pull $UP/e2e/app:v1 through the drop-in with certs.d" e2e_podman pull -q --cert-dir "$CERTS" "$UP/e2e/app:v1"
got=$(e2e_podman image inspect "$UP/e2e/app:v1" | jq -r '.[0].Digest')
[[ $got == "$APP" ]] || fail "podman got $got, expected $APP"
e2e_podman rmi -a -f > /dev/null 2>&1 || true
mkdir -p "$T/emptycerts"
if e2e_podman pull -q --cert-dir "$T/emptycerts" "$UP/e2e/app:v1" > "$T/podman-noca.out" 2>&1; then
    fail "podman pulled over TLS without the CA"
fi
grep -qiE "x509|certificate" "$T/podman-noca.out" || fail "podman without the CA failed for another reason: $(tail -n 2 "$T/podman-noca.out" | tr '\n' ' ')"
log "podman: pulls through the drop-in with certs.d/$SAT/ca.crt; without the CA it fails"

# ---------------------------------------------------------------- containerd
C="$T/ctrd"
start_private_containerd "$C" "$R/etc/containerd/certs.d"
ctr_pull() { # HOSTS_DIR
    e2e_ctr images pull --hosts-dir "$1" --platform linux/amd64 --snapshotter "$SNAPSHOTTER" --http-dump "$UP/e2e/app:v1" \
        > "$T/ctr.out" 2> "$T/ctr.err"
}
ctr_pull "$R/etc/containerd/certs.d" \
    || fail "ctr pull through the https mirror failed: $(grep -vE 'level=info' "$T/ctr.err" | tail -n 2 | tr '\n' ' ')"
grep -qE "(GET|HEAD) /v2/e2e/app/.*\?ns=" "$T/ctr.err" || fail "ctr did not go through satellite-lite with ?ns="
got=$(e2e_ctr images ls "name==$UP/e2e/app:v1" | awk 'NR==2{print $3}')
[[ $got == "$APP" ]] || fail "containerd has $UP/e2e/app:v1 = '${got:-none}', expected $APP"
e2e_ctr images rm --sync "$UP/e2e/app:v1" > /dev/null 2>&1 || true
mkdir -p "$T/noca/$UP"
grep -v '^  ca = ' "$HOSTS" > "$T/noca/$UP/hosts.toml"
if ctr_pull "$T/noca"; then fail "ctr pulled through the https mirror without the CA"; fi
grep -qiE "x509|certificate" "$T/ctr.err" || fail "ctr without the CA failed for another reason: $(grep -vE 'level=info' "$T/ctr.err" | tail -n 2 | tr '\n' ' ')"
log "containerd: ctr pulls through hosts.toml with ca; without it x509 fails"
echo "ok tls_runtime_config"
