#!/usr/bin/env bash
# TLS benchmark: coevent (LuaJIT, Lua 5.4) beside OpenResty's cosocket, the
# same servers, one run, 127.0.0.1 only. Client CPU (user + system) per unit:
#   full     full handshakes (TLS 1.3, ECDSA P-256, verified), 10 threads
#   resumed  resumed handshakes (TLS 1.2 session tickets), 10 threads
#   get      1 MiB bodies over TLS (HTTP/1.1 keepalive, nginx), per MiB
#   plain    the same over plain TCP: what TLS adds
#   ping     PING round trips over TLS against redis-server's TLS port, 100 threads
# Each case runs BENCH_REPS times (default 3, clients interleaved); the median
# by CPU is kept. Writes bench/TLS.md (BENCH_OUT).
#
#   bash bench/tls.sh        needs build/luajit/coevent.so and build/lua5.4/coevent.so
#                            (make modules), the peers (bash bench/deps.sh, as root)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
HOST=127.0.0.1
REPS=${BENCH_REPS:-3}
OUTMD=${BENCH_OUT:-bench/TLS.md}
CLIENTS=${BENCH_CLIENTS:-"coevent-luajit coevent-lua5.4 openresty"}
CASES=${BENCH_TLS_CASES:-"full:10:200 resumed:10:400 get:4:25 plain:4:25 ping:100:200"}

for so in build/luajit/coevent.so build/lua5.4/coevent.so; do
  [ -f "$so" ] || { echo "bench: $so missing: run 'make modules' first" >&2; exit 1; }
done
. bench/common.sh
bench_tools redis-server nginx curl luajit lua5.4 openssl
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)

W=$ROOT/bench/out/tls
rm -rf "$W"
mkdir -p "$W/mods/luajit" "$W/mods/lua5.4" "$W/www" "$W/srv" "$W/cli"
cp build/luajit/coevent.so "$W/mods/luajit/coevent.so"
cp build/lua5.4/coevent.so "$W/mods/lua5.4/coevent.so"
head -c 1048576 /dev/urandom >"$W/www/1m"

# A CA and a server certificate for localhost (ECDSA P-256).
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$W/ca.key" -out "$W/ca.pem" -days 2 -subj /CN=bench-ca 2>/dev/null
openssl req "${ec[@]}" -keyout "$W/srv.key" -out "$W/srv.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' >"$W/ext"
openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
  -extfile "$W/ext" -out "$W/srv.pem" 2>/dev/null

stop_on_exit

# The servers: nginx (TLS 1.2 and 1.3; TLS 1.2 alone, for resumption; plain), redis over TLS.
P13=$($BT freeport) P12=$($BT freeport) PPLAIN=$($BT freeport) PREDIS=$($BT freeport)
cat >"$W/srv/nginx.conf" <<CONF
daemon off;
master_process off;
pid $W/srv/nginx.pid;
error_log $W/srv/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/srv/tmp_body;
  proxy_temp_path $W/srv/tmp_proxy;
  fastcgi_temp_path $W/srv/tmp_fastcgi;
  uwsgi_temp_path $W/srv/tmp_uwsgi;
  scgi_temp_path $W/srv/tmp_scgi;
  keepalive_requests 1000000;
  ssl_certificate $W/srv.pem;
  ssl_certificate_key $W/srv.key;
  server { listen $HOST:$P13 ssl; root $W/www; }
  server { listen $HOST:$P12 ssl; ssl_protocols TLSv1.2; root $W/www; }
  server { listen $HOST:$PPLAIN; root $W/www; }
}
CONF
nginx -p "$W/srv" -c "$W/srv/nginx.conf" -e "$W/srv/error.log" &
PIDS+=($!)
redis-server --port 0 --tls-port "$PREDIS" --bind $HOST --tls-cert-file "$W/srv.pem" \
  --tls-key-file "$W/srv.key" --tls-ca-cert-file "$W/ca.pem" --tls-auth-clients no \
  --save '' --appendonly no --dir "$W" --logfile "$W/redis.log" &
