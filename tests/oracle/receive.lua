-- receive(pattern): every pattern, the end of the stream, closed sockets.
local s = connect('lines')
for i = 1, 5 do
  try('*l ' .. i, function(r) r(s:receive('*l')) end)
end
try('*l after the peer closed', function(r) r(s:receive('*l')) end)
try('*a after that', function(r) r(s:receive('*a')) end)
try('count after that', function(r) r(s:receive(3)) end)

s = connect('lines')
try('*a', function(r) r(s:receive('*a')) end)
try('*a again', function(r) r(s:receive('*a')) end)
try('*l at the end', function(r) r(s:receive('*l')) end)

s = connect('bytes 20')
try('4', function(r) r(s:receive(4)) end)
try('"4"', function(r) r(s:receive('4')) end)
try('0', function(r) r(s:receive(0)) end)
try('2.7', function(r) r(s:receive(2.7)) end)
try('"2.7"', function(r) r(s:receive('2.7')) end)
try('-1', function(r) r(s:receive(-1)) end)
try('"-1"', function(r) r(s:receive('-1')) end)
try('20 (more than comes)', function(r) r(s:receive(20)) end)
try('after that', function(r) r(s:receive(1)) end)
try('0 on a closed socket', function(r) r(s:receive(0)) end)

s = connect('bytes 5')
try('10, the peer closes first', function(r) r(s:receive(10)) end)

s = connect('lines')
for _, p in ipairs({ 'x', '*x', '*L', '*', '', '**l', '*l ', 'line', '*a*', '0x10', ' 3' }) do
  try(('pattern %q'):format(p), function(r) r(s:receive(p)) end)
end
try('pattern true', function(r) r(s:receive(true)) end)
try('pattern a table', function(r) r(s:receive({})) end)
try('pattern a function', function(r) r(s:receive(print)) end)
try('still usable', function(r) r(s:receive('*l')) end)
s:close()

s = tcp()
try('never connected: *l', function(r) r(s:receive('*l')) end)
try('never connected: *a', function(r) r(s:receive('*a')) end)
try('never connected: 3', function(r) r(s:receive(3)) end)
try('never connected: bad pattern', function(r) r(s:receive('x')) end)

s = connect('lines')
s:close()
try('after close: *l', function(r) r(s:receive('*l')) end)
try('after close: *a', function(r) r(s:receive('*a')) end)
try('after close: 3', function(r) r(s:receive(3)) end)
try('after close: 0', function(r) r(s:receive(0)) end)

s = connect('close')
try('peer closed at once: *l', function(r) r(s:receive('*l')) end)
s = connect('close')
try('peer closed at once: *a', function(r) r(s:receive('*a')) end)
try('and again: *a', function(r) r(s:receive('*a')) end)
s = connect('close')
try('peer closed at once: 1', function(r) r(s:receive(1)) end)

s = connect('rst')
sleep(0.05)
s:send('more\n')
sleep(0.05)
try('reset: *a', function(r) r(s:receive('*a')) end)
try('reset, then *a', function(r) r(s:receive('*a')) end)

s = connect('drip ab\\nc\\r\\nd')
try('drip *l', function(r) r(s:receive('*l')) end)
try('drip *l', function(r) r(s:receive('*l')) end)
try('drip 1', function(r) r(s:receive(1)) end)
try('drip *l end', function(r) r(s:receive('*l')) end)
