-- L.resolve against dnsmasq and the servers of tests/dnspeer (see tests/dns.rs).
local T = require('harness')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

local var = T.var
local DNS = '127.0.0.1:' .. assert(var('DNS_PORT'), 'DNS_PORT: run through tests/dns.rs')
local SILENT = '127.0.0.1:' .. var('DNS_SILENT_PORT')
local SERVFAIL = '127.0.0.1:' .. var('DNS_SERVFAIL_PORT')
local COUNT_PORT = tonumber(var('DNS_COUNT_PORT'))
local COUNT = '127.0.0.1:' .. COUNT_PORT
local QUICK, SLOW = var('DNS_QUICK_CONF'), var('DNS_SLOW_CONF')
local HOSTS, NO_HOSTS = var('DNS_HOSTS'), var('DNS_EMPTY_HOSTS')

-- Names unique to this process: several runs share the counting server.
local pid
do
  local f = assert(io.open('/proc/self/stat'))
  pid = f:read('*l'):match('^(%d+)')
  f:close()
end

-- Settings for a case: dnsmasq, no hosts entries, 1 s timeouts; `o` overrides.
local function use(o)
  local c = { nameservers = { DNS }, hosts = NO_HOSTS, resolv_conf = QUICK }
  for k, v in pairs(o or {}) do c[k] = v end
  L.config(c)
end

-- A lookup's result as one string: 'a b c', or 'nil <err>'.
local function show(r, e)
  if r == nil then return 'nil ' .. tostring(e) end
  eq(type(r), 'table', 'L.resolve result type')
  return table.concat(r, ' ')
end

local function resolve(name)
  return show(L.resolve(name))
end

-- Questions the counting server saw for `name`.
local function asked(name)
  local s = L.tcp()
  assert(s:connect('127.0.0.1', COUNT_PORT))
  assert(s:send(name .. '\n'))
  local n = assert(s:receive('*l'))
  s:close()
  return tonumber(n)
end

-- Runs f in a light thread while another counts 50 ms sleeps; returns f's
-- results packed and the count.
local function ticking(f)
  local ticks, done = 0, false
  local ticker = L.spawn(function()
    while not done do
      L.sleep(0.05)
      if not done then ticks = ticks + 1 end
    end
  end)
  local r = pack(f())
  done = true
  L.wait(ticker)
  return r, ticks
end

T.case('an A record only', function()
  use()
  eq(resolve('v4.test'), '127.0.0.1')
end)

T.case('an AAAA record only', function()
  use()
  eq(resolve('v6.test'), '::1')
end)

T.case('A and AAAA: IPv4 first', function()
  use()
  eq(resolve('both.test'), '127.0.0.1 ::1')
end)

T.case('a CNAME is followed', function()
  use()
  eq(resolve('alias.test'), '127.0.0.1 ::1')
end)

T.case('any case, and a final dot', function()
  use()
  eq(resolve('BOTH.Test'), '127.0.0.1 ::1')
  eq(resolve('both.test.'), '127.0.0.1 ::1')
end)

T.case('NXDOMAIN: nil, "no such host"', function()
  use()
  same(pack(L.resolve('nx.test')), pack(nil, 'no such host'), 'nx.test')
  same(pack(L.resolve('unknown.test')), pack(nil, 'no such host'), 'unknown.test')
  -- Remembered: asked again, the same.
  same(pack(L.resolve('nx.test')), pack(nil, 'no such host'), 'nx.test again')
end)

T.case('names no server can be asked: nil, "no such host"', function()
  use()
  for _, name in ipairs({ '', '.', 'bad name.test', 'a..b', string.rep('x', 64) .. '.test' }) do
    same(pack(L.resolve(name)), pack(nil, 'no such host'), T.show(name))
  end
end)

T.case('address literals come back as they are, no server asked', function()
  use({ nameservers = { SILENT } })
  local r, ticks = ticking(function()
    return resolve('127.0.0.1'), resolve('::1'), resolve('[::1]'), resolve('10.1.2.3')
  end)
  same(r, pack('127.0.0.1', '::1', '::1', '10.1.2.3'))
  eq(ticks, 0, 'ticks while resolving literals')
end)

T.case('SERVFAIL: nil, "dns server failure"', function()
  use({ nameservers = { SERVFAIL } })
  same(pack(L.resolve('v4.test')), pack(nil, 'dns server failure'))
end)

T.case('SERVFAIL on the first nameserver: the second answers', function()
  use({ nameservers = { SERVFAIL, DNS } })
  eq(resolve('v4.test'), '127.0.0.1')
end)

T.case('a silent nameserver: "dns timeout", and the loop runs meanwhile', function()
  use({ nameservers = { SILENT } })
  local r, ticks = ticking(function() return L.resolve('v4.test') end)
  same(r, pack(nil, 'dns timeout'))
  -- timeout:1, attempts:1: about 20 ticks of 50 ms.
  T.ok(ticks >= 10, 'the loop ran while the lookup waited (' .. ticks .. ' ticks)')
end)

