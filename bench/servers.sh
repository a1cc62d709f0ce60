#!/usr/bin/env bash
# Servers (issue 16), in one run on 127.0.0.1, as ratios against peers:
#  1. HTTP keep-alive "hello", wrk -t1 -c100: coevent (LuaJIT and Lua 5.4),
#     OpenResty (content_by_lua_block { ngx.say("hello") }), nginx (return 200),
#     a luv server and a cqueues server (Lua 5.4); the same request logic in
#     every Lua server (bench/servers/*_http.lua). Server CPU per request from
#     /proc/PID/stat (utime + stime) around the run.
#  2. RESP PING: examples/serve_resp.lua (LuaJIT) vs redis-server,
#     redis-benchmark -t ping_inline -P 1 -c 50.
#  3. Accept rate: a new connection per request (wrk, Connection: close):
#     examples/serve_http.lua (LuaJIT) vs nginx; connections per CPU second.
#  4. Workers: coevent -w 2 vs -w 1 (reuseport), wrk -t2 -c100: requests/s.
#  5. Memory per idle accepted connection (its light thread parked in
#     receive), 10,000 Python clients; and what a parked light thread alone costs.
#
#   bash bench/servers.sh            writes bench/SERVERS.md (about 2 minutes)
# Needs: build/luajit/coevent.so (make module LUA=jit), target/release/coevent
# (make runner), wrk, redis-server, redis-benchmark, nginx, lua-luv,
# lua-cqueues (bash bench/deps.sh); OPENRESTY: the unpacked OpenResty tree
# (default bench/.deps/openresty).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OR=$(cd "${OPENRESTY:-bench/.deps/openresty}" && pwd)
SECS=${BENCH_SECONDS:-5}
OUT=${BENCH_OUT:-bench/SERVERS.md}
TMP=$(mktemp -d)
TICK=$(getconf CLK_TCK)
. bench/common.sh
stop_on_exit "$TMP"
ulimit -n 20000

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" || { echo "server $1 died" >&2; exit 1; }; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# Starts a server that prints "listening on HOST:PORT": sets PID and PORT.
start() {
  local f=$TMP/out.$RANDOM
  "$@" >"$f" 2>"$f.err" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 200); do grep -q '^listening on' "$f" && break; sleep 0.05; done
  PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$f")
  [ -n "$PORT" ] || { echo "did not start: $*" >&2; cat "$f.err" >&2; exit 1; }
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# An nginx with one worker process and no master: sets PID and PORT.
nginx_start() {
  local d=$TMP/nginx.$RANDOM body=$1
  mkdir -p "$d"
  PORT=$(free_port)
  cat >"$d/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $d/nginx.pid;
error_log $d/error.log warn;
worker_rlimit_nofile 20000;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module $OR/usr/lib/nginx/modules/ngx_http_lua_module.so;
events { worker_connections 10000; }
http {
  access_log off;
  lua_package_path "$OR/usr/share/lua/5.1/?.lua;;";
  client_body_temp_path $d/b; proxy_temp_path $d/p; fastcgi_temp_path $d/f; uwsgi_temp_path $d/u; scgi_temp_path $d/s;
  server { listen 127.0.0.1:$PORT backlog=4096; location = / { $body } }
}
CONF
  LD_LIBRARY_PATH=$OR/usr/lib/x86_64-linux-gnu nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.05; done
}

# wrk against PID's server: "requests requests/s cpu_us_per_request".
load() {
  local pid=$1 url=$2; shift 2
  local t0 out n
  t0=$(ticks "$pid")
  out=$(wrk "$@" -d"${SECS}s" "$url")
  n=$(echo "$out" | awk '/requests in/ { print $1 }')
  local rps; rps=$(echo "$out" | awk '/^Requests\/sec/ { printf "%d", $2 }')
  local errs; errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ { print }')
  [ -z "$errs" ] || echo "  wrk: $errs" >&2
  awk -v n="$n" -v r="$rps" -v t=$(( $(ticks "$pid") - t0 )) -v hz="$TICK" \
    'BEGIN { printf "%d %d %.2f\n", n, r, t / hz * 1e6 / n }'
}

