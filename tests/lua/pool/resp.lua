-- Inline redis commands for the pool scripts: what the server says about
-- its connections tells which one a request went over.
local T = require('harness')

local R = {}

-- A command's one-line reply (a bulk reply: its value).
function R.cmd(s, line)
  assert(s:send(line .. '\r\n'))
  local r = assert(s:receive('*l'))
  local n = r:match('^%$(%d+)$')
  if n then return assert(s:receive(tonumber(n) + 2)):sub(1, -3) end
  return r
end

-- The server's id of the connection under s.
function R.id(s)
  return tonumber(R.cmd(s, 'CLIENT ID'):match('^:(%d+)$'))
end

-- A new connection, through options (a pool) if given.
function R.connect(options)
  local s = T.L.tcp()
  local r, e = s:connect(T.host, T.redis, options)
  if r ~= 1 then error('connect to redis: ' .. tostring(e), 2) end
  return s
end

-- Whether the server still has a connection with this id.
function R.alive(id)
  local s = R.connect()
  local list = R.cmd(s, 'CLIENT LIST ID ' .. id)
  s:close()
  return list:find('id=' .. id .. ' ', 1, true) ~= nil
end

-- Waits (at most a second) until f() holds: for what the server or the pool
-- does on its own (a close noticed, an idle timeout), never for ordering.
function R.eventually(f, what)
  for _ = 1, 100 do
    if f() then return end
    T.L.sleep(0.01)
  end
  T.fail(what .. ': not within a second', 2)
end

return R
