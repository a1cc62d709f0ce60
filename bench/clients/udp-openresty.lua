-- OpenResty's client for bench/udp.sh, run by nginx for one request:
-- GET /udp?port=P&t=T&n=N: T light threads, each with its own socket, N
-- memcached `get` round trips over UDP each.
local args = ngx.req.get_uri_args()
local port, T, N = tonumber(args.port), tonumber(args.t), tonumber(args.n)
local req = '\0\1\0\0\0\1\0\0get coevent-bench\r\n'
local ths = {}
for t = 1, T do
  ths[t] = ngx.thread.spawn(function()
    local u = ngx.socket.udp()
    assert(u:setpeername('127.0.0.1', port))
    for _ = 1, N do
      assert(u:send(req))
      local d = assert(u:receive())
      assert(d:sub(9) == 'END\r\n', d)
    end
    u:close()
  end)
end
for t = 1, T do ngx.thread.wait(ths[t]) end
ngx.say('ok')