LUAJIT_CE=(luajit -e "package.cpath='$ROOT/build/luajit/?.so;'..package.cpath")
{
echo "# Servers: one run, $(date -u +%Y-%m-%d), $(nproc) cores, 127.0.0.1"
echo
echo "Server CPU per request (user + system of the server process, /proc/PID/stat), and the"
echo "ratio to OpenResty's (1: the goal for coevent on LuaJIT). Load: wrk on the other core."
echo
echo "## HTTP keep-alive \"hello\", wrk -t1 -c100, ${SECS} s"
echo
echo "| server | requests/s | server CPU µs/request | vs OpenResty |"
echo "|---|---|---|---|"
} >"$OUT"

declare -A CPU RPS
http() {
  local name=$1 pid=$2 port=$3
  read -r n rps us < <(load "$pid" "http://127.0.0.1:$port/" -t1 -c100)
  CPU[$name]=$us
  RPS[$name]=$rps
  stop "$pid"
  echo "$name: $rps requests/s, $us µs/request" >&2
}
nginx_start 'default_type text/plain; content_by_lua_block { ngx.say("hello") }'; http openresty "$PID" "$PORT"
nginx_start 'default_type text/plain; return 200 "hello\n";'; http nginx "$PID" "$PORT"
start "${LUAJIT_CE[@]}" bench/servers/coevent_http.lua 0; http "coevent (LuaJIT)" "$PID" "$PORT"
start target/release/coevent bench/servers/coevent_http.lua 0; http "coevent (Lua 5.4, the runner)" "$PID" "$PORT"
start lua5.4 bench/servers/luv_http.lua 0; http "luv (Lua 5.4)" "$PID" "$PORT"
start lua5.4 bench/servers/cqueues_http.lua 0; http "cqueues (Lua 5.4)" "$PID" "$PORT"
for name in openresty nginx "coevent (LuaJIT)" "coevent (Lua 5.4, the runner)" "luv (Lua 5.4)" "cqueues (Lua 5.4)"; do
  awk -v n="$name" -v r="${RPS[$name]}" -v c="${CPU[$name]}" -v o="${CPU[openresty]}" \
    'BEGIN { printf "| %s | %d | %.2f | %.2f |\n", n, r, c, c / o }' >>"$OUT"
done

# 2. RESP PING against redis-server.
resp() {
  local pid=$1 port=$2 t0 n=200000
  t0=$(ticks "$pid")
  redis-benchmark -p "$port" -t ping_inline -P 1 -c 50 -n $n -q >/dev/null
  awk -v t=$(( $(ticks "$pid") - t0 )) -v hz="$TICK" -v n=$n 'BEGIN { printf "%.2f", t / hz * 1e6 / n }'
  stop "$pid"
}
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
RPID=$!
PIDS+=("$RPID")
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
R_REDIS=$(resp "$RPID" "$REDIS_PORT")
start "${LUAJIT_CE[@]}" examples/serve_resp.lua 0
R_CE=$(resp "$PID" "$PORT")
{
echo
echo "## RESP PING, redis-benchmark -t ping_inline -P 1 -c 50 -n 200000"
echo
echo "| server | server CPU µs/request | vs redis-server |"
echo "|---|---|---|"
awk -v a="$R_REDIS" 'BEGIN { printf "| redis-server | %.2f | 1 |\n", a }'
awk -v a="$R_REDIS" -v b="$R_CE" 'BEGIN { printf "| coevent examples/serve_resp.lua (LuaJIT) | %.2f | %.2f |\n", b, b / a }'
} >>"$OUT"

