# Sourced by bench/run.sh and bench/pool.sh (which set ROOT, HOST, TMO and,
# for another directory than bench/out/raw, W): checks the prerequisites,
# copies the modules, starts redis-server (RPORT; every server started goes in
# PIDS and is stopped by pid on exit), and defines the client runners:
#   run_one CLIENT MODE PORT X Y     one client run, a line appended to $RES
#   strace_one CLIENT N M            strace -c of a PING run, in $W/strace.CLIENT.M
#   nginx_start / nginx_stop         OpenResty, one worker (NGX_PORT, NGX_WORKER)

# ---- prerequisites -------------------------------------------------------------
for so in build/luajit/coevent.so build/lua5.4/coevent.so; do
  [ -f "$so" ] || { echo "bench: $so missing: run 'make modules' first" >&2; exit 1; }
done
. bench/common.sh
bench_tools redis-server strace curl nginx luajit lua5.4 lua5.1

# Enough fds for N=10000 connections here and in redis (as many as the hard limit allows).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)

W=${W:-$ROOT/bench/out/raw}
rm -rf "$W"
mkdir -p "$W/mods/luajit" "$W/mods/lua5.4"
cp build/luajit/coevent.so "$W/mods/luajit/coevent.so"
cp build/lua5.4/coevent.so "$W/mods/lua5.4/coevent.so"
RES=$W/results.tsv
: >"$RES"

# ---- servers, stopped by pid on exit ----------------------------------------------
stop_on_exit

RPORT=$($BT freeport)
redis-server --bind $HOST --port "$RPORT" --save '' --appendonly no --daemonize no \
  --maxclients 20000 --tcp-backlog 4096 --dir "$W" --logfile "$W/redis.log" &
RPID=$!
PIDS+=("$RPID")
wait_port "$RPORT"


# nginx with the lua module, one worker, started per measurement (so the worker's
# peak RSS belongs to that measurement) and stopped by the master's pid.
NGX_PID=""
NGX_WORKER=""
NGX_PORT=""
nginx_start() {
  local d=$W/nginx
  NGX_PORT=$($BT freeport)
  nginx_conf "$d" "$NGX_PORT" on
  LD_LIBRARY_PATH=$OR/usr/lib/x86_64-linux-gnu nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" &
  NGX_PID=$!
  PIDS+=("$NGX_PID")
  wait_port "$NGX_PORT"
  NGX_WORKER=""
  for _ in $(seq 50); do
    NGX_WORKER=$(cat "/proc/$NGX_PID/task/$NGX_PID/children" 2>/dev/null | awk '{print $1}')
    [ -n "$NGX_WORKER" ] && break
    sleep 0.1
  done
  [ -n "$NGX_WORKER" ] || { echo "bench: no nginx worker" >&2; return 1; }
}
nginx_stop() {
  kill "$NGX_PID" 2>/dev/null || true
  wait "$NGX_PID" 2>/dev/null || true
  NGX_PID=""
}
# utime stime (ticks) and run time (ns) of a process
proc_cpu() {
  local st sched
  st=$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12, $13}')
  sched=$(awk '{print $1}' "/proc/$1/schedstat")
  echo "$st $sched"
}

# ---- clients ----------------------------------------------------------------------
set_cmd() { # CLIENT MODE PORT X Y -> CMD array (not for openresty)
  local c=$1
  shift
  case $c in
    floor) CMD=("$FLOOR" "$1" $HOST "${@:2}") ;;
    coevent-luajit) CMD=(luajit bench/clients/coevent.lua "$W/mods/luajit" "$1" $HOST "${@:2}") ;;
    coevent-lua5.4) CMD=(lua5.4 bench/clients/coevent.lua "$W/mods/lua5.4" "$1" $HOST "${@:2}") ;;
    cqueues) CMD=(lua5.4 bench/clients/cqueues.lua "$1" $HOST "${@:2}") ;;
    luv) CMD=(lua5.4 bench/clients/luv.lua "$1" $HOST "${@:2}") ;;
    copas) CMD=(lua5.1 bench/clients/copas.lua "$1" $HOST "${@:2}") ;;
    *) echo "bench: unknown client $c" >&2; return 1 ;;
  esac
}

