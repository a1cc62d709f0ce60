-- cosocket.udp: what the OpenResty oracle cannot show (tests/oracle/udp*.lua
-- show the results and errors): memcached, bind, names that wait for the
-- nameserver, several threads on one socket, and a flood beside a tcp thread.
local T = require('harness')
local L = T.L

local var = T.var
local UDP = tonumber(var('PEER_UDP_PORT'))
local MEMCACHED = tonumber(var('PEER_MEMCACHED_PORT'))
assert(UDP, 'PEER_UDP_PORT must be set (run through tests/lua.rs)')

local function peer()
  local u = L.udp()
  T.eq(u:setpeername(T.host, UDP), 1, 'setpeername')
  return u
end

T.case('memcached over UDP: its frame header, a value across several datagrams', function()
  if not MEMCACHED then T.fail('no memcached (make test installs it; tests/peer/udp.rs starts it)') end
  local m = L.udp()
  m:settimeout(5000)
  T.eq(m:setpeername(T.host, MEMCACHED), 1, 'setpeername')
  -- Request id, sequence number, datagrams in all, reserved: 16 bits each.
  local function header(id, seq, total)
    return string.char(math.floor(id / 256), id % 256, 0, seq, 0, total, 0, 0)
  end
  local function request(id, text)
    T.eq(m:send({ header(id, 0, 1), text }), 1, 'send')
    local parts, total = {}, nil
    repeat
      local d, e = m:receive()
      T.ok(d, 'receive: ' .. tostring(e))
      T.eq(d:sub(1, 2), header(id, 0, 1):sub(1, 2), 'the request id')
      total = d:byte(6)
      parts[d:byte(4) + 1] = d:sub(9)
    until #parts == total
    return table.concat(parts), total
  end
  local key = 'coevent:' .. T.pid()
  T.eq(request(1, 'set ' .. key .. ' 0 0 5\r\nhello\r\n'), 'STORED\r\n')
  T.same(T.pack(request(2, 'get ' .. key .. '\r\n')), { 'VALUE ' .. key .. ' 0 5\r\nhello\r\nEND\r\n', 1 })
  local big = T.pattern(5000)
  T.eq(request(3, 'set ' .. key .. ' 0 0 5000\r\n' .. big .. '\r\n'), 'STORED\r\n')
  local v, total = request(4, 'get ' .. key .. '\r\n')
  T.ok(total > 1, 'the value came in more than one datagram (' .. total .. ')')
  T.eq(v, 'VALUE ' .. key .. ' 0 5000\r\n' .. big .. '\r\nEND\r\n', 'the value')
  T.eq(request(5, 'delete ' .. key .. '\r\n'), 'DELETED\r\n')
  T.eq(request(6, 'get ' .. key .. '\r\n'), 'END\r\n')
  T.eq(m:close(), 1, 'close')
end)

T.case('bind: the local address, and port, of the next setpeername', function()
  local u = L.udp()
  T.eq(u:bind('127.0.0.2'), 1, 'bind')
  T.eq(u:setpeername(T.host, UDP), 1, 'setpeername')
  T.eq(u:send('whoami'), 1, 'send')
  local me = u:receive()
  local port = tonumber(me:match('^127%.0%.0%.2:(%d+)$'))
  T.ok(port, 'the peer saw ' .. T.show(me))
  u:close()
  -- That port, now free, bound explicitly.
  local v = L.udp()
  T.eq(v:bind('127.0.0.3', port), 1, 'bind with a port')
  T.eq(v:setpeername(T.host, UDP), 1, 'setpeername')
  v:send('whoami')
  T.eq(v:receive(), '127.0.0.3:' .. port, 'the source')
  -- The binding stays for the next setpeername, whose socket is new.
  T.eq(v:setpeername(T.host, UDP), 1, 'setpeername again')
  v:send('whoami')
  T.eq(v:receive(), '127.0.0.3:' .. port, 'the source again')
  -- Taken already: the kernel's word, at setpeername.
  local w = L.udp()
  w:bind('127.0.0.3', port)
  T.same(T.pack(w:setpeername(T.host, UDP)), { nil, 'address already in use' })
  v:close()
  T.same(T.pack(w:receive()), { nil, 'closed' }, 'a failed setpeername leaves no socket')
  T.same(T.pack(L.udp():bind('localhost')), { nil, 'bad address' })
  T.same(T.pack(L.udp():bind('[::1]')), { nil, 'bad address' })
  T.same(T.pack(L.udp():bind('127.0.0.1', 70000)), { nil, 'bad port number: 70000' })
  T.same(T.pack(L.udp():bind('127.0.0.1', 'x')), { nil, 'expecting port to be anumber but got type: string' })
  T.raises(function() L.udp():bind() end, 'expecting 2 or 3 arguments, but got 1')
  T.raises(function() L.udp():bind({}) end, "bad argument #1 to 'bind' (string expected, got table)")
  local x = L.udp()
  x:bind('::1')
  T.same(T.pack(x:setpeername(T.host, UDP)), { nil, 'address family not supported by protocol' })
end)

