-- receive(pattern): every pattern against the peer, exact values.
local T = require('harness')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

local LINES = 'one\r\ntw\ro\r\n\r\nthree\nlast-no-lf'

-- A regression in the finalizer cases at the end aborts the process: the
-- lines printed before must not be lost (stdout is a pipe).
if io and io.stdout and io.stdout.setvbuf then io.stdout:setvbuf('line') end

T.case("'*l': CR dropped anywhere, empty line, last line without LF then closed", function()
  local s = T.connect('lines')
  eq(s:receive('*l'), 'one', 'line 1')
  eq(s:receive('*l'), 'two', 'line 2 (CR in the middle)')
  eq(s:receive('*l'), '', 'line 3 (empty)')
  eq(s:receive('*l'), 'three', 'line 4 (no CR)')
  same(pack(s:receive('*l')), pack(nil, 'closed', 'last-no-lf'), 'line 5')
  same(pack(s:receive('*l')), pack(nil, 'closed'), 'after the close: no partial (OpenResty)')
  same(pack(s:close()), pack(nil, 'closed'), 'close after the error')
end)

T.case('buffered lines read inside L.wrap and L.pcall (a receive passes through them)', function()
  local s = T.connect('lines')
  eq(s:receive('*l'), 'one', 'line 1 (the rest is buffered now)')
  local lines = L.wrap(function()
    while true do coroutine.yield(s:receive('*l')) end
  end)
  same(pack(lines(), lines()), pack('two', ''), 'through L.wrap')
  same(pack(L.pcall(s.receive, s, '*l')), pack(true, 'three'), 'through L.pcall')
  same(pack(L.pcall(s.receive, s, '*l')), pack(true, nil, 'closed', 'last-no-lf'), 'the end, through L.pcall')
end)

T.case('receive taken before the loop (its calling form) reads and waits inside it', function()
  local s = L.tcp()
  local receive = s.receive
  L(function()
    eq(s:connect(T.host, T.port), 1, 'connect')
    eq(s:send('echo\n'), 5, 'command')
    local reader = newthread(function() return receive(s, '*l') end)
    swop()
    eq(s:send('later\n'), 6, 'send')
    same(pack(coroutine_wait(reader)), pack('later'), 'the waiting receive')
    eq(s:send('a\nb\n'), 4, 'send two lines')
    same(pack(receive(s, '*l'), receive(s, '*l')), pack('a', 'b'), 'lines')
    eq(s:close(), 1, 'close')
  end)
end, { loop = false })

T.case("'l' without the star", function()
  local s = T.connect('lines')
  local got = {}
  for i = 1, 4 do got[i] = s:receive('l') end
  eq(table.concat(got, '|'), 'one|two||three', 'lines')
  same(pack(s:receive('l')), pack(nil, 'closed', 'last-no-lf'), 'last line')
end)

T.case("'*a' returns everything raw, then '' once closed", function()
  local s = T.connect('lines')
  eq(s:receive('*a'), LINES, 'everything')
  eq(s:receive('*a'), '', 'again, after the peer closed')
  eq(s:close(), 1, 'close')
end)

T.case("'a' without the star, and no pattern means '*a'", function()
  local s = T.connect('lines')
  eq(s:receive('a'), LINES, "'a'")
  s = T.connect('lines')
  eq(s:receive(), LINES, 'no pattern')
  s = T.connect('lines')
  eq(s:receive(nil), LINES, 'nil pattern')
end)

T.case("patterns mixed on one stream", function()
  local s = T.connect('lines')
  eq(s:receive('*l'), 'one', 'a line')
  eq(s:receive(3), 'tw\r', 'bytes keep the CR')
  eq(s:receive('*l'), 'o', 'the rest of the line')
  eq(s:receive(0), '', 'zero bytes')
  eq(s:receive('*a'), '\r\nthree\nlast-no-lf', 'the rest, raw')
end)

