-- A peer that shuts down its writing side but goes on reading, while 50 other
-- threads do round trips.
local T = require('harness')
local F = require('support')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

-- The peer's verdict on what a `halfclose KEY` connection received.
local function tally(key)
  local t = T.connect('tally ' .. key)
  t:settimeout(20000)
  local v, e = t:receive('*l')
  eq(t:close(), 1, 'close the tally connection')
  return v, e
end

T.case("half-close: '*a' returns the data, sends still work and reach the peer", function()
  local n = F.valgrind and 300000 or 3000000
  F.amid(function()
    local key = F.key()
    local s = T.connect('halfclose ' .. key .. ' greeting\\nand goodbye')
    s:settimeout(10000)
    eq(s:receive('*a'), 'greeting\nand goodbye', "'*a' ends at the peer's shutdown")
    eq(s:receive('*a'), '', "'*a' again: the stream had ended")
    eq(s:send(T.pattern(1000)), 1000, 'a small send after the half-close')
    eq(s:send(T.pattern(n, 1000)), n, 'a large send after the half-close')
    eq(s:send({ T.pattern(10, n + 1000), { T.pattern(5, n + 1010) } }), 15, 'a table')
    eq(s:close(), 1, 'close: the socket was open')
    eq(tally(key), 'ok ' .. (n + 1015), "the peer's verdict")
  end)
end)

T.case('half-close: a line, then a count past the end gives closed with the partial', function()
  F.amid(function()
    local key = F.key()
    local s = T.connect('halfclose ' .. key .. ' line\\ntail')
    eq(s:receive('*l'), 'line', 'the line')
    same(pack(s:receive(10)), pack(nil, 'closed', 'tail'), 'a count past the end')
    same(pack(s:send('x')), pack(nil, 'closed'), 'that error closed the socket')
    eq(tally(key), 'ok 0', "the peer's verdict: nothing more came")
  end)
end)

T.case('half-close: sends from one thread while another reads to the end', function()
  local n = F.valgrind and 100000 or 1000000
  F.amid(function()
    local key = F.key()
    local s = T.connect('halfclose ' .. key .. ' bye')
    s:settimeout(10000)
    local reader = L.spawn(function() return s:receive('*a') end)
    local writer = L.spawn(function()
      local sent, part = 0, math.floor(n / 10)
      for i = 0, 9 do
        local k = s:send(T.pattern(part, i * part))
        if not k then return nil, 'send ' .. i end
        sent = sent + k
      end
      return sent
    end)
    eq(L.wait(reader), 'bye', "the reader's '*a'")
    eq(L.wait(writer), n, 'the writer sent it all')
    eq(s:close(), 1, 'close')
    eq(tally(key), 'ok ' .. n, "the peer's verdict")
  end)
end)

return T.run()
