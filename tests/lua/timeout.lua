-- settimeout: read, send and connect timeouts, and what the socket is after each.
local T = require('harness')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

T.case('a read timeout returns nil, timeout, partial and leaves the socket open', function()
  local s = T.connect('silent')
  s:settimeout(50)
  same(pack(s:receive('*l')), pack(nil, 'timeout', ''), "'*l'")
  same(pack(s:receive(10)), pack(nil, 'timeout', ''), 'a count')
  same(pack(s:receive('*a')), pack(nil, 'timeout', ''), "'*a'")
  eq(s:send('x'), 1, 'send still works')
  same(pack(s:receive(1)), pack(nil, 'timeout', ''), 'and a read times out again')
  eq(s:close(), 1, 'close: the socket was still open')
end)

-- Sends text behind a marker byte and reads the marker with the default timeout,
-- then leaves the socket's timeout at 30 ms. The echo peer answers one write
-- with one write, and a read takes all that arrived, so once the marker is here
-- the text is buffered: the short timeout after this finds it whatever the
-- machine's load.
local function buffered(s, text)
  eq(s:send('.' .. text), #text + 1, 'send')
  s:settimeout(60000)
  eq(s:receive(1), '.', 'the marker')
  s:settimeout(30)
end

T.case('after a read timeout the next read gets its data (no stale waiter)', function()
  local s = T.connect('echo')
  s:settimeout(30)
  same(pack(s:receive('*l')), pack(nil, 'timeout', ''), 'nothing to read yet')
  buffered(s, 'late\n')
  eq(s:receive('*l'), 'late', 'the data comes')
  same(pack(s:receive(1)), pack(nil, 'timeout', ''), 'and times out again')
  buffered(s, 'again\n')
  eq(s:receive('*l'), 'again', 'the data comes again')
  eq(s:close(), 1, 'close')
end)

T.case('a partial line at a timeout is returned and consumed', function()
  local s = T.connect('echo')
  buffered(s, 'no end of line')
  same(pack(s:receive('*l')), pack(nil, 'timeout', 'no end of line'), '*l')
  buffered(s, 'abc')
  same(pack(s:receive(5)), pack(nil, 'timeout', 'abc'), 'a count')
  buffered(s, 'rest\n')
  eq(s:receive('*l'), 'rest', 'the buffer starts after the partial data')
end)

T.case('timeouts of many threads each fire, in order of their deadlines', function()
  local order, threads = {}, {}
  for i = 1, 10 do
    threads[i] = newthread(function()
      local s = T.connect('silent')
      s:settimeout(230 - 20 * i)
      local r = pack(s:receive('*l'))
      order[#order + 1] = i
      eq(s:close(), 1, 'close ' .. i)
      return r[1], r[2]
    end)
  end
  for i = 1, 10 do same(pack(coroutine_wait(threads[i])), pack(nil, 'timeout'), 'thread ' .. i) end
  eq(table.concat(order, ' '), '10 9 8 7 6 5 4 3 2 1', 'order')
end)

T.case('a send timeout returns nil, timeout and closes the socket', function()
  local s = T.connect('sink')
  s:settimeout(100)
  same(pack(s:send(T.mib(64))), pack(nil, 'timeout'), 'send')
  same(pack(s:close()), pack(nil, 'closed'), 'close: already closed')
  same(pack(s:send('x')), pack(nil, 'closed'), 'send after')
end)

T.case('a table send timeout too', function()
  local s = T.connect('sink')
  s:settimeout(100)
  local big = T.mib(1)
  local t = {}
  for i = 1, 64 do t[i] = big end
  same(pack(s:send(t)), pack(nil, 'timeout'), 'send')
  same(pack(s:close()), pack(nil, 'closed'), 'close: already closed')
end)

T.case('settimeout applies to the following calls only', function()
  local s = T.connect('silent')
  s:settimeout(20)
  same(pack(s:receive(1)), pack(nil, 'timeout', ''), 'short timeout')
  local other = T.connect('echo')
  local t = newthread(function()
    -- A longer timeout lets the data sent later arrive.
    other:settimeout(5000)
    return other:receive('*l')
  end)
  eq(other:send('in time\n'), 8, 'send')
  eq(coroutine_wait(t), 'in time', 'the other socket')
  eq(s:close(), 1, 'close')
  eq(other:close(), 1, 'close')
end)

T.case('settimeout(0): the default timeout again, as OpenResty', function()
  local s = T.connect('slow 30 late\\n')
  s:settimeout(10)
  s:settimeout(0)
  eq(s:receive('*l'), 'late', 'receive waits past 10 ms')
  eq(s:close(), 1, 'close')
end)

T.case('answers racing short timeouts: each read gets its data or a timeout, nothing lost', function()
  local s = T.connect('echo')
  local timeouts, direct = 0, 0
  for i = 1, 300 do
    local line = 'line ' .. i
    eq(s:send(line .. '\n'), #line + 1, 'send ' .. i)
    s:settimeout(i % 3)
    local d, e, partial = s:receive('*l')
    if d == nil then
      eq(e, 'timeout', 'error ' .. i)
      timeouts = timeouts + 1
      s:settimeout(5000)
      d = partial .. s:receive('*l')
    else
      direct = direct + 1
    end
    eq(d, line, 'line ' .. i)
  end
  eq(timeouts + direct, 300, 'every read ended one way')
  eq(s:close(), 1, 'close')
end)

-- CPU time spent without yielding: the rest of this loop turn lasts at least `s`.
local function spin(s)
  local t0 = os.clock()
  while os.clock() - t0 < s do end
end

T.case('a stale timeout reaches the next reader (bug 1)', function()
  -- The peer echoes `hello` 2 s after it gets it (right after connecting):
  -- after B's turn, however long a loaded machine makes it.
  local s = T.connect('lateecho 2000000')
  eq(s:send('hello\n'), 6, 'send')
  s:settimeout(100)
  local a = L.spawn(function() return s:receive('*l') end)
  -- B makes a long loop turn: A's 100 ms pass inside it. B ends in it, which
  -- queues this thread before A's timeout (fired at the poll after the turn),
  -- so this thread runs first and kills A while A's wake is still queued.
  -- (100 ms, not less: a loaded machine that stops this process for longer
  -- than A's timeout before B's turn fires it at an earlier poll.)
  local b = L.spawn(function()
    L.swop()
    spin(0.3)
  end)
  eq(L.wait(b), true, 'the long turn')
  -- A's wait is over (its timeout fired) when it is killed: its receive has
  -- an outcome, so the kill need not close the socket (bug 11 closes the
  -- socket of a thread killed while it still waits in an operation).
  eq(L.kill(a), true, 'kill the reader whose timeout fired')
  same(pack(L.wait(a)), pack(nil, 'killed'), "the reader's result")
  s:settimeout(5000)
  same(pack(s:receive('*l')), pack('hello'), 'the next reader, 5 s timeout')
  eq(s:close(), 1, 'close')
end)

return T.run()
