-- Differs on purpose (the seed's contract): receive() with no pattern reads
-- '*a' in coevent, a line in OpenResty; receive(nil) reads '*a' too (the
-- prelude cannot tell it from no argument), where OpenResty raises.
local s = connect('lines')
try('no pattern', function(r) r(s:receive()) end)
try('no pattern again', function(r) r(s:receive()) end)
s = connect('lines')
try('nil', function(r) r(s:receive(nil)) end)