T.case('a silent first nameserver: the second answers after the timeout', function()
  use({ nameservers = { SILENT, DNS } })
  local r, ticks = ticking(function() return resolve('both.test') end)
  same(r, pack('127.0.0.1 ::1'))
  T.ok(ticks >= 10, 'waited for the first server (' .. ticks .. ' ticks)')
end)

T.case('an IPv6 nameserver', function()
  if not var('DNS_PORT6') then T.skip('no IPv6 loopback') end
  use({ nameservers = { '[::1]:' .. var('DNS_PORT6') } })
  eq(resolve('both.test'), '127.0.0.1 ::1')
end)

T.case('200 light threads: one query, the same answer for all', function()
  use({ nameservers = { COUNT } })
  local name = 'shared-' .. pid .. '.test'
  local threads = {}
  for i = 1, 200 do
    threads[i] = L.spawn(function() return resolve(name) end)
  end
  for i = 1, 200 do
    eq(L.wait(threads[i]), '127.0.0.1', 'thread ' .. i)
  end
  eq(asked(name), 2, 'questions (one A, one AAAA)')
end)

T.case('a cached answer sends nothing', function()
  use({ nameservers = { COUNT } })
  local name = 'cached-' .. pid .. '.test'
  eq(resolve(name), '127.0.0.1')
  eq(resolve(name), '127.0.0.1')
  eq(resolve(name:upper()), '127.0.0.1')
  eq(asked(name), 2, 'questions')
end)

T.case('the hosts file comes first', function()
  use({ hosts = HOSTS })
  eq(resolve('fromhosts.test'), '127.0.0.1')
  -- dnsmasq says 127.0.0.1; the file says 127.0.0.9.
  eq(resolve('v4.test'), '127.0.0.9')
  eq(resolve('v6.test'), '::1')
  -- No server is needed for a name in the file.
  use({ hosts = HOSTS, nameservers = { SILENT } })
  local r, ticks = ticking(function() return resolve('fromhosts.test') end)
  same(r, pack('127.0.0.1'))
  eq(ticks, 0, 'ticks')
end)

T.case('resolv_conf: the search list', function()
  use({ resolv_conf = var('DNS_RESOLV_CONF') })
  eq(resolve('db'), '127.0.0.1')
  eq(resolve('db.corp.test'), '127.0.0.1')
end)

T.case('a final dot: the absolute name only, never the search list', function()
  use({ resolv_conf = var('DNS_RESOLV_CONF') })
  -- db.corp.test exists, db does not.
  eq(resolve('db.'), 'nil no such host', 'db. alone')
  eq(resolve('db'), '127.0.0.1')
  eq(resolve('db.'), 'nil no such host', 'db. after db')
end)

T.case('COEVENT_HOSTS and COEVENT_RESOLV_CONF', function()
  if not os.getenv('COEVENT_HOSTS') then T.skip('not in the environment (in-process run)') end
  -- hosts and resolv_conf left out: the environment's files.
  L.config({ nameservers = { DNS } })
  eq(resolve('fromenv.test'), '127.0.0.1')
  -- The env resolv.conf searches env.test, where nothing is.
  same(pack(L.resolve('db')), pack(nil, 'no such host'), 'db with the env search list')
  -- Given ones win.
  L.config({ nameservers = { DNS }, hosts = NO_HOSTS, resolv_conf = var('DNS_RESOLV_CONF') })
  same(pack(L.resolve('fromenv.test')), pack(nil, 'no such host'), 'fromenv.test with hosts given')
  eq(resolve('db'), '127.0.0.1')
end, { ci_may_skip = 'the in-process run has no COEVENT_HOSTS' })

T.case('L.config during a lookup: the waiting thread asks again with the new settings', function()
  use({ nameservers = { SILENT }, resolv_conf = SLOW })
  local t = L.spawn(function() return resolve('v4.test') end)
  L.sleep(0.1)
  use()
  local r, ticks = ticking(function() return L.wait(t) end)
  same(r, pack('127.0.0.1'))
  T.ok(ticks < 20, 'answered without waiting out the 5 s timeout (' .. ticks .. ' ticks)')
end)

T.case('a lookup nobody waits for does not answer another name', function()
  use()
  -- A lookup inside a user coroutine: its wait marker comes out of the
  -- coroutine, nobody parks on the query, which still runs to its end.
  local co = coroutine.wrap(function() return L.resolve('v4.test') end)
  co()
  L.sleep(0.2)
  eq(resolve('v6.test'), '::1')
  eq(resolve('both.test'), '127.0.0.1 ::1')
end)

