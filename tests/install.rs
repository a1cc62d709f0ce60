//! The three ways to install coevent (docs/install.md), each done for real into a
//! temporary directory: `luarocks make` into a tree for lua5.4 and lua5.1 (then a
//! round trip on loopback through the installed module and runner, and `luarocks
//! remove`), `make install DESTDIR=… PREFIX=/usr` and `make uninstall`, and
//! `make deb LUA=5.4` checked with `dpkg-deb` and `lintian`.
//!
//! Ignored by default: they need luarocks, the Lua headers, lintian and dpkg-dev
//! (`make deps`), and build the release module and runner. `make test` runs them.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;

/// The tests share build/ (each `make` copies the module there): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("coevent-install-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `cmd` (at low priority, in the checkout), fails the test unless it succeeds; its stdout.
fn run(args: &[&str]) -> String {
    run_env(args, &[])
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("nice");
    cmd.args(args).current_dir(root()).stdin(Stdio::null());
    // What the caller's environment could add to a Lua's search paths.
    for var in ["LUA_PATH", "LUA_CPATH", "LUA_INIT", "LUA_PATH_5_4", "LUA_CPATH_5_4", "LUA_INIT_5_4"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Every file and symlink under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// What `make install` puts under share/doc/coevent: README.md and docs/*.md of the checkout.
fn docs() -> Vec<String> {
    let mut docs = vec!["README.md".to_string()];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            docs.push(format!("docs/{name}"));
        }
    }
    docs.sort();
    docs
}

fn multiarch() -> String {
    run(&["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).trim().to_string()
}

/// Lua that prints which file `require('coevent')` loads from package.cpath
/// (PUC 5.1 has no package.searchpath), then one request/response with the
/// listener of `round_trip` through a cosocket.
fn script(port: u16) -> String {
    format!(
        r#"
        local found = '(preloaded)'
        if not (package.preload and package.preload.coevent) then
          for p in package.cpath:gmatch('[^;]+') do
            local f = io.open((p:gsub('%?', 'coevent')))
            if f then f:close() found = p:gsub('%?', 'coevent') break end
          end
        end
        print(found)
        local L = require('coevent')
        print(L(function()
          local s = cosocket.tcp()
          assert(s:connect('127.0.0.1', {port}))
          assert(s:send({{'ping from ', _VERSION, '\n'}}))
          local line = assert(s:receive('*l'))
          s:close()
          return line
        end))
        "#
    )
}

/// Runs `args` + the script against a one-connection listener on loopback, which
/// answers each line with "pong: <line>"; the script's output lines.
fn round_trip(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        (&conn).write_all(format!("pong: {line}").as_bytes()).unwrap();
        line
    });
    let script = script(port);
    let mut argv = args.to_vec();
    argv.extend(["-e", &script]);
    let out = run_env(&argv, env);
    let got = peer.join().unwrap();
    assert!(got.starts_with("ping from Lua 5."), "the peer got {got:?}");
    out.lines().map(str::to_string).collect()
}

