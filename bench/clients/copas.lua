-- copas + LuaSocket client for bench/run.sh (same arguments and output as cqueues.lua).
-- Copas 1.x waits with select(): at most FD_SETSIZE (1024) sockets.
-- usage: lua5.1 copas.lua ping|count|all HOST PORT N|SIZE M|K
local mode, host, port, x, y = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
local socket = require('socket')
local copas = require('copas')
require('coxpcall')

local ok, bytes, failed, done = 0, 0, nil, 0

local function open()
  local skt = socket.tcp()
  local r, err = copas.connect(skt, host, port)
  if not r then error('connect: ' .. err) end
  skt:setoption('tcp-nodelay', true)
  return skt, copas.wrap(skt)
end

local function ping(m)
  local skt, s = open()
  for _ = 1, m do
    local r, err = s:send('PING\r\n')
    if not r then failed = 'send: ' .. err break end
    local line
    line, err = s:receive('*l')
    if line ~= '+PONG' then failed = 'receive: ' .. tostring(line or err) break end
    ok = ok + 1
  end
  bytes = bytes + 7 * m
  skt:close()
end

local function ping_thread(_, m) -- copas 1.x resumes a new thread with (nil, ...)
  local r, err = copcall(ping, m) -- lua-coxpcall: 5.1's pcall cannot yield
  if not r then failed = tostring(err) end
  done = done + 1
end

local function count_loop(size, k)
  local skt, s = open()
  local req = 'GET ' .. size .. '\n'
  for _ = 1, k do
    assert(s:send(req))
    local data, err = s:receive(size)
    if not data then failed = 'receive: ' .. err return end
    ok, bytes = ok + 1, bytes + #data
  end
  skt:close()
end

local function all_loop(size, k)
  local req = 'ALL ' .. size .. '\n'
  for _ = 1, k do
    local skt, s = open()
    assert(s:send(req))
    -- LuaSocket returns nil, 'closed', partial for '*a' when the last piece of the
    -- body came in an earlier call (copas passes the partial back in): the partial is the body.
    local data, err, partial = s:receive('*a')
    if not data and err == 'closed' then data = partial end
    if not data or #data ~= size then failed = 'receive: ' .. tostring(err or #data) return end
    ok, bytes = ok + 1, bytes + #data
    skt:close()
  end
end

local function run(_, f, ...)
  local r, err = copcall(f, ...)
  if not r then failed = tostring(err) end
  done = done + 1
end

local t0 = socket.gettime()
if mode == 'ping' then
  for _ = 1, x do copas.addthread(ping_thread, y) end
elseif mode == 'count' then
  copas.addthread(run, count_loop, x, y)
  x = 1 -- one thread to wait for
elseif mode == 'all' then
  copas.addthread(run, all_loop, x, y)
  x = 1 -- one thread to wait for
else
  error('unknown mode ' .. tostring(mode))
end
-- copas.loop() never returns in copas 1.x: step until every thread is done (bounded).
local deadline = t0 + 600
while done < x and not failed do
  copas.step(1)
  if socket.gettime() > deadline then failed = 'deadline' end
end
local wall = socket.gettime() - t0
print(string.format('RESULT wall=%.6f ok=%d bytes=%d', wall, ok, bytes))
if failed then io.stderr:write('copas client: ', failed, '\n') os.exit(1) end
