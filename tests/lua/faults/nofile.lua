-- Fd exhaustion. Run with a low RLIMIT_NOFILE (tests/faults.rs: `ulimit -n 64`).
local T = require('harness')
local F = require('support')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

local LIMIT = F.nofile()
assert(LIMIT and LIMIT <= 256, 'nofile.lua: run it with a low RLIMIT_NOFILE (ulimit -n 64), not ' .. tostring(LIMIT))
print('# RLIMIT_NOFILE ' .. LIMIT)

-- Fds open in slots below the limit (an inherited fd above it takes no slot),
-- without the pipe `ls` writes this list into.
local function used()
  return T.fds(LIMIT) - 1
end

-- Connects sockets to the peer's echo until one fails; returns them and the
-- failure. No popen (T.fds) while they are all open: it needs fds.
local function exhaust()
  local socks = {}
  for _ = 1, LIMIT + 10 do
    local s = L.tcp()
    local r, e = s:connect(T.host, T.port)
    if r ~= 1 then return socks, s, pack(r, e) end
    socks[#socks + 1] = s
  end
  error('no connect failed past RLIMIT_NOFILE')
end

local function round_trip(s, what)
  eq(s:send(what .. '\n'), #what + 1, 'send ' .. what)
  eq(s:receive('*l'), what, 'echo ' .. what)
end

T.case('connects past RLIMIT_NOFILE: nil, "too many open files"; each close makes room for one', function()
  F.amid(function()
    local free = LIMIT - used()
    local socks, failed, why = exhaust()
    same(why, pack(nil, 'too many open files'), 'the connect past the limit')
    eq(#socks, free, 'connects that succeeded: every free fd')
    same(pack(failed:close()), pack(nil, 'closed'), 'the failed socket holds nothing')
    same(pack(L.tcp():connect(T.host, T.port)), pack(nil, 'too many open files'), 'again')
    -- Everything open still works, and so do timers and threads.
    for i, s in ipairs(socks) do eq(s:send('echo\n'), 5, 'command ' .. i) end
    for i, s in ipairs(socks) do round_trip(s, 'at the limit ' .. i) end
    L.sleep(0.01)
    eq(L.wait(L.spawn(function() return 'a thread' end)), 'a thread', 'a new thread')
    -- Closing k sockets lets exactly k connects through.
    for i = 1, 3 do eq(table.remove(socks):close(), 1, 'close ' .. i) end
    for i = 1, 3 do
      local s = i == 1 and failed or L.tcp()
      eq(s:connect(T.host, T.port), 1, 'connect after a close ' .. i)
      socks[#socks + 1] = s
      eq(s:send('echo\n'), 5, 'command')
      round_trip(s, 'after a close ' .. i)
    end
    same(pack(L.tcp():connect(T.host, T.port)), pack(nil, 'too many open files'), 'the next one')
    for i, s in ipairs(socks) do eq(s:close(), 1, 'close ' .. i) end
  end, 20)
end)

T.case('threads connecting at once past the limit: each gets a socket or "too many open files"', function()
  local n = LIMIT + 40
  local free = LIMIT - used()
  local ok, refused, socks = 0, 0, {}
  local ts = {}
  for i = 1, n do
    ts[i] = L.spawn(function()
      local s = L.tcp()
      local r, e = s:connect(T.host, T.port)
      if r ~= 1 then return nil, e end
      socks[#socks + 1] = s
      eq(s:send('echo\n'), 5, 'command')
      round_trip(s, 'thread ' .. i)
      return true
    end)
  end
  for i = 1, n do
    local r, e = L.wait(ts[i])
    if r then ok = ok + 1 else
      eq(e, 'too many open files', 'thread ' .. i)
      refused = refused + 1
    end
  end
  eq(ok + refused, n, 'outcomes')
  eq(ok, free, 'threads that connected: every free fd')
  for _, s in ipairs(socks) do eq(s:close(), 1, 'close') end
end)

T.case('L with no fd left for its epoll raises "L: epoll: too many open files"; then works', function()
  local files = {}
  for _ = 1, LIMIT + 10 do
    local f = io.open('/dev/null')
    if not f then break end
    files[#files + 1] = f
  end
  T.ok(#files < LIMIT, 'io.open ran out of fds')
  local ok, err = pcall(L, function() return 'ran' end)
  for _, f in ipairs(files) do f:close() end
  eq(ok, false, 'L raised')
  T.ok(tostring(err):find('L: epoll: too many open files', 1, true), tostring(err))
  eq(L(function() return 'ran' end), 'ran', 'L once fds are free')
end, { loop = false })

-- A lookup needs fds too (the hosts file, resolv.conf, the query socket).
T.case('a name while fds are exhausted: nil, "too many open files"', function()
  L.config { nameservers = { '127.0.0.1:' .. T.dns } }
  local socks, failed = exhaust()
  local r1 = pack(failed:connect('localhost', T.port))
  local r2 = pack(L.resolve('peer.test'))
  for _, s in ipairs(socks) do s:close() end
  L.config {}
  same(r1, pack(nil, 'too many open files'), "connect('localhost') (a name of the hosts file)")
  same(r2, pack(nil, 'too many open files'), "L.resolve('peer.test') (a name of the nameserver)")
end)

T.case('the hosts file answers once fds are free again (exhausted at the first lookup)', function()
  local socks, failed = exhaust()
  local during = pack(failed:connect('localhost', T.port))
  for _, s in ipairs(socks) do s:close() end
  local s = L.tcp()
  local r = pack(s:connect('localhost', T.port))
  s:close()
  same(r, pack(1), "connect('localhost') once fds are free (during: " .. tostring(during[2]) .. ')')
end)

-- A listener out of fds: accept fails without spinning (it rests before it
-- tries again) and takes the waiting connection once an fd is free.
T.case('accept past RLIMIT_NOFILE: nil, "too many open files", resting, then the connection', function()
  local srv = L.tcp()
  eq(srv:bind('127.0.0.1', 0), 1, 'bind')
  eq(srv:listen(), 1, 'listen')
  local _, port = srv:getsockname()
  -- The clock's file is opened before the fds run out, and read again.
  local uptime = assert(io.open('/proc/uptime'))
  uptime:setvbuf('no')
  local function now()
    uptime:seek('set', 0)
    return tonumber(uptime:read('*l'):match('^(%S+)'))
  end
  local socks = exhaust()
  -- One fd for a client of our own listener; none left for accept.
  table.remove(socks):close()
  local c = L.tcp()
  eq(c:connect('127.0.0.1', port), 1, 'the client connects (the kernel queues it)')
  same(pack(srv:accept()), pack(nil, 'too many open files'), 'accept')
  local cpu, wall = os.clock(), now()
  for i = 1, 3 do same(pack(srv:accept()), pack(nil, 'too many open files'), 'accept again ' .. i) end
  cpu, wall = os.clock() - cpu, now() - wall
  uptime:close()
  T.ok(wall >= 0.25, string.format('three more accepts rested: %.3f s', wall))
  T.ok(cpu < 0.1, string.format('without spinning: %.3f s of CPU', cpu))
  table.remove(socks):close()
  local s = assert(srv:accept())
  eq(c:send('through\n'), 8, 'send')
  eq(s:receive('*l'), 'through', 'the connection that waited')
  for _, x in ipairs(socks) do x:close() end
  s:close()
  c:close()
  srv:close()
end)

return T.run()
