-- A tiny test framework for coevent's Lua test scripts (Lua 5.1, 5.4, LuaJIT).
--
--   local T = require('harness')
--   T.case('name', function() ... end)        -- runs inside its own L(...) loop
--   T.case('name', function() ... end, { loop = false })  -- runs as a plain function
--   T.case('name', fn, { ci_may_skip = 'why' })  -- may skip under CI=true (see T.skip)
--   return T.run()                             -- returns passed, failed, skipped
--
-- The peer (tests/peer/mod.rs) is found through the globals PEER_PORT, PEER_PORT6,
-- PEER_UNIX, PEER_REFUSED_PORT, PEER_FULL_PORT, PEER_DNS_PORT, or the same names prefixed with
-- COEVENT_ in the environment. Each case also fails if it leaves fds open (so
-- nothing else may open fds in this process meanwhile: no peer, no other script).

local L = require('coevent')
local unpack = table.unpack or unpack

local T = { L = L, host = '127.0.0.1', cases = {} }

-- An object whose finalizer is `fn` (a newproxy on 5.1 and LuaJIT, whose
-- tables have none).
function T.finalized(fn)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = fn
    return p
  end
  return setmetatable({}, { __gc = fn })
end

-- COEVENT_ADVERSARY=N starts light threads inside whatever runs, between a
-- call into Rust and its yield too (docs/internals.md, docs/testing.md): on
-- every Lua from a finalizer at each collection (wherever an allocation ran
-- it), and on LuaJIT (whose hooks reach every coroutine) from a hook every N
-- VM instructions. A thread sleeps, swops, or resolves an address, which must
-- come back as it is. Its own threads start none.
T.adversary = tonumber(os.getenv('COEVENT_ADVERSARY'))
local adversary, wronged
if T.adversary then
  local n, theirs = 0, setmetatable({}, { __mode = 'k' })
  local kinds = {
    function() L.sleep(0) end,
    function() L.swop() end,
    function()
      local r, e = L.resolve('127.0.0.2')
      if not (r and r[1] == '127.0.0.2' and #r == 1) then wronged = wronged or T.show(r) .. ', ' .. T.show(e) end
    end,
  }
  local function start()
    if theirs[coroutine.running() or 1] then return end
    n = n + 1
    local kind = kinds[n % #kinds + 1]
    pcall(L.spawn, function()
      theirs[coroutine.running()] = true
      kind()
    end)
  end
  local function finalizer()
    start()
    T.finalized(finalizer) -- the next one, for the next collection
  end
  finalizer()
  if jit then
    jit.off()
    adversary = start
    debug.sethook(adversary, '', T.adversary)
  end
end
-- A case's own debug hook, with LuaJIT's JIT off (it skips hooks); and its
-- end: back to the adversary's, if there is one.
function T.hook(f, mask, count)
  if jit then jit.off() end
  debug.sethook(f, mask, count)
end

function T.unhook()
  debug.sethook(adversary, '', T.adversary or 0)
  if jit and not adversary then jit.on() end
end
T.peer = T.host

-- A setting of the test driver's: the global NAME, else COEVENT_NAME in
-- the environment (nil if neither).
local function var(name)
  local v = rawget(_G, name)
  if v == nil then v = os.getenv('COEVENT_' .. name) end
  return v
end
T.var = var

-- Seconds since boot, to 10 ms (a clock that needs no library).
function T.now()
  local f = assert(io.open('/proc/uptime'))
  local s = f:read('*l')
  f:close()
  return tonumber(s:match('^(%S+)'))
end
T.port = tonumber(var('PEER_PORT'))
T.port6 = tonumber(var('PEER_PORT6'))
T.unix = var('PEER_UNIX')
T.refused = tonumber(var('PEER_REFUSED_PORT'))
T.full = tonumber(var('PEER_FULL_PORT'))
T.dns = tonumber(var('PEER_DNS_PORT'))
-- tests/pool.rs: a redis-server.
T.redis = tonumber(var('REDIS_PORT'))
assert(T.port and T.unix, 'harness: PEER_PORT and PEER_UNIX must be set (run through tests/lua.rs)')

-- opts: loop = false runs fn as a plain function, not inside L(...);
-- ci_may_skip = 'why' lets the case skip under CI=true (see T.skip).
function T.case(name, fn, opts)
  opts = opts or {}
  T.cases[#T.cases + 1] = { name = name, fn = fn, loop = opts.loop ~= false, ci_may_skip = opts.ci_may_skip }
end

-- A value for a failure message: strings quoted and cut short.
local function show(v)
  if type(v) == 'string' then
    if #v > 200 then return string.format('%q.. (%d bytes)', v:sub(1, 200), #v) end
    return string.format('%q', v)
  end
  return tostring(v)
end
T.show = show

function T.fail(msg, level)
  error(msg, (level or 1) + 1)
end

function T.eq(got, want, what)
  if got ~= want then
    error(string.format('%s: got %s, want %s', what or 'value', show(got), show(want)), 2)
  end
end

function T.ok(v, what)
  if not v then error((what or 'assertion') .. ' failed', 2) end
  return v
end

-- Asserts that each value of got (a table of results, with n) equals want's.
function T.same(got, want, what)
  local n = math.max(got.n or #got, want.n or #want)
  for i = 1, n do
    if got[i] ~= want[i] then
      local g, w = {}, {}
      for j = 1, n do g[j], w[j] = show(got[j]), show(want[j]) end
      error(string.format('%s: got (%s), want (%s)', what or 'results', table.concat(g, ', '),
        table.concat(w, ', ')), 2)
    end
  end
end

function T.pack(...)
  return { n = select('#', ...), ... }
end

-- fn must raise an error whose message contains text (plain); returns the message.
function T.raises(fn, text)
  local ok, err = pcall(fn)
  if ok then error('expected an error containing ' .. show(text) .. ', got none', 2) end
  err = tostring(err)
  if not err:find(text, 1, true) then
    error('expected an error containing ' .. show(text) .. ', got ' .. show(err), 2)
  end
  return err
end

-- Ends the case as skipped (a string error: L turns every error into a string).
-- A skip is counted apart from passes. CI's machine has what every case needs
-- (IPv6 loopback, a full accept queue...), so under CI=true a skip fails the
-- case unless it declares `ci_may_skip = 'why'` (a skip that depends on the
-- interpreter or on how the script is run, not on the machine).
local SKIP = 'SKIP: '
T.ci = os.getenv('CI') == 'true'
function T.skip(why)
  error(SKIP .. why, 0)
end

-- A socket connected to the peer, with the command sent.
function T.connect(cmd, host, port)
  local s = L.tcp()
  local r, e = s:connect(host or T.host, port or T.port)
  if r ~= 1 then error('connect to the peer: ' .. tostring(e), 2) end
  if cmd then
    local n, e2 = s:send(cmd .. '\n')
    if n ~= #cmd + 1 then error('send the command: ' .. tostring(e2), 2) end
  end
  return s
end

-- The peer's data: n bytes, byte i (from 0) = i % 251.
local cycle
function T.pattern(n, from)
  if not cycle then
    local t = {}
    for i = 0, 250 do t[#t + 1] = string.char(i) end
    cycle = table.concat(t)
    cycle = cycle .. cycle
  end
  from = (from or 0) % 251
  local whole = math.floor(n / 251)
  return (cycle:sub(from + 1, from + 251)):rep(whole) .. cycle:sub(from + 1, from + n - whole * 251)
end

-- n MiB of 'x' (string.rep of one byte is slow in an unoptimised Lua build).
function T.mib(n)
  return string.rep(string.rep('x', 1024 * 1024), n)
end

-- This process's pid (a string).
local pid
function T.pid()
  if not pid then
    local f = assert(io.open('/proc/self/stat'))
    pid = f:read('*l'):match('^(%d+)')
    f:close()
  end
  return pid
end

-- Open fds of this process (only those below `below`, if given). The peer runs
-- in another process (tests/lua.rs), so every socket here is the script's own.
function T.fds(below)
  -- ls may list this pipe before popen has closed its write end here: a pipe
  -- counts once, however many of its ends are open.
  local p = assert(io.popen('ls -l /proc/' .. T.pid() .. '/fd 2>/dev/null'))
  local n, seen = 0, {}
  for line in p:lines() do
    local fd, target = line:match('(%d+) %-> (.*)$')
    if fd and (not below or tonumber(fd) < below) and not seen[target] then
      n = n + 1
      if target:match('^pipe:') then seen[target] = true end
    end
  end
  p:close()
  return n
end

local function first_line(e)
  if type(e) ~= 'string' then return tostring(e) end
  return (e:match('^[^\n]*'))
end

-- Runs every case; prints `ok - name` / `not ok - name: msg` / `ok - name # SKIP why`,
-- then `N passed, M failed` with `, K skipped` when K > 0 (tests/common/mod.rs
-- reads that line).
function T.run()
  local passed, failed, skipped = 0, 0, 0
  for _, c in ipairs(T.cases) do
    local before = T.fds()
    local ok, err
    if c.loop then
      ok, err = pcall(L, c.fn)
    else
      ok, err = pcall(c.fn)
    end
    collectgarbage()
    collectgarbage()
    if ok and wronged then ok, err, wronged = false, "an adversary's L.resolve('127.0.0.2') got " .. wronged, nil end
    if ok then
      local after = T.fds()
      if after > before then ok, err = false, string.format('fd leak: %d open before, %d after', before, after) end
    end
    local why = not ok and first_line(err):match('^' .. SKIP .. '(.*)')
    if why and T.ci and not c.ci_may_skip then
      ok, why, err = false, nil, 'skipped under CI=true, where it must run (or declare ci_may_skip): ' .. why
    end
    if ok then
      passed = passed + 1
      print('ok - ' .. c.name)
    elseif why then
      skipped = skipped + 1
      print('ok - ' .. c.name .. ' # SKIP ' .. why)
    else
      failed = failed + 1
      print('not ok - ' .. c.name .. ': ' .. first_line(err))
    end
  end
  print(passed .. ' passed, ' .. failed .. ' failed' .. (skipped > 0 and ', ' .. skipped .. ' skipped' or ''))
  return passed, failed, skipped
end

T.unpack = unpack
return T
