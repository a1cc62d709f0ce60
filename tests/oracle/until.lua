-- receiveuntil: self-overlapping boundaries, sized calls, inclusive, the
-- peer's close, bad arguments.
local s = connect('echo')
try('send', function(r) r(s:send('aaab---abcXhello--Bworld--Bincl--Btail')) end)
local it = s:receiveuntil('aab')
try('aab in aaab', function(r) r(it()) end)
it = s:receiveuntil('--abc')
try('--abc in ---abc', function(r) r(it()) end)
it = s:receiveuntil('X')
try('empty before the boundary', function(r) r(it()) end)
it = s:receiveuntil('--B')
for i = 1, 4 do
  try('size 2, call ' .. i, function(r) r(it(2)) end)
end
try('next call, no size', function(r) r(it()) end)
it = s:receiveuntil('--B', { inclusive = true })
try('inclusive', function(r) r(it()) end)
try('the rest', function(r) r(s:receive(4)) end)
s:close()
try('on a closed socket', function(r) r(it()) end)


s = connect('echo')
try('pattern empty', function(r) r(s:receiveuntil('')) end)
try('pattern a number', function(r) r(s:send('12x34'), s:receiveuntil(34)()) end)
try('pattern a table', function(r) r(s:receiveuntil({})) end)
try('options not a table', function(r) r(s:receiveuntil('x', 1)) end)
try('inclusive not a boolean', function(r) r(s:receiveuntil('x', { inclusive = 1 })) end)
try('no pattern', function(r) r(s:receiveuntil()) end)
s:settimeout(50)
it = s:receiveuntil('END')
try('timeout, partial', function(r) r(s:send('abE'), it()) end)
try('then the rest', function(r) r(s:send('ND'), it()) end)
s:close()
