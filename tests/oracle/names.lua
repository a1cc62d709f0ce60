-- Differs, to fix: the resolver's error strings. OpenResty says "NAME could
-- not be resolved (3: Host not found)", coevent "no such host" (its resolver
-- and docs/names.md; tests/lua/dns assert it).
-- connect(name, port): names through a nameserver (the peer's: peer.test is
-- 127.0.0.1, every other name does not exist; OpenResty's `resolver`
-- directive and coevent's L.config both point at it, with no hosts file).
try('peer.test', function(r)
  local c = tcp()
  r(c:connect('peer.test', PEER.port), c:send('lines\n'), c:receive('*l'), c:close())
end)
try('PEER.TEST', function(r)
  local c = tcp()
  r(c:connect('PEER.TEST', PEER.port), c:close())
end)
try('peer.test, refused', function(r) r(tcp():connect('peer.test', PEER.refused)) end)
try('no such name', function(r) r(tcp():connect('nope.test', PEER.port)) end)
try('a number as host', function(r) r(tcp():connect(127, PEER.port)) end)
try('not an address', function(r) r(tcp():connect('1.2.3.4.5', PEER.port)) end)
