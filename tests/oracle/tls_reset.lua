-- A reset after the handshake, in the middle of a record: both fail the read
-- at once; OpenResty calls it "closed" (nginx reads a reset under TLS as the
-- peer's close), coevent "connection reset by peer", as on a plain socket
-- (a known difference, docs/differences.md).
local s = tcp()
s:settimeout(5000)
assert(s:connect(PEER.host, PEER.tls_bad))
assert(s:send('trunc rst\n'))
try('handshake', function(r) r(s:sslhandshake(false, 'localhost', false)) end)
try('send', function(r) r(s:send('go\n')) end)
local t0 = now()
try("'*l'", function(r) r(s:receive('*l')) end)
show('at once', now() - t0 < 1)
