#!/bin/sh
# Build Mosquitto's password file: termwatch's service accounts from the environment, then
# the terminals' accounts from a hashed password file.
#
#   build-passwd.sh OUTPUT [TERMINALS_FILE]
#
# Environment: MQTT_TERMWATCH_PASSWORD (required), MQTT_CRM_PASSWORD and
# MQTT_SIMULATOR_PASSWORD (optional: the account exists only when its password is set).
# TERMINALS_FILE (default /mosquitto/config/terminals.passwd; optional) holds one line per
# terminal, "tid:hash", as written by `mosquitto_passwd -U` from "tid:password" lines (see
# docs/deployment.md). A line that is not a valid tid with a hashed password, or a terminal
# named like a service account, stops the script with its line number; nothing is written.
# OUTPUT-services gets the service accounts alone (for listener 1884).
# The output is replaced atomically and readable only by its owner (and group mosquitto).
set -eu

out=${1:?usage: build-passwd.sh OUTPUT [TERMINALS_FILE]}
terminals=${2:-/mosquitto/config/terminals.passwd}
: "${MQTT_TERMWATCH_PASSWORD:?MQTT_TERMWATCH_PASSWORD must be set}"

umask 077
tmp="$out.new"
trap 'rm -f "$tmp" "$out-services.new"' EXIT
: >"$tmp"

add_service() { # name password
    if [ -n "$2" ]; then
        case "$2" in
        *:* | *'
'*)
            echo "build-passwd: the password of $1 must not contain ':' or a newline" >&2
            exit 1
            ;;
        esac
        printf '%s:%s\n' "$1" "$2" >>"$tmp"
    fi
}
add_service termwatch "$MQTT_TERMWATCH_PASSWORD"
add_service crm "${MQTT_CRM_PASSWORD:-}"
add_service simulator "${MQTT_SIMULATOR_PASSWORD:-}"
# Hash the service accounts before the terminals' lines join them: -U hashes every line.
mosquitto_passwd -U "$tmp"
# The listener for termwatch's own processes (1884) knows only the service accounts, so no
# terminal account can log in there and take over a collector's session by its client id.
services="$out-services"
cp "$tmp" "$services.new"

count=0
if [ -f "$terminals" ]; then
    checked="$out.terminals"
    trap 'rm -f "$tmp" "$out-services.new" "$checked"' EXIT
    awk -F: '
        /^[[:space:]]*(#|$)/ { next }
        NF != 2 || $1 !~ /^[A-Za-z0-9_-]+$/ || length($1) > 32 {
            printf "build-passwd: %s line %d: expected tid:hash with a tid of 1-32 letters, digits, _ or -\n", FILENAME, NR > "/dev/stderr"; bad = 1; next
        }
        $1 == "termwatch" || $1 == "crm" || $1 == "simulator" {
            printf "build-passwd: %s line %d: %s is a service account, not a terminal\n", FILENAME, NR, $1 > "/dev/stderr"; bad = 1; next
        }
        $2 !~ /^\$[67]\$/ {
            printf "build-passwd: %s line %d: the password of %s is not hashed; run mosquitto_passwd -U on the file first\n", FILENAME, NR, $1 > "/dev/stderr"; bad = 1; next
        }
        seen[$1]++ {
            printf "build-passwd: %s line %d: %s appears twice\n", FILENAME, NR, $1 > "/dev/stderr"; bad = 1; next
        }
        { print }
        END { exit bad }
    ' "$terminals" >"$checked"
    count=$(wc -l <"$checked")
    cat "$checked" >>"$tmp"
    rm -f "$checked"
fi

# Mosquitto reads the file after dropping root for its own user.
if chgrp mosquitto "$tmp" 2>/dev/null; then
    chmod 0640 "$tmp"
fi
if chgrp mosquitto "$services.new" 2>/dev/null; then
    chmod 0640 "$services.new"
fi
mv "$services.new" "$services"
mv "$tmp" "$out"
trap - EXIT
echo "build-passwd: wrote $out with the service accounts and $count terminals"
