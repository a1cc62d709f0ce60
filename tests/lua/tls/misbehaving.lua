-- TLS against a server that misbehaves on purpose (tests/tlspeer/bad.rs, run
-- by tests/tls.rs): a cut handshake or record fails at once in OpenResty's
-- words, never by the timeout; plaintext sent before TLS never comes out as
-- if TLS had protected it.
local T = require('harness')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

local function var(name) return (assert(T.var(name), name .. ': run through tests/tls.rs')) end
local CA = var('TLS_DIR') .. '/ca.pem'
local BAD = tonumber(var('TLS_BAD_PORT'))

local now = T.now

-- A socket to the bad server that sent it `cmd` (in plaintext); 5 s timeouts.
local function bad(cmd)
  local s = L.tcp()
  s:settimeouts(5000, 5000, 5000)
  eq(s:connect('127.0.0.1', BAD), 1, 'connect')
  eq(s:send(cmd .. '\n'), #cmd + 1, 'send ' .. cmd)
  return s
end

-- What `f(...)` returns, and how long it took.
local function timed(f, ...)
  local t0 = now()
  local r = pack(f(...))
  return r, now() - t0
end

-- What `f(...)` returns, checked to come at once: well before the 5 s timeouts.
local function quick(what, f, ...)
  local r, took = timed(f, ...)
  T.ok(took < 1, ('%s: %.2f s, want < 1 s (the timeout is 5 s)'):format(what, took))
  return r
end

T.case('a handshake cut mid-record, then a FIN or a reset, fails at once', function()
  -- (A reset drops what the client had not read; a FIN comes with the last bytes.)
  local wrong = {}
  for _, proto in ipairs({ 'TLSv1.2', 'TLSv1.3' }) do
    L.config({ ssl_trusted_certificate = CA, ssl_protocols = { proto } })
    for _, how in ipairs({ 'fin', 'rst' }) do
      -- Mid header, a header alone, mid ServerHello, mid certificate, one byte short.
      for _, k in ipairs({ 1, 3, 5, 60, 130, 300, -1 }) do
        local what = ('%s cut %s %d'):format(proto, how, k)
        local s = bad(('cut %s %d'):format(how, k))
        local r, took = timed(s.sslhandshake, s, nil, 'localhost', true)
        local got = ('n=%d %s %s after %s'):format(r.n, tostring(r[1]), tostring(r[2]), took < 1 and '< 1 s' or took)
        if got ~= 'n=2 nil handshake failed after < 1 s' then wrong[#wrong + 1] = what .. ': ' .. got end
        same(pack(s:send('x')), { n = 2, nil, 'closed' }, what .. ': closed')
      end
    end
  end
  L.config({})
  -- All of them listed, not only the first.
  eq(#wrong .. ': ' .. table.concat(wrong, '; '), '0: ', 'cuts that did not fail at once with "handshake failed"')
end)

-- After a whole handshake and our line: `whole\n` over TLS, half a record, the FIN.
local function trunc(how)
  local s = bad('trunc ' .. how)
  eq(type(s:sslhandshake(nil, 'localhost', true)), 'userdata', 'handshake')
  eq(s:send('go\n'), 3, 'send over TLS')
  return s
end

T.case('a record cut short, then the FIN: each read fails at once, closed', function()
  L.config({ ssl_trusted_certificate = CA })
  local s = trunc('fin')
  eq(s:receive('*l'), 'whole', 'the whole record')
  same(quick("'*l'", s.receive, s, '*l'), { n = 3, nil, 'closed', '' }, "'*l'")
  same(pack(s:send('x')), { n = 2, nil, 'closed' }, 'closed')
  s = trunc('fin')
  same(quick('a count', s.receive, s, 10), { n = 3, nil, 'closed', 'whole\n' }, 'a count')
  s = trunc('fin')
  local it = s:receiveuntil('--')
  same(quick('receiveuntil', it), { n = 3, nil, 'closed', 'whole\n' }, 'receiveuntil')
  s = trunc('fin')
  eq(s:receiveany(100), 'whole\n', 'receiveany: the whole record')
  same(quick('receiveany', s.receiveany, s, 100), { n = 3, nil, 'closed', '' }, 'receiveany')
  -- A close without close_notify is the end of '*a' (docs/tls.md).
  s = trunc('fin')
  same(quick("'*a'", s.receive, s, '*a'), { n = 1, 'whole\n' }, "'*a'")
  s:close()
end)

T.case('a record cut short, then a reset: the read fails at once', function()
  L.config({ ssl_trusted_certificate = CA })
  local s = trunc('rst')
  same(quick("'*l'", s.receive, s, '*l'), { n = 3, nil, 'connection reset by peer', '' }, "'*l'")
  same(pack(s:send('x')), { n = 2, nil, 'closed' }, 'closed')
  s = trunc('rst')
  same(quick('receiveany', s.receiveany, s, 100), { n = 3, nil, 'connection reset by peer', '' }, 'receiveany')
end)

T.case('plaintext buffered before the handshake is refused, never passed off as TLS', function()
  L.config({ ssl_trusted_certificate = CA })
  local s = bad('inject')
  eq(s:receive('*l'), '220 ready', 'the greeting, in plaintext (the next line buffered behind it)')
  same(quick('handshake', s.sslhandshake, s, nil, 'localhost', true), { n = 2, nil, 'unread data in buffer' }, 'refused')
  eq(s:receive('*l'), 'INJECTED', 'the socket as it was: the line is read as the plaintext it is')
  eq(type(s:sslhandshake(nil, 'localhost', true)), 'userdata', 'then the handshake')
  eq(s:receive('*l'), 'over tls', 'what came over TLS, and only that')
  s:close()
  -- Plaintext the client never read is the start of the server's answer to OpenSSL.
  s = bad('plain')
  same(quick('handshake', s.sslhandshake, s, nil, 'localhost', true), { n = 2, nil, 'handshake failed' }, 'plain')
  same(pack(s:receive('*l')), { n = 2, nil, 'closed' }, 'closed')
end)

T.case('a server that never answers: the handshake times out as settimeout says', function()
  L.config({ ssl_trusted_certificate = CA })
  local s = bad('stall')
  s:settimeout(300)
  local t0 = now()
  same(pack(s:sslhandshake(nil, 'localhost', true)), { n = 2, nil, 'timeout' }, 'stall')
  local took = now() - t0
  T.ok(took >= 0.28 and took < 3, ('%.2f s, want 0.3 s'):format(took))
  same(pack(s:send('x')), { n = 2, nil, 'closed' }, 'closed')
end)

return T.run()
