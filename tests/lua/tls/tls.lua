-- sslhandshake against openssl s_server edge cases and nginx with ssl
-- (tests/tlspeer, run by tests/tls.rs).
local T = require('harness')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

local function var(name) return (assert(T.var(name), name .. ': run through tests/tls.rs')) end
local DIR = var('TLS_DIR')
local CA = DIR .. '/ca.pem'
local function port(name) return tonumber(var(name)) end

local function read(path)
  local f = assert(io.open(path, 'rb'))
  local s = f:read('*a')
  f:close()
  return s
end

-- A socket connected to `p` (a port of the servers, or a unix path).
local function connect(p)
  local s = L.tcp()
  s:settimeouts(5000, 5000, 5000)
  local r, e
  if type(p) == 'number' then r, e = s:connect('127.0.0.1', p) else r, e = s:connect('unix:' .. p) end
  eq(r, 1, 'connect: ' .. tostring(e))
  return s
end

-- s_server -www: GET / gives a page that says whether the session was resumed.
local function www(s)
  eq(s:send('GET / HTTP/1.0\r\n\r\n'), 18, 'send')
  eq(s:receive('*l'), 'HTTP/1.0 200 ok', 'status line')
  local page, e = s:receive('*a')
  eq(e, nil, 'page')
  eq(s:close(), 1, 'close')
  if page:find('\nReused, ', 1, true) then return 'reused' end
  if page:find('\nNew, ', 1, true) then return 'new' end
  return page
end

-- The handshake's results against server `p`: 'ok' (a session object) or the error.
local function shake(p, name, verify, reused)
  local s = connect(p)
  local sess, e = s:sslhandshake(reused, name, verify)
  if not sess then
    eq(s:send('x'), nil, 'a failed handshake closes the socket')
    return e
  end
  s:close()
  return type(sess)
end