/// `luarocks make` into a fresh tree with LuaRocks set for `lua` (5.4 or 5.1),
/// whose interpreter is `interp` (LuaJIT through a config file: Debian's
/// LuaRocks has none for it); the module (the build for `dir` of build/) and the
/// runner work from it; `luarocks remove` leaves only an empty manifest.
fn luarocks(lua: &str, interp: &str, dir: &str) {
    let _serial = serial();
    let tree = TempDir::new(&format!("rocks-{dir}"));
    let config = TempDir::new(&format!("rocks-config-{dir}"));
    let t = tree.0.to_str().unwrap();
    let mut env = Vec::new();
    let config_file = config.0.join("config.lua");
    if interp == "luajit" {
        let lua_config = "lua_interpreter = 'luajit'\n\
            variables = { LUA_DIR = '/usr', LUA_BINDIR = '/usr/bin', LUA_INCDIR = '/usr/include/luajit-2.1' }\n";
        std::fs::write(&config_file, lua_config).unwrap();
        env.push(("LUAROCKS_CONFIG", config_file.to_str().unwrap()));
    }
    let rocks = format!("lib/luarocks/rocks-{lua}");
    run_env(&["luarocks", "--lua-version", lua, "make", "--tree", t, "coevent-scm-1.rockspec"], &env);

    let mut expected = vec![
        "bin/coevent".to_string(),
        format!("lib/lua/{lua}/coevent.so"),
        format!("{rocks}/coevent/scm-1/bin/coevent"),
        format!("{rocks}/coevent/scm-1/coevent-scm-1.rockspec"),
        format!("{rocks}/coevent/scm-1/rock_manifest"),
        format!("{rocks}/manifest"),
    ];
    // The rock keeps a copy of docs/ (copy_directories).
    expected.extend(files(&root().join("docs")).iter().map(|d| format!("{rocks}/coevent/scm-1/docs/{d}")));
    expected.sort();
    assert_eq!(files(&tree.0), expected);
    let so = std::fs::read(tree.0.join(format!("lib/lua/{lua}/coevent.so"))).unwrap();
    assert!(so == std::fs::read(root().join(format!("build/{dir}/coevent.so"))).unwrap(), "not the {dir} build");

    // The tree's search path as `luarocks path` gives it: the module must come from the tree.
    let cpath = run_env(&["luarocks", "--lua-version", lua, "--tree", t, "path", "--lr-cpath"], &env);
    let mut lua_env = env.clone();
    lua_env.push(("LUA_CPATH", cpath.trim()));
    let lines = round_trip(&[interp], &lua_env);
    assert_eq!(lines, [format!("{t}/lib/lua/{lua}/coevent.so"), format!("pong: ping from Lua {lua}")]);
    // The runner: vendored Lua 5.4 whatever the rock's Lua.
    let runner = format!("{t}/bin/coevent");
    let lines = round_trip(&[&runner], &[]);
    assert_eq!(lines, ["(preloaded)", "pong: ping from Lua 5.4"]);

    run_env(&["luarocks", "--lua-version", lua, "--tree", t, "remove", "coevent"], &env);
    assert_eq!(files(&tree.0), [format!("{rocks}/manifest")]);
    let manifest = std::fs::read_to_string(tree.0.join(format!("{rocks}/manifest"))).unwrap();
    assert!(!manifest.contains("coevent"), "the manifest still names coevent:\n{manifest}");
}

#[test]
#[ignore = "needs make modules / luarocks"]
fn luarocks_make_lua54() {
    luarocks("5.4", "lua5.4", "lua5.4");
}

#[test]
#[ignore = "needs make modules / luarocks"]
fn luarocks_make_lua51() {
    luarocks("5.1", "lua5.1", "lua5.1");
}

/// LuaRocks for 5.1 with luajit as its interpreter builds the LuaJIT module.
#[test]
#[ignore = "needs make modules / luarocks"]
fn luarocks_make_luajit() {
    luarocks("5.1", "luajit", "luajit");
}

/// `make install DESTDIR=… PREFIX=/usr`: exactly the module, the runner and the
/// docs, by rename (a process holding the old module keeps it); `make uninstall`
/// takes all of it back.
#[test]
#[ignore = "needs make modules / luarocks"]
fn make_install_destdir() {
    let _serial = serial();
    let dest = TempDir::new("destdir");
    let vars = [format!("DESTDIR={}", dest.0.display()), "PREFIX=/usr".to_string(), "LUA=5.4".to_string()];
    let make = |target: &str| {
        let mut args = vec!["make", "--no-print-directory", target];
        args.extend(vars.iter().map(String::as_str));
        run(&args)
    };
    make("install");

    let mut expected = vec!["usr/bin/coevent".to_string(), "usr/lib/lua/5.4/coevent.so".to_string()];
    expected.extend(docs().iter().map(|d| format!("usr/share/doc/coevent/{d}")));
    expected.sort();
    assert_eq!(files(&dest.0), expected);
    let mode = |f: &str| std::fs::metadata(dest.0.join(f)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("usr/bin/coevent"), 0o755);
    assert_eq!(mode("usr/lib/lua/5.4/coevent.so"), 0o644);
    assert_eq!(mode("usr/share/doc/coevent/README.md"), 0o644);
    assert_eq!(
        std::fs::read(dest.0.join("usr/share/doc/coevent/README.md")).unwrap(),
        std::fs::read(root().join("README.md")).unwrap()
    );

    // The installed module works from where it is.
    let cpath = format!("{}/usr/lib/lua/5.4/?.so", dest.0.display());
    let lines = round_trip(&["lua5.4"], &[("LUA_CPATH", &cpath)]);
    assert_eq!(lines, [cpath.replace('?', "coevent"), "pong: ping from Lua 5.4".to_string()]);

    // Installing again replaces the file, not its contents: the old inode lives on.
    let so = dest.0.join("usr/lib/lua/5.4/coevent.so");
    let held = std::fs::File::open(&so).unwrap();
    let before = held.metadata().unwrap().ino();
    make("install");
    assert_ne!(std::fs::metadata(&so).unwrap().ino(), before, "make install wrote over the module in place");
    assert_eq!(held.metadata().unwrap().nlink(), 0);
    drop(held);
    assert_eq!(files(&dest.0), expected);

    make("uninstall");
    assert_eq!(files(&dest.0), Vec::<String>::new());
    assert!(!dest.0.join("usr/share/doc/coevent").exists(), "make uninstall left share/doc/coevent");
}

