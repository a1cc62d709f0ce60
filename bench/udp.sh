#!/usr/bin/env bash
# Datagram round trips, coevent beside OpenResty in one run: T threads, each
# with its own socket, N memcached `get` round trips over UDP each (one
# datagram each way) against one memcached (-U) on 127.0.0.1.
#   bash bench/udp.sh     (UDP_THREADS=100 UDP_REQUESTS=2000 UDP_REPS=3)
# Prints, and writes to bench/UDP.md (UDP_OUT), client CPU per round trip (user + system: the process's own, nginx's
# from /proc/PID/stat) for each run, and syscalls per round trip (`strace -c`,
# a tenth of the requests). Needs memcached, nginx and OpenResty's Lua module
# (bash bench/deps.sh, as root), luajit and strace.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
HOST=127.0.0.1
T=${UDP_THREADS:-100} N=${UDP_REQUESTS:-2000} REPS=${UDP_REPS:-3}
OUT=${UDP_OUT:-bench/UDP.md}
. bench/common.sh
bench_tools memcached nginx curl luajit strace
make -s module LUA=jit >/dev/null
cargo build --release -q --bin coevent
tmp=$(mktemp -d)
stop_on_exit "$tmp"

MC=$($BT freeport)
memcached -l $HOST -U "$MC" -p "$MC" -u nobody -t 1 -m 16 &
PIDS+=($!)
wait_port "$MC"
NG=$($BT freeport)
mkdir -p "$tmp/ng"
cat >"$tmp/ng/nginx.conf" <<CONF
daemon off;
master_process off;
pid $tmp/ng/nginx.pid;
error_log $tmp/ng/error.log warn;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module $OR/usr/lib/nginx/modules/ngx_http_lua_module.so;
events { worker_connections 1024; }
http {
  access_log off;
  lua_package_path "$OR/usr/share/lua/5.1/?.lua;;";
  client_body_temp_path $tmp/ng/b; proxy_temp_path $tmp/ng/p; fastcgi_temp_path $tmp/ng/f;
  uwsgi_temp_path $tmp/ng/u; scgi_temp_path $tmp/ng/s;
  server { listen $HOST:$NG; location = /udp { content_by_lua_file $ROOT/bench/clients/udp-openresty.lua; } }
}
CONF
LD_LIBRARY_PATH=$OR/usr/lib/x86_64-linux-gnu nginx -p "$tmp/ng" -c "$tmp/ng/nginx.conf" -e "$tmp/ng/error.log" &
NPID=$!
PIDS+=($NPID)
wait_port "$NG"

TCK=$(getconf CLK_TCK)
RT=$((T * N))
per() { awk -v s="$1" -v n="$RT" 'BEGIN { printf "%.2f", s * 1e6 / n }'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
coevent() { # NAME -> the command
  case $1 in
    coevent-luajit) echo luajit bench/clients/udp-coevent.lua build/luajit ;;
    coevent-lua5.4) echo target/release/coevent bench/clients/udp-coevent.lua - ;;
  esac
}
report() {
echo "udp: $T threads x $N memcached get round trips, 127.0.0.1; client CPU us per round trip (user+system)"
for rep in $(seq "$REPS"); do
  a=$(ticks $NPID)
  curl -sf "http://$HOST:$NG/udp?port=$MC&t=$T&n=$N" >/dev/null
  b=$(ticks $NPID)
  line="  run $rep: openresty $(per "$(awk -v d=$((b - a)) -v t="$TCK" 'BEGIN { print d / t }')")"
  for c in coevent-luajit coevent-lua5.4; do
    # shellcheck disable=SC2046
    s=$( { /usr/bin/time -f '%U %S' $(coevent $c) "$MC" "$T" "$N" >/dev/null; } 2>&1 | awk '{ print $1 + $2 }')
    line="$line, $c $(per "$s")"
  done
  echo "$line"
done
echo "syscalls per round trip (strace -c, $T x $((N / 10))):"
RT=$((T * N / 10))
calls() { awk -v n="$RT" '$NF ~ /^(sendto|recvfrom|recvmmsg|epoll_wait|epoll_ctl)$/ { printf " %s %.2f", $NF, $4 / n }' "$1"; }
strace -f -c -o "$tmp/co.txt" $(coevent coevent-luajit) "$MC" "$T" $((N / 10)) >/dev/null
echo "  coevent-luajit:$(calls "$tmp/co.txt")"
strace -c -p "$NPID" -o "$tmp/or.txt" 2>/dev/null &
SPID=$!
sleep 0.5
curl -sf "http://$HOST:$NG/udp?port=$MC&t=$T&n=$((N / 10))" >/dev/null
kill -INT "$SPID"
wait "$SPID" 2>/dev/null || true
echo "  openresty:$(calls "$tmp/or.txt")"
}

{
  echo "# UDP round trips"
  echo
  echo "Written by \`bash bench/udp.sh\` (git $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d)), coevent and OpenResty in one run:"
  echo
  echo '```'
  report
  echo '```'
} | tee "$OUT"
