-- cosocket.udp against a real UDP server: DNS questions to dnsmasq, made
-- and read by hand (see tests/dns.rs for what dnsmasq knows).
local T = require('harness')
local L, eq = T.L, T.eq

local var = T.var
local PORT = tonumber((assert(var('DNS_PORT'), 'DNS_PORT: run through tests/dns.rs')))

local function u16(n) return string.char(math.floor(n / 256), n % 256) end
local function at16(s, i) return s:byte(i) * 256 + s:byte(i + 1) end

-- A question with recursion desired, as a nested table (send joins it).
local function question(id, name, qtype)
  local q = { u16(id), '\1\0', u16(1), u16(0), u16(0), u16(0) }
  for label in name:gmatch('[^.]+') do q[#q + 1] = { string.char(#label), label } end
  q[#q + 1] = { '\0', u16(qtype), u16(1) }
  return q
end

-- An answer's id, rcode and addresses (A as dotted quads, AAAA as 16 bytes in hex).
local function parse(m)
  local id, rcode, an = at16(m, 1), m:byte(4) % 16, at16(m, 7)
  local i = 13
  local function name()
    while true do
      local n = m:byte(i)
      if n == 0 then i = i + 1 return end
      if n >= 192 then i = i + 2 return end
      i = i + 1 + n
    end
  end
  name()
  i = i + 4
  local ips = {}
  for _ = 1, an do
    name()
    local qtype, len = at16(m, i), at16(m, i + 8)
    local rdata = m:sub(i + 10, i + 9 + len)
    if qtype == 1 then ips[#ips + 1] = table.concat({ rdata:byte(1, 4) }, '.') end
    if qtype == 28 then ips[#ips + 1] = rdata:gsub('.', function(c) return ('%02x'):format(c:byte()) end) end
    i = i + 10 + len
  end
  return id, rcode, table.concat(ips, ' ')
end

-- Asks every question at once and reads the answers in whatever order they
-- come; a question dnsmasq dropped (a busy moment) is asked again.
local function ask(u, qs)
  local got = {}
  for _ = 1, 3 do
    for id, q in pairs(qs) do
      if not got[id] then eq(u:send(question(id, q[1], q[2])), 1, 'send') end
    end
    while true do
      local m, e = u:receive()
      if not m then
        eq(e, 'timeout', 'receive')
        break
      end
      local id, rcode, ips = parse(m)
      got[id] = rcode .. ' ' .. ips
      local all = true
      for k in pairs(qs) do all = all and got[k] ~= nil end
      if all then return got end
    end
  end
  T.fail('no answer from dnsmasq')
end

T.case('questions to dnsmasq, several in flight, answers by id', function()
  local u = L.udp()
  u:settimeout(1000)
  eq(u:setpeername('127.0.0.1', PORT), 1, 'setpeername')
  local got = ask(u, { [0x1234] = { 'v4.test', 1 }, [0x4321] = { 'both.test', 28 }, [7] = { 'nx.test', 1 } })
  eq(got[0x1234], '0 127.0.0.1')
  eq(got[0x4321], '0 ' .. ('00'):rep(15) .. '01')
  eq(got[7], '3 ', 'NXDOMAIN')
  eq(u:close(), 1, 'close')
end)

T.case('the server by name: dnsmasq resolves the name of its own socket', function()
  L.config({ nameservers = { '127.0.0.1:' .. PORT }, hosts = var('DNS_EMPTY_HOSTS') })
  local u = L.udp()
  u:settimeout(1000)
  eq(u:setpeername('v4.test', PORT), 1, 'setpeername v4.test')
  eq(ask(u, { [1] = { 'alias.test', 1 } })[1], '0 127.0.0.1')
  u:close()
  L.config({})
end)

return T.run()
