-- OpenResty's side of the oracle (tests/openresty.rs): nginx runs this for
-- GET /case?dir=D&case=NAME&port=P&unix=U&refused=R&udp=...&udp_unix=...&udp_refused=...&tls_bad=...
-- (content_by_lua_file);
-- the answer's body is the case's output.
local args = ngx.req.get_uri_args()
local common = dofile(args.dir .. '/adapter/common.lua')
local lines = {}
local function out(line) lines[#lines + 1] = line end
local env = common.env(out, {
  tcp = ngx.socket.tcp,
  udp = ngx.socket.udp,
  sockconnect = ngx.socket.connect,
  sleep = ngx.sleep,
  spawn = ngx.thread.spawn,
  -- A thread's results as coroutine_wait gives them.
  wait = function(t)
    local function results(ok, ...)
      if ok then return ... end
      return nil, ...
    end
    return results(ngx.thread.wait(t))
  end,
  kill = ngx.thread.kill,
  PEER = {
    host = '127.0.0.1', port = tonumber(args.port), unix = args.unix, refused = tonumber(args.refused),
    udp = tonumber(args.udp), udp_unix = args.udp_unix, udp_refused = tonumber(args.udp_refused),
    tls_bad = tonumber(args.tls_bad),
  },
  OPENRESTY = true,
})
common.run(args.dir .. '/' .. args.case .. '.lua', env, out)
ngx.print(table.concat(lines, '\n'), '\n')
