-- lua run.lua BINDING N: N round trips' crossings (see src/lib.rs), with
-- BINDING one of lua (no Rust: a Lua send, a Lua resume), raw, mlua-copied,
-- mlua-referenced. Needs crossing.so in package.cpath.
local m = require('crossing')
local binding, n = arg[1], assert(tonumber(arg[2]), 'N expected')
local MARK, id = m.MARK, 12345
local fns = ({
  lua = {
    function(_, data) return #data end,
    function(co, k)
      local requests = 0
      coroutine.resume(co)
      for _ = 1, k do
        local _, mark = coroutine.resume(co, '+PONG')
        if mark == MARK then requests = requests + 1 end
      end
      return requests
    end,
  },
  raw = { m.raw_send, m.raw_drive },
  ['mlua-copied'] = { m.send_copied, m.drive },
  ['mlua-referenced'] = { m.send_referenced, m.drive },
})[binding] or error('unknown binding ' .. tostring(binding))
local send, drive = fns[1], fns[2]
local yield = coroutine.yield
local co = coroutine.create(function()
  while true do
    local bytes = send(id, 'PING\r\n')
    local line = yield(MARK, id, MARK)
    assert(bytes == 6 and line == '+PONG')
  end
end)
local requests = drive(co, n)
assert(requests == n, ('%d requests of %d'):format(requests, n))
print('RESULT ok=' .. requests)
