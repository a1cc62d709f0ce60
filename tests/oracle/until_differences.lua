-- receiveuntil where coevent differs on purpose (docs/differences.md): the
-- peer closes in the middle of the boundary, whose started bytes are the
-- stream's data (OpenResty drops them from the partial result); and the
-- iterator names itself in a bad argument's message.
local s = connect('closeafter 0 abc--')
local it = s:receiveuntil('--B')
try('the peer closes in the boundary', function(r) r(it()) end)
try('after that', function(r) r(it()) end)
s = connect('echo')
try('iterator, bad size', function(r) r(s:receiveuntil('x')('y')) end)
s:close()
