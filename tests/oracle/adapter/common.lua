-- What both adapters give a case file (tests/oracle/*.lua): its environment.
-- A case prints what it observes, one line per call, in a form that is the
-- same on LuaJIT (OpenResty) and Lua 5.4 (coevent): values with their types
-- visible (strings quoted, bytes escaped; numbers without a subtype), their
-- count, and raised errors without the "file:line: " prefix (OpenResty
-- raises from C, where Lua adds no position).
--
--   show(label, ...)   prints `label: n=3 nil "closed" ""`
--   try(label, f)      calls f(r) (protected) and shows what f gave r, or
--                      prints `label: raises "message"`. Write
--                      `try('x', function(r) r(s:receive('x')) end)`: a method
--                      call with `:`, not a tail call, so a raised error names
--                      the method and numbers its arguments as in user code
--   tcp()              ngx.socket.tcp or cosocket.tcp
--   udp()              ngx.socket.udp or cosocket.udp
--   sockconnect(...)   ngx.socket.connect or cosocket.connect
--   sleep(s)           ngx.sleep or L.sleep
--   spawn(f, ...), wait(t), kill(t)
--                      ngx.thread's, or newthread, coroutine_wait, L.kill
--                      (wait gives the thread's results, or nil, err)
--   PEER               the scripted peer (tests/peer): port, unix, refused,
--                      host ('127.0.0.1'); its datagram servers (tests/peer/udp.rs):
--                      udp, udp_unix, udp_refused (a UDP port nobody listens on)
--                      tls_bad: the misbehaving TLS server (tests/tlspeer/bad.rs)
--   connect(cmd)       a socket connected to the peer that sent it `cmd\n`
--   now()              seconds since boot, to 10 ms (/proc/uptime)
local M = {}
local unpack = unpack or table.unpack

local function quote(s)
  return '"' .. s:gsub('[%z\1-\31"\\\127-\255]', function(c)
    local esc = { ['\r'] = '\\r', ['\n'] = '\\n', ['\t'] = '\\t', ['"'] = '\\"', ['\\'] = '\\\\' }
    return esc[c] or ('\\x%02x'):format(c:byte())
  end) .. '"'
end

local function value(v)
  local t = type(v)
  if t == 'string' then
    return quote(v)
  elseif t == 'number' then
    if v ~= v then return 'nan' end
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return ('%d'):format(v) end
    return ('%.17g'):format(v)
  elseif t == 'nil' or t == 'boolean' then
    return tostring(v)
  end
  return t
end

local function pack(...)
  return { n = select('#', ...), ... }
end

-- "/path/case.lua:12: msg" -> "msg"
local function message(e)
  if type(e) ~= 'string' then return value(e) end
  return quote((e:gsub('^[^\n]-:%d+: ', '', 1)))
end

function M.env(out, base)
  local env = setmetatable({}, { __index = _G })
  for k, v in pairs(base) do env[k] = v end
  local function show(label, ...)
    local r = pack(...)
    local parts = { label .. ':', 'n=' .. r.n }
    for i = 1, r.n do parts[#parts + 1] = value(r[i]) end
    out(table.concat(parts, ' '))
  end
  env.show = show
  env.try = function(label, f)
    local got
    local ok, e = pcall(f, function(...) got = pack(...) end)
    if not ok then
      out(label .. ': raises ' .. message(e))
    elseif got then
      show(label, unpack(got, 1, got.n))
    else
      out(label .. ': no results recorded')
    end
  end
  env.now = function()
    local f = assert(io.open('/proc/uptime'))
    local t = f:read('*l')
    f:close()
    return tonumber(t:match('^(%S+)'))
  end
  env.connect = function(cmd)
    local s = env.tcp()
    assert(s:connect(env.PEER.host, env.PEER.port))
    assert(s:send(cmd .. '\n'))
    return s
  end
  return env
end

-- Runs case file `path` in `env`; an error that escapes it is printed too.
function M.run(path, env, out)
  local f, err
  if setfenv then
    f, err = loadfile(path)
    if f then setfenv(f, env) end
  else
    f, err = loadfile(path, 't', env)
  end
  if not f then return out('CASE DOES NOT LOAD: ' .. err) end
  local ok, e = pcall(f)
  if not ok then out('CASE RAISED: ' .. message(e)) end
end

return M