T.case('a verified handshake, then send and every receive pattern over TLS', function()
  L.config({ ssl_trusted_certificate = CA })
  local s = connect(port('TLS_PORT'))
  local sess, e = s:sslhandshake(nil, 'localhost', true)
  eq(e, nil, 'handshake error')
  eq(type(sess), 'userdata', 'session')
  eq(s:send({ 'GET / HTTP/1.0\r\n', '\r\n' }), 18, 'send')
  eq(s:receive(9), 'HTTP/1.0 ', 'count')
  eq(s:receive('*l'), '200 ok', 'line')
  local it = s:receiveuntil('\r\n\r\n')
  local head = it()
  T.ok(head:find('Content-type: text/html', 1, true), 'headers: ' .. T.show(head))
  local any = s:receiveany(5)
  eq(#any, 5, 'receiveany')
  local rest, e2 = s:receive('*a')
  eq(e2, nil, '*a')
  T.ok((any .. rest):find('</HTML>', 1, true), 'the page to its end')
  eq(s:receive('*a'), '', 'closed: an empty string')
  s:close()
end)

T.case('verification: chain and host errors in OpenResty\'s words', function()
  L.config({ ssl_trusted_certificate = CA })
  eq(shake(port('TLS_SELF_PORT'), 'localhost', true), '18: self-signed certificate', 'self-signed')
  eq(shake(port('TLS_UNKNOWN_PORT'), 'localhost', true), '20: unable to get local issuer certificate', 'unknown CA')
  eq(shake(port('TLS_EXPIRED_PORT'), 'localhost', true), '10: certificate has expired', 'expired')
  eq(shake(port('TLS_WRONG_PORT'), 'localhost', true), 'certificate host mismatch', 'wrong name')
  eq(shake(port('TLS_PORT'), '127.0.0.1', true), 'userdata', 'an IP literal checked against the IP SAN')
  eq(shake(port('TLS_PORT'), '127.0.0.2', true), 'certificate host mismatch', 'another IP')
  eq(shake(port('TLS_WRONG_PORT'), nil, true), 'userdata', 'no name: the chain alone')
  -- Not verifying: every one of them is taken.
  for _, p in ipairs({ 'TLS_SELF_PORT', 'TLS_UNKNOWN_PORT', 'TLS_EXPIRED_PORT', 'TLS_WRONG_PORT' }) do
    eq(shake(port(p), 'localhost', false), 'userdata', p .. ' unverified')
  end
  -- The default trust store (OpenSSL's default paths) does not know the test CA.
  L.config({})
  eq(shake(port('TLS_PORT'), 'localhost', true), '20: unable to get local issuer certificate', 'system store')
end)

T.case('reused_session: false returns true; a session is resumed', function()
  L.config({ ssl_trusted_certificate = CA })
  for _, p in ipairs({ 'TLS12_PORT', 'TLS13_PORT' }) do
    local s = connect(port(p))
    local sess = s:sslhandshake(nil, 'localhost', true)
    eq(type(sess), 'userdata', p .. ' session')
    -- TLS 1.3's tickets come after the handshake, with the page.
    eq(www(s), 'new', p .. ' first')
    s = connect(port(p))
    local again = s:sslhandshake(sess, 'localhost', true)
    eq(type(again), 'userdata', p .. ' resumed session')
    eq(www(s), 'reused', p .. ' the server saw a resumed session')
    s = connect(port(p))
    eq(s:sslhandshake(false, 'localhost', true), true, p .. ' reused_session = false')
    eq(www(s), 'new', p .. ' no session offered')
    -- A resumed session still checks the name.
    s = connect(port(p))
    same(pack(s:sslhandshake(sess, 'other.test', true)), { n = 2, nil, 'certificate host mismatch' }, p .. ' name')
  end
end)

T.case('protocols and ciphers from L.config', function()
  L.config({ ssl_trusted_certificate = CA, ssl_protocols = { 'TLSv1.2' } })
  eq(shake(port('TLS12_PORT'), 'localhost', true), 'userdata', '1.2 to a 1.2 server')
  eq(shake(port('TLS13_PORT'), 'localhost', true), 'handshake failed', '1.2 to a 1.3-only server')
  L.config({ ssl_trusted_certificate = CA, ssl_protocols = { 'TLSv1.3' } })
  eq(shake(port('TLS13_PORT'), 'localhost', true), 'userdata', '1.3 to a 1.3 server')
  eq(shake(port('TLS12_PORT'), 'localhost', true), 'handshake failed', '1.3 to a 1.2-only server')
  L.config({ ssl_trusted_certificate = CA, ssl_protocols = { 'TLSv1.2' }, ssl_ciphers = 'ECDHE-ECDSA-AES128-GCM-SHA256' })
  eq(shake(port('TLS12_PORT'), 'localhost', true), 'userdata', 'a cipher the server has')
  L.config({ ssl_trusted_certificate = CA, ssl_protocols = { 'TLSv1.2' }, ssl_ciphers = 'ECDHE-RSA-AES128-GCM-SHA256' })
  eq(shake(port('TLS12_PORT'), 'localhost', true), 'handshake failed', 'none the server has')
  -- (OpenSSL's depth counts the CAs between the peer and the anchor: none here.)
  L.config({ ssl_trusted_certificate = CA, ssl_verify_depth = 0 })
  eq(shake(port('TLS_PORT'), 'localhost', true), 'userdata', 'verify depth')
  T.raises(function() L.config({ ssl_verify_depth = -1 }) end, 'ssl_verify_depth: a whole number >= 0 expected')
  local bad = "bad argument #1 to 'config' ("
  T.raises(function() L.config({ ssl_protocols = { 'SSLv2' } }) end, bad .. "ssl_protocols: unknown protocol 'SSLv2')")
  T.raises(function() L.config({ ssl_ciphers = 'NOPE' }) end, bad .. 'ssl_ciphers: NOPE: no cipher match)')
  T.raises(function() L.config({ ssl_trusted_certificate = DIR .. '/none.pem' }) end,
    bad .. 'ssl_trusted_certificate: ' .. DIR .. '/none.pem: no such file or directory)')
  T.raises(function() L.config({ ssl_trusted_certificate = DIR .. '/client.key' }) end,
    bad .. 'ssl_trusted_certificate: ' .. DIR .. '/client.key: ')
  T.raises(function() L.config({ ssl_bogus = 1 }) end, "unknown option 'ssl_bogus'")
  L.config({})
end)

T.case('client certificates', function()
  L.config({ ssl_trusted_certificate = CA })
  local cert, key = read(DIR .. '/client.pem'), read(DIR .. '/client.key')
  local s = connect(port('TLS_CLIENT_PORT'))
  eq(s:setclientcert(cert, key), true, 'setclientcert')
  eq(type(s:sslhandshake(false, 'localhost', true)), 'boolean', 'handshake with a certificate')
  eq(www(s), 'new', 'served')
  -- Without one the server refuses (TLS 1.3: after the client's handshake ends).
  s = connect(port('TLS_CLIENT_PORT'))
  eq(s:sslhandshake(false, 'localhost', true), true, 'handshake without a certificate')
  s:send('GET / HTTP/1.0\r\n\r\n')
  same(pack(s:receive('*l')), { n = 3, nil, 'tlsv13 alert certificate required', '' }, 'refused')
  s = L.tcp()
  same(pack(s:setclientcert(cert)), { n = 2, nil, 'client certificate must be supplied with corresponding private key' }, 'no key')
  eq(s:setclientcert(nil, nil), true, 'none')
  local r, e = s:setclientcert('not a pem', key)
  eq(r, nil, 'bad cert')
  T.ok(e:find('^bad cert arg: '), e)
  r, e = s:setclientcert(cert, read(DIR .. '/server.key'))
  same(pack(r, e), { n = 2, nil, 'bad pkey arg: the key does not match the certificate' }, 'another key')
  same(pack(s:setclientcert(1, key)), { n = 2, nil, 'bad cert arg: string expected, got number' }, 'not a string')
end)

T.case('a stalled handshake times out, a reset one fails; both close the socket', function()
  L.config({ ssl_trusted_certificate = CA })
  local s = connect(port('TLS_STALL_PORT'))
  s:settimeouts(200, 5000, 5000)
  same(pack(s:sslhandshake(nil, 'localhost', true)), { n = 2, nil, 'timeout' }, 'stall')
  same(pack(s:send('x')), { n = 2, nil, 'closed' }, 'closed after the timeout')
  eq(shake(port('TLS_RESET_PORT'), 'localhost', true), 'handshake failed', 'reset')
  eq(shake(port('PEER_PORT'), 'localhost', true), 'handshake failed', 'a peer that speaks no TLS')
  -- Nothing to shake hands on.
  s = L.tcp()
  T.raises(function() s:sslhandshake() end, 'socket is never created nor connected')
  s:connect('127.0.0.1', port('TLS_PORT'))
  s:close()
  same(pack(s:sslhandshake()), { n = 2, nil, 'closed' }, 'closed')
end)

T.case('a read timeout over TLS leaves the socket open', function()
  L.config({ ssl_trusted_certificate = CA })
  local s = connect(port('TLS_PORT'))
  eq(type(s:sslhandshake(nil, 'localhost', true)), 'userdata', 'handshake')
  s:settimeouts(5000, 5000, 100)
  same(pack(s:receive('*l')), { n = 3, nil, 'timeout', '' }, 'nothing asked, nothing comes')
  eq(www(s), 'new', 'the request after the timeout')
end)

T.case('arguments as OpenResty checks them', function()
  local s = L.tcp()
  T.raises(function() s:sslhandshake(nil, nil, nil, nil, nil) end,
    'ngx.socket sslhandshake: expecting 1 ~ 5 arguments (including the object), but seen 6')
  T.raises(function() s:sslhandshake(nil, {}) end, "bad argument #2 to 'sslhandshake' (string expected, got table)")
end)

T.case('a pooled-style second handshake on the same connection returns at once', function()
  L.config({ ssl_trusted_certificate = CA })
  local s = connect(port('NGINX_TLS_PORT'))
  local sess = s:sslhandshake(nil, 'localhost', true)
  eq(type(sess), 'userdata', 'first')
  eq(s:sslhandshake(sess, 'localhost', true), sess, 'the session given back')
  eq(s:sslhandshake(false, 'localhost', true), true, 'false')
  eq(type(s:sslhandshake(nil, 'localhost', true)), 'userdata', 'a session of it')
  s:close()
end)

T.case('a pooled TLS connection comes back with its TLS state: no second handshake', function()
  L.config({ ssl_trusted_certificate = CA })
  local pool = 'tls-pool-' .. T.pid()
  local sess, first
  for round = 1, 3 do
    local s = L.tcp()
    eq(s:connect('127.0.0.1', port('TLS_COUNT_PORT'), { pool = pool }), 1, 'connect')
    eq(s:getreusedtimes(), round - 1, 'reused times')
    local got, e = s:sslhandshake(sess, 'localhost', true)
    eq(e, nil, 'handshake')
    if round == 1 then sess = got else eq(got, sess, 'the session given back at once') end
    eq(s:send('PING\r\n'), 6, 'send')
    local pong = s:receive('*l')
    first = first or pong
    eq(pong, first, 'the server counted no new handshake (round ' .. round .. ')')
    eq(s:setkeepalive(), 1, 'setkeepalive')
  end
  -- A new connection is a new handshake.
  local s = connect(port('TLS_COUNT_PORT'))
  eq(s:sslhandshake(false, 'localhost', true), true, 'handshake')
  s:send('PING\r\n')
  local n = tonumber(s:receive('*l'):match('^%+PONG (%d+)$'))
  T.ok(n > tonumber(first:match('%d+')), 'counted: ' .. tostring(n))
  s:close()
end)

-- Issue 23: kills where TLS, pools and waits meet. A thread killed in a
-- handshake or a receive over TLS takes its socket down with the half-done
-- operation; a pooled TLS connection granted to a queued connect that is
-- killed before it runs goes to the next one, TLS state and all.
T.case('a thread killed in a handshake, a TLS receive or a pool backlog leaves nothing behind', function()
  L.config({ ssl_trusted_certificate = CA })
  local s = connect(port('TLS_STALL_PORT'))
  local t = L.spawn(function() return s:sslhandshake(nil, 'localhost', true) end)
  eq(L.kill(t), true, 'killed in the handshake')
  same(pack(L.wait(t)), { n = 2, nil, 'killed' }, 'its waiters')
  same(pack(s:send('x')), { n = 2, nil, 'closed' }, 'the socket closed with the handshake')
  s = connect(port('TLS_COUNT_PORT'))
  eq(type(s:sslhandshake(nil, 'localhost', true)), 'userdata', 'handshake')
  t = L.spawn(function() return s:receive('*l') end)
  eq(L.kill(t), true, 'killed in a receive over TLS')
  same(pack(s:send('PING\r\n')), { n = 2, nil, 'closed' }, 'the socket closed with the receive')
  local o = { pool = 'tls-kill-' .. T.pid(), pool_size = 1, backlog = 2 }
  local s1 = L.tcp()
  eq(s1:connect('127.0.0.1', port('TLS_COUNT_PORT'), o), 1, 'connect')
  eq(type(s1:sslhandshake(nil, 'localhost', true)), 'userdata', 'the first handshake')
  eq(s1:send('PING\r\n'), 6, 'send')
  local count = s1:receive('*l')
  local function queued()
    local q = L.tcp()
    q:settimeouts(5000, 5000, 5000)
    return L.spawn(function()
      local r, e = q:connect('127.0.0.1', port('TLS_COUNT_PORT'), o)
      if not r then return r, e end
      local sess, he = q:sslhandshake(nil, 'localhost', true)
      if not sess then return sess, he end
      q:send('PING\r\n')
      return q:getreusedtimes(), q:receive('*l'), q
    end)
  end
  local t2, t3 = queued(), queued()
  eq(s1:setkeepalive(), 1, 'the connection back, granted to t2')
  eq(L.kill(t2), true, 't2 killed before it runs')
  local reused, pong, s3 = L.wait(t3)
  eq(reused, 1, 't3 took the pooled connection')
  eq(pong, count, 'over the first handshake: the server counted none since')
  s3:close()
end)

T.case('a pooled connection never claims a verification its handshake did not make', function()
  L.config({ ssl_trusted_certificate = CA })
  local pool = 'tls-verified-' .. T.pid()
  local function pooled(reused)
    local s = L.tcp()
    s:settimeouts(5000, 5000, 5000)
    eq(s:connect('127.0.0.1', port('TLS_COUNT_PORT'), { pool = pool }), 1, 'connect')
    eq(s:getreusedtimes(), reused, 'reused times')
    return s
  end
  -- The server's answer (after TLS 1.3's tickets: the connection is idle after it).
  local function ping(s)
    eq(s:send('PING\r\n'), 6, 'send')
    return (s:receive('*l'))
  end
  -- A new connection, its handshake, back in the pool.
  local function shaken(name, verify)
    local s = pooled(0)
    eq(s:sslhandshake(false, name, verify), true, 'handshake')
    local pong = ping(s)
    eq(s:setkeepalive(), 1, 'setkeepalive')
    return pong
  end
  local function refused(name, want)
    local s = pooled(1)
    same(pack(s:sslhandshake(false, name, true)), { n = 2, nil, want }, tostring(name))
    same(pack(s:send('x')), { n = 2, nil, 'closed' }, 'a refusal closes the connection')
  end
  -- Made without verification: asked for one, it is refused.
  shaken('localhost', false)
  refused('localhost', 'pooled connection not verified for localhost')
  shaken(nil, false)
  refused(nil, 'pooled connection not verified')
  -- Verified for localhost: not for another name.
  shaken('localhost', true)
  refused('127.0.0.1', 'pooled connection not verified for 127.0.0.1')
  -- The same name, the chain alone, or no verification: at once, as before.
  local first = shaken('localhost', true)
  local s = pooled(1)
  eq(s:sslhandshake(false, 'localhost', true), true, 'the same name')
  eq(s:sslhandshake(false, nil, true), true, 'the chain alone')
  eq(s:sslhandshake(false, 'other.test', false), true, 'no verification')
  eq(ping(s), first, 'no new handshake')
  s:close()
end)

-- GET path over a keepalive connection; the body by its length.
local function get(s, path)
  local n = s:send('GET ' .. path .. ' HTTP/1.1\r\nHost: localhost\r\n\r\n')
  if not n then return nil, 'send' end
  local status = s:receive('*l')
  if status ~= 'HTTP/1.1 200 OK' then return nil, tostring(status) end
  local len
  while true do
    local l, e = s:receive('*l')
    if not l then return nil, e end
    if l == '' then break end
    len = len or tonumber(l:match('^[Cc]ontent%-[Ll]ength: (%d+)'))
  end
  return s:receive(len)
end

T.case('8 threads fetch 1 MiB over HTTPS from nginx at once, every byte compared', function()
  L.config({ ssl_trusted_certificate = CA })
  local want = read(DIR .. '/www/big.bin')
  eq(#want, tonumber(var('TLS_BIG')), 'the file')
  local ts = {}
  for i = 1, 8 do
    ts[i] = L.spawn(function()
      local s = connect(i % 2 == 0 and port('NGINX_TLS_PORT') or var('NGINX_TLS_UNIX'))
      local sess, e = s:sslhandshake(false, 'localhost', true)
      if not sess then return 'handshake: ' .. e end
      for _ = 1, 2 do
        local body, e2 = get(s, '/big.bin')
        if body ~= want then return 'body: ' .. tostring(body and #body or e2) end
      end
      s:close()
      return 'ok'
    end)
  end
  for i = 1, 8 do eq(L.wait(ts[i]), 'ok', 'thread ' .. i) end
end)

T.case('300 handshakes in flight do not stall a ticking thread', function()
  L.config({ ssl_trusted_certificate = CA })
  local done, ticks, late = 0, 0, 0
  local ticker = L.spawn(function()
    for _ = 1, 3000 do
      if done >= 300 then break end
      local t0 = os.clock()
      L.sleep(0.01)
      ticks = ticks + 1
      if os.clock() - t0 > 0.5 then late = late + 1 end
    end
  end)
  local ts = {}
  for i = 1, 300 do
    ts[i] = L.spawn(function()
      local s = connect(port('NGINX_TLS_PORT'))
      local ok, e = s:sslhandshake(false, 'localhost', true)
      done = done + 1
      s:close()
      return ok or e
    end)
  end
  for i = 1, 300 do eq(L.wait(ts[i]), true, 'handshake ' .. i) end
  L.wait(ticker)
  T.ok(ticks > 1, 'the ticker ran meanwhile')
  -- (Under valgrind one loop turn of handshakes takes seconds of CPU.)
  if os.getenv('COEVENT_VALGRIND') ~= '1' then eq(late, 0, 'ticks late by CPU') end
end)

return T.run()
