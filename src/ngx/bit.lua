-- LuaJIT's `bit` (nginx.dns.resolver requires it) on Lua 5.3+, over the
-- integer operators, with its 32-bit results. (PUC 5.1 has no operators:
-- there lua-bitop provides it.) Passed to init.lua as source, not compiled:
-- the operators are a syntax error on 5.1 and LuaJIT.
local function tobit(x)
  x = x & 0xffffffff
  if x >= 0x80000000 then return x - 0x100000000 end
  return x
end
local function fold(op)
  return function(x, ...)
    x = tobit(x)
    for i = 1, select('#', ...) do x = op(x, tobit((select(i, ...)))) end
    return tobit(x)
  end
end
return {
  tobit = tobit,
  band = fold(function(a, b) return a & b end),
  bor = fold(function(a, b) return a | b end),
  bxor = fold(function(a, b) return a ~ b end),
  bnot = function(x) return tobit(~x) end,
  lshift = function(x, n) return tobit(x << (n & 31)) end,
  rshift = function(x, n) return tobit((x & 0xffffffff) >> (n & 31)) end,
  arshift = function(x, n) return tobit(tobit(x) >> (n & 31) | (tobit(x) < 0 and ~(0xffffffff >> (n & 31)) or 0)) end,
  rol = function(x, n) n = n & 31 x = x & 0xffffffff return tobit(x << n | x >> (32 - n)) end,
  ror = function(x, n) n = n & 31 x = x & 0xffffffff return tobit(x >> n | x << (32 - n)) end,
  bswap = function(x)
    x = x & 0xffffffff
    return tobit((x >> 24) | ((x >> 8) & 0xff00) | ((x & 0xff00) << 8) | ((x & 0xff) << 24))
  end,
  tohex = function(x, n)
    n = n or 8
    local s = string.format('%08x', x & 0xffffffff)
    if n < 0 then s, n = s:upper(), -n end
    return s:sub(-n)
  end,
}
