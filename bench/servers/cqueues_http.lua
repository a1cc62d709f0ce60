-- The benchmark's HTTP keep-alive "hello" server on cqueues: a coroutine per
-- connection reads lines up to the blank one. usage: lua5.4 cqueues_http.lua PORT
local cqueues = require('cqueues')
local socket = require('cqueues.socket')
local RESP = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n'
local srv = socket.listen({ host = '127.0.0.1', port = tonumber(arg[1]) or 0, reuseaddr = true, backlog = 4096 })
assert(srv:listen())
local _, _, port = srv:localname()
print('listening on 127.0.0.1:' .. port)
io.stdout:flush()
local cq = cqueues.new()
cq:wrap(function()
  for c in srv:clients() do
    cq:wrap(function()
      c:setmode('t', 'bn')
      -- A reset raises in cqueues: it ends this connection only.
      pcall(function()
        while true do
          local line = c:read('*l')
          if not line then break end
          if line == '' then
            c:write(RESP)
            c:flush()
          end
        end
      end)
      c:close()
    end)
  end
end)
assert(cq:loop())
