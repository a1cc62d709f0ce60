-- L.config: what it accepts, what it raises (see src/resolve.rs, tests/dns.rs).
local T = require('harness')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

local var = T.var
local DNS = '127.0.0.1:' .. assert(var('DNS_PORT'), 'DNS_PORT: run through tests/dns.rs')
local QUICK, NO_HOSTS = var('DNS_QUICK_CONF'), var('DNS_EMPTY_HOSTS')

local function resolve(name)
  local r, e = L.resolve(name)
  if not r then return 'nil ' .. tostring(e) end
  return table.concat(r, ' ')
end

-- fn must raise exactly `msg`, at the position of its caller in this file.
local function raises(fn, msg)
  local err = T.raises(fn, msg)
  local where, rest = err:match('^(.-config%.lua:%d+: )(.*)$')
  if not where then T.fail('no position of this script in ' .. T.show(err), 2) end
  eq(rest, msg, 'message')
end

local function bad(what)
  return "bad argument #1 to 'config' (" .. what .. ')'
end

T.case('raises on a bad argument or option, with exact messages', function()
  raises(function() L.config() end, bad('table expected, got nil'))
  raises(function() L.config('nameservers') end, bad('table expected, got string'))
  raises(function() L.config({ bogus = 1 }) end, bad("unknown option 'bogus'"))
  raises(function() L.config({ 'positional' }) end, bad("unknown option '1'"))
  raises(function() L.config({ hosts = 1 }) end, bad('hosts: string expected, got number'))
  raises(function() L.config({ resolv_conf = true }) end, bad('resolv_conf: string expected, got boolean'))
  raises(function() L.config({ nameservers = '127.0.0.1' }) end, bad('nameservers: table expected, got string'))
  raises(function() L.config({ nameservers = {} }) end, bad("nameservers: none given"))
  raises(function() L.config({ nameservers = { 'not an address' } }) end, bad("bad nameserver 'not an address'"))
  raises(function() L.config({ nameservers = { DNS, '127.0.0.1:99999' } }) end, bad("bad nameserver '127.0.0.1:99999'"))
  raises(function() L.config({ nameservers = { '1.2.3.4.5' } }) end, bad("bad nameserver '1.2.3.4.5'"))
  raises(function() L.config({ nameservers = { 'localhost' } }) end, bad("bad nameserver 'localhost'"))
  raises(function() L.config({ nameservers = { 53 } }) end, bad("nameservers: string expected, got number"))
end)

T.case('accepts every nameserver form', function()
  L.config({ nameservers = { '127.0.0.1', '127.0.0.1:5353', '::1', '[::1]', '[::1]:5353', '[fe80::1]:53' } })
  L.config({ nameservers = { DNS }, hosts = NO_HOSTS, resolv_conf = QUICK })
  eq(resolve('v4.test'), '127.0.0.1')
end)

T.case('a failed L.config keeps the settings before it', function()
  L.config({ nameservers = { DNS }, hosts = var('DNS_HOSTS'), resolv_conf = QUICK })
  raises(function() L.config({ nameservers = { 'nope' }, hosts = NO_HOSTS }) end, bad("bad nameserver 'nope'"))
  raises(function() L.config({ hosts = NO_HOSTS, bogus = true }) end, bad("unknown option 'bogus'"))
  eq(resolve('fromhosts.test'), '127.0.0.1')
end)

T.case('a key left out goes back to its default', function()
  L.config({ nameservers = { DNS }, hosts = var('DNS_HOSTS'), resolv_conf = QUICK })
  eq(resolve('fromhosts.test'), '127.0.0.1')
  -- hosts left out: the default file (/etc/hosts or COEVENT_HOSTS) has no such name.
  L.config({ nameservers = { DNS }, resolv_conf = QUICK })
  eq(resolve('fromhosts.test'), 'nil no such host')
end)

T.case('L.config works outside a loop and holds for the next loops', function()
  L.config({ nameservers = { DNS }, hosts = var('DNS_HOSTS'), resolv_conf = QUICK })
  local r = L(function() return resolve('fromhosts.test') end)
  eq(r, '127.0.0.1', 'first loop')
  r = L(function() return resolve('v6.test') end)
  eq(r, '::1', 'second loop')
  L.config({ nameservers = { DNS }, hosts = NO_HOSTS, resolv_conf = QUICK })
  r = L(function() return resolve('fromhosts.test') end)
  eq(r, 'nil no such host', 'after L.config')
  raises(function() L.config({ bogus = 1 }) end, bad("unknown option 'bogus'"))
end, { loop = false })

return T.run()
