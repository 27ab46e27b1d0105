#!/usr/bin/env bash
# The zeroconf announcement of `s4listen serve`, against a real Avahi daemon, in a network and
# mount namespace of its own (loopback only: no packet leaves it; /run/avahi-daemon a private
# tmpfs) with a private D-Bus system bus:
#   1. with no Avahi daemon, serve still serves and warns;
#   2. with one, avahi-browse resolves _wyoming._tcp with the name and the port served, and the
#      announcement is withdrawn when serve stops;
#   3. --no-zeroconf announces nothing.
# Usage: tools/zeroconf_check.sh S4LISTEN MODEL. One line per check; exit status 0 when all hold.
# Needs root (namespaces), unshare, dbus-daemon, avahi-daemon and avahi-browse (make deps).
set -euo pipefail
binary=$(realpath "$1")
model=$(realpath "$2")
if [ -z "${S4LISTEN_ZEROCONF_NAMESPACE:-}" ]; then
    exec env S4LISTEN_ZEROCONF_NAMESPACE=1 unshare --net --mount "$0" "$binary" "$model"
fi
ip link set lo up
work=$(mktemp -d)
# The background processes are killed, not waited for: a wait could outlast a test's time limit.
daemons=()
server=
cleanup() {
    kill -KILL ${server:+"$server"} "${daemons[@]}" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p /run/avahi-daemon
mount -t tmpfs tmpfs /run/avahi-daemon
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/bus"
port=10411
name="s4listen zeroconf check"

fail() {
    echo "zeroconf: FAILED: $*"
    for log in "$work"/*.log; do echo "--- $log"; cat "$log"; done
    exit 1
}

# Waits up to 20 s for a line matching $2 in file $1.
wait_for() {
    for _ in $(seq 200); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

# serve in the background on 0.0.0.0:$port; $1 names its log, the rest are options.
serve() {
    local log="$work/$1.log"
    shift
    "$binary" serve --model "$model" --uri "tcp://0.0.0.0:$port" "$@" 2>"$log" &
    server=$!
    wait_for "$log" "serving Wyoming" || fail "serve did not start"
}

stop_serve() {
    kill -TERM "$server"
    wait "$server" || fail "serve did not stop cleanly"
    server=
}

# The resolved _wyoming._tcp services: avahi-browse's parsable lines starting with "=".
browse() { avahi-browse --resolve --parsable --terminate --no-db-lookup _wyoming._tcp 2>>"$work/browse.log" | grep '^=' || true; }

# 1. A bus but no Avahi daemon: a warning, and serve goes on serving.
cat >"$work/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$work/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
dbus-daemon --config-file="$work/bus.conf" --nofork --nopidfile 2>"$work/dbus.log" &
daemons+=($!)
for _ in $(seq 100); do [ -S "$work/bus" ] && break; sleep 0.1; done
serve no-daemon
wait_for "$work/no-daemon.log" "warning s4listen: no Avahi daemon running" || fail "no warning without a daemon"
kill -0 "$server" || fail "serve ended without a daemon"
stop_serve
echo "zeroconf: without an Avahi daemon serve serves and warns: $(grep -o 'no Avahi daemon running: [a-z ]*starts' "$work/no-daemon.log")"

# 2. A daemon on loopback: the announcement carries the type, the name and the port.
cat >"$work/avahi.conf" <<EOF
[server]
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
ratelimit-burst=1000
[publish]
publish-workstation=no
publish-hinfo=no
EOF
avahi-daemon --file="$work/avahi.conf" --no-drop-root --no-chroot --no-rlimits --no-proc-title 2>"$work/avahi.log" &
daemons+=($!)
wait_for "$work/avahi.log" "Server startup complete" || fail "avahi-daemon did not start"
serve announced --zeroconf-name "$name"
wait_for "$work/announced.log" "announced by zeroconf" || fail "no announcement"
found=$(browse)
echo "$found" | grep -q "^=;lo;IPv4;${name// /\\\\032};_wyoming\._tcp;local;[^;]*;127\.0\.0\.1;$port;" \
    || fail "avahi-browse found: '$found'"
echo "zeroconf: avahi-browse resolves $(echo "$found" | cut -d';' -f4,5,8,9 | head -n 1)"
stop_serve
for _ in $(seq 20); do [ -z "$(browse)" ] && break; sleep 0.5; done
[ -z "$(browse)" ] || fail "still announced 10 s after serve stopped: $(browse)"
echo "zeroconf: withdrawn when serve stops"

# 3. --no-zeroconf: nothing.
serve quiet --no-zeroconf
sleep 1
[ -z "$(browse)" ] || fail "announced with --no-zeroconf: $(browse)"
stop_serve
echo "zeroconf: --no-zeroconf announces nothing"
