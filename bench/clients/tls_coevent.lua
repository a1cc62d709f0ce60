-- coevent client for bench/tls.sh.
-- usage: lua|luajit tls_coevent.lua SODIR CA MODE HOST PORT X Y   (modes: bench/clients/tls_work.lua)
-- prints: RESULT wall=<s> ok=<units> bytes=<bytes>; exits 1 if any unit failed.
local sodir, ca, mode, host, port, x, y = arg[1], arg[2], arg[3], arg[4], tonumber(arg[5]), tonumber(arg[6]), tonumber(arg[7])
package.cpath = sodir .. '/?.so;' .. package.cpath
local L = require('coevent')
local now = require('socket.core').gettime -- LuaSocket's clock only
local work = dofile((arg[0]:gsub('[^/]*$', '')) .. 'tls_work.lua')
L.config({ ssl_trusted_certificate = ca })
local env = { tcp = L.tcp, spawn = L.spawn, wait = L.wait, host = host }
local t0 = now()
local ok, bytes, failed = L(function() return work(env, mode, port, x, y) end)
print(string.format('RESULT wall=%.6f ok=%d bytes=%d', now() - t0, ok, bytes))
if failed then
  io.stderr:write('ERROR ', failed, '\n')
  os.exit(1)
end
