#!/bin/sh
# The terminals' TLS: a CA, the broker's certificate, one client certificate per terminal.
#
#   make-certs.sh ca                      # certs/ca.crt + ca.key (keep ca.key offline)
#   make-certs.sh broker HOST [HOST...]   # certs/broker.crt + broker.key, for these names
#   make-certs.sh terminal TID            # certs/terminals/TID.crt + TID.key (CN = TID)
#
# CERTS_DIR (default: the certs/ folder beside this script, which docker-compose.yml
# mounts at /mosquitto/config/certs) is where everything is written. Keys are written
# with mode 0600, except broker.key (0640: the broker reads it). An existing file is never
# overwritten: delete it first to make a new one. Needs openssl.
set -eu

dir=${CERTS_DIR:-$(dirname "$0")/certs}
days_ca=${CA_DAYS:-3650}
days=${CERT_DAYS:-825}
mkdir -p "$dir"

fail() { echo "make-certs: $*" >&2; exit 1; }
fresh() { for f in "$@"; do [ ! -e "$f" ] || fail "$f exists; delete it to make a new one"; done; }
need_ca() { [ -r "$dir/ca.crt" ] && [ -r "$dir/ca.key" ] || fail "no CA in $dir: run 'make-certs.sh ca' first"; }

sign() { # key crt subject days extfile
    umask 077
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$1" -subj "$3" -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days "$4" -sha256 -extfile "$5" -out "$2" 2>/dev/null
    rm -f "$1.csr" "$5"
}

case "${1:-}" in
ca)
    fresh "$dir/ca.crt" "$dir/ca.key"
    umask 077
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/ca.key" -subj "/CN=termwatch terminal CA" -days "$days_ca" -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$dir/ca.crt" 2>/dev/null
    chmod 0644 "$dir/ca.crt"
    echo "CA: $dir/ca.crt (give it to terminals); $dir/ca.key (keep it offline)"
    ;;
broker)
    shift
    [ $# -gt 0 ] || fail "usage: make-certs.sh broker HOST [HOST...]"
    need_ca
    fresh "$dir/broker.crt" "$dir/broker.key"
    san=""
    for host in "$@"; do
        case "$host" in
        *[!0-9.]*) san="${san:+$san,}DNS:$host" ;;
        *) san="${san:+$san,}IP:$host" ;;
        esac
    done
    ext=$(mktemp)
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' \
        "$san" >"$ext"
    sign "$dir/broker.key" "$dir/broker.crt" "/CN=$1" "$days" "$ext"
    chmod 0640 "$dir/broker.key"
    chmod 0644 "$dir/broker.crt"
    echo "broker: $dir/broker.crt for $san"
    ;;
terminal)
    tid=${2:-}
    echo "$tid" | grep -Eq '^[A-Za-z0-9_-]{1,32}$' || fail "usage: make-certs.sh terminal TID (letters, digits, _ and -)"
    need_ca
    mkdir -p "$dir/terminals"
    fresh "$dir/terminals/$tid.crt" "$dir/terminals/$tid.key"
    ext=$(mktemp)
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$ext"
    sign "$dir/terminals/$tid.key" "$dir/terminals/$tid.crt" "/CN=$tid" "$days" "$ext"
    chmod 0644 "$dir/terminals/$tid.crt"
    echo "terminal $tid: $dir/terminals/$tid.crt + $tid.key (install with ca.crt on the terminal)"
    ;;
*)
    fail "usage: make-certs.sh ca | broker HOST [HOST...] | terminal TID"
    ;;
esac