T.case('PUC Lua 5.1: a lookup whose wait pcall refused does not answer another name', function()
  use()
  local ok, e = pcall(L.resolve, 'v4.test')
  if ok then T.skip('pcall can yield here') end
  T.ok(tostring(e):find('yield across', 1, true), 'error: ' .. tostring(e))
  L.sleep(0.2)
  eq(resolve('v6.test'), '::1')
end, { ci_may_skip = 'pcall can yield on Lua 5.2+ and LuaJIT' })

-- A debug hook runs between a lookup's wake and its taking of the answer: a
-- thread the hook starts there, resolving another name, must not take it.
T.case('a thread started by a hook as a lookup wakes gets its own answer', function()
  if not debug then T.skip('no debug library here') end
  use()
  local got, threads, me = {}, {}, coroutine.running()
  -- (LuaJIT's hooks are global: this one acts in this thread only.)
  T.hook(function()
    if #threads < 40 and coroutine.running() == me then
      threads[#threads + 1] = L.spawn(function()
        local r = resolve('v6.test')
        got[#got + 1] = r
      end)
    end
  end, 'c')
  local mine = resolve('v4.test')
  T.unhook()
  for _, t in ipairs(threads) do L.wait(t) end
  eq(mine, '127.0.0.1', 'v4.test')
  eq(#got, #threads, 'every thread resolved')
  for i = 1, #got do eq(got[i], '::1', 'v6.test, thread ' .. i) end
end, { ci_may_skip = 'the in-process Lua and the runner have no debug library' })

-- A file's whole content, written; and its mtime set (GNU touch).
local function write_file(path, text, stamp)
  local f = assert(io.open(path, 'wb'))
  f:write(text)
  f:close()
  if stamp then
    local ok = os.execute("touch -d '" .. stamp .. "' '" .. path .. "'")
    T.ok(ok == true or ok == 0, 'touch -d ' .. stamp)
  end
end

T.case('L.resolve takes names as bytes (bug 5)', function()
  use()
  local s = L.tcp()
  same(pack(s:connect('\255bad', 80)), pack(nil, 'no such host'), "connect('\\255bad')")
  local r = pack(L.pcall(function() return L.resolve('\255bad') end))
  if not r[1] then
    L.config({})
    T.fail("L.resolve('\\255bad') raised " .. T.show(r[2]) .. ' (' .. type(r[2]) .. ')')
  end
  same(r, pack(true, nil, 'no such host'), "L.resolve('\\255bad')")
  same(pack(L.resolve('bad\255.test')), pack(nil, 'no such host'), "L.resolve('bad\\255.test')")
  L.config({})
end)

-- L.config{dns_cache_size = n} bounds the loop's resolver cache to n entries
-- (LRU; "no such host" answers count): the bound itself is tested in Rust
-- (engine/tests/resolver.rs), here that lookups go on past it. The hosts file is
-- read once per loop and read again at the next lookup once its mtime has changed.
T.case('the resolver cache is bounded; the hosts file is re-read when its mtime changes (bug 6)', function()
  local hosts = os.tmpname()
  -- The hosts file is read at the first lookup, again only if its mtime changed.
  write_file(hosts, '10.0.0.1 h.test\n', '2001-01-01 00:00:00')
  use({ hosts = hosts })
  local ok, err = L.pcall(function()
    same(L.resolve('h.test'), { '10.0.0.1' }, 'h.test from the hosts file')
    write_file(hosts, '10.0.0.2 h.test\n', '2001-01-01 00:00:00')
    same(L.resolve('h.test'), { '10.0.0.1' }, 'h.test: file rewritten, same mtime: not read again')
    write_file(hosts, '10.0.0.2 h.test\n', '2002-02-02 00:00:00')
    same(L.resolve('h.test'), { '10.0.0.2' }, 'h.test: mtime changed: read again')

    use({ hosts = hosts, dns_cache_size = 16 })
    same(L.resolve('v4.test'), { '127.0.0.1' }, 'v4.test')
    for i = 1, 40 do
      local name = 'absent-' .. i .. '.test'
      same(pack(L.resolve(name)), pack(nil, 'no such host'), name)
    end
    -- v4.test was evicted (least recently used): asked again, and found.
    same(L.resolve('v4.test'), { '127.0.0.1' }, 'v4.test after 40 other names')
    same(pack(L.resolve('absent-40.test')), pack(nil, 'no such host'), 'a recent name, again')
  end)
  L.config({})
  os.remove(hosts)
  if not ok then error(err, 0) end
end)

T.case('bad arguments raise', function()
  T.raises(function() L.resolve() end, "bad argument #1 to 'resolve' (string expected, got nil)")
  T.raises(function() L.resolve({}) end, "bad argument #1 to 'resolve' (string expected, got table)")
end)

T.case('outside a loop L.resolve raises', function()
  T.raises(function() L.resolve('v4.test') end, 'not inside a coevent loop (run it in a function given to L(...))')
end, { loop = false })

return T.run()