PIDS+=($!)
for p in $P13 $P12 $PPLAIN $PREDIS; do wait_port "$p"; done

# OpenResty's client: nginx with the lua module, one process, started once.
PCLI=$($BT freeport)
cat >"$W/cli/nginx.conf" <<CONF
daemon off;
master_process off;
pid $W/cli/nginx.pid;
error_log $W/cli/error.log warn;
worker_rlimit_nofile $NOFILE;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module $OR/usr/lib/nginx/modules/ngx_http_lua_module.so;
events { worker_connections 4096; }
http {
  access_log off;
  lua_package_path "$OR/usr/share/lua/5.1/?.lua;;";
  lua_socket_log_errors off;
  lua_ssl_trusted_certificate $W/ca.pem;
  lua_ssl_verify_depth 2;
  lua_ssl_protocols TLSv1.2 TLSv1.3;
  client_body_temp_path $W/cli/tmp_body;
  proxy_temp_path $W/cli/tmp_proxy;
  fastcgi_temp_path $W/cli/tmp_fastcgi;
  uwsgi_temp_path $W/cli/tmp_uwsgi;
  scgi_temp_path $W/cli/tmp_scgi;
  server {
    listen $HOST:$PCLI;
    location = /bench { set \$bench_dir $ROOT/bench/clients; content_by_lua_file $ROOT/bench/clients/tls_openresty.lua; }
  }
}
CONF
LD_LIBRARY_PATH=$OR/usr/lib/x86_64-linux-gnu nginx -p "$W/cli" -c "$W/cli/nginx.conf" -e "$W/cli/error.log" &
CLI_PID=$!
PIDS+=("$CLI_PID")
wait_port "$PCLI"

# CPU seconds (user + system, exact run time) of a process so far.
proc_cpu() { awk '{printf "%.6f\n", $1 / 1e9}' "/proc/$1/schedstat"; }

RES=$W/results.tsv
: >"$RES"
port_of() {
  case $1 in full | get) echo "$P13" ;; resumed) echo "$P12" ;; plain) echo "$PPLAIN" ;; ping) echo "$PREDIS" ;; esac
}

