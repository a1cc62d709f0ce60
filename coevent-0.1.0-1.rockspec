-- `luarocks make coevent-scm-1.rockspec` in a checkout: the module for the Lua
-- LuaRocks is configured for, and the runner. Built through the Makefile (build
-- type "make"), so Debian's luarocks needs no plugin; needs Rust's cargo and the
-- Lua headers LuaRocks checks for (docs/install.md).
rockspec_format = "3.0"
package = "coevent"
version = "0.1.0-1"
source = {
   -- No public home yet: `luarocks make` builds the checkout it runs in.
   url = "git+https://coevent.invalid/coevent.git",
   tag = "v0.1.0",
}
description = {
   summary = "epoll event loop and cosocket light threads for Lua on Linux",
   detailed = [[
require('coevent') gives an epoll event loop in which coroutines (light
threads) do non-blocking network I/O with code that reads as if it blocked:
the alilua coevent API (L(f), cosocket.tcp(), newthread, coroutine_wait,
swop) with OpenResty's cosocket conventions. Written in Rust (mlua); for PUC
Lua 5.1, 5.3, 5.4 and LuaJIT 2.1. The rock also installs the `coevent`
runner, which has its own Lua 5.4 built in, whatever Lua the rock is for.
]],
   license = "MIT",
   labels = { "networking", "coroutines", "epoll" },
}
supported_platforms = { "linux" }
dependencies = {
   "lua >= 5.1, < 5.5",
}
build = {
   type = "make",
   -- The Makefile asks the interpreter what it is (5.1, 5.3, 5.4 or LuaJIT).
   build_target = "rock",
   build_variables = {
      LUA_INTERP = "$(LUA)",
   },
   install_target = "install",
   install_variables = {
      LUA_INTERP = "$(LUA)",
      LUA_CMODULE_DIR = "$(LIBDIR)",
      BINDIR = "$(BINDIR)",
      DOCDIR = "",
   },
   copy_directories = { "docs" },
}
