-- Listening sockets: bind, listen, accept, getsockname; clients in the same loop.
local T = require('harness')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

-- A listener on 127.0.0.1 at a free port, and the port.
local function listener(host)
  local srv = L.tcp()
  eq(srv:bind(host or '127.0.0.1', 0), 1, 'bind')
  eq(srv:listen(), 1, 'listen')
  local ip, port = srv:getsockname()
  eq(ip, host or '127.0.0.1', 'getsockname address')
  T.ok(port > 0, 'a port was picked')
  return srv, port
end

local function client(host, port)
  local c = L.tcp()
  eq(c:connect(host, port), 1, 'connect')
  return c
end

T.case('accept gives a stream: both ways, every stream method', function()
  local srv, port = listener()
  local t = L.spawn(function()
    local c = client('127.0.0.1', port)
    eq(c:send('hello\nworld'), 11, 'client send')
    eq(c:receive('*l'), 'HELLO', 'client receive')
    local ip, p = c:getsockname()
    eq(ip, '127.0.0.1', 'client address')
    T.ok(p ~= port and p > 0, 'client port')
    c:close()
  end)
  local s = assert(srv:accept())
  eq(s:receive('*l'), 'hello', 'server receive line')
  eq(s:send('HELLO\n'), 6, 'server send')
  eq(s:receive(), 'world', 'server receive all')
  same(pack(s:getsockname()), pack('127.0.0.1', port), 'server side of the connection')
  same(pack(s:receive('*l')), pack(nil, 'closed', ''), 'closed after all')
  L.wait(t)
  eq(srv:close(), 1, 'close the listener')
  same(pack(srv:close()), pack(nil, 'closed'), 'closed twice')
  same(pack(srv:accept()), pack(nil, 'closed'), 'accept after close')
end)

-- Issue 23, defect 9: an accepted connection has no pool key; filed under
-- one, a client connect could take the server's peer for its own.
T.case('setkeepalive refuses a connection a listener accepted', function()
  local srv, port = listener()
  local c = client('127.0.0.1', port)
  local s = assert(srv:accept())
  T.raises(function() s:setkeepalive() end, 'setkeepalive: a connection a listener accepted cannot go into a pool')
  eq(c:send('from the client\n'), 16, 'send')
  eq(s:receive('*l'), 'from the client', 'the accepted socket is still whole')
  -- A client connect to a pool named '' makes its own connection.
  local other = L.tcp()
  eq(other:connect('127.0.0.1', port, { pool = '' }), 1, 'connect')
  eq(other:getreusedtimes(), 0, 'not the accepted connection')
  local s2 = assert(srv:accept())
  for _, x in ipairs({ other, s2, s, c, srv }) do x:close() end
end)

T.case('accept times out and the listener stays usable', function()
  local srv, port = listener()
  srv:settimeout(30)
  same(pack(srv:accept()), pack(nil, 'timeout'), 'nobody connects')
  local c = client('127.0.0.1', port)
  local s = assert(srv:accept())
  eq(c:send('x'), 1, 'send')
  eq(s:receive(1), 'x', 'through the accepted socket')
  s:close()
  c:close()
  srv:close()
end)

T.case('closing the listener wakes every waiting accept with closed', function()
  local srv = listener()
  local ts = {}
  for i = 1, 3 do
    ts[i] = L.spawn(function() return pack(srv:accept()) end)
  end
  L.swop()
  eq(srv:close(), 1, 'close')
  for i = 1, 3 do same(L.wait(ts[i]), pack(nil, 'closed'), 'acceptor ' .. i) end
end)

