-- connect by name: the resolver's addresses, tried in order (see tests/dns.rs).
local T = require('harness')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

local var = T.var
local DNS = '127.0.0.1:' .. assert(var('DNS_PORT'), 'DNS_PORT: run through tests/dns.rs')
local SILENT = '127.0.0.1:' .. var('DNS_SILENT_PORT')
local SERVFAIL = '127.0.0.1:' .. var('DNS_SERVFAIL_PORT')
local PORT, PORT6 = tonumber(var('ECHO_PORT')), tonumber(var('ECHO_PORT6'))

local function use(o)
  local c = { nameservers = { DNS }, hosts = var('DNS_EMPTY_HOSTS'), resolv_conf = var('DNS_QUICK_CONF') }
  for k, v in pairs(o or {}) do c[k] = v end
  L.config(c)
end

-- Connects to host:port; returns the socket and the peer's greeting
-- ('hello v4' or 'hello v6': which address took the connection).
local function connect(host, port)
  local s = L.tcp()
  local r, e = s:connect(host, port)
  if r ~= 1 then return nil, e end
  local hello, e2 = s:receive('*l')
  if not hello then error('greeting: ' .. tostring(e2), 2) end
  return s, hello
end

local function roundtrip(s, what)
  eq(s:send(what .. '\n'), #what + 1, what .. ': send')
  eq(s:receive('*l'), what, what .. ': echo')
end

T.case('connect to an A name; a round trip', function()
  use()
  local s, hello = connect('v4.test', PORT)
  eq(hello, 'hello v4', 'greeting')
  roundtrip(s, 'over v4.test')
  eq(s:close(), 1, 'close')
end)

T.case('connect to an AAAA name over ::1', function()
  if not PORT6 then T.skip('no IPv6 loopback') end
  use()
  local s, hello = connect('v6.test', PORT6)
  eq(hello, 'hello v6', 'greeting')
  roundtrip(s, 'over v6.test')
  s:close()
end)

T.case('A and AAAA: IPv4 is tried first', function()
  use()
  local s, hello = connect('both.test', PORT)
  eq(hello, 'hello v4', 'greeting')
  roundtrip(s, 'both')
  s:close()
end)

T.case('A and AAAA: refused on IPv4, then IPv6', function()
  if not PORT6 then T.skip('no IPv6 loopback') end
  use()
  -- Nothing listens on 127.0.0.1 at PORT6.
  same(pack(L.tcp():connect('127.0.0.1', PORT6)), pack(nil, 'connection refused'), 'IPv4 alone')
  local s, hello = connect('both.test', PORT6)
  eq(hello, 'hello v6', 'greeting')
  roundtrip(s, 'second address')
  s:close()
end)

T.case('connect through a CNAME', function()
  use()
  local s, hello = connect('alias.test', PORT)
  eq(hello, 'hello v4', 'greeting')
  s:close()
end)

T.case('connect to a name from the hosts file', function()
  use({ hosts = var('DNS_HOSTS') })
  local s, hello = connect('fromhosts.test', PORT)
  eq(hello, 'hello v4', 'greeting')
  s:close()
end)

T.case('NXDOMAIN: nil, "no such host"; the socket is closed', function()
  use()
  local s = L.tcp()
  same(pack(s:connect('nx.test', PORT)), pack(nil, 'no such host'), 'connect')
  same(pack(s:close()), pack(nil, 'closed'), 'close after')
  -- and can connect again
  eq(s:connect('v4.test', PORT), 1, 'connect again')
  eq(s:receive('*l'), 'hello v4', 'greeting')
  s:close()
end)

T.case('SERVFAIL: nil, "dns server failure"', function()
  use({ nameservers = { SERVFAIL } })
  same(pack(L.tcp():connect('v4.test', PORT)), pack(nil, 'dns server failure'))
end)

T.case('no answer: nil, "dns timeout"; other threads run meanwhile', function()
  use({ nameservers = { SILENT } })
  local ticks, done = 0, false
  local ticker = L.spawn(function()
    while not done do
      L.sleep(0.05)
      if not done then ticks = ticks + 1 end
    end
  end)
  local s = L.tcp()
  local r = pack(s:connect('v4.test', PORT))
  done = true
  L.wait(ticker)
  same(r, pack(nil, 'dns timeout'), 'connect')
  T.ok(ticks >= 10, 'ticks while resolving: ' .. ticks)
end)

T.case('close while the name resolves: the connect ends with "closed"', function()
  -- The first nameserver is silent: the name takes a second to resolve.
  use({ nameservers = { SILENT, DNS } })
  local s = L.tcp()
  local t = L.spawn(function() return s:connect('v4.test', PORT) end)
  L.sleep(0.1)
  local closed = pack(s:close())
  local r = pack(L.wait(t))
  local after = pack(s:close())
  same(r, pack(nil, 'closed'), 'the connect of a socket closed meanwhile')
  same(closed, pack(1), 'close of a socket that is connecting')
  same(after, pack(nil, 'closed'), 'close again')
end)

T.case('reconnect by name to another name', function()
  if not PORT6 then T.skip('no IPv6 loopback') end
  use()
  local s, hello = connect('v4.test', PORT)
  eq(hello, 'hello v4', 'first')
  eq(s:connect('v6.test', PORT6), 1, 'second connect')
  eq(s:receive('*l'), 'hello v6', 'second greeting')
  roundtrip(s, 'after reconnecting')
  s:close()
end)

T.case('50 light threads connect by one name at once', function()
  use()
  local threads = {}
  for i = 1, 50 do
    threads[i] = L.spawn(function()
      local s, hello = connect('both.test', PORT)
      if not s then return 'connect: ' .. tostring(hello) end
      roundtrip(s, 'thread ' .. i)
      s:close()
      return hello
    end)
  end
  for i = 1, 50 do
    eq(L.wait(threads[i]), 'hello v4', 'thread ' .. i)
  end
end)

return T.run()
