-- Debian's lua-nginx-dns (nginx.dns.resolver), unmodified, against dnsmasq:
-- over UDP (ngx.socket.udp), and over TCP when the answer is truncated.
local T = require('harness')
require('coevent.ngx')
local port = tonumber(rawget(_G, 'NGX_DNS_PORT') or os.getenv('COEVENT_NGX_DNS_PORT'))

local function resolver()
  if not pcall(require, 'bit') then T.skip("nginx.dns.resolver needs LuaJIT's bit (lua-bitop on PUC Lua 5.1)") end
  local r, err = require('nginx.dns.resolver'):new({ nameservers = { { '127.0.0.1', port } }, retrans = 2, timeout = 2000 })
  return T.ok(r, err)
end

T.case('A, AAAA, CNAME, SRV, MX, TXT over UDP', function()
  local r = resolver()
  local ans = T.ok(r:query('a.ngx.test', { qtype = r.TYPE_A }))
  T.same({ #ans, ans[1].name, ans[1].type, ans[1].address, ans[1].ttl }, { 1, 'a.ngx.test', r.TYPE_A, '10.0.0.1', 30 })
  ans = T.ok(r:query('a.ngx.test', { qtype = r.TYPE_AAAA }))
  -- The library writes every group (as in OpenResty).
  T.same({ #ans, ans[1].type, ans[1].address }, { 1, r.TYPE_AAAA, '2001:db8:0:0:0:0:0:1' })
  ans = T.ok(r:query('www.ngx.test', { qtype = r.TYPE_A }))
  T.same({ #ans, ans[1].type, ans[1].cname, ans[2].type, ans[2].address },
    { 2, r.TYPE_CNAME, 'a.ngx.test', r.TYPE_A, '10.0.0.1' })
  ans = T.ok(r:query('_sip._tcp.ngx.test', { qtype = r.TYPE_SRV }))
  T.same({ ans[1].target, ans[1].port, ans[1].priority, ans[1].weight }, { 'sip.ngx.test', 5060, 10, 20 })
  ans = T.ok(r:query('ngx.test', { qtype = r.TYPE_MX }))
  T.same({ ans[1].exchange, ans[1].preference }, { 'mail.ngx.test', 5 })
  ans = T.ok(r:query('txt.ngx.test', { qtype = r.TYPE_TXT }))
  T.eq(ans[1].txt, 'hello world')
  ans = T.ok(r:query('nope.ngx.test', { qtype = r.TYPE_A }))
  T.same({ ans.errcode, ans.errstr }, { 3, 'name error' })
end, { ci_may_skip = 'no bit module on PUC Lua 5.1' })

T.case('a truncated answer is asked again over TCP', function()
  local r = resolver()
  local ans, err = r:query('big.ngx.test', { qtype = r.TYPE_TXT })
  T.ok(ans, err)
  -- 12 strings of 60 bytes: past the 512 bytes of a UDP answer, so this came over TCP.
  local txt = ans[1].txt
  T.eq(type(txt), 'table')
  T.eq(#txt, 12)
  T.eq(txt[12], string.rep('11', 30))
  -- tcp_query directly, too.
  ans = T.ok(r:tcp_query('a.ngx.test', { qtype = r.TYPE_A }))
  T.eq(ans[1].address, '10.0.0.1')
end, { ci_may_skip = 'no bit module on PUC Lua 5.1' })

T.case('100 concurrent queries', function()
  resolver() -- skips here, not in the threads, where there is no bit module
  local threads = {}
  for i = 1, 100 do
    threads[i] = ngx.thread.spawn(function()
      local r = resolver()
      local ans, err = r:query(i % 2 == 0 and 'a.ngx.test' or 'www.ngx.test', { qtype = r.TYPE_A })
      if not ans then error(err) end
      return ans[#ans].address
    end)
  end
  for i = 1, 100 do T.same(T.pack(ngx.thread.wait(threads[i])), { true, '10.0.0.1' }) end
end, { ci_may_skip = 'no bit module on PUC Lua 5.1' })

return T.run()
