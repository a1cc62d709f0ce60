#!/usr/bin/env bash
# Keepalive pools: N threads x M requests to redis-server, each request taking
# a connection from the pool (connect), doing one PING round trip and giving it
# back (setkeepalive); the same N x M over persistent connections (PING) for
# reference. coevent (LuaJIT, Lua 5.4) against OpenResty in one run, clients
# interleaved, REPS runs each (the median by CPU per request is kept).
#
#   bash bench/pool.sh        writes bench/POOL.md (about 2 minutes)
#
# Environment: BENCH_POOL ("N:M", default 100:1000), BENCH_REPS (3).
# Needs what bench/run.sh needs (`make modules`, `bash bench/deps.sh`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NM=${BENCH_POOL:-100:1000}
REPS=${BENCH_REPS:-3}
N=${NM%%:*}
M=${NM##*:}
TMO=300
HOST=127.0.0.1
W=$ROOT/bench/out/pool
CLIENTS="coevent-luajit coevent-lua5.4 openresty"

. bench/lib.sh

for rep in $(seq "$REPS"); do
  for mode in pool ping; do
    echo "== $mode: N=$N x M=$M (run $rep of $REPS)"
    for c in $CLIENTS; do run_one "$c" "$mode" "$RPORT" "$N" "$M"; done
  done
done

# results.tsv: client mode x y wall ok bytes utime stime maxrss_kb status note
lua5.4 - "$RES" "$N" "$M" "$(git rev-parse --short HEAD)" >bench/POOL.md <<'LUA'
local res, n, m, rev = ...
local runs = {}
for line in io.lines(res) do
  local f = {}
  for v in (line .. '\t'):gmatch('([^\t]*)\t') do f[#f + 1] = v end
  local key = f[1] .. ' ' .. f[2]
  runs[key] = runs[key] or {}
  local ok = tonumber(f[6])
  local cpu = (f[11] == '0' and ok > 0) and (tonumber(f[8]) + tonumber(f[9])) / ok * 1e6 or math.huge
  table.insert(runs[key], cpu)
end
local function median(key)
  local t = runs[key]
  table.sort(t)
  return t[(#t + 1) // 2]
end
local out = {}
local function p(...) out[#out + 1] = table.concat({ ... }) end
p('# Keepalive pools: client CPU per request')
p('')
p(('%s threads x %s requests to redis-server on 127.0.0.1; each request: `connect` (from the pool), '
  .. '`send` PING, `receive` +PONG, `setkeepalive`. "persistent" is the same round trip on connections '
  .. 'kept open. CPU is user + system of the client (OpenResty: its nginx worker), median of the runs; '
  .. 'git %s, %s, written by `bash bench/pool.sh`.'):format(n, m, rev, os.date('!%Y-%m-%d')))
p('')
p('| client | pooled µs/request | persistent µs/round trip | pooled / OpenResty pooled |')
p('|---|---|---|---|')
local base = median('openresty pool')
for _, c in ipairs({ 'coevent-luajit', 'coevent-lua5.4', 'openresty' }) do
  local pool, ping = median(c .. ' pool'), median(c .. ' ping')
  p(('| %s | %.2f | %.2f | %.2f |'):format(c, pool, ping, pool / base))
end
print(table.concat(out, '\n'))
LUA
cat bench/POOL.md
