-- A TLS connection from a keepalive pool, made without verification, asked
-- for a verified handshake: OpenResty answers at once as if it had verified
-- (it leaves that to the pool's key); coevent refuses it, "pooled connection
-- not verified for localhost", and closes it (a known difference,
-- docs/differences.md).
local function connect_tls()
  local s = tcp()
  s:settimeout(5000)
  assert(s:connect(PEER.host, PEER.tls_bad))
  return s
end
local s = connect_tls()
assert(s:send('echo\n'))
try('unverified', function(r) r(s:sslhandshake(false, 'localhost', false)) end)
-- A round trip: TLS 1.3's tickets are read, the connection is idle.
try('send', function(r) r(s:send('hi\n')) end)
try('echo', function(r) r(s:receive('*l')) end)
try('setkeepalive', function(r) r(s:setkeepalive()) end)
s = connect_tls()
try('reused', function(r) r(s:getreusedtimes()) end)
try('asked to verify', function(r) r(s:sslhandshake(false, 'localhost', true)) end)
try('send after', function(r) r(s:send('hi\n')) end)
s:close()