# run_one CLIENT MODE PORT X Y -> appends one line to $RES:
# client mode x y wall ok bytes utime stime maxrss_kb status note
run_one() {
  local c=$1 mode=$2 port=$3 x=$4 y=$5
  local tag=$c.$mode.$x.$y out err ru status note result wall ok bytes ut st rss
  out=$W/$tag.out
  err=$W/$tag.err
  if [ "$c" = openresty ]; then
    nginx_start
    local a b
    a=($(proc_cpu "$NGX_WORKER"))
    status=0
    timeout "$TMO" curl -sS --max-time "$TMO" \
      "http://$HOST:$NGX_PORT/bench?mode=$mode&host=$HOST&port=$port&x=$x&y=$y" >"$out" 2>"$err" || status=$?
    b=($(proc_cpu "$NGX_WORKER"))
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$NGX_WORKER/status")
    nginx_stop
    grep -q '^ERROR' "$out" && status=1 && grep '^ERROR' "$out" >>"$err"
    # run time is exact; split it as the tick counts split
    read -r ut st < <(awk -v u=$((b[0] - a[0])) -v s=$((b[1] - a[1])) -v ns=$((b[2] - a[2])) \
      'BEGIN { t = ns / 1e9; if (u + s > 0) printf "%.6f %.6f\n", t * u / (u + s), t * s / (u + s); else printf "%.6f 0\n", t }')
  else
    set_cmd "$c" "$mode" "$port" "$x" "$y"
    status=0
    timeout "$TMO" "$BT" rusage "$W/$tag.ru" "${CMD[@]}" >"$out" 2>"$err" || status=$?
    if [ -s "$W/$tag.ru" ]; then
      read -r _ ut st rss _ <"$W/$tag.ru"
    else
      ut=0 st=0 rss=0
    fi
  fi
  result=$(grep '^RESULT' "$out" || true)
  wall=$(sed -n 's/.*wall=\([0-9.]*\).*/\1/p' <<<"$result")
  ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$result")
  bytes=$(sed -n 's/.* bytes=\([0-9]*\).*/\1/p' <<<"$result")
  note=""
  if [ "$status" != 0 ]; then
    [ "$status" = 124 ] && note="timeout after ${TMO}s; "
    note="$note$(grep -v '^\s*$' "$err" | grep -v 'stack traceback' | head -1 | tr '\t' ' ' | cut -c1-160)"
    [ -n "$note" ] || note="exit $status"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$mode" "$x" "$y" \
    "${wall:-0}" "${ok:-0}" "${bytes:-0}" "${ut:-0}" "${st:-0}" "${rss:-0}" "$status" "$note" >>"$RES"
  printf '  %-15s %-5s %8s x %-6s wall %8ss  user %8ss  sys %8ss  rss %7s kB  %s\n' \
    "$c" "$mode" "$x" "$y" "${wall:--}" "$ut" "$st" "$rss" "${note:-ok}"
}

# strace_one CLIENT N M -> $W/strace.CLIENT.M (strace -c summary of the whole client)
strace_one() {
  local c=$1 n=$2 m=$3 f=$W/strace.$1.$3 status=0
  if [ "$c" = openresty ]; then
    nginx_start
    strace -c -f -o "$f" -p "$NGX_WORKER" 2>"$f.err" &
    local sp=$!
    for _ in $(seq 100); do
      grep -q "^TracerPid:[[:space:]]*$sp\$" "/proc/$NGX_WORKER/status" && break
      sleep 0.05
    done
    timeout "$TMO" curl -sS --max-time "$TMO" \
      "http://$HOST:$NGX_PORT/bench?mode=ping&host=$HOST&port=$RPORT&x=$n&y=$m" >"$f.out" 2>&1 || status=$?
    grep -q '^ERROR' "$f.out" && status=1
    kill -INT "$sp" 2>/dev/null || true
    wait "$sp" 2>/dev/null || true
    nginx_stop
  else
    set_cmd "$c" ping "$RPORT" "$n" "$m"
    timeout "$TMO" strace -c -f -o "$f" "${CMD[@]}" >"$f.out" 2>"$f.err" || status=$?
  fi
  STRACE_STATUS=$status
}