/// `make deb LUA=5.4`: the paths of Debian's Lua policy and nothing else, its
/// dependencies from the binary, no lintian error; the module loads from it.
#[test]
#[ignore = "needs make modules / luarocks"]
fn make_deb_lua54() {
    let _serial = serial();
    let out = run(&["make", "--no-print-directory", "deb", "LUA=5.4"]);
    let deb = root().join(out.lines().last().unwrap().trim());
    let ma = multiarch();
    let arch = run(&["dpkg", "--print-architecture"]).trim().to_string();
    assert_eq!(deb, root().join(format!("build/lua-coevent-5.4_0.1.0-1_{arch}.deb")));
    let deb = deb.to_str().unwrap();

    let listing = run(&["dpkg-deb", "-c", deb]);
    let paths: Vec<&str> = listing.lines().map(|l| l.split_whitespace().nth(5).unwrap()).collect();
    let expected = [
        "./".to_string(),
        "./usr/".to_string(),
        "./usr/lib/".to_string(),
        format!("./usr/lib/{ma}/"),
        format!("./usr/lib/{ma}/lua/"),
        format!("./usr/lib/{ma}/lua/5.4/"),
        format!("./usr/lib/{ma}/lua/5.4/coevent.so"),
        "./usr/share/".to_string(),
        "./usr/share/doc/".to_string(),
        "./usr/share/doc/lua-coevent-5.4/".to_string(),
        "./usr/share/doc/lua-coevent-5.4/changelog.Debian.gz".to_string(),
        "./usr/share/doc/lua-coevent-5.4/copyright".to_string(),
    ];
    assert_eq!(paths, expected);
    for line in listing.lines() {
        assert!(line.contains(" root/root "), "not owned by root: {line}");
    }

    let field = |name: &str| run(&["dpkg-deb", "-f", deb, name]).trim().to_string();
    assert_eq!(field("Package"), "lua-coevent-5.4");
    assert_eq!(field("Version"), "0.1.0-1");
    assert_eq!(field("Architecture"), arch);
    let depends = field("Depends");
    let names: BTreeSet<&str> = depends.split(", ").map(|d| d.split(' ').next().unwrap()).collect();
    // libssl3: TLS (the default build) links the system's OpenSSL; libpcre2-8-0:
    // coevent.ngx's ngx.re (the `ngx` feature, in the default build too).
    assert_eq!(names, BTreeSet::from(["libc6", "libgcc-s1", "libpcre2-8-0", "libssl3"]), "Depends: {depends}");
    assert!(depends.contains("libc6 (>= 2."), "Depends: {depends}");

    // lintian: errors fail the test; warnings and notes are printed.
    let mut lintian = Command::new("nice");
    lintian.args(["lintian", "--tag-display-limit", "0", "--fail-on", "error", deb]);
    let report = lintian.output().unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    println!("lintian:\n{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E: ")).collect();
    assert_eq!(errors, Vec::<&str>::new());
    assert!(report.status.success(), "lintian: {}\n{}", report.status, String::from_utf8_lossy(&report.stderr));

    // What apt would unpack: lua5.4 loads the module from the policy path.
    let unpacked = TempDir::new("deb");
    run(&["dpkg-deb", "-x", deb, unpacked.0.to_str().unwrap()]);
    let cpath = format!("{}/usr/lib/{ma}/lua/5.4/?.so", unpacked.0.display());
    let lines = round_trip(&["lua5.4"], &[("LUA_CPATH", &cpath)]);
    assert_eq!(lines, [cpath.replace('?', "coevent"), "pong: ping from Lua 5.4".to_string()]);
}