T.case('names wait for the nameserver; a close ends the wait', function()
  L.config({ nameservers = { '127.0.0.1:' .. T.dns }, hosts = '/dev/null' })
  local u = L.udp()
  T.eq(u:setpeername('peer.test', UDP), 1, 'setpeername peer.test')
  u:send('by name')
  T.eq(u:receive(), 'by name')
  T.same(T.pack(L.udp():setpeername('nope.test', UDP)), { nil, 'no such host' })
  -- Another thread closes the socket while its name is looked up (not cached).
  local v = L.udp()
  local t = L.spawn(function() return v:setpeername('other.test', UDP) end)
  T.eq(v:close(), 1, 'close')
  T.same(T.pack(L.wait(t)), { nil, 'closed' })
  T.same(T.pack(v:receive()), { nil, 'closed' })
  u:close()
  L.config({})
end)

T.case('one thread receives while another sends; a second receiver is busy; close wakes it', function()
  local u = peer()
  local t = L.spawn(function() return u:receive() end)
  T.same(T.pack(u:receive()), { nil, 'socket busy' }, 'a second receiver')
  T.eq(u:send('to the waiting reader'), 1, 'send')
  T.same(T.pack(L.wait(t)), { 'to the waiting reader' })
  t = L.spawn(function() return u:receive() end)
  T.eq(u:close(), 1, 'close')
  T.same(T.pack(L.wait(t)), { nil, 'closed' })
end)

T.case('a killed receiver leaves the socket usable', function()
  local u = peer()
  local t = L.spawn(function() return u:receive() end)
  T.eq(L.kill(t), true, 'kill')
  u:send('after the kill')
  T.eq(u:receive(), 'after the kill')
  u:close()
end)

T.case('timeouts: per receive, the socket stays; settimeout(0) is the default', function()
  local u = peer()
  u:settimeout(20)
  u:send('silent')
  T.same(T.pack(u:receive()), { nil, 'timeout' })
  u:send('many 2')
  T.eq(u:receive(), '1')
  T.eq(u:receive(), '2')
  u:settimeout(0)
  local t = L.spawn(function() return u:receive() end)
  L.sleep(0.05)
  u:send('late')
  T.eq(L.wait(t), 'late', 'no timeout after 50 ms')
  u:close()
end)

-- 100 datagrams wait at the socket (the peer answered `many 100` before it
-- answered another socket's `sync`). The reader takes them without waiting,
-- and still lets the tcp thread run: after 32 receives, before the 33rd.
T.case('a flood of datagrams does not starve a tcp thread', function()
  local u, sync = peer(), peer()
  u:send('many 100')
  sync:send('sync')
  T.eq(sync:receive(), 'sync')
  sync:close()
  local s = T.connect('lines')
  T.eq(s:receive('*l'), 'one', 'the tcp data is here (one write)')
  local taken, seen = 0, nil
  local t = L.spawn(function()
    L.swop()
    seen = taken
    return s:receive('*l'), s:receive('*l')
  end)
  for i = 1, 100 do
    T.eq(u:receive(), tostring(i), 'datagram ' .. i)
    taken = taken + 1
  end
  T.eq(seen, 32, 'datagrams taken when the tcp thread ran')
  T.same(T.pack(L.wait(t)), { 'two', '' })
  s:close()
  u:close()
end)

T.case('a dropped socket is closed by the collector', function()
  local before = T.fds()
  do
    local u = peer()
    u:send('x')
    T.eq(u:receive(), 'x')
  end
  collectgarbage()
  collectgarbage()
  T.eq(T.fds(), before, 'fds')
end)

T.case('outside a loop', function()
  local u = L.udp()
  T.eq(u:bind('127.0.0.1'), 1, 'bind')
  T.eq(u:settimeout(10), nil, 'settimeout')
  T.raises(function() u:setpeername(T.host, UDP) end, 'not inside a coevent loop')
  T.same(T.pack(u:close()), { nil, 'closed' })
  T.raises(function() L.udp().send({}, 'x') end, "calling 'send' on bad self")
end, { loop = false })

return T.run()
