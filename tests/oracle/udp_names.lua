-- Differs, as names.lua: the resolver's error strings. OpenResty says "NAME
-- could not be resolved (3: Host not found)", coevent "no such host".
-- setpeername(name, port): the peer's nameserver (peer.test is 127.0.0.1).
try('peer.test', function(r)
  local s = udp()
  r(s:setpeername('peer.test', PEER.udp), s:send('by name'), s:receive(), s:close())
end)
try('no such name', function(r) r(udp():setpeername('nope.test', PEER.udp)) end)
try('not an address', function(r) r(udp():setpeername('1.2.3.4.5', PEER.udp)) end)
