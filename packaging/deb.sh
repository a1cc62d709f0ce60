#!/usr/bin/env bash
# make deb: a Debian binary package of one release module, with dpkg-deb.
#   packaging/deb.sh LUA SO OUTDIR     (LUA: 5.4, 5.1 or jit)
# Debian's Lua policy paths: /usr/lib/<multiarch>/lua/<version>/coevent.so, where
# lua5.4, lua5.1 and Debian's luajit (which reads the 5.1 directories) look.
# The packages are named per interpreter so that the 5.4 and 5.1 ones can be
# installed together; the 5.1 and LuaJIT ones own the same path and conflict.
set -euo pipefail
lua=$1 so=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)

case $lua in
  5.4|5.1) abi=$lua flavour=$lua luaname="Lua $lua" interp=lua$lua other= ;;
  jit) abi=5.1 flavour=luajit luaname="LuaJIT 2.1" interp=luajit other=lua-coevent-5.1 ;;
  *) echo "deb.sh: LUA=$lua: one of 5.4, 5.1, jit" >&2; exit 2 ;;
esac
[ "$lua" = 5.1 ] && other=lua-coevent-luajit
pkg=lua-coevent-$flavour

# The version is the changelog's, and must be Cargo.toml's plus a Debian revision.
version=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$here/changelog")
crate=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../Cargo.toml" | head -n1)
[ "${version%-*}" = "$crate" ] || {
  echo "deb.sh: packaging/changelog is at $version, Cargo.toml at $crate: add a changelog entry" >&2; exit 1; }
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

# Staged as debian/<pkg> beside a debian/control, the layout dpkg-shlibdeps expects.
work=$out/deb
root=$work/debian/$pkg
rm -rf "$work"
mkdir -p "$root/DEBIAN"
install -D -m 0644 "$so" "$root/usr/lib/$multiarch/lua/$abi/coevent.so"
doc=$root/usr/share/doc/$pkg
install -D -m 0644 "$here/copyright" "$doc/copyright"
sed -e "s/@PACKAGE@/$pkg/" -e "s/@LUANAME@/$luaname/" "$here/changelog" | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"

# Depends from the libraries the module links (libc6, libgcc-s1, libpcre2-8-0 for
# coevent.ngx's ngx.re; libssl3 with TLS).
printf 'Source: coevent\n\nPackage: %s\nArchitecture: any\n' "$pkg" > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O "debian/$pkg/usr/lib/$multiarch/lua/$abi/coevent.so" | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

{
  echo "Package: $pkg"
  echo "Source: coevent"
  echo "Version: $version"
  echo "Architecture: $arch"
  echo "Maintainer: $(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$here/changelog" | head -n1)"
  echo "Installed-Size: $(du -sk --apparent-size "$root/usr" | cut -f1)"
  echo "Depends: $depends"
  echo "Enhances: $interp"
  echo "Provides: lua-coevent"
  echo "Conflicts: $other"
  echo "Replaces: $other"
  echo "Section: interpreters"
  echo "Priority: optional"
  echo "Description: epoll event loop and cosockets for $luaname"
  echo " coevent is a Lua module for Linux: require('coevent') gives an epoll"
  echo " event loop in which coroutines (light threads) do non-blocking network"
  echo " I/O with code that reads as if it blocked (the alilua coevent API, with"
  echo " OpenResty's cosocket conventions)."
  echo " ."
  echo " This package holds the module for $luaname ($interp)."
} | sed '/^\(Conflicts\|Replaces\): *$/d' > "$root/DEBIAN/control"
(cd "$root" && find usr -type f | LC_ALL=C sort | xargs md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

deb=$out/${pkg}_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