# run_one CLIENT MODE X Y -> appends: client mode x y wall ok bytes cpu
run_one() {
  local c=$1 mode=$2 x=$3 y=$4 port out cpu a b ut st
  port=$(port_of "$mode")
  out=$W/$c.$mode.out
  if [ "$c" = openresty ]; then
    a=$(proc_cpu "$CLI_PID")
    curl -sS --max-time 600 "http://$HOST:$PCLI/bench?mode=$mode&host=$HOST&port=$port&x=$x&y=$y" >"$out"
    b=$(proc_cpu "$CLI_PID")
    cpu=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.6f", b - a }')
    if grep '^ERROR' "$out" >&2; then return 1; fi
  else
    local interp=${c#coevent-}
    "$BT" rusage "$W/$c.ru" "$interp" bench/clients/tls_coevent.lua "$W/mods/$interp" "$W/ca.pem" \
      "$mode" $HOST "$port" "$x" "$y" >"$out"
    read -r _ ut st _ _ <"$W/$c.ru"
    cpu=$(awk -v u="$ut" -v s="$st" 'BEGIN { printf "%.6f", u + s }')
  fi
  local r
  r=$(grep '^RESULT' "$out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$mode" "$x" "$y" \
    "$(sed -n 's/.*wall=\([0-9.]*\).*/\1/p' <<<"$r")" "$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$r")" \
    "$(sed -n 's/.* bytes=\([0-9]*\).*/\1/p' <<<"$r")" "$cpu" >>"$RES"
  printf '  %-15s %-8s %4s x %-4s cpu %9ss  %s\n' "$c" "$mode" "$x" "$y" "$cpu" "$r"
}

# The start-up cost of a coevent client (interpreter, module, context): subtracted.
for c in $CLIENTS; do
  [ "$c" = openresty ] && continue
  for _ in 1 2 3; do run_one "$c" full 1 0; done
done
for case in $CASES; do
  IFS=: read -r mode x y <<<"$case"
  for rep in $(seq "$REPS"); do
    echo "== $mode: $x x $y (run $rep of $REPS)"
    for c in $CLIENTS; do run_one "$c" "$mode" "$x" "$y"; done
  done
done

{
  echo "# TLS: coevent beside OpenResty"
  echo
  echo "Written by \`bench/tls.sh\`: client CPU (user + system) per unit, the median of $REPS runs,"
  echo "against one nginx (1 MiB file; TLS 1.3 and 1.2) and one redis-server TLS port on 127.0.0.1,"
  echo "ECDSA P-256 certificates, verified. OpenResty's figure is its nginx worker's run time"
  echo "for the request; coevent's is its process's, less its start-up (the mean of three"
  echo "runs doing nothing). Ratios compare clients of the same run."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); coevent: git $(git rev-parse --short HEAD)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- OpenSSL $(openssl version | cut -d' ' -f2), nginx $(nginx -v 2>&1 | sed 's/.*\///'), redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
  echo
  luajit - "$RES" <<'LUA'
local rows, base = {}, {}
for line in io.lines(arg[1]) do
  local c, mode, x, y, wall, ok, bytes, cpu = line:match('^(%S+)\t(%S+)\t(%S+)\t(%S+)\t(%S*)\t(%S*)\t(%S*)\t(%S+)$')
  if tonumber(y) == 0 then
    base[c] = base[c] or {}
    table.insert(base[c], tonumber(cpu))
  else
    local k = mode .. ' ' .. c
    rows[k] = rows[k] or { c = c, mode = mode, x = x, y = y, runs = {} }
    table.insert(rows[k].runs, { cpu = tonumber(cpu), ok = tonumber(ok), bytes = tonumber(bytes) })
  end
end
local function mean(t) local s = 0 for _, v in ipairs(t) do s = s + v end return #t > 0 and s / #t or 0 end
local units = { full = 'handshake', resumed = 'handshake', get = 'MiB', plain = 'MiB', ping = 'round trip' }
local what = {
  full = 'full handshakes (TLS 1.3)', resumed = 'resumed handshakes (TLS 1.2 tickets)',
  get = '1 MiB bodies over TLS', plain = '1 MiB bodies over plain TCP', ping = 'PING round trips over TLS',
}
print('| workload | client | CPU µs per unit | units per CPU second | ÷ OpenResty | runs (CPU s) |')
print('|---|---|---:|---:|---:|---|')
for _, mode in ipairs({ 'full', 'resumed', 'get', 'plain', 'ping' }) do
  local per = {}
  for _, c in ipairs({ 'coevent-luajit', 'coevent-lua5.4', 'openresty' }) do
    local r = rows[mode .. ' ' .. c]
    if r then
      local b = mean(base[c] or {})
      local cpus = {}
      for _, run in ipairs(r.runs) do cpus[#cpus + 1] = run.cpu - b end
      table.sort(cpus)
      local med = cpus[math.floor((#cpus + 1) / 2)]
      local n = r.runs[1].ok
      if units[mode] == 'MiB' then n = r.runs[1].bytes / 1048576 end
      per[c] = med / n * 1e6
      local list = {}
      for _, run in ipairs(r.runs) do list[#list + 1] = ('%.3f'):format(run.cpu) end
      r.line = { what[mode], c, per[c], n / med, table.concat(list, ' ') }
    end
  end
  for _, c in ipairs({ 'coevent-luajit', 'coevent-lua5.4', 'openresty' }) do
    local r = rows[mode .. ' ' .. c]
    if r then
      local l = r.line
      local ratio = per.openresty and ('%.2f'):format(per[c] / per.openresty) or '-'
      print(('| %s | %s | %.1f | %.0f | %s | %s |'):format(l[1], l[2], l[3], l[4], ratio, l[5]))
    end
  end
end
LUA
} >"$OUTMD"
echo "wrote $OUTMD"
cat "$OUTMD"