# 3. Accept rate: a connection per request.
accept_rate() {
  read -r n rps us < <(load "$1" "http://127.0.0.1:$2/" -t1 -c50 -H 'Connection: close')
  stop "$1"
  awk -v u="$us" -v r="$rps" 'BEGIN { printf "%d %.0f\n", r, 1e6 / u }'
}
nginx_start 'default_type text/plain; return 200 "hello\n";'
read -r A_NGX_RPS A_NGX < <(accept_rate "$PID" "$PORT")
start "${LUAJIT_CE[@]}" examples/serve_http.lua 0
read -r A_CE_RPS A_CE < <(accept_rate "$PID" "$PORT")
{
echo
echo "## Accept rate: a new connection per request (wrk -t1 -c50, Connection: close)"
echo
echo "| server | connections/s | connections per server CPU second | vs nginx |"
echo "|---|---|---|---|"
echo "| nginx (return 200) | $A_NGX_RPS | $A_NGX | 1 |"
awk -v a="$A_NGX" -v b="$A_CE" -v r="$A_CE_RPS" 'BEGIN { printf "| coevent examples/serve_http.lua (LuaJIT) | %d | %d | %.2f |\n", r, b, b / a }'
} >>"$OUT"

# 4. Workers with reuseport.
workers() {
  local port; port=$(free_port)
  target/release/coevent -w "$1" bench/servers/coevent_http.lua "$port" >/dev/null &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
  wrk -t2 -c100 -d"${SECS}s" "http://127.0.0.1:$port/" | awk '/^Requests\/sec/ { printf "%d", $2 }'
  stop "$pid"
}
W1=$(workers 1)
W2=$(workers 2)
{
echo
echo "## Workers: coevent -w N (Lua 5.4 runner), reuseport, wrk -t2 -c100"
echo
echo "| workers | requests/s | vs one |"
echo "|---|---|---|"
echo "| 1 | $W1 | 1 |"
awk -v a="$W1" -v b="$W2" 'BEGIN { printf "| 2 | %d | %.2f |\n", b, b / a }'
echo
echo "wrk shares the machine's $(nproc) cores with the workers."
} >>"$OUT"

# 5. Memory per idle accepted connection.
N=10000
start target/release/coevent bench/servers/coevent_http.lua 0
before=$(rss_kb "$PID")
mkfifo "$TMP/hold"
python3 bench/servers/idle_clients.py "$PORT" $N <"$TMP/hold" >"$TMP/idle" &
CPID=$!
exec 9>"$TMP/hold"
for _ in $(seq 600); do grep -q '^open' "$TMP/idle" 2>/dev/null && break; sleep 0.05; done
# Every connection accepted and parked in receive: the server's fds say so.
for _ in $(seq 600); do [ "$(ls /proc/$PID/fd | wc -l)" -gt $N ] && break; sleep 0.05; done
sleep 0.5
after=$(rss_kb "$PID")
exec 9>&-
wait "$CPID" || true
stop "$PID"
THREAD=$(target/release/coevent -e "
local L = require('coevent')
local function rss() for l in io.lines('/proc/self/status') do local v = l:match('^VmRSS:%s+(%d+)') if v then return tonumber(v) end end end
collectgarbage() local before = rss()
L(function()
  for i = 1, $N do L.spawn(L.sleep, 0.3) end
  collectgarbage() print(string.format('%.0f', (rss() - before) * 1024 / $N))
end)")
{
echo
echo "## Memory per idle accepted connection ($N clients, Lua 5.4 runner)"
echo
awk -v a="$after" -v b="$before" -v n=$N -v t="$THREAD" 'BEGIN {
  per = (a - b) * 1024 / n
  printf "| per connection (server RSS) | of which a light thread parked in a sleep | the rest: socket, buffers, objects |\n|---|---|---|\n"
  printf "| %d bytes | %d bytes | %d bytes |\n", per, t, per - t }'
} >>"$OUT"
cat "$OUT"