T.case("a byte count: exact, then nil, 'closed', partial", function()
  local s = T.connect('lines')
  eq(s:receive(5), 'one\r\n', '5 bytes')
  eq(s:receive('4'), 'tw\ro', 'a count given as a string')
  -- Read as Lua reads a numeral (tonumber): spaces around it, hex, an exponent.
  eq(s:receive(' 0x2\t'), '\r\n', 'a hex count with spaces')
  eq(s:receive('1e0'), '\r', 'a count with an exponent')
  same(pack(s:receive(1000)), pack(nil, 'closed', '\nthree\nlast-no-lf'), 'more than is left')
  same(pack(s:receive(1)), pack(nil, 'closed'), 'after the close: no partial')
end)

T.case('receive(0) before any data arrives returns at once', function()
  local s = T.connect('echo')
  eq(s:receive(0), '', 'receive(0)')
  eq(s:send('ping\n'), 5, 'send')
  eq(s:receive('*l'), 'ping', 'the socket still works')
  eq(s:close(), 1, 'close')
end)

T.case("'*a' of 8 MiB", function()
  local n = 8 * 1024 * 1024
  local s = T.connect('bytes ' .. n)
  local d = s:receive('*a')
  eq(#d, n, 'length')
  eq(d:byte(1), 0, 'byte 0')
  eq(d:byte(252), 0, 'byte 251')
  eq(d:byte(n), (n - 1) % 251, 'last byte')
  T.ok(d == T.pattern(n), 'every byte in place')
  eq(s:close(), 1, 'close')
end)

T.case('one byte count of 3 MB (more than one read)', function()
  local n = 3000000
  local s = T.connect('bytes ' .. n)
  local d = s:receive(n)
  eq(#d, n, 'length')
  T.ok(d == T.pattern(n), 'every byte in place')
  same(pack(s:receive(1)), pack(nil, 'closed', ''), 'then closed')
end)

T.case("byte counts across many small writes (split 100000 7)", function()
  local s = T.connect('split 100000 7')
  local expect = T.pattern(100000)
  local at = 0
  for _ = 1, 7692 do
    local d, e = s:receive(13)
    if d ~= expect:sub(at + 1, at + 13) then T.fail('bytes ' .. at .. '..: ' .. T.show(d) .. ' ' .. tostring(e)) end
    at = at + 13
  end
  eq(at, 99996, 'offset')
  same(pack(s:receive(13)), pack(nil, 'closed', expect:sub(99997)), 'the 4 bytes left')
end)

T.case("byte counts larger than the writes (split 100000 7, 1000 at a time)", function()
  local s = T.connect('split 100000 7')
  local got = {}
  for i = 1, 100 do got[i] = assert(s:receive(1000)) end
  T.ok(table.concat(got) == T.pattern(100000), 'every byte in place')
  eq(s:receive('*a'), '', 'nothing more')
end)

T.case("lines and counts across a drip (one byte per write)", function()
  local s = T.connect('drip hello\\nworld\\n!')
  eq(s:receive('*l'), 'hello', 'a line')
  eq(s:receive(3), 'wor', '3 bytes')
  eq(s:receive('*a'), 'ld\n!', 'the rest')
end)

T.case("the read timeout runs between arrivals, not over the whole call (OpenResty)", function()
  -- 300 bytes 2 ms apart: over 600 ms in all, each gap far below the timeout
  -- even on a loaded machine.
  local text = string.rep('abcdefghij', 30)
  local s = T.connect('drip ' .. text)
  s:settimeout(400)
  eq(s:receive('*a'), text, 'everything, although it took longer than the timeout')
end)

T.case("5000 lines of every length up to 300, across many reads", function()
  local s = T.connect('echo')
  local lines, out = {}, {}
  for i = 1, 5000 do
    local n = (i * 37) % 301
    lines[i] = string.rep(string.char(97 + i % 26), n)
    out[i] = lines[i] .. (i % 3 == 0 and '\r\n' or '\n')
  end
  local data = table.concat(out)
  local sender = newthread(function() return s:send(data) end)
  for i = 1, 5000 do
    local got = s:receive('*l')
    if got ~= lines[i] then T.fail('line ' .. i .. ': got ' .. T.show(got) .. ', want ' .. T.show(lines[i])) end
  end
  eq(coroutine_wait(sender), #data, 'sent')
  eq(s:close(), 1, 'close')
end)

T.case("a line longer than the first read chunk", function()
  local s = T.connect('echo')
  local long = string.rep('0123456789abcdef', 3000) -- 48000 bytes: three reads
  eq(s:send({ long, '\r\n', 'x\n' }), #long + 4, 'send')
  eq(s:receive('*l'), long, 'the long line')
  eq(s:receive('*l'), 'x', 'the next line')
  eq(s:close(), 1, 'close')
end)

T.case("max-line: a longer line gives nil, 'line too long', '' and closes", function()
  local s = T.connect('echo')
  local long = string.rep('0123456789abcdef', 8192) -- 128 KiB, over the default 64 KiB
  eq(s:send({ long, '\n' }), #long + 1, 'send')
  same(pack(s:receive('*l')), pack(nil, 'line too long', ''), 'receive')
  same(pack(s:close()), pack(nil, 'closed'), 'closed')
  s = T.connect('echo')
  eq(s:setoption('max-line', 200000), true, 'setoption')
  eq(s:send({ long, '\n' }), #long + 1, 'send')
  eq(s:receive('*l'), long, 'a raised limit lets it through')
  eq(s:close(), 1, 'close')
end)

T.case("max-line holds however the line arrives (all at once here)", function()
  local s = T.connect('echo')
  eq(s:setoption('max-line', 10), true, 'setoption')
  eq(s:send('0123456789\n'), 11, 'send a line of 10')
  eq(s:receive('*l'), '0123456789', 'a line of exactly max-line bytes')
  eq(s:send('0123456789ABCDEFGHIJ\n'), 21, 'send a line of 20 in one piece')
  same(pack(s:receive('*l')), pack(nil, 'line too long', ''), 'a line of 20')
end)

T.case("max-receive: '*a' over it gives nil, 'too large', '' and closes", function()
  local s = T.connect('bytes 5000')
  eq(s:setoption('max-receive', 1000), true, 'setoption')
  same(pack(s:receive('*a')), pack(nil, 'too large', ''), "'*a'")
  same(pack(s:close()), pack(nil, 'closed'), 'closed')
  s = T.connect('bytes 1000')
  eq(s:setoption('max-receive', 1000), true, 'setoption')
  eq(s:receive('*a'), T.pattern(1000), "'*a' of exactly max-receive bytes")
end)

T.case("max-receive: a count over it gives nil, 'too large', '' and the socket stays open", function()
  local s = T.connect('echo')
  eq(s:setoption('max-receive', 100), true, 'setoption')
  same(pack(s:receive(101)), pack(nil, 'too large', ''), 'a count of 101')
  eq(s:send('still open\n'), 11, 'send')
  eq(s:receive('*l'), 'still open', 'the socket still works')
  eq(s:close(), 1, 'close')
end)

T.case("lines over a unix socket", function()
  local s = T.connect('lines', 'unix:' .. T.unix)
  eq(s:receive('*l'), 'one', 'unix: line 1')
  eq(s:receive('*a'), 'tw\ro\r\n\r\nthree\nlast-no-lf', 'unix: the rest')
end)

T.case("lines over IPv6", function()
  if not T.port6 then T.skip('no IPv6 loopback') end
  local s = T.connect('lines', '::1', T.port6)
  eq(s:receive('*l'), 'one', 'IPv6: line 1')
  same(pack(s:receive(100)), pack(nil, 'closed', 'tw\ro\r\n\r\nthree\nlast-no-lf'), 'IPv6: the rest')
end)

T.case('binary data: NUL bytes in lines and counts', function()
  local s = T.connect('echo')
  eq(s:send('a\0b\r\n\0\n'), 7, 'send')
  eq(s:receive('*l'), 'a\0b', 'a line with a NUL')
  eq(s:receive('*l'), '\0', 'a line that is a NUL')
  eq(s:send('\0\0\0'), 3, 'send')
  eq(s:receive(3), '\0\0\0', 'three NULs')
  eq(s:close(), 1, 'close')
end)

T.case('counts on both sides of the 4 KiB that LuaJIT lends (src/lend.rs), exact bytes', function()
  local s = T.connect('bytes 30000')
  local at = 0
  for _, n in ipairs({ 1, 4095, 4096, 4097, 16384, 0, 1327 }) do
    local d = s:receive(n)
    T.ok(d == T.pattern(n, at), n .. ' bytes at ' .. at)
    at = at + n
  end
  same(pack(s:receive(1)), pack(nil, 'closed', ''), 'then closed')
end)

-- A debug hook runs Lua code between a receive's return from Rust and the
-- string made of its data (on LuaJIT, a lent copy): a receive there must not
-- touch that copy. The hook reads a byte of another stream at every VM
-- instruction (so in between too; with the JIT off, which skips hooks). With
-- `spawn` it first starts a light thread, run to its end at once, that reads
-- a byte of a third: that nested run's end must not free the area under the
-- outer receive's unread copy.
local function hooked_receive(spawn)
  if not debug then T.skip('no debug library here') end
  local a, b, c = T.connect('lines'), T.connect('lines'), T.connect('lines')
  for _, s in ipairs({ a, b, c }) do
    eq(s:receive('*l'), 'one', 'line 1 (the rest is buffered now)')
  end
  local gotb, gotc = {}, {}
  T.hook(function()
    if #gotb < 20 then
      if spawn then newthread(function() gotc[#gotc + 1] = assert(c:receiveany(1)) end) end
      gotb[#gotb + 1] = assert(b:receiveany(1))
    end
  end, '', 1)
  local line = a:receive('*l')
  T.unhook()
  eq(line, 'two', 'a: line 2')
  T.ok(#gotb > 0, 'the hook read')
  eq(#gotc, spawn and #gotb or 0, "the hook's threads read")
  local rest = 'tw\ro\r\n\r\nthree\nlast-no-lf'
  eq(table.concat(gotb) .. b:receive('*a'), rest, 'b: what the hook read, then the rest')
  eq(table.concat(gotc) .. c:receive('*a'), rest, "c: what the hook's threads read, then the rest")
end

T.case('a debug hook that receives while a receive returns: both exact', function()
  hooked_receive(false)
end, { ci_may_skip = 'the in-process Lua and the runner have no debug library' })

T.case('a debug hook that starts a receiving thread, then receives: all exact', function()
  hooked_receive(true)
end, { ci_may_skip = 'the in-process Lua and the runner have no debug library' })

-- A call hook fires as a waiting receiveany yields, after its wait was noted
-- and before the scheduler takes it: a thread the hook starts there, which
-- waits too, must not take that wait for its own.
T.case('a call hook that starts a sleeping thread as receiveany waits: both wake right', function()
  if not debug then T.skip('no debug library here') end
  local s = T.connect('echo')
  local sender = newthread(function()
    L.sleep(0.05)
    return s:send('late')
  end)
  local slept, me = {}, coroutine.running()
  T.hook(function()
    if #slept < 5 and coroutine.running() == me then
      slept[#slept + 1] = newthread(function()
        L.sleep(0.01)
        return 'slept'
      end)
    end
  end, 'c')
  local got = pack(s:receiveany(10))
  T.unhook()
  same(got, pack('late'), 'receiveany')
  eq(coroutine_wait(sender), 4, 'sender')
  T.ok(#slept > 0, 'the hook started threads')
  for i, t in ipairs(slept) do eq(coroutine_wait(t), 'slept', 'sleeper ' .. i) end
end, { ci_may_skip = 'the in-process Lua and the runner have no debug library' })

T.case("an empty stream: '*a' gives '', a line or a count gives closed", function()
  local s = T.connect('bytes 0')
  eq(s:receive('*a'), '', "'*a'")
  eq(s:receive('*a'), '', "'*a' again")
  s = T.connect('bytes 0')
  same(pack(s:receive('*l')), pack(nil, 'closed', ''), "'*l'")
  s = T.connect('bytes 0')
  same(pack(s:receive(1)), pack(nil, 'closed', ''), 'a count')
end)

T.case('pcall around a receive that waits (Lua 5.2+ and LuaJIT)', function()
  if _VERSION == 'Lua 5.1' and not jit then T.skip('PUC 5.1 cannot yield across pcall') end
  local s = T.connect('echo')
  local t = newthread(function() return pcall(s.receive, s, '*l') end)
  eq(s:send('through pcall\n'), 14, 'send')
  same(pack(coroutine_wait(t)), pack(true, 'through pcall'), 'pcall results')
  eq(s:close(), 1, 'close')
end, { ci_may_skip = 'PUC Lua 5.1 cannot yield across pcall' })

T.case('bad patterns raise', function()
  local s = T.connect('echo')
  local msg = "bad argument #1 to 'receive' (bad pattern argument)"
  T.raises(function() s:receive('*x') end, msg)
  T.raises(function() s:receive('*L') end, msg)
  T.raises(function() s:receive('') end, "bad argument #1 to 'receive' (bad pattern argument: )")
  T.raises(function() s:receive('0x') end, "bad argument #1 to 'receive' (bad pattern argument: 0x)")
  T.raises(function() s:receive('line') end, "bad argument #1 to 'receive' (bad pattern argument: line)")
  T.raises(function() s:receive(-1) end, msg)
  T.raises(function() s:receive('-1') end, msg)
  T.raises(function() s:receive({}) end, msg)
  T.raises(function() s:receive(true) end, msg)
  local e = T.raises(function() s:receive('*x') end, msg)
  T.ok(e:find('receive.lua:%d+: bad argument') ~= nil, "the error names the caller's line: " .. e)
  eq(s:send('still\n'), 6, 'send after the raises')
  eq(s:receive('*l'), 'still', 'the socket still works')
  eq(s:close(), 1, 'close')
end)

T.case('a fractional count is truncated, as OpenResty', function()
  local s = T.connect('bytes 5')
  eq(s:receive(1.5), '\0', '1.5')
  eq(s:receive('2.9'), '\1\2', "'2.9'")
  eq(s:close(), 1, 'close')
end)

T.case('receive on a bad self raises', function()
  local s = T.L.tcp()
  T.raises(function() s.receive(nil) end, "calling 'receive' on bad self (cosocket expected, got nil)")
  T.raises(function() s.receive({}) end, "calling 'receive' on bad self (cosocket expected, got table)")
  T.raises(function() s.receive('x') end, "calling 'receive' on bad self (cosocket expected, got string)")
  T.raises(function() s.receive(true) end, "calling 'receive' on bad self (cosocket expected, got boolean)")
end)

T.case('receive on a socket never connected', function()
  local s = T.L.tcp()
  same(pack(s:receive('*l')), pack(nil, 'closed'), 'receive')
  same(pack(s:receive('*x')), pack(nil, 'closed'), 'a bad pattern: closed first, as OpenResty')
end)

T.case('a reset while reading: nil, error, partial, then closed', function()
  local s = T.connect(nil)
  eq(s:send('rst\nunread'), 10, 'send')
  local d, e, partial = s:receive('*a')
  eq(d, nil, 'data')
  eq(e, 'connection reset by peer', 'error')
  eq(partial, '', 'partial')
  same(pack(s:close()), pack(nil, 'closed'), 'closed after the error')
end)

-- Hostile peers: memory must stay bounded whatever they send.
local function rss()
  local f = assert(io.open('/proc/self/statm'))
  local pages = f:read('*n')
  pages = f:read('*n')
  f:close()
  return pages * 4096
end
local HEAVY = os.getenv('COEVENT_VALGRIND') == '1'

T.case('an endless line: nil, "line too long", "" at max-line, memory bounded', function()
  local s = T.connect('endless')
  local before = rss()
  same(pack(s:receive('*l')), pack(nil, 'line too long', ''), 'default max-line (64 KiB)')
  same(pack(s:close()), pack(nil, 'closed'), 'closed by the error')
  s = T.connect('endless')
  eq(s:setoption('max-line', 4 * 1024 * 1024), true, 'a 4 MiB limit')
  same(pack(s:receive('*l')), pack(nil, 'line too long', ''), 'at 4 MiB')
  -- The buffer was about the limit plus one read; it is gone with the error.
  T.ok(rss() - before < 32 * 1024 * 1024, 'RSS grew by ' .. (rss() - before) .. ' bytes')
end)

T.case('1 GiB read with a byte count in 64 KiB pieces, memory bounded', function()
  if HEAVY then T.skip('1 GiB under valgrind takes too long') end
  local total = 1024 * 1024 * 1024
  local s = T.connect('stream ' .. total)
  local before, peak, got = rss(), 0, 0
  while got < total do
    local d, e = s:receive(65536)
    if not d then error('at ' .. got .. ': ' .. tostring(e)) end
    if got % (64 * 1024 * 1024) == 0 then
      -- Spot checks of the pattern: byte i is i % 251.
      eq(d:byte(1), got % 251, 'byte ' .. got)
      peak = math.max(peak, rss())
    end
    got = got + #d
  end
  eq(got, total, 'bytes read')
  same(pack(s:receive(1)), pack(nil, 'closed', ''), 'then the peer closed')
  -- (The adversary's threads, started faster than a reader that never waits
  -- lets them run, take memory of their own.)
  if T.adversary then return end
  T.ok(peak - before < 32 * 1024 * 1024, 'RSS grew by ' .. (peak - before) .. ' bytes')
end, { ci_may_skip = 'too slow under valgrind' })

T.case('buffered bytes survive close, reconnect, close (bug 9)', function()
  local path = 'unix:' .. T.unix
  local s = T.connect('echo', path)
  -- One write, echoed as one: `x` comes with the 10 bytes behind it, which
  -- stay in the socket's buffer.
  eq(s:send('x\n0123456789'), 12, 'send')
  eq(s:receive('*l'), 'x', 'the line before the 10 bytes')
  -- The first reader takes the 10 buffered bytes and waits for 10 more.
  local r1 = L.spawn(function() return s:receive(20) end)
  -- All before the first reader runs again: close, reconnect (unix: at
  -- once), a second reader, close again.
  eq(s:close(), 1, 'close under the first reader')
  eq(s:connect(path), 1, 'reconnect')
  local r2 = L.spawn(function() return s:receive('*l') end)
  eq(s:close(), 1, 'close under the second reader')
  same(pack(L.wait(r1)), pack(nil, 'closed', '0123456789'), 'the first reader: its 10 bytes')
  same(pack(L.wait(r2)), pack(nil, 'closed', ''), 'the second reader')
end)

T.case("setoption('max-receive', 2^64) then receive('*a') (bug 4)", function()
  local s = T.connect('lines')
  -- Clamped (true), refused (nil, err) or raised (a bad argument): any, but
  -- the receive that follows must read what the peer sent.
  local set = pack(pcall(s.setoption, s, 'max-receive', 2 ^ 64))
  if set[1] then
    T.ok(set[2] == true or (set[2] == nil and type(set[3]) == 'string'),
      'setoption: got ' .. T.show(set[2]) .. ', ' .. T.show(set[3]) .. ', want true or nil, err')
  else
    T.ok(tostring(set[2]):find("bad argument #2 to 'setoption'", 1, true),
      'setoption raised ' .. T.show(set[2]) .. ", want a bad argument #2 to 'setoption'")
  end
  same(pack(s:receive('*a')), pack(LINES), "receive('*a')")
  same(pack(s:close()), pack(1), 'close')
end)

-- CPU time spent without yielding: the rest of this loop turn lasts at least `s`.
local function spin(s)
  local t0 = os.clock()
  while os.clock() - t0 < s do end
end

-- Finalizers that run inside a receive's end, made by the scheduler in Rust:
-- when a wait ends, the scheduler finishes the receive there and makes its
-- result's strings, and each allocation may run the collector.
--
-- Runs the collector inside a receive's end, with `k` objects whose finalizer
-- is `fin` just turned garbage; `state.inside` is true from just before to
-- the end of that receive, and `state.ran` counts the finalizers that ran
-- then (fin counts them). Rounds go on (20 at most) until one ran inside.
-- Returns what each round's reader got (L.wait's results, packed).
--
-- How: in one long loop turn (a thread spinning 200 ms), a reader's 30 ms
-- timeout passes and the echo of another thread G's line arrives (50 ms).
-- The poll after it wakes G (epoll first), then the reader (timers). G makes
-- the garbage and allocates, the collector stepping slowly (pause 0, a small
-- step), until the first of its finalizers has run: the others are then due,
-- a few at each step. It then allocates without a collector check (a table's growth),
-- so that the next check steps, and yields with a bare coroutine.yield (no
-- allocation on the way). The reader's turn comes next: the scheduler
-- finishes its receive (a timeout) and makes its result's strings, whose
-- allocation steps the collector, which runs the next finalizers there.
local function finalize_inside_receive(state, fin, k)
  -- Incremental (Debian's 5.4 collects generationally by default), each step
  -- small: once the first finalizer has run, the others come a few at a time.
  local mode = _VERSION == 'Lua 5.4' and collectgarbage('incremental')
  local pause = collectgarbage('setpause', 0)
  local mul = collectgarbage('setstepmul', jit and 100 or 1)
  -- The pause takes effect at the end of a cycle: end one now.
  collectgarbage()
  local due = false
  local function finalizer(...)
    if not state.inside then due = true end
    return fin(...)
  end
  -- k objects with that finalizer, garbage once this returns (no register
  -- of the caller's keeps them).
  local function plant(n)
    local keep = {}
    for j = 1, n do keep[j] = T.finalized(finalizer) end
  end
  local outcomes = {}
  -- The rounds run in a light thread, which catches their error (PUC 5.1
  -- cannot yield across pcall; L.pcall's coroutine allocates at each wait).
  local driver = L.spawn(function()
    for round = 1, 20 do
      local e = T.connect('lateecho 50000')
      local s = T.connect('silent')
      s:settimeout(30)
      local reader = L.spawn(function()
        local r = pack(L.pcall(s.receive, s, '*l'))
        state.inside = false
        if r[1] then return pack(T.unpack(r, 2, r.n)) end
        return pack(nil, r[2])
      end)
      local g = L.spawn(function()
        eq(e:send('x\n'), 2, 'send')
        local x = e:receive('*l')
        plant(k)
        -- Allocations step the collector, until it reaches the finalizers.
        -- (Kept, or LuaJIT's compiler would sink the allocation away.)
        due = false
        local sink = {}
        for _ = 1, 1e7 do
          if due then break end
          sink[1] = {}
        end
        local grow = {}
        for j = 1, 4096 do grow[j] = j end
        state.inside = due
        coroutine.yield()
        return x
      end)
      local spinner = L.spawn(function()
        L.swop()
        spin(0.2)
      end)
      local r = L.wait(reader)
      state.inside = false
      outcomes[round] = r
      same(pack(L.wait(g)), pack('x'), "G's line")
      eq(L.wait(spinner), true, 'the spinner')
      eq(e:close(), 1, 'close e')
      local c = pack(s:close())
      -- Open after a timeout; closed if the error that ended the reader closed it.
      T.ok(c[1] == 1 or (c[1] == nil and c[2] == 'closed'),
        'close the socket read from: got ' .. T.show(c[1]) .. ', ' .. T.show(c[2]) .. ', want 1 or nil, "closed"')
      if state.ran > 0 then break end
    end
    return true
  end)
  local ok, err = L.wait(driver)
  state.inside = false
  collectgarbage('setpause', pause)
  collectgarbage('setstepmul', mul)
  if mode then collectgarbage(mode) end
  if not ok then error(err, 0) end
  if state.ran == 0 and T.adversary then T.skip('the adversary moved the collections') end
  T.ok(state.ran > 0, 'a finalizer ran inside a receive (in ' .. #outcomes .. ' rounds)')
  -- The loop is sound afterwards.
  local n = T.connect('echo')
  eq(n:send('after\n'), 6, 'send on a new socket')
  eq(n:receive('*l'), 'after', 'receive on a new socket')
  eq(n:close(), 1, 'close the new socket')
  return outcomes
end

-- The finalizers reach the reactor and the scheduler while they are in use:
-- a regression panics or aborts the process, so these two come last.
T.case('a finalizer that closes a socket or calls newthread inside a receive (bug 7)', function()
  -- Sockets the finalizers close, each one's close noted.
  local victims, closed = {}, {}
  for i = 1, 10 do victims[i] = T.connect('silent') end
  local st = { inside = false, ran = 0, closes = 0, spawns = 0 }
  local spawned = {}
  local function fin()
    if not st.inside then return end
    st.ran = st.ran + 1
    if st.ran % 2 == 1 and st.closes < #victims then
      st.closes = st.closes + 1
      local i = st.closes
      closed[i] = pack(victims[i]:close())
    elseif st.ran % 2 == 0 and st.spawns < 10 then
      st.spawns = st.spawns + 1
      local k = st.spawns
      spawned[k] = pack(newthread(function()
        L.swop()
        return 'spawned ' .. k
      end))
    end
  end
  local outcomes = finalize_inside_receive(st, fin, 200)
  for round, r in ipairs(outcomes) do
    same(r, pack(nil, 'timeout', ''), 'the reader of round ' .. round)
  end
  T.ok(st.closes > 0 and st.spawns > 0, 'both a close and a newthread ran from finalizers inside a receive')
  L.swop()
  for i = 1, st.closes do
    T.ok(closed[i], 'close ' .. i .. ' from a finalizer returned (did not raise)')
    same(closed[i], pack(1), 'close ' .. i .. ' from a finalizer')
    same(pack(victims[i]:close()), pack(nil, 'closed'), 'socket ' .. i .. ' after its close from a finalizer')
  end
  for k = 1, st.spawns do
    T.ok(spawned[k], 'newthread ' .. k .. ' from a finalizer returned (did not raise)')
    eq(type(spawned[k][1]), 'thread', 'newthread ' .. k .. ' from a finalizer')
    same(pack(L.wait(spawned[k][1])), pack('spawned ' .. k), 'the thread spawned by finalizer ' .. k)
  end
  for i = st.closes + 1, #victims do eq(victims[i]:close(), 1, 'close ' .. i) end
end, { ci_may_skip = 'the adversary (make adversary) moves the collections' })

T.case('a finalizer that raises inside a receive (bug 8)', function()
  local st = { inside = false, ran = 0 }
  -- The first finalizer to run inside raises; the others (there to keep
  -- finalizers due at every step) do not, or every allocation after it,
  -- anywhere, would raise again.
  local function fin()
    if st.inside then
      st.ran = st.ran + 1
      if st.ran == 1 then error('boom from a finalizer', 0) end
    end
  end
  local outcomes = finalize_inside_receive(st, fin, 200)
  -- The reader's receive ends as it would have (the error reported and
  -- dropped), or raises the finalizer's error, as an ordinary error.
  for round, r in ipairs(outcomes) do
    if r[1] == nil and r[2] == 'timeout' then
      same(r, pack(nil, 'timeout', ''), 'the reader of round ' .. round)
    else
      -- Lua 5.3 words a finalizer's error so itself.
      local boom = _VERSION == 'Lua 5.3' and 'error in __gc metamethod (boom from a finalizer)' or 'boom from a finalizer'
      same({ r[1], r[2] }, { nil, boom }, 'the reader of round ' .. round .. ' (it raised)')
    end
  end
  print(string.format('# %d finalizers ran inside a receive, the first raised', st.ran))
end, { ci_may_skip = 'the adversary (make adversary) moves the collections' })

return T.run()
