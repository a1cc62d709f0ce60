-- Debian's lua-nginx-redis, unmodified, N light threads x M (SET + GET), in
-- OpenResty (content_by_lua_file, GET /bench?port=P&n=N&m=M) or in coevent
-- (`lua bench/clients/ngx_redis.lua MODDIR LIBDIR PORT N M`, through
-- coevent.ngx). Prints (or answers) `RESULT ok=<requests> wall=<s>`.
local in_nginx = rawget(_G, 'ngx') ~= nil
local port, n, m, run
if in_nginx then
  local a = ngx.req.get_uri_args()
  port, n, m = tonumber(a.port), tonumber(a.n), tonumber(a.m)
  run = function(f) f() end
else
  local moddir, libdir
  moddir, libdir, port, n, m = ...
  package.cpath = moddir .. '/?.so;' .. package.cpath
  package.path = libdir .. '/?.lua;' .. package.path
  local L = require('coevent')
  run = require('coevent.ngx').run
  port, n, m = tonumber(port), tonumber(n), tonumber(m)
  _ = L
end
local redis = require('nginx.redis')

local ok, failed = 0, nil
local function worker(i)
  local r = redis:new()
  r:set_timeout(60000)
  local c, err = r:connect('127.0.0.1', port)
  if not c then failed = 'connect: ' .. tostring(err) return end
  local key = 'bench:' .. i
  for j = 1, m do
    local res, e = r:set(key, j)
    if res ~= 'OK' then failed = 'set: ' .. tostring(e) return end
    res, e = r:get(key)
    if res ~= tostring(j) then failed = 'get: ' .. tostring(e) return end
    ok = ok + 2
  end
  r:set_keepalive(10000, n)
end

run(function()
  local t0 = ngx.now()
  ngx.update_time()
  local threads = {}
  for i = 1, n do threads[i] = ngx.thread.spawn(worker, i) end
  for i = 1, n do ngx.thread.wait(threads[i]) end
  ngx.update_time()
  local line = ('RESULT ok=%d wall=%.3f%s'):format(ok, ngx.now() - t0, failed and (' ERROR ' .. failed) or '')
  if in_nginx then ngx.say(line) else print(line) end
end)
