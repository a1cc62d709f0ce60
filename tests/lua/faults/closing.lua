-- Sockets pulled away under a waiting thread, and threads that end (killed, or
-- by an error) while they hold sockets; 50 other threads do round trips meanwhile.
local T = require('harness')
local F = require('support')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

T.case('a socket closed by another thread while one reads: the reader wakes with closed', function()
  F.amid(function()
    local s = T.connect('silent')
    local reader = L.spawn(function() return s:receive('*l') end)
    local closer = L.spawn(function()
      L.sleep(0.05)
      return s:close()
    end)
    same(pack(L.wait(reader)), pack(nil, 'closed', ''), 'the reader')
    same(pack(L.wait(closer)), pack(1), 'the close')
    same(pack(s:close()), pack(nil, 'closed'), 'close again')
  end)
end)

T.case('a socket closed by another thread while one sends 64 MiB: the writer wakes with closed', function()
  local data = T.mib(64)
  F.amid(function()
    local s = T.connect('sink')
    local writer = L.spawn(function() return s:send(data) end)
    local closer = L.spawn(function()
      L.sleep(0.05)
      return s:close()
    end)
    same(pack(L.wait(writer)), pack(nil, 'closed'), 'the writer')
    same(pack(L.wait(closer)), pack(1), 'the close')
  end)
end)

T.case('a socket closed by another thread while one connects: the connect ends with closed', function()
  if not T.full then T.skip('could not fill an accept queue') end
  F.amid(function()
    local s = L.tcp()
    s:settimeout(10000)
    local connecting = L.spawn(function() return s:connect(T.host, T.full) end)
    local closer = L.spawn(function()
      L.sleep(0.05)
      return s:close()
    end)
    same(pack(L.wait(connecting)), pack(nil, 'closed'), 'the connect')
    same(pack(L.wait(closer)), pack(1), 'the close')
  end)
end)

T.case('a reader and a writer on one socket, closed by a third thread: both wake with closed', function()
  local data = T.mib(64)
  F.amid(function()
    local s = T.connect('sink')
    local reader = L.spawn(function() return s:receive(1) end)
    local writer = L.spawn(function() return s:send(data) end)
    L.sleep(0.05)
    eq(s:close(), 1, 'close')
    same(pack(L.wait(reader)), pack(nil, 'closed', ''), 'the reader')
    same(pack(L.wait(writer)), pack(nil, 'closed'), 'the writer')
  end)
end)

T.case('readers woken by a close leave nothing behind: later threads read their own sockets', function()
  F.amid(function()
    local socks, readers = {}, {}
    for i = 1, 20 do
      socks[i] = T.connect('silent')
      readers[i] = L.spawn(function() return socks[i]:receive('*l') end)
    end
    for i = 1, 20 do eq(socks[i]:close(), 1, 'close ' .. i) end
    for i = 1, 20 do same(pack(L.wait(readers[i])), pack(nil, 'closed', ''), 'reader ' .. i) end
    -- New threads take the ended ones' places; each reads an open socket.
    for i = 1, 20 do
      local s = T.connect('echo')
      local r = L.spawn(function() return s:receive('*l') end)
      eq(s:send('line ' .. i .. '\n'), #tostring(i) + 6, 'send ' .. i)
      same(pack(L.wait(r)), pack('line ' .. i), 'a later reader ' .. i)
      local w = L.spawn(function() return s:send('more\n') end)
      same(pack(L.wait(w)), pack(5), 'a later writer ' .. i)
      eq(s:receive('*l'), 'more', 'echo ' .. i)
      eq(s:close(), 1, 'close ' .. i)
    end
  end)
end)

-- Sockets to the peer, for a thread to hold: the first into a peer that reads
-- nothing, the others silent.
local function sockets(k)
  local socks = {}
  for i = 1, k do socks[i] = T.connect(i == 1 and 'sink' or 'silent') end
  return socks
end

T.case('a thread killed while it holds sockets: after collectgarbage the fds are back', function()
  local start = T.fds()
  F.amid(function()
    local before = T.fds()
    -- The sockets are made here and handed over: the threads' stacks hold them.
    local writer = L.spawn(function(socks)
      socks[1]:settimeout(5000)
      return socks[1]:send(T.mib(64))
    end, sockets(10))
    local reader = L.spawn(function(s, extra)
      s:settimeout(5000)
      return s:receive('*l'), extra
    end, T.connect('silent'), sockets(2))
    eq(T.fds(), before + 13, 'fds while they hold their sockets')
    eq(L.kill(writer), true, 'kill the writer')
    eq(L.kill(reader), true, 'kill the reader')
    same(pack(L.wait(writer)), pack(nil, 'killed'), "the writer's result")
    same(pack(L.wait(reader)), pack(nil, 'killed'), "the reader's result")
    writer, reader = nil, nil
    collectgarbage()
    collectgarbage()
    L.swop()
    eq(T.fds(), before, 'fds after the GC')
  end)
  collectgarbage()
  eq(T.fds(), start, 'fds at the end, in the loop')
end)

T.case('a thread that raises while it holds sockets: after collectgarbage the fds are back', function()
  local start = T.fds()
  F.amid(function()
    local before = T.fds()
    local echo = T.connect('echo')
    local t = L.spawn(function(s, socks)
      s:settimeout(5000)
      eq(s:send('x\n'), 2, 'send')
      eq(s:receive('*l'), 'x', 'a round trip before the error')
      error('the holder fails with ' .. #socks .. ' more sockets', 0)
    end, echo, sockets(9))
    echo = nil
    eq(T.fds(), before + 10, 'fds while it holds them')
    same(pack(L.wait(t)), pack(nil, 'the holder fails with 9 more sockets'), 'its error')
    t = nil
    collectgarbage()
    collectgarbage()
    L.swop()
    eq(T.fds(), before, 'fds after the GC')
  end)
  collectgarbage()
  eq(T.fds(), start, 'fds at the end, in the loop')
end)

T.case('100 threads killed while waiting on I/O, timers and each other; fds back after the GC', function()
  local n = F.valgrind and 20 or 100
  F.amid(function()
    local before = T.fds()
    local ts = {}
    for i = 1, n do
      local kind = i % 4
      ts[i] = L.spawn(function()
        if kind == 0 then
          local s = T.connect('silent')
          return s:receive('*l')
        elseif kind == 1 then
          local s = T.connect('sink')
          return s:send(T.mib(8))
        elseif kind == 2 then
          local s = T.connect('silent')
          L.sleep(3600)
          return s
        else
          local s = T.connect('silent')
          return L.wait(ts[i - 1]), s
        end
      end)
    end
    eq(T.fds(), before + n, 'one socket each')
    for i = n, 1, -1 do eq(L.kill(ts[i]), true, 'kill ' .. i) end
    for i = 1, n do same(pack(L.wait(ts[i])), pack(nil, 'killed'), 'thread ' .. i) end
    ts = nil
    collectgarbage()
    collectgarbage()
    L.swop()
    eq(T.fds(), before, 'fds after the GC')
  end)
end)

return T.run()
