-- Differs, to fix: in OpenResty a receive that meets the peer's close closes
-- only the reading side: send still works, and close() returns 1 once.
-- coevent closes the whole socket on that error.
local s = connect('closeafter 100 ab')
try('*l meets the close', function(r) r(s:receive('*l')) end)
try('send after it', function(r) r(s:send('x')) end)
try('receive after it', function(r) r(s:receive('*l')) end)
try('close', function(r) r(s:close()) end)
try('close again', function(r) r(s:close()) end)
s = connect('lines')
try('count meets the close', function(r) r(s:receive(1000)) end)
try('close', function(r) r(s:close()) end)
