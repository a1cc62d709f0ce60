-- TLS against a server that misbehaves on purpose (tests/tlspeer/bad.rs):
-- a handshake or a record cut mid-record, then a FIN or a reset, fails at
-- once (well before the 5 s timeout); plaintext the client never read fails
-- the handshake; a silent server times out. (A send after a failed receive,
-- and a reset after the handshake, differ: half_closed and tls_reset.)
local function bad(cmd)
  local s = tcp()
  s:settimeout(5000)
  assert(s:connect(PEER.host, PEER.tls_bad))
  assert(s:send(cmd .. '\n'))
  return s
end

-- try(label, f), and whether it came at once.
local function quick(label, f)
  local t0 = now()
  try(label, f)
  show(label .. ' at once', now() - t0 < 1)
end

for _, how in ipairs({ 'fin', 'rst' }) do
  for _, k in ipairs({ 1, 3, 5, 60, 130, 300, -1 }) do
    local cmd = ('cut %s %d'):format(how, k)
    local s = bad(cmd)
    quick(cmd, function(r) r(s:sslhandshake(false, 'localhost', false)) end)
    try(cmd .. ': send', function(r) r(s:send('x')) end)
  end
end

-- A whole handshake, our line, then `whole\n` and half a record (fin), or
-- half a record (rst).
local function trunc(how)
  local s = bad('trunc ' .. how)
  try('trunc ' .. how .. ': handshake', function(r) r(s:sslhandshake(false, 'localhost', false)) end)
  try('trunc ' .. how .. ': send', function(r) r(s:send('go\n')) end)
  return s
end

local s = trunc('fin')
try("'*l'", function(r) r(s:receive('*l')) end)
quick("'*l' cut", function(r) r(s:receive('*l')) end)
s = trunc('fin')
quick('a count cut', function(r) r(s:receive(10)) end)
s = trunc('fin')
local it = s:receiveuntil('--')
quick('receiveuntil cut', function(r) r(it()) end)
s = trunc('fin')
try('receiveany', function(r) r(s:receiveany(100)) end)
quick('receiveany cut', function(r) r(s:receiveany(100)) end)
s = trunc('fin')
quick("'*a' cut", function(r) r(s:receive('*a')) end)
s:close()

s = bad('plain')
quick('plaintext unread', function(r) r(s:sslhandshake(false, 'localhost', false)) end)

s = bad('stall')
s:settimeout(300)
local t0 = now()
try('stall', function(r) r(s:sslhandshake(false, 'localhost', false)) end)
show('stall: the timeout', now() - t0 >= 0.28)
try('send after the timeout', function(r) r(s:send('x')) end)
