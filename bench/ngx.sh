#!/usr/bin/env bash
# Debian's lua-nginx-redis through coevent.ngx (LuaJIT and Lua 5.4 modules)
# against the same library in OpenResty: N light threads x M (SET + GET) to
# redis-server, client CPU (user + system) per request, REPS runs interleaved,
# the median kept (and the median of each run's ratio to OpenResty's in the
# same round, which the machine's drift from run to run moves less); then
# instructions per request. Writes bench/NGX.md.
#
#   bash bench/ngx.sh          needs `make modules`, `bash bench/deps.sh openresty`, tests/ngxdeps.sh
#
# Environment: BENCH_NGX ("N:M", default 100:1000), BENCH_REPS (9),
# BENCH_NGX_CALLGRIND (1: also count instructions per request, with valgrind).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NM=${BENCH_NGX:-100:1000}
REPS=${BENCH_REPS:-9}
N=${NM%%:*}
M=${NM##*:}
HOST=127.0.0.1
LIBS=$ROOT/bench/.deps/ngx/usr/share/lua/5.1
W=$ROOT/bench/out/ngx
for f in build/luajit/coevent.so build/lua5.4/coevent.so "$LIBS/nginx/redis.lua"; do
  [ -f "$f" ] || { echo "bench/ngx.sh: $f missing (make modules; tests/ngxdeps.sh)" >&2; exit 1; }
done
. bench/common.sh
bench_tools redis-server nginx curl luajit lua5.4 bc
rm -rf "$W"
mkdir -p "$W/nginx"
stop_on_exit
RPORT=$($BT freeport)
redis-server --bind $HOST --port "$RPORT" --save '' --appendonly no --logfile "$W/redis.log" &
PIDS+=($!)
wait_port "$RPORT"

NPORT=$($BT freeport)
cat >"$W/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module $OR/usr/lib/nginx/modules/ngx_http_lua_module.so;
events { worker_connections 1024; }
http {
  access_log off;
  lua_package_path "$OR/usr/share/lua/5.1/?.lua;$LIBS/?.lua;;";
  client_body_temp_path $W/nginx/tmp_body;
  proxy_temp_path $W/nginx/tmp_proxy;
  fastcgi_temp_path $W/nginx/tmp_fastcgi;
  uwsgi_temp_path $W/nginx/tmp_uwsgi;
  scgi_temp_path $W/nginx/tmp_scgi;
  server {
    listen $HOST:$NPORT;
    location = /bench { content_by_lua_file $ROOT/bench/clients/ngx_redis.lua; }
  }
}
CONF
LD_LIBRARY_PATH=$OR/usr/lib/x86_64-linux-gnu nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" &
NGX_PID=$!
PIDS+=($NGX_PID)
wait_port "$NPORT"
WORKER=$(awk '{print $1}' "/proc/$NGX_PID/task/$NGX_PID/children")
TCK=$(getconf CLK_TCK)
# A process's user and system CPU seconds.
cpu_of() { sed 's/.*) //' "/proc/$1/stat" | awk -v t="$TCK" '{printf "%.3f %.3f\n", $12 / t, $13 / t}'; }

: >"$W/results.tsv"
for rep in $(seq "$REPS"); do
  for c in openresty coevent-luajit coevent-lua5.4; do
    if [ $c = openresty ]; then
      read -r u0 s0 < <(cpu_of "$WORKER")
      out=$(curl -sS "http://$HOST:$NPORT/bench?port=$RPORT&n=$N&m=$M")
      read -r u1 s1 < <(cpu_of "$WORKER")
      u=$(echo "$u1 - $u0" | bc); s=$(echo "$s1 - $s0" | bc)
    else
      interp=${c#coevent-}
      out=$( { TIMEFORMAT='%U %S'; time "$interp" bench/clients/ngx_redis.lua "build/$interp" "$LIBS" "$RPORT" "$N" "$M" >"$W/out" 2>&1; } 2>"$W/time"; cat "$W/out")
      read -r u s <"$W/time"
    fi
    okn=$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' <<<"$out")
    grep -q ERROR <<<"$out" && { echo "bench/ngx.sh: $c: $out" >&2; exit 1; }
    printf '%s\t%s\t%s\t%s\n' "$c" "$okn" "$u" "$s" >>"$W/results.tsv"
    printf '  %-15s %s  user %ss sys %ss\n' "$c" "$out" "$u" "$s"
  done
done

# User-space instructions per request (callgrind, when valgrind is there):
# 100 threads x 100 and x 200 (SET + GET), the difference over the 20,000
# requests between them, so start-up cancels out (for OpenResty, whose nginx
# runs as one process under valgrind, so does its HTTP request). Exact where
# the CPU times above move by 10% from run to run; but not time: the
# kernel's share is not in them.
: >"$W/instructions.tsv"
if command -v valgrind >/dev/null && [ "${BENCH_NGX_CALLGRIND:-1}" = 1 ]; then
  collected() { sed -n 's/.*Collected : //p' "$1" | tail -1; }
  for c in coevent-luajit coevent-lua5.4 openresty; do
    counts=()
    for m in 100 200; do
      if [ $c = openresty ]; then
        port=$($BT freeport)
        # The worker alone, on its own port and pid file.
        sed -e 's/^daemon off;/daemon off;\nmaster_process off;/' -e "s/listen $HOST:$NPORT;/listen $HOST:$port;/" \
          -e 's/nginx\.pid;/single.pid;/' "$W/nginx/nginx.conf" >"$W/nginx/single.conf"
        LD_LIBRARY_PATH=$OR/usr/lib/x86_64-linux-gnu valgrind --tool=callgrind --callgrind-out-file=/dev/null \
          nginx -p "$W/nginx" -c "$W/nginx/single.conf" -e "$W/nginx/error.log" 2>"$W/cg.$c.$m" &
        pid=$!
        PIDS+=($pid)
        wait_port "$port" 60
        curl -sS "http://$HOST:$port/bench?port=$RPORT&n=100&m=$m" >"$W/cg.out"
        kill -QUIT $pid
        wait $pid || true
      else
        interp=${c#coevent-}
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$interp" bench/clients/ngx_redis.lua \
          "build/$interp" "$LIBS" "$RPORT" 100 "$m" >"$W/cg.out" 2>"$W/cg.$c.$m"
      fi
      grep -q "RESULT ok=$((200 * m))" "$W/cg.out" || { echo "bench/ngx.sh: $c under valgrind: $(cat "$W/cg.out")" >&2; exit 1; }
      counts+=("$(collected "$W/cg.$c.$m")")
    done
    per=$(((counts[1] - counts[0]) / 20000))
    printf '%s\t%s\n' "$c" "$per" >>"$W/instructions.tsv"
    printf '  %-15s %s instructions/request\n' "$c" "$per"
  done
fi

lua5.4 - "$W/results.tsv" "$N" "$M" "$(git rev-parse --short HEAD)" "$W/instructions.tsv" >bench/NGX.md <<'LUA'
local res, n, m, rev, ins = ...
local runs = {}
for line in io.lines(res) do
  local c, ok, u, s = line:match('^(%S+)\t(%d+)\t(%S+)\t(%S+)$')
  runs[c] = runs[c] or {}
  table.insert(runs[c], { total = (u + s) / ok * 1e6, user = u / ok * 1e6, sys = s / ok * 1e6 })
end
-- Each run's ratio to OpenResty's in the same round of runs, before sorting.
local paired = {}
for c, t in pairs(runs) do
  paired[c] = {}
  for i, r in ipairs(t) do paired[c][i] = r.total / runs.openresty[i].total end
  table.sort(paired[c])
end
local function median(c)
  local t = runs[c]
  table.sort(t, function(a, b) return a.total < b.total end)
  return t[(#t + 1) // 2]
end
print('# lua-nginx-redis through coevent.ngx and in OpenResty: client CPU per request')
print('')
print(('%s light threads x %s (SET + GET) with Debian\'s lua-nginx-redis 0.27, unmodified, to redis-server on '
  .. '127.0.0.1; one connection per thread. CPU is user + system of the client process (OpenResty: its one '
  .. 'nginx worker), per request, median of the runs; git %s, %s, written by `bash bench/ngx.sh`.'):format(n, m, rev, os.date('!%Y-%m-%d')))
print('')
print('| client | user µs/request | system µs/request | total µs/request | total / OpenResty | each run\'s ratio, median |')
print('|---|---|---|---|---|---|')
local base = median('openresty').total
for _, c in ipairs({ 'coevent-luajit', 'coevent-lua5.4', 'openresty' }) do
  local r, p = median(c), paired[c]
  print(('| %s | %.2f | %.2f | %.2f | %.2f | %.2f |'):format(c, r.user, r.sys, r.total, r.total / base, p[(#p + 1) // 2]))
end
local count = {}
for line in io.lines(ins) do
  local c, k = line:match('^(%S+)\t(%d+)$')
  count[c] = tonumber(k)
end
if count.openresty then
  print('')
  print('User-space instructions per request (callgrind; 100 threads x 200 requests minus 100 x 100, over the '
    .. '20,000 between them): exact, but not time (the kernel\'s share is not in them).')
  print('')
  print('| client | instructions/request | / OpenResty |')
  print('|---|---|---|')
  for _, c in ipairs({ 'coevent-luajit', 'coevent-lua5.4', 'openresty' }) do
    print(('| %s | %d | %.2f |'):format(c, count[c], count[c] / count.openresty))
  end
end
LUA
cat bench/NGX.md
