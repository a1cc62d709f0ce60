-- The TLS workloads of bench/tls.sh, shared by the coevent and OpenResty
-- clients: `work(env, mode, port, x, y)` with env = { tcp, spawn, wait, host };
-- returns ok, bytes, failed (nil or why).
--   full     x threads, y handshakes each: connect, full handshake, close
--   resumed  the same, each offering the session of a first handshake
--   get      x connections one after another, y x GET /1m each (HTTP/1.1
--            keepalive): headers by '*l', the body by its length
--   plain    the same without TLS (the plain-TCP figure)
--   ping     x threads, y PING round trips each over one TLS connection (redis)
return function(env, mode, port, x, y)
  local ok, bytes = 0, 0

  -- With tls, sslhandshake(reused): false keeps no session, nil returns one.
  local function open(tls, reused)
    local s = env.tcp()
    s:settimeout(60000)
    local r, err = s:connect(env.host, port)
    if not r then error('connect: ' .. tostring(err)) end
    if tls then
      local sess, e = s:sslhandshake(reused, 'localhost', true)
      if not sess then error('handshake: ' .. tostring(e)) end
      return s, sess
    end
    return s
  end

  local function shakes(session)
    for _ = 1, y do
      open(true, session):close()
      ok = ok + 1
    end
  end

  local function gets(tls)
    for _ = 1, x do
      local s = open(tls, false)
      for _ = 1, y do
        assert(s:send('GET /1m HTTP/1.1\r\nHost: bench\r\n\r\n'))
        local line, err = s:receive('*l')
        if line ~= 'HTTP/1.1 200 OK' then error('status: ' .. tostring(line or err)) end
        local len
        repeat
          line = assert(s:receive('*l'))
          len = len or tonumber(line:match('^[Cc]ontent%-[Ll]ength: (%d+)'))
        until line == ''
        local body = assert(s:receive(len))
        ok, bytes = ok + 1, bytes + #body
      end
      s:close()
    end
  end

  local function ping()
    local s = open(true, false)
    for _ = 1, y do
      assert(s:send('PING\r\n'))
      local line, err = s:receive('*l')
      if line ~= '+PONG' then error('receive: ' .. tostring(line or err)) end
      ok = ok + 1
    end
    bytes = bytes + 7 * y
    s:close()
  end

  local session
  if mode == 'resumed' then
    local s
    -- TLS 1.2 (bench/tls.sh's resumption port): the session is whole at the handshake's end.
    s, session = open(true, nil)
    s:close()
  end
  local body, threads = ({
    full = function() shakes(false) end,
    resumed = function() shakes(session) end,
    ping = ping,
    get = function() gets(true) end,
    plain = function() gets(false) end,
  })[mode], x
  if not body then return 0, 0, 'unknown mode ' .. tostring(mode) end
  if mode == 'get' or mode == 'plain' then threads = 1 end
  local failed
  local ts = {}
  for i = 1, threads do
    ts[i] = env.spawn(function()
      local r, e = pcall(body)
      if not r then failed = failed or tostring(e) end
    end)
  end
  for i = 1, threads do env.wait(ts[i]) end
  return ok, bytes, failed
end
