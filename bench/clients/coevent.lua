-- coevent client for bench/run.sh.
-- usage: lua|luajit coevent.lua SODIR ping  HOST PORT N M     N light threads x M PING round trips
--                               SODIR count HOST PORT SIZE K  one socket, K x "GET SIZE\n" + receive(SIZE)
--                               SODIR all   HOST PORT SIZE K  K x (connect, "ALL SIZE\n", receive('*a'), close)
--                               SODIR pool  HOST PORT N M     N light threads x M (connect, PING, setkeepalive)
-- prints: RESULT wall=<s> ok=<units> bytes=<bytes>; exits 1 if any unit failed.
local sodir, mode, host, port, x, y = arg[1], arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6])
package.cpath = sodir .. '/?.so;' .. package.cpath
local L = require('coevent')
local now = require('socket.core').gettime -- LuaSocket's clock only; no socket of it is used

local ok, bytes, failed = 0, 0, nil

local function ping_thread(m)
  local s = cosocket.tcp()
  local r, err = s:connect(host, port)
  if not r then failed = 'connect: ' .. err return end
  for _ = 1, m do
    r, err = s:send('PING\r\n')
    if not r then failed = 'send: ' .. err return end
    local line
    line, err = s:receive('*l')
    if line ~= '+PONG' then failed = 'receive: ' .. tostring(line or err) return end
    ok = ok + 1
  end
  bytes = bytes + 7 * m
  s:close()
end

-- Each request takes a connection from the pool and gives it back.
local function pool_thread(m)
  for _ = 1, m do
    local s = cosocket.tcp()
    local r, err = s:connect(host, port)
    if not r then failed = 'connect: ' .. err return end
    r, err = s:send('PING\r\n')
    if not r then failed = 'send: ' .. err return end
    local line
    line, err = s:receive('*l')
    if line ~= '+PONG' then failed = 'receive: ' .. tostring(line or err) return end
    r, err = s:setkeepalive(0, 1000)
    if not r then failed = 'setkeepalive: ' .. err return end
    ok = ok + 1
  end
  bytes = bytes + 7 * m
end

local function count_loop(size, k)
  local s = cosocket.tcp()
  assert(s:connect(host, port))
  local req = 'GET ' .. size .. '\n'
  for _ = 1, k do
    assert(s:send(req))
    local data, err = s:receive(size)
    if not data then failed = 'receive: ' .. err return end
    ok, bytes = ok + 1, bytes + #data
  end
  s:close()
end

local function all_loop(size, k)
  local req = 'ALL ' .. size .. '\n'
  for _ = 1, k do
    local s = cosocket.tcp()
    assert(s:connect(host, port))
    assert(s:send(req))
    local data, err = s:receive('*a')
    if not data or #data ~= size then failed = 'receive: ' .. tostring(err or #data) return end
    ok, bytes = ok + 1, bytes + #data
    s:close()
  end
end

local t0 = now()
L(function()
  if mode == 'ping' or mode == 'pool' then
    local ts = {}
    for i = 1, x do ts[i] = newthread(mode == 'ping' and ping_thread or pool_thread, y) end
    for i = 1, x do coroutine_wait(ts[i]) end
  elseif mode == 'count' then
    count_loop(x, y)
  elseif mode == 'all' then
    all_loop(x, y)
  else
    error('unknown mode ' .. tostring(mode))
  end
end)
local wall = now() - t0
print(string.format('RESULT wall=%.6f ok=%d bytes=%d', wall, ok, bytes))
if failed then io.stderr:write('coevent client: ', failed, '\n') os.exit(1) end
