-- luv (libuv) client for bench/run.sh: callbacks, no coroutines (same arguments and
-- output as cqueues.lua).  usage: lua5.4 luv.lua ping|count|all HOST PORT N|SIZE M|K
local mode, host, port, x, y = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
local uv = require('luv')

local ok, bytes, failed = 0, 0, nil
local function fail(msg) failed = failed or msg; uv.stop() end

local function connect(cb)
  local c = uv.new_tcp()
  c:nodelay(true)
  c:connect(host, port, function(err)
    if err then return fail('connect: ' .. err) end
    cb(c)
  end)
end

local function ping_conn(m)
  connect(function(c)
    local left, buf = m, ''
    c:read_start(function(err, data)
      if err or not data then return fail('read: ' .. tostring(err or 'closed')) end
      buf = buf .. data
      if #buf < 7 then return end
      if buf ~= '+PONG\r\n' then return fail('read: ' .. buf) end
      buf, left, ok = '', left - 1, ok + 1
      if left > 0 then
        c:write('PING\r\n')
      else
        bytes = bytes + 7 * m
        c:read_stop()
        c:close()
      end
    end)
    c:write('PING\r\n')
  end)
end

-- Reads SIZE bytes per request: chunks are gathered in a table and joined once.
local function count_conn(size, k)
  connect(function(c)
    local left, parts, got = k, {}, 0
    local req = 'GET ' .. size .. '\n'
    c:read_start(function(err, data)
      if err or not data then return fail('read: ' .. tostring(err or 'closed')) end
      parts[#parts + 1] = data
      got = got + #data
      if got < size then return end
      local s = table.concat(parts)
      if #s ~= size then return fail('read: too much') end
      parts, got, left, ok, bytes = {}, 0, left - 1, ok + 1, bytes + #s
      if left > 0 then c:write(req) else c:read_stop(); c:close() end
    end)
    c:write(req)
  end)
end

local function all_conn(size, left)
  if left == 0 then return end
  connect(function(c)
    local parts = {}
    c:read_start(function(err, data)
      if err then return fail('read: ' .. err) end
      if data then parts[#parts + 1] = data return end
      local s = table.concat(parts) -- EOF
      if #s ~= size then return fail('read: got ' .. #s) end
      ok, bytes = ok + 1, bytes + #s
      c:close()
      all_conn(size, left - 1)
    end)
    c:write('ALL ' .. size .. '\n')
  end)
end

local t0 = uv.hrtime()
if mode == 'ping' then
  for _ = 1, x do ping_conn(y) end
elseif mode == 'count' then
  count_conn(x, y)
elseif mode == 'all' then
  all_conn(x, y)
else
  error('unknown mode ' .. tostring(mode))
end
uv.run('default')
local wall = (uv.hrtime() - t0) / 1e9
print(string.format('RESULT wall=%.6f ok=%d bytes=%d', wall, ok, bytes))
if failed then io.stderr:write('luv client: ', failed, '\n') os.exit(1) end
