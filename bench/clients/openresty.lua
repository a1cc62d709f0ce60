-- OpenResty cosocket client for bench/run.sh, run by nginx (content_by_lua_file)
-- for one curl request: GET /bench?mode=ping|pool|count|all&host=H&port=P&x=N|SIZE&y=M|K
-- Light threads are ngx.thread.spawn; the answer body is the RESULT line.
local ffi = require('ffi')
pcall(ffi.cdef, [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk, bench_timespec *ts);
]])
local ts = ffi.new('bench_timespec')
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local args = ngx.req.get_uri_args()
local mode, host, port, x, y = args.mode, args.host, tonumber(args.port), tonumber(args.x), tonumber(args.y)
local ok, bytes, failed = 0, 0, nil

local function open()
  local s = ngx.socket.tcp()
  s:settimeout(60000)
  local r, err = s:connect(host, port)
  if not r then error('connect: ' .. tostring(err)) end
  return s
end

local function ping_thread(m)
  local s = open()
  for _ = 1, m do
    local r, err = s:send('PING\r\n')
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
    local s = ngx.socket.tcp()
    s:settimeout(60000)
    local r, err = s:connect(host, port)
    if not r then failed = 'connect: ' .. tostring(err) return end
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
  local s = open()
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
    local s = open()
    assert(s:send(req))
    local data, err = s:receive('*a')
    if not data or #data ~= size then failed = 'receive: ' .. tostring(err or #data) return end
    ok, bytes = ok + 1, bytes + #data
    s:close()
  end
end

local t0 = now()
if mode == 'ping' or mode == 'pool' then
  local threads = {}
  for i = 1, x do threads[i] = ngx.thread.spawn(mode == 'ping' and ping_thread or pool_thread, y) end
  for i = 1, x do
    local r, err = ngx.thread.wait(threads[i])
    if not r then failed = failed or tostring(err) end
  end
elseif mode == 'count' then
  count_loop(x, y)
elseif mode == 'all' then
  all_loop(x, y)
else
  failed = 'unknown mode ' .. tostring(mode)
end
local wall = now() - t0
ngx.say(string.format('RESULT wall=%.6f ok=%d bytes=%d', wall, ok, bytes))
if failed then ngx.say('ERROR ', failed) end
