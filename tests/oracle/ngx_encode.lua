-- ngx's digests, encodings and escapes, as OpenResty gives them.
local inputs = { '', 'hello', 'a b&c=d/e?f~g-h_i.j*k+l', '\0\1\255 é', string.rep('xyz', 50) }
for i, s in ipairs(inputs) do
  try('md5 ' .. i, function(r) r(ngx.md5(s)) end)
  try('md5_bin ' .. i, function(r) r(ngx.md5_bin(s)) end)
  try('sha1_bin ' .. i, function(r) r(ngx.sha1_bin(s)) end)
  try('hmac_sha1 ' .. i, function(r) r(ngx.hmac_sha1('secret', s)) end)
  try('crc32 ' .. i, function(r) r(ngx.crc32_short(s), ngx.crc32_long(s)) end)
  try('base64 ' .. i, function(r) r(ngx.encode_base64(s), ngx.encode_base64(s, true)) end)
  try('unbase64 ' .. i, function(r) r(ngx.decode_base64(ngx.encode_base64(s, true))) end)
  try('escape_uri ' .. i, function(r) r(ngx.escape_uri(s)) end)
  try('escape_uri 0 ' .. i, function(r) r(ngx.escape_uri(s, 0)) end)
  try('unescape_uri ' .. i, function(r) r(ngx.unescape_uri(ngx.escape_uri(s))) end)
  try('quote_sql_str ' .. i, function(r) r(ngx.quote_sql_str(s)) end)
end
try('unescape plus and bad escapes', function(r) r(ngx.unescape_uri('a+b%2fc%zz%4')) end)
try('decode_base64 bad', function(r) r(ngx.decode_base64('a!==')) end)
try('decode_base64 number', function(r) r(ngx.decode_base64(12)) end)
try('md5 number', function(r) r(ngx.md5(12)) end)
try('encode_args', function(r) r(ngx.encode_args({ a = 'x y' })) end)
try('encode_args list', function(r) r(ngx.encode_args({ b = { 1, 'z' } })) end)
try('encode_args bools', function(r) r(ngx.encode_args({ c = true })) end)
try('decode_args', function(r)
  local t = ngx.decode_args('a=1&b&a=2&c=x%20y&=v&d=')
  r(t.a[1], t.a[2], t.b, t.c, t[''], t.d)
end)
try('http_time', function(r) r(ngx.http_time(1290079655)) end)
try('cookie_time', function(r) r(ngx.cookie_time(1290079655)) end)
try('null', function(r) r(tostring(ngx.null) == tostring(ngx.null), type(ngx.null)) end)
do
  local all = {}
  for b = 0, 255 do all[#all + 1] = string.char(b) end
  all = table.concat(all)
  for _, t in ipairs({ 0, 1, 2 }) do
    try('escape_uri every byte, type ' .. t, function(r) r(ngx.escape_uri(all, t)) end)
  end
  try('escape_uri every byte', function(r) r(ngx.escape_uri(all)) end)
  try('unescape_uri every escape', function(r) r(ngx.unescape_uri((all:gsub('.', function(c) return ('%%%02x'):format(c:byte()) end)))) end)
end
