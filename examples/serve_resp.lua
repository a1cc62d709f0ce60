-- A RESP (Redis protocol) server: PING, ECHO, SET, GET, DEL, INCR, MSET, the
-- list, set, hash and sorted-set commands redis-benchmark runs by default, and
-- the CONFIG GET it asks first. redis-cli and redis-benchmark talk to it.
-- usage: coevent serve_resp.lua [PORT (0: a free one)] [HOST]
-- Prints "listening on HOST:PORT".
local port, host = tonumber(arg[1]) or 6380, arg[2] or '127.0.0.1'
local L = require('coevent')
local concat, upper = table.concat, string.upper

local store, lists, sets, hashes, zsets = {}, {}, {}, {}, {}

local function bulk(v)
  if v == nil then return '$-1\r\n' end
  return { '$', #v, '\r\n', v, '\r\n' }
end

-- LPUSH (dir -1) and RPUSH (dir 1): the list's length.
local function push(a, dir)
  local l = lists[a[2]] or { head = 1, tail = 0 }
  lists[a[2]] = l
  for i = 3, #a do
    if dir < 0 then
      l.head = l.head - 1
      l[l.head] = a[i]
    else
      l.tail = l.tail + 1
      l[l.tail] = a[i]
    end
  end
  return { ':', l.tail - l.head + 1, '\r\n' }
end

local function pop(a, left)
  local l = lists[a[2]]
  if not l or l.tail < l.head then return bulk(nil) end
  local i = left and l.head or l.tail
  local v = l[i]
  l[i] = nil
  if left then l.head = i + 1 else l.tail = i - 1 end
  return bulk(v)
end

local COMMANDS = {
  PING = function(a) return a[2] and bulk(a[2]) or '+PONG\r\n' end,
  ECHO = function(a) return bulk(a[2] or '') end,
  SET = function(a)
    store[a[2]] = a[3]
    return '+OK\r\n'
  end,
  GET = function(a) return bulk(store[a[2]]) end,
  DEL = function(a)
    local n = 0
    for i = 2, #a do
      if store[a[i]] then n = n + 1 end
      store[a[i]] = nil
    end
    return { ':', n, '\r\n' }
  end,
  INCR = function(a)
    local n = (tonumber(store[a[2]]) or 0) + 1
    store[a[2]] = tostring(n)
    return { ':', n, '\r\n' }
  end,
  MSET = function(a)
    for i = 2, #a - 1, 2 do store[a[i]] = a[i + 1] end
    return '+OK\r\n'
  end,
  -- A list is a deque: items[head..tail].
  LPUSH = function(a) return push(a, -1) end,
  RPUSH = function(a) return push(a, 1) end,
  LPOP = function(a) return pop(a, true) end,
  RPOP = function(a) return pop(a, false) end,
  LRANGE = function(a)
    local l = lists[a[2]]
    if not l then return '*0\r\n' end
    local len = l.tail - l.head + 1
    local from, to = tonumber(a[3]) or 0, tonumber(a[4]) or -1
    if from < 0 then from = math.max(len + from, 0) end
    if to < 0 then to = len + to end
    to = math.min(to, len - 1)
    -- One flat table of pieces: send writes it out in one go.
    local out, n = { '*', math.max(to - from + 1, 0), '\r\n' }, 3
    for i = from, to do
      local v = l[l.head + i]
      out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = '$', #v, '\r\n', v, '\r\n'
      n = n + 5
    end
    return out
  end,
  SADD = function(a)
    local set, n = sets[a[2]] or {}, 0
    sets[a[2]] = set
    for i = 3, #a do
      if not set[a[i]] then n = n + 1 end
      set[a[i]] = true
    end
    return { ':', n, '\r\n' }
  end,
  SPOP = function(a)
    local m = sets[a[2]] and next(sets[a[2]])
    if m then sets[a[2]][m] = nil end
    return bulk(m)
  end,
  HSET = function(a)
    local h, n = hashes[a[2]] or {}, 0
    hashes[a[2]] = h
    for i = 3, #a - 1, 2 do
      if h[a[i]] == nil then n = n + 1 end
      h[a[i]] = a[i + 1]
    end
    return { ':', n, '\r\n' }
  end,
  ZADD = function(a)
    local z, n = zsets[a[2]] or {}, 0
    zsets[a[2]] = z
    for i = 3, #a - 1, 2 do
      if z[a[i + 1]] == nil then n = n + 1 end
      z[a[i + 1]] = tonumber(a[i])
    end
    return { ':', n, '\r\n' }
  end,
  ZPOPMIN = function(a)
    local z, min = zsets[a[2]] or {}, nil
    for m, score in pairs(z) do
      if not min or score < z[min] then min = m end
    end
    if not min then return '*0\r\n' end
    local score = z[min]
    z[min] = nil
    return { '*2\r\n', bulk(min), bulk(tostring(score)) }
  end,
  CONFIG = function(a)
    local values = { save = '', appendonly = 'no' }
    local v = a[3] and values[a[3]:lower()]
    if not v then return '*0\r\n' end
    return { '*2\r\n', bulk(a[3]), bulk(v) }
  end,
}

-- One command: a RESP array of bulk strings, or an inline line (PING\r\n).
local function command(c)
  local line, err = c:receive('*l')
  if not line then return nil, err end
  if line:byte(1) ~= 42 then -- '*'
    local a = {}
    for w in line:gmatch('%S+') do a[#a + 1] = w end
    return a
  end
  local n = tonumber(line:sub(2))
  if not n then return nil, 'protocol error' end
  local a = {}
  for i = 1, n do
    local len = c:receive('*l')
    len = len and tonumber(len:match('^%$(%d+)$'))
    if not len then return nil, 'protocol error' end
    local arg = c:receive(len + 2)
    if not arg then return nil, 'closed' end
    a[i] = arg:sub(1, len)
  end
  return a
end

local function serve(c)
  while true do
    local a, err = command(c)
    if not a then
      if err == 'protocol error' then c:send('-ERR protocol error\r\n') end
      break
    end
    if a[1] then
      local f = COMMANDS[upper(a[1])]
      local reply = f and f(a) or concat({ "-ERR unknown command '", a[1], "'\r\n" })
      if not c:send(reply) then break end
    end
  end
  c:close()
end

L(function()
  local srv = L.tcp()
  srv:setoption('reuseport', true)
  assert(srv:bind(host, port))
  assert(srv:listen())
  print(('listening on %s:%d'):format(srv:getsockname()))
  io.stdout:flush()
  while true do
    local c, err = srv:accept()
    if c then
      L.spawn(serve, c)
    elseif err == 'closed' then
      break
    else
      -- (A timeout only says that nobody came for a minute.)
      if err ~= 'timeout' then io.stderr:write('accept: ', err, '\n') end
    end
  end
end)
