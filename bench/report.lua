-- Renders bench/run.sh's raw data as Markdown on stdout.
-- usage: lua5.4 bench/report.lua RAWDIR CASES STRACE_N STRACE_M
local dir, cases, strace_n, strace_m = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])

local NAMES = {
  floor = 'floor (Rust, raw epoll, no Lua)',
  ['coevent-luajit'] = 'coevent (LuaJIT)',
  ['coevent-lua5.4'] = 'coevent (Lua 5.4)',
  openresty = 'OpenResty cosocket (nginx, LuaJIT2)',
  cqueues = 'cqueues (Lua 5.4)',
  luv = 'luv, callbacks (Lua 5.4)',
  copas = 'copas + LuaSocket (Lua 5.1)',
}
local function name(c) return NAMES[c] or c end

local function lines(path)
  local f = io.open(path)
  if not f then return function() return nil end end
  return f:lines()
end

local function split(s, sep)
  local t = {}
  for field in (s .. sep):gmatch('(.-)' .. sep) do t[#t + 1] = field end
  return t
end

local rows = {}
for l in lines(dir .. '/results.tsv') do
  local f = split(l, '\t')
  rows[#rows + 1] = {
    client = f[1], mode = f[2], x = tonumber(f[3]), y = tonumber(f[4]), wall = tonumber(f[5]),
    ok = tonumber(f[6]), bytes = tonumber(f[7]), ut = tonumber(f[8]), st = tonumber(f[9]),
    rss = tonumber(f[10]), status = f[11], note = f[12] or '',
  }
end

-- Start-up cost per client: the mean of its N=0 runs, subtracted from its other runs.
local startup = {}
for _, r in ipairs(rows) do
  if r.mode == 'ping' and r.x == 0 and r.status == '0' then
    local s = startup[r.client] or { ut = 0, st = 0, n = 0, rss = 0 }
    s.ut, s.st, s.n, s.rss = s.ut + r.ut, s.st + r.st, s.n + 1, math.max(s.rss, r.rss)
    startup[r.client] = s
  end
end
for _, s in pairs(startup) do s.ut, s.st = s.ut / s.n, s.st / s.n end
-- The start-up total is subtracted keeping the run's own user/system split (the
-- split of a 2 ms run is one tick or none).
for _, r in ipairs(rows) do
  local s = startup[r.client]
  local t = r.ut + r.st
  if s and r.x ~= 0 and t > 0 then
    local k = math.max(0, t - s.ut - s.st) / t
    r.ut, r.st = r.ut * k, r.st * k
  end
end

