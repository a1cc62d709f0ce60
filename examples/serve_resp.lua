-- A RESP (Redis protocol) server: PING, ECHO, SET, GET, DEL, and the CONFIG
-- GET that redis-benchmark asks first. redis-cli and redis-benchmark talk to it.
-- usage: coevent serve_resp.lua [PORT (0: a free one)] [HOST]
-- Prints "listening on HOST:PORT".
local port, host = tonumber(arg[1]) or 6380, arg[2] or '127.0.0.1'
local L = require('coevent')
local concat, upper = table.concat, string.upper

local store = {}

local function bulk(v)
  if v == nil then return '$-1\r\n' end
  return { '$', #v, '\r\n', v, '\r\n' }
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
      io.stderr:write('accept: ', err, '\n')
    end
  end
end)
