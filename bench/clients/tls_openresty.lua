-- OpenResty cosocket client for bench/tls.sh, run by nginx (content_by_lua_file)
-- for one request: GET /bench?mode=M&host=H&port=P&x=X&y=Y (modes: tls_work.lua).
local ffi = require('ffi')
pcall(ffi.cdef, [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk, bench_timespec *ts);
]])
local ts = ffi.new('bench_timespec')
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local a = ngx.req.get_uri_args()
local dir = ngx.var.bench_dir
local work = dofile(dir .. '/tls_work.lua')
local env = { tcp = ngx.socket.tcp, spawn = ngx.thread.spawn, wait = ngx.thread.wait, host = a.host }
local t0 = now()
local ok, bytes, failed = work(env, a.mode, tonumber(a.port), tonumber(a.x), tonumber(a.y))
ngx.say(string.format('RESULT wall=%.6f ok=%d bytes=%d', now() - t0, ok, bytes))
if failed then ngx.say('ERROR ', failed) end