local function fmt(v, d) return v and string.format('%.' .. (d or 2) .. 'f', v) or '–' end
local function mb(kb) return kb and kb > 0 and string.format('%.1f', kb / 1024) or '–' end
local out = {}
local function p(...) out[#out + 1] = table.concat({ ... }) end

p('# coevent benchmark results')
p('')
p('Written by `bench/run.sh` (`make bench`). One run, every client one after another;')
p('**figures are noisy**: 2 cores, shared with other work (see the load averages),')
p('redis-server or the payload server on the same cores. Compare clients within this')
p('run; judge coevent by CPU per round trip and syscalls per round trip, not by')
p('absolute times.')
p('')
for l in lines(dir .. '/meta.txt') do p('- ', l) end
p('')
p('How it is measured:')
p('')
p('- requests/s and MiB/s: the work done divided by the client\'s own clock around its loop')
p('  (connections included).')
p('- CPU: the client process\'s rusage from `wait4`, minus the mean CPU of three N=0 runs of the')
p('  same client (interpreter start, module load, an empty loop; see the start-up table); the')
p('  total is exact, the user/system split is the kernel\'s tick-sampled one (4 ms ticks).')
p('  OpenResty: the nginx worker\'s `/proc/PID/schedstat` run time before and after the')
p('  request, split as `/proc/PID/stat` utime/stime ticks split (10 ms ticks); it includes')
p('  serving the one curl request.')
p('- peak RSS: `ru_maxrss` (OpenResty: the worker\'s VmHWM; nginx is started anew for each')
p('  measurement).')
p('- syscalls: `strace -c -f` over a separate, shorter run; strace slows the client, so')
p('  more events gather per `epoll_wait` than without it: read epoll_wait/rt as an upper')
p('  bound on batching, and the other counts as exact.')
p('')

-- startup
p('## Start-up (N=0: interpreter, modules, an empty loop; mean of 3 runs)')
p('')
p('OpenResty: the worker\'s CPU for the one request with N=0 (nginx itself already runs).')
p('')
p('| client | CPU ms | peak RSS MB | note |')
p('|---|---:|---:|---|')
local seen = {}
for _, r in ipairs(rows) do
  if r.mode == 'ping' and r.x == 0 and not seen[r.client] then
    seen[r.client] = true
    local s = startup[r.client]
    p('| ', name(r.client), ' | ', s and fmt((s.ut + s.st) * 1e3, 1) or '–', ' | ', mb(s and s.rss), ' | ',
      s and '' or ('**failed**: ' .. r.note), ' |')
  end
end
p('')

-- ping
p('## PING → PONG round trips against redis-server')
p('')
p('N connections (light threads; luv: callbacks) × M round trips each, all concurrent.')
p('CPU is client CPU per round trip in µs.')
p('')
p('| client | N × M | req/s | user µs | sys µs | total µs | peak RSS MB | note |')
p('|---|---:|---:|---:|---:|---:|---:|---|')
local ping_by, paired = {}, {}
-- Several runs of one case: keep the median by CPU per round trip (failed runs last).
local function cpu_rt(r) return (r.status == '0' and r.ok > 0) and (r.ut + r.st) / r.ok or math.huge end
for nm in cases:gmatch('%S+') do
  local n = tonumber(nm:match('^(%d+)'))
  local groups, order = {}, {}
  for _, r in ipairs(rows) do
    if r.mode == 'ping' and r.x == n then
      local k = r.client .. ':' .. r.y
      if not groups[k] then groups[k] = {} order[#order + 1] = k end
      table.insert(groups[k], r)
    end
  end
  -- Runs in the order they ran: the i-th of each client share round i.
  local ran = {}
  for _, k in ipairs(order) do ran[k] = { table.unpack(groups[k]) } end
  for _, k in ipairs(order) do
    local g = groups[k]
    table.sort(g, function(a, b) return cpu_rt(a) < cpu_rt(b) end)
    local r = g[(#g + 1) // 2]
    local okrun = r.status == '0' and r.ok > 0
    local rt = r.ok > 0 and r.ok or nil
    ping_by[r.client .. ':' .. n] = r
    local note = okrun and r.note or ('**failed**: ' .. r.note)
    if #g > 1 then note = string.format('median of %d (total µs %s)', #g, table.concat((function()
      local t = {}
      for _, x in ipairs(g) do t[#t + 1] = cpu_rt(x) < math.huge and fmt(cpu_rt(x) * 1e6, 1) or 'failed' end
      return t
    end)(), ', ')) .. (okrun and '' or '; ' .. note) end
    p('| ', name(r.client), ' | ', r.x, ' × ', r.y, ' | ',
      okrun and string.format('%.0f', r.ok / r.wall) or '–', ' | ',
      okrun and fmt(r.ut / rt * 1e6) or '–', ' | ',
      okrun and fmt(r.st / rt * 1e6) or '–', ' | ',
      okrun and fmt((r.ut + r.st) / rt * 1e6) or '–', ' | ',
      mb(r.rss), ' | ', note, ' |')
  end
  paired[#paired + 1] = { n = n, order = order, ran = ran }
end
p('')

-- The machine's load drifts from round to round more than the clients differ:
-- each run divided by the floor's run of the same round cancels most of it.
local shown = false
for _, c in ipairs(paired) do
  local floor = c.ran[c.order[1]]
  if c.order[1]:match('^floor:') and #floor > 1 then
    if not shown then
      p('Paired with the floor: each run\'s total CPU per round trip divided by the floor\'s')
      p('in the same round of runs; the median ratio and the quartiles (with fewer than')
      p('five runs, every ratio).')
      p('')
      p('| client | N × M | ÷ floor, paired | quartiles |')
      p('|---|---:|---:|---|')
      shown = true
    end
    for i = 2, #c.order do
      local k, rs = c.order[i], c.ran[c.order[i]]
      local q = {}
      for j = 1, math.min(#rs, #floor) do
        local a, b = cpu_rt(rs[j]), cpu_rt(floor[j])
        if a < math.huge and b < math.huge then q[#q + 1] = a / b end
      end
      table.sort(q)
      if #q > 1 then
        local at = function(f) return q[math.floor(f * (#q - 1)) + 1] end
        local spread = fmt(at(0.25)) .. '–' .. fmt(at(0.75))
        if #q < 5 then
          local all = {}
          for j, v in ipairs(q) do all[j] = fmt(v) end
          spread = table.concat(all, ', ')
        end
        p('| ', name(rs[1].client), ' | ', c.n, ' × ', k:match(':(%d+)$'), ' | ', fmt(at(0.5)), ' | ', spread, ' |')
      end
    end
  end
end
if shown then p('') end

-- syscalls
local WAITS = { epoll_wait = true, epoll_pwait = true, epoll_pwait2 = true, select = true,
  pselect6 = true, poll = true, ppoll = true }
local function read_strace(path)
  local by, calls, errors = {}, 0, 0
  for sl in lines(path) do
    local t = {}
    for w in sl:gmatch('%S+') do t[#t + 1] = w end
    if (#t == 5 or #t == 6) and tonumber(t[1]) and tonumber(t[4]) and t[#t] ~= 'total' then
      local n, e = tonumber(t[4]), #t == 6 and tonumber(t[5]) or 0
      by[t[#t]] = { n, e }
      calls, errors = calls + n, errors + e
    end
  end
  return by, calls, errors
end
local strace = {}
local rt = strace_n * strace_m
for l in lines(dir .. '/strace.tsv') do
  local f = split(l, '\t')
  local c, st1, st0 = f[1], f[4], f[5]
  local full, calls1, err1 = read_strace(dir .. '/strace.' .. c .. '.' .. strace_m)
  local base, calls0, err0 = read_strace(dir .. '/strace.' .. c .. '.0')
  local diff, waits = {}, 0
  for sc, v in pairs(full) do
    local b = base[sc] or { 0, 0 }
    diff[#diff + 1] = { sc, v[1] - b[1], v[2] - b[2] }
    if WAITS[sc] then waits = waits + v[1] - b[1] end
  end
  for sc, b in pairs(base) do
    if not full[sc] then diff[#diff + 1] = { sc, -b[1], -b[2] } end
  end
  table.sort(diff, function(x, y) return x[2] > y[2] end)
  strace[#strace + 1] = { c = c, whole = calls1, calls = calls1 - calls0, errors = err1 - err0,
    waits = waits, by = diff, status = st1 ~= '0' and st1 or st0 }
end
p('## Syscalls per round trip (`strace -c -f`, N=', strace_n, ' × M=', strace_m, ' = ', rt, ' round trips)')
p('')
p('Each client is traced twice: N × M round trips, and N × 0 (the same start-up,')
p('connects and closes, no round trip). "whole run" is the first count divided by N × M;')
p('every other column is the difference of the two divided by N × M: the steady-state')
p('cost of one round trip. "waits" are epoll_wait / epoll_pwait / select / poll calls;')
p('"failed" are syscalls that returned an error (here: EAGAIN).')
p('')
p('| client | whole run/rt | syscalls/rt | waits/rt | failed/rt | per round trip (≥ 0.01) |')
p('|---|---:|---:|---:|---:|---|')
for _, s in ipairs(strace) do
  local parts = {}
  for _, b in ipairs(s.by) do
    if b[2] / rt >= 0.01 then
      parts[#parts + 1] = string.format('%s %.2f', b[1], b[2] / rt)
        .. (b[3] / rt >= 0.01 and string.format(' (%.2f failed)', b[3] / rt) or '')
    end
  end
  p('| ', name(s.c), ' | ', fmt(s.whole / rt), ' | ', fmt(s.calls / rt), ' | ', fmt(s.waits / rt), ' | ',
    fmt(s.errors / rt), ' | ', s.status ~= '0' and ('**strace run failed** (exit ' .. s.status .. ') ') or '',
    table.concat(parts, ', '), ' |')
end
p('')

-- payloads
p('## Payloads (one local server sends SIZE bytes per request)')
p('')
p('"count": one connection, K requests, each read with `receive(SIZE)` (cqueues `read(n)`,')
p('luv: chunks gathered to SIZE); "*a": K connections one after another, each request')
p('answered and closed by the server, read with `receive(\'*a\')`. CPU per MiB in µs.')
p('')
p('| client | pattern | size × K | MiB/s | user µs/MiB | sys µs/MiB | total µs/MiB | peak RSS MB | note |')
p('|---|---|---:|---:|---:|---:|---:|---:|---|')
for _, r in ipairs(rows) do
  if r.mode == 'count' or r.mode == 'all' then
    local okrun = r.status == '0' and r.bytes > 0
    local mib = r.bytes / 1048576
    local size = r.x >= 1048576 and (r.x // 1048576) .. ' MiB' or (r.x // 1024) .. ' KiB'
    p('| ', name(r.client), ' | ', r.mode == 'count' and 'count' or "'*a'", ' | ', size, ' × ', r.y, ' | ',
      okrun and fmt(mib / r.wall, 0) or '–', ' | ',
      okrun and fmt(r.ut / mib * 1e6, 0) or '–', ' | ',
      okrun and fmt(r.st / mib * 1e6, 0) or '–', ' | ',
      okrun and fmt((r.ut + r.st) / mib * 1e6, 0) or '–', ' | ',
      mb(r.rss), ' | ', okrun and r.note or ('**failed**: ' .. r.note), ' |')
  end
end
p('')

-- checks on coevent's own figures against the design's model (DESIGN.md §4)
p('## Checks on coevent (automatic)')
p('')
local flags = {}
for _, s in ipairs(strace) do
  if s.c:match('^coevent') then
    local per = function(sc)
      for _, b in ipairs(s.by) do if b[1] == sc then return b[2] / rt, b[3] / rt end end
      return 0, 0
    end
    if s.status ~= '0' then
      flags[#flags + 1] = string.format('%s: the strace run failed (exit %s)', name(s.c), s.status)
    end
    local calls = s.calls / rt
    if calls > 2.2 then
      flags[#flags + 1] = string.format('%s: %.2f syscalls per round trip in steady state (model: 2 + a share of epoll_wait)', name(s.c), calls)
    end
    local ctl = per('epoll_ctl')
    if ctl > 0.01 then
      flags[#flags + 1] = string.format('%s: %.2f epoll_ctl per round trip in steady state (model: none; one per connection)', name(s.c), ctl)
    end
    if s.errors / rt > 0.05 then
      flags[#flags + 1] = string.format('%s: %.2f failed syscalls (EAGAIN) per round trip (model: a short read means drained)', name(s.c), s.errors / rt)
    end
    local fl = nil
    for _, f in ipairs(strace) do if f.c == 'floor' then fl = f end end
    if fl and s.waits / rt > 1.5 * fl.waits / rt + 0.05 then
      flags[#flags + 1] = string.format('%s: %.2f epoll_wait per round trip vs the floor\'s %.2f', name(s.c), s.waits / rt, fl.waits / rt)
    end
  end
end
for _, c in ipairs({ 'coevent-luajit', 'coevent-lua5.4' }) do
  for nm in cases:gmatch('%S+') do
    local n = tonumber(nm:match('^(%d+)'))
    local r, o = ping_by[c .. ':' .. n], ping_by['openresty:' .. n]
    if r and r.status ~= '0' then
      flags[#flags + 1] = string.format('%s N=%d failed: %s', name(c), n, r.note)
    elseif r and o and o.status == '0' and r.ok > 0 and o.ok > 0 then
      local a, b = (r.ut + r.st) / r.ok, (o.ut + o.st) / o.ok
      if a > 1.25 * b then
        flags[#flags + 1] = string.format('%s N=%d: %.2f µs CPU per round trip, %.0f%% above OpenResty\'s %.2f',
          name(c), n, a * 1e6, (a / b - 1) * 100, b * 1e6)
      end
    end
  end
end
for _, s in ipairs(strace) do
  if s.c:match('^coevent') and s.status == '0' then
    p(string.format('- %s in steady state: %.2f syscalls, %.2f failed, per round trip (floor: see the syscall table).',
      name(s.c), s.calls / rt, s.errors / rt))
  end
end
if #flags == 0 then
  p('Nothing flagged: in steady state coevent makes about 2 syscalls per round trip, no')
  p('epoll_ctl, few failed reads, and stays within 25% of OpenResty\'s CPU per round trip.')
else
  for _, f in ipairs(flags) do p('- ', f) end
end
p('')
p('## Notes on the peers')
p('')
p('- copas 1.x (Debian lua-copas, Lua 5.1/5.2 only) waits with LuaSocket\'s `select()`: no')
p('  fd at or above FD_SETSIZE (1024), so N=10000 cannot run (the error above); its N=1000')
p('  case scans ~1000 fds per `select`. For `\'*a\'`, LuaSocket answers `nil, "closed", partial`')
p('  when the body came in earlier calls, so the client takes the partial as the body.')
p('- cqueues and luv run on Lua 5.4 (Debian builds them for 5.1–5.4).')
p('- OpenResty: Debian\'s nginx 1.22 with libnginx-mod-http-lua and OpenResty\'s LuaJIT, run')
p('  from `bench/.deps` (see `bench/deps.sh`); one worker; its `receive` reads through')
p('  `lua_socket_buffer_size` (default 4k/8k, left as it is), which costs it in the payload rows.')
p('- luv has no coroutines: one callback chain per connection.')
p('- The floor is `bench/floor` (Rust, std + libc): one epoll loop, edge-triggered, one send')
p('  and one recv per round trip; a read shorter than the room offered ends the reading.')
p('')
print(table.concat(out, '\n'))
