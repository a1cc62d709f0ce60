-- Differs, to decide: a byte count above the socket's max-receive limit
-- (setoption 'max-receive', default docs/socket.md#limits). coevent answers
-- `nil, "too large"` at once and reads nothing; OpenResty reads until the
-- count or the close.
local s = connect('bytes 20')
try('4', function(r) r(s:receive(4)) end)
try('1e10 (more than comes)', function(r) r(s:receive(1e10)) end)
try('after that', function(r) r(s:receive(1)) end)
s = connect('bytes 3')
try('2^31', function(r) r(s:receive(2 ^ 31)) end)
