-- Differs, deliberately (docs/differences.md): in coevent one thread may
-- send while another waits in receive, and close wakes the waiting thread
-- with "closed"; OpenResty answers both "socket busy" (and its receiver
-- then waits until its timeout).
local u = udp()
u:settimeout(300)
u:setpeername(PEER.host, PEER.udp)
local t = spawn(function() return u:receive() end)
try('a second receiver', function(r) r(u:receive()) end)
try('send while another receives', function(r) r(u:send('to the reader')) end)
try('the receiver', function(r) r(wait(t)) end)
t = spawn(function() return u:receive() end)
try('close while another receives', function(r) r(u:close()) end)
try('the receiver', function(r) r(wait(t)) end)
try('close', function(r) r(u:close()) end)
