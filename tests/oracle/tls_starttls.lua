-- Plaintext buffered before sslhandshake (STARTTLS injection, CVE-2011-0411's
-- class): OpenResty hands it out after the handshake as if TLS had protected
-- it; coevent refuses the handshake with "unread data in buffer" and leaves
-- the socket as it was (a known difference, docs/differences.md).
local s = tcp()
s:settimeout(5000)
assert(s:connect(PEER.host, PEER.tls_bad))
assert(s:send('inject\n'))
try('greeting', function(r) r(s:receive('*l')) end)
try('handshake', function(r) r(s:sslhandshake(false, 'localhost', false)) end)
try('first line after it', function(r) r(s:receive('*l')) end)
try('handshake again', function(r) r(s:sslhandshake(false, 'localhost', false)) end)
try('next line', function(r) r(s:receive('*l')) end)
s:close()
