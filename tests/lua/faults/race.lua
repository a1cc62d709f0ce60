-- Timeouts firing in the same loop turn as readiness: every wait ends exactly
-- once, with the data or with a timeout, never both, never neither; the socket
-- is usable after a timeout. 50 other threads do round trips meanwhile. The
-- timeouts (1 + i % 3 ms) and close delays (1 + floor(i / 3) % 3 ms) below
-- pair every value of 1..3 ms with every other, ties included.
local T = require('harness')
local F = require('support')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

-- Thread i sends numbered lines to a peer that echoes each after `delay_us`,
-- reading each with a timeout of 1 to 3 ms; returns (answered, timed out).
local function racer(i, rounds, delay_us)
  return function()
    local s = T.connect('lateecho ' .. delay_us)
    local data, timeouts = 0, 0
    for j = 1, rounds do
      local line = i .. ' ' .. j
      eq(s:send(line .. '\n'), #line + 1, 'send ' .. line)
      s:settimeout(1 + (i + j) % 3)
      local r, e, partial = s:receive('*l')
      if r ~= nil then
        eq(r, line, 'the answer')
        data = data + 1
      else
        -- A timeout, and nothing of the answer taken: it is read next, once.
        same(pack(r, e, partial), pack(nil, 'timeout', ''), 'thread ' .. i .. ' round ' .. j)
        timeouts = timeouts + 1
        s:settimeout(10000)
        eq(s:receive('*l'), line, 'the late answer')
      end
    end
    -- Nothing extra arrived: every answer was taken exactly once.
    eq(s:send('last\n'), 5, 'send')
    s:settimeout(10000)
    eq(s:receive('*l'), 'last', 'the last answer comes next')
    s:settimeout(1)
    same(pack(s:receive(1)), pack(nil, 'timeout', ''), 'nothing after it')
    eq(s:close(), 1, 'close: still open after its timeouts')
    return data, timeouts
  end
end

T.case('100 threads, reads with 1..3 ms timeouts, answers after 1..3 ms: one outcome each', function()
  local n, rounds = 100, 20
  if F.valgrind then n, rounds = 20, 10 end
  local data, timeouts = 0, 0
  F.amid(function()
    local ts = {}
    for i = 1, n do ts[i] = L.spawn(racer(i, rounds, 1000 * (1 + i % 3))) end
    for i = 1, n do
      local d, t = L.wait(ts[i])
      if type(d) ~= 'number' then error('thread ' .. i .. ': ' .. tostring(t), 0) end
      eq(d + t, rounds, 'thread ' .. i .. ': outcomes')
      data, timeouts = data + d, timeouts + t
    end
  end)
  eq(data + timeouts, n * rounds, 'outcomes in all')
  print(string.format('# %d reads: %d answered, %d timed out; %d bystander round trips, %d during',
    n * rounds, data, timeouts, F.last.rounds, F.last.during))
end)

T.case('read timeouts racing a close from another thread: closed or timeout, once', function()
  local n = F.valgrind and 20 or 200
  local counts = { closed = 0, timeout = 0 }
  F.amid(function()
    local readers, closers = {}, {}
    for i = 1, n do
      local s = T.connect('silent')
      s:settimeout(1 + i % 3)
      readers[i] = L.spawn(function() return s:receive('*l') end)
      closers[i] = L.spawn(function()
        L.sleep((1 + math.floor(i / 3) % 3) / 1000)
        return s:close()
      end)
    end
    for i = 1, n do
      local r = pack(L.wait(readers[i]))
      eq(r[1], nil, 'reader ' .. i)
      T.ok(r[2] == 'closed' or r[2] == 'timeout', 'reader ' .. i .. ': ' .. tostring(r[2]))
      eq(r[3], '', 'reader ' .. i .. ': partial')
      counts[r[2]] = counts[r[2]] + 1
      -- A timeout leaves the socket open, so the close finds it open either way.
      same(pack(L.wait(closers[i])), pack(1), 'closer ' .. i)
    end
  end)
  eq(counts.closed + counts.timeout, n, 'outcomes')
  print(string.format('# %d reads: %d closed, %d timed out', n, counts.closed, counts.timeout))
end)

T.case('connect timeouts of 1..3 ms racing a close at 1..3 ms: timeout or closed, once; usable after', function()
  if not T.full then T.skip('could not fill an accept queue') end
  local n = F.valgrind and 20 or 200
  local counts = { closed = 0, timeout = 0 }
  F.amid(function()
    local socks, connecting, closers = {}, {}, {}
    for i = 1, n do
      local s = L.tcp()
      socks[i] = s
      s:settimeout(1 + i % 3)
      connecting[i] = L.spawn(function() return s:connect(T.host, T.full) end)
      closers[i] = L.spawn(function()
        L.sleep((1 + math.floor(i / 3) % 3) / 1000)
        return s:close()
      end)
    end
    for i = 1, n do
      local r = pack(L.wait(connecting[i]))
      local c = pack(L.wait(closers[i]))
      eq(r[1], nil, 'connect ' .. i)
      if r[2] == 'timeout' then
        -- The timeout closed the socket before the close came.
        same(c, pack(nil, 'closed'), 'close ' .. i .. ' after a timeout')
      else
        eq(r[2], 'closed', 'connect ' .. i .. ': error')
        same(c, pack(1), 'close ' .. i .. ' that ended the connect')
      end
      counts[r[2]] = counts[r[2]] + 1
      local s = socks[i]
      s:settimeout(10000)
      eq(s:connect(T.host, T.port), 1, 'connect again ' .. i)
      eq(s:send('ping\nPING\r\n'), 11, 'send ' .. i)
      eq(s:receive('*l'), '+PONG', 'round trip ' .. i)
      eq(s:close(), 1, 'close ' .. i)
    end
  end)
  eq(counts.closed + counts.timeout, n, 'outcomes')
  print(string.format('# %d connects: %d closed, %d timed out', n, counts.closed, counts.timeout))
end)

T.case('a wait that starts late in a long loop turn still gets its whole timeout', function()
  F.amid(function()
    local s = T.connect('lateecho 100000')
    L.swop()
    -- 300 ms of work without yielding: the rest of this loop turn.
    local t0 = F.now()
    for _ = 1, 1e8 do
      if F.now() - t0 >= 0.3 then break end
    end
    -- Under 300 ms: a deadline counted from the turn's start has passed already.
    s:settimeout(280)
    eq(s:send('x\n'), 2, 'send')
    -- The answer comes 100 ms after the request, within the 280 ms timeout.
    local t1 = F.now()
    local r = pack(s:receive('*l'))
    local waited = F.now() - t1
    same(r, pack('x'), string.format('receive after waiting %.2f s', waited))
    eq(s:close(), 1, 'close')
  end)
end)

return T.run()
