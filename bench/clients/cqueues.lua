-- cqueues client for bench/run.sh (same arguments and output as coevent.lua, without SODIR).
-- usage: lua5.4 cqueues.lua ping|count|all HOST PORT N|SIZE M|K
local mode, host, port, x, y = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
local cqueues = require('cqueues')
local socket = require('cqueues.socket')
local now = cqueues.monotime

local ok, bytes, failed = 0, 0, nil

local function open()
  local s = socket.connect({ host = host, port = port, nodelay = true })
  s:setmode('b', 'bn') -- binary, and no output buffering: each write goes out at once
  local r, err = s:connect(60)
  if not r then error('connect: ' .. tostring(err)) end
  return s
end

local function ping_thread(m)
  local s = open()
  for _ = 1, m do
    local r, err = s:write('PING\r\n')
    if not r then failed = 'write: ' .. tostring(err) return end
    local line
    line, err = s:read('*l')
    if line ~= '+PONG\r' then failed = 'read: ' .. tostring(line or err) return end
    ok = ok + 1
  end
  bytes = bytes + 7 * m
  s:close()
end

local function count_loop(size, k)
  local s = open()
  local req = 'GET ' .. size .. '\n'
  for _ = 1, k do
    assert(s:write(req))
    local data, err = s:read(size)
    if not data or #data ~= size then failed = 'read: ' .. tostring(err) return end
    ok, bytes = ok + 1, bytes + #data
  end
  s:close()
end

local function all_loop(size, k)
  local req = 'ALL ' .. size .. '\n'
  for _ = 1, k do
    local s = open()
    assert(s:write(req))
    local data, err = s:read('*a')
    if not data or #data ~= size then failed = 'read: ' .. tostring(err or #data) return end
    ok, bytes = ok + 1, bytes + #data
    s:close()
  end
end

local cq = cqueues.new()
local t0 = now()
if mode == 'ping' then
  for _ = 1, x do cq:wrap(ping_thread, y) end
elseif mode == 'count' then
  cq:wrap(count_loop, x, y)
elseif mode == 'all' then
  cq:wrap(all_loop, x, y)
else
  error('unknown mode ' .. tostring(mode))
end
local r, err = cq:loop()
local wall = now() - t0
if not r then failed = tostring(err) end
print(string.format('RESULT wall=%.6f ok=%d bytes=%d', wall, ok, bytes))
if failed then io.stderr:write('cqueues client: ', failed, '\n') os.exit(1) end
