-- setkeepalive's bad arguments. The oracle's module (lua-nginx-module
-- 0.10.2x) looks at them only after the socket's state: a socket never
-- connected answers "closed"; its current sources (and coevent) raise first.
-- On a connected socket that module raises after letting go of the
-- connection, which leaves its worker broken (the next request hangs), so
-- that is not asked here: tests/lua/pool/keepalive.lua checks coevent's
-- (nothing changes before the raise). A known difference: docs/differences.md.
try('bad timeout, unconnected', function(r) r(tcp():setkeepalive('x')) end)
try('bad size, unconnected', function(r) r(tcp():setkeepalive(0, 'x')) end)