T.case('several acceptors: each connection goes to exactly one', function()
  local srv, port = listener()
  local N, got, per = 30, {}, {}
  local ts = {}
  for i = 1, 3 do
    per[i] = 0
    ts[i] = L.spawn(function()
      while true do
        local s, e = srv:accept()
        if not s then return e end
        per[i] = per[i] + 1
        local line = s:receive('*l')
        got[#got + 1] = line
        s:close()
      end
    end)
  end
  for i = 1, N do
    local c = client('127.0.0.1', port)
    c:send('client ' .. i .. '\n')
    c:close()
  end
  while #got < N do L.sleep(0.001) end
  srv:close()
  for i = 1, 3 do eq(L.wait(ts[i]), 'closed', 'acceptor ' .. i .. ' ends') end
  table.sort(got)
  local seen = {}
  for _, g in ipairs(got) do
    T.ok(not seen[g], 'once: ' .. g)
    seen[g] = true
  end
  eq(#got, N, 'connections')
  for i = 1, 3 do T.ok(per[i] > 0, 'acceptor ' .. i .. ' took some (' .. per[i] .. ')') end
end)

T.case('killing the acceptor on the fd passes it to the next', function()
  local srv, port = listener()
  local first = L.spawn(function() return srv:accept() end)
  local second = L.spawn(function()
    local s = srv:accept()
    local d = s:receive('*l')
    s:close()
    return d
  end)
  L.swop()
  eq(L.kill(first), true, 'kill')
  local c = client('127.0.0.1', port)
  c:send('to the second\n')
  eq(L.wait(second), 'to the second', 'the second acceptor')
  c:close()
  srv:close()
end)

T.case('a flood of connections is accepted in batches: other threads run', function()
  local srv, port = listener()
  local N = 100
  local clients = {}
  for i = 1, N do clients[i] = client('127.0.0.1', port) end
  local turns, during = 0, nil
  local ticker = L.spawn(function()
    while not during do
      turns = turns + 1
      L.swop()
    end
  end)
  L.swop()
  local start, accepted = turns, {}
  for i = 1, N do accepted[i] = assert(srv:accept()) end
  during = turns - start
  L.wait(ticker)
  T.ok(during >= 3, 'the other thread ran ' .. during .. ' times during 100 accepts')
  for i = 1, N do
    accepted[i]:close()
    clients[i]:close()
  end
  srv:close()
end)

T.case('address in use, bad addresses, wrong states', function()
  local srv, port = listener()
  local other = L.tcp()
  same(pack(other:bind('127.0.0.1', port)), pack(nil, 'address already in use'), 'same port')
  same(pack(other:bind('127.0.0.1', 70000)), pack(nil, 'bad port number: 70000'), 'bad port')
  same(pack(other:bind('127.0.0.1')), pack(nil, 'missing the port number'), 'no port')
  same(pack(other:bind('example.com', 80)), pack(nil, 'no such host'), 'a name')
  same(pack(other:bind('192.0.2.1', 0)), pack(nil, 'cannot assign requested address'), 'not ours')
  T.raises(function() other:bind(nil, 80) end, "bad argument #1 to 'bind' (string expected, got nil)")
  same(pack(other:listen()), pack(nil, 'not bound'), 'listen unbound')
  same(pack(other:accept()), pack(nil, 'not listening'), 'accept unbound')
  same(pack(other:getsockname()), pack(nil, 'closed'), 'getsockname unbound')
  T.raises(function() srv:receive() end, "calling 'receive' on a listening cosocket")
  T.raises(function() srv:send('x') end, "calling 'send' on a listening cosocket")
  T.raises(function() srv:connect('127.0.0.1', port) end, "calling 'connect' on a listening cosocket")
  same(pack(srv:bind('127.0.0.1', 0)), pack(nil, 'already listening'), 'bind a listener')
  eq(srv:listen(10), 1, 'listen again')
  srv:close()
  other:close()
end)

T.case('reuseaddr and reuseport', function()
  local a = L.tcp()
  eq(a:setoption('reuseport', true), true, 'reuseport before bind')
  eq(a:bind('127.0.0.1', 0), 1, 'bind a')
  eq(a:listen(), 1, 'listen a')
  local _, port = a:getsockname()
  local b = L.tcp()
  eq(b:setoption('reuseport', true), true, 'reuseport before bind')
  eq(b:bind('127.0.0.1', port), 1, 'bind b to the same port')
  eq(b:listen(), 1, 'listen b')
  eq(a:setoption('reuseaddr', false), true, 'on a listener')
  a:close()
  b:close()
end)

T.case('bind before connect: the connection leaves from the bound address', function()
  local srv, port = listener()
  local c = L.tcp()
  eq(c:bind('127.0.0.1', 0), 1, 'bind')
  local _, mine = c:getsockname()
  eq(c:connect('127.0.0.1', port), 1, 'connect')
  same(pack(c:getsockname()), pack('127.0.0.1', mine), 'the same local port')
  local s = srv:accept()
  c:send('from ' .. mine .. '\n')
  eq(s:receive('*l'), 'from ' .. mine, 'through it')
  s:close()
  c:close()
  -- A bound socket whose family the host does not share.
  local v6 = L.tcp()
  eq(v6:bind('127.0.0.1', 0), 1, 'bind v4')
  same(pack(v6:connect('::1', port)), pack(nil, 'address family not supported by protocol'), 'to v6')
  srv:close()
end)

T.case('a unix socket listener', function()
  local path = os.tmpname()
  os.remove(path)
  local srv = L.tcp()
  eq(srv:bind('unix:' .. path), 1, 'bind')
  eq(srv:listen(), 1, 'listen')
  same(pack(srv:getsockname()), pack(path), 'getsockname: the path')
  local t = L.spawn(function()
    local c = client('unix:' .. path)
    c:send('over unix\n')
    local r = c:receive('*l')
    c:close()
    return r
  end)
  local s = srv:accept()
  eq(s:receive('*l'), 'over unix', 'server receive')
  s:send('back\n')
  eq(L.wait(t), 'back', 'client receive')
  s:close()
  srv:close()
  os.remove(path)
end)

T.case('IPv6 on ::1', function()
  local srv = L.tcp()
  local r, e = srv:bind('::1', 0)
  if not r then T.skip('no IPv6 loopback: ' .. e) end
  eq(srv:listen(), 1, 'listen')
  local ip, port = srv:getsockname()
  eq(ip, '::1', 'getsockname')
  local t = L.spawn(function()
    local c = client('::1', port)
    c:send('six\n')
    c:close()
  end)
  local s = srv:accept()
  eq(s:receive('*l'), 'six', 'over IPv6')
  L.wait(t)
  s:close()
  srv:close()
end)

return T.run()
