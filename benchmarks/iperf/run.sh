#!/usr/bin/env bash
# iperf3 through three TCP paths on loopback inside a network namespace
# whose MTU is 1,500 (as on Ethernet), side by side:
#
#   direct   iperf3 client -> iperf3 server
#   ssh -L   iperf3 client -> ssh -L (OpenSSH client) -> sshd -> iperf3 server
#   haven    iperf3 client -> haven forward -L -> haven serve -forward -> iperf3 server
#
# Each path runs ROUNDS times (alternating) for SECONDS each; the script
# prints every measurement and the medians, in Gbit/s, with Haven's ratio to
# ssh -L and to direct TCP. It needs root (network namespace). It installs
# iperf3 and openssh-server with apt-get if they are missing, makes
# throwaway keys in a temporary directory, and removes the namespace and
# every process it started when it ends.
#
#   benchmarks/iperf/run.sh                 # 3 rounds of 5 s
#   ROUNDS=5 SECONDS_EACH=10 benchmarks/iperf/run.sh
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-5}
NS=haven-iperf
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ "$(id -u)" != 0 ]; then
	echo "run.sh: needs root (it makes a network namespace)" >&2
	exit 1
fi
need=()
command -v iperf3 >/dev/null || need+=(iperf3)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
	echo "== installing ${need[*]}" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "== building haven" >&2
(cd "$root" && go build -o "$tmp/haven" ./cmd/haven)

ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip netns exec "$NS" ip link set lo mtu 1500 up
mtu=$(ip netns exec "$NS" cat /sys/class/net/lo/mtu)
[ "$mtu" = 1500 ] || { echo "loopback MTU is $mtu, want 1500" >&2; exit 1; }
echo "== network namespace $NS: loopback MTU $mtu" >&2
in_ns() { ip netns exec "$NS" "$@"; }

# The iperf3 server.
ip netns exec "$NS" iperf3 -s -p 5201 >/dev/null 2>&1 &
pids+=($!)

# sshd with throwaway host and user keys, root login by key only.
ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/user_key"
cp "$tmp/user_key.pub" "$tmp/authorized_keys"
chmod 600 "$tmp/authorized_keys"
mkdir -p /run/sshd
cat >"$tmp/sshd_config" <<EOF
Port 2222
ListenAddress 127.0.0.1
HostKey $tmp/host_key
AuthorizedKeysFile $tmp/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
PidFile $tmp/sshd.pid
EOF
ip netns exec "$NS" /usr/sbin/sshd -D -e -f "$tmp/sshd_config" >/dev/null 2>"$tmp/sshd.log" &
pids+=($!)

# Haven: the server forwards each channel to the iperf3 server; the client
# forwards a local TCP port to the server.
"$tmp/haven" genkey >"$tmp/haven.key"
chmod 600 "$tmp/haven.key"
ip netns exec "$NS" "$tmp/haven" serve -key "$tmp/haven.key" -listen 127.0.0.1:4433 -forward 127.0.0.1:5201 >/dev/null 2>"$tmp/serve.log" &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$tmp/serve.log" && break; sleep 0.1; done
haddr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$tmp/serve.log" | head -1)
[ -n "$haddr" ] || { cat "$tmp/serve.log" >&2; exit 1; }
ip netns exec "$NS" "$tmp/haven" forward -L 127.0.0.1:25201 "$haddr" >/dev/null 2>"$tmp/forward.log" &
pids+=($!)

ip netns exec "$NS" ssh -q -N -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
	-i "$tmp/user_key" -p 2222 -L 127.0.0.1:15201:127.0.0.1:5201 root@127.0.0.1 >/dev/null 2>"$tmp/ssh.log" </dev/null &
pids+=($!)

# Wait for every port to listen (without connecting: the iperf3 server
# would take a probe for a client).
for port in 5201 15201 25201; do
	for _ in $(seq 100); do
		in_ns ss -Hltn "sport = :$port" | grep -q . && break
		sleep 0.1
	done
	in_ns ss -Hltn "sport = :$port" | grep -q . || { echo "nothing listens on port $port" >&2; cat "$tmp"/*.log >&2; exit 1; }
done

# measure PORT prints the receiver's bitrate in Gbit/s.
measure() {
	timeout $((SECONDS_EACH + 30)) ip netns exec "$NS" iperf3 -c 127.0.0.1 -p "$1" -t "$SECONDS_EACH" -f g 2>&1 |
		awk '/receiver/ { for (i = 1; i <= NF; i++) if ($(i) == "Gbits/sec") print $(i-1) }'
}

declare -A results
for r in $(seq "$ROUNDS"); do
	for path in direct:5201 ssh:15201 haven:25201; do
		name=${path%%:*}
		v=$(measure "${path##*:}")
		[ -n "$v" ] || { echo "iperf3 through $name failed" >&2; cat "$tmp"/*.log >&2; exit 1; }
		echo "round $r: $name $v Gbit/s" >&2
		results[$name]+="$v "
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
d=$(echo "${results[direct]}" | median)
s=$(echo "${results[ssh]}" | median)
h=$(echo "${results[haven]}" | median)
echo
echo "iperf3 at MTU 1,500, medians of $ROUNDS runs of ${SECONDS_EACH} s, $(date -u '+%Y-%m-%d %H:%M UTC'):"
echo
echo "| path | Gbit/s |"
echo "|---|---:|"
echo "| direct TCP | $d |"
echo "| OpenSSH ssh -L | $s |"
echo "| haven forward + haven serve -forward | $h |"
echo
awk -v h="$h" -v s="$s" -v d="$d" 'BEGIN { printf "Haven / ssh -L: %.2fx; Haven / direct: %.2fx\n", h / s, h / d }'
