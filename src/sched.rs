//! The scheduler: light threads, the run queue and the loop that drives them.
//!
//! A thread is in one place at a time: running (its `Thread` taken out of its
//! task), in the run queue, in `swopped`, parked in the reactor (fd or timer),
//! joined to another task, or ended (its task gone, its results in `done`).

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use coevent_ffi::reactor::{Dir, Reactor};
use coevent_ffi::resolver;
use coevent_ffi::sys::{self, Fd};
use coevent_ffi::wheel::TimerId;
use mlua::thread::ThreadStatus;
use mlua::{Error, Function, IntoLuaMulti, Lua, MultiValue, Result, Table, Thread, Value};

use crate::engine::{self, bad_arg, expected, fail, raise, Engine, OpKind, Pending, Ret, NOT_IN_LOOP};
use crate::socket::{self, SockRef};

struct Task {
    /// True while the thread runs.
    running: bool,
    /// Its coroutine, held here for the first `HELD` tokens (the rest are in
    /// `Engine::threads`).
    thread: Option<Thread>,
    /// Tasks waiting for this one to end.
    joiners: Vec<u32>,
    /// The task this one waits for.
    joining: Option<u32>,
    /// What it was last parked on (stale once woken: see `kill`).
    parked: Parked,
    /// The socket operation to finish for it when it wakes.
    op: Option<(SockRef, OpKind)>,
}

/// Where a parked thread is registered, so `kill` can take it out.
#[derive(Clone, Copy)]
enum Parked {
    Nowhere,
    Io(Fd, Dir),
    Sleep(TimerId),
    Join(u32),
    Resolve(u32),
}

#[derive(Default)]
pub struct Sched {
    tasks: Vec<Option<Task>>,
    free: Vec<u32>,
    runq: VecDeque<u32>,
    /// Threads that swopped: queued after the next poll, so I/O goes first.
    swopped: Vec<u32>,
    by_ptr: HashMap<usize, u32>,
    live: usize,
    main: Option<u32>,
    /// The first thread's error, with its traceback, for `L` to raise.
    main_error: Option<Value>,
}

impl Sched {
    pub fn ready(&mut self, tokens: &[u32]) {
        self.runq.extend(tokens);
    }

    fn task(&mut self, tok: u32) -> &mut Task {
        self.tasks[tok as usize].as_mut().expect("live task")
    }
}

/// Tokens below this hold their coroutine in Rust: a lookup in a Lua table
/// costs more than the rest of a wake-up. LuaJIT caps mlua's references near
/// 8000, so beyond it they live in `Engine::threads`.
const HELD: u32 = 4096;

/// A live task's coroutine, taken out of the task if held there (moved, not
/// cloned: mlua allocates a counter on a reference's first clone).
fn take_thread(eng: &Engine, tok: u32) -> Result<Thread> {
    let held = eng.sched.borrow_mut().task(tok).thread.take();
    held.map_or_else(|| eng.threads.raw_get(tok), Ok)
}

/// The function every light thread runs: it calls `f` and packs the outcome
/// into one table, `{true, results...}` or `{false, err}`. Where a yield can
/// cross xpcall (Lua 5.2+, LuaJIT) the error value is kept as it is and the
/// handler notes its traceback; PUC 5.1 cannot yield across xpcall, so there an
/// error ends the coroutine and arrives as mlua's string (with the traceback).
const BODY: &str = "local handler, protect = ...
local function pack(...) return { n = select('#', ...), ... } end
if protect then return function(f, ...) return pack(xpcall(f, handler, ...)) end end
return function(f, ...) return pack(true, f(...)) end";

pub fn body(lua: &Lua, eng: &Rc<Engine>) -> Result<Function> {
    let e = eng.clone();
    let handler = lua.create_function(move |lua, err: Value| {
        let msg = describe(&err);
        *e.traceback.borrow_mut() = Some(lua.traceback(Some(&msg), 1)?.to_string_lossy());
        Ok(err)
    })?;
    lua.load(BODY).set_name("=coevent.body").call((handler, !cfg!(feature = "lua51")))
}

/// An error value as text: a string as it is, anything else through tostring.
fn describe(err: &Value) -> String {
    match err {
        Value::String(s) => s.to_string_lossy(),
        v => v.to_string().unwrap_or_else(|_| format!("(error object is a {} value)", engine::type_name(v))),
    }
}

/// Creates a light thread for `f` and runs it to its first yield.
pub fn spawn(lua: &Lua, eng: &Engine, body: &Function, f: Function, args: MultiValue) -> Result<Thread> {
    let th = lua.create_thread(body.clone())?;
    let tok = {
        let mut s = eng.sched.borrow_mut();
        let task = Task {
            running: false,
            thread: None,
            joiners: Vec::new(),
            joining: None,
            parked: Parked::Nowhere,
            op: None,
        };
        let tok = match s.free.pop() {
            Some(t) => {
                s.tasks[t as usize] = Some(task);
                t
            }
            None => {
                s.tasks.push(Some(task));
                (s.tasks.len() - 1) as u32
            }
        };
        s.by_ptr.insert(th.to_pointer() as usize, tok);
        s.live += 1;
        s.main.get_or_insert(tok);
        if tok < HELD {
            s.task(tok).thread = Some(th.clone());
        }
        tok
    };
    if tok >= HELD {
        eng.threads.raw_set(tok, &th)?;
    }
    let mut args = args;
    args.push_front(Value::Function(f));
    step(lua, eng, tok, args)?;
    Ok(th)
}

/// Resumes one thread and files it wherever its yield (or end) sends it.
/// A thread woken in a socket operation has the operation finished here
/// first: it is resumed with the result (one call into Rust saved per wait),
/// or, if the wake was early, parked again without being resumed at all.
fn step(lua: &Lua, eng: &Engine, tok: u32, args: impl IntoLuaMulti) -> Result<()> {
    let op = {
        let mut s = eng.sched.borrow_mut();
        // A token for no task, or for one that runs, has nothing to resume.
        let Some(Some(task)) = s.tasks.get_mut(tok as usize) else { return Ok(()) };
        if task.running {
            return Ok(());
        }
        task.running = true;
        task.parked = Parked::Nowhere;
        task.op.take()
    };
    let th = take_thread(eng, tok)?;
    let outer = eng.current.replace(Some(tok));
    let r = match op {
        Some((sock, kind)) => match socket::complete(lua, &sock, kind) {
            // Still not ready: it parks again, unresumed, where `complete` said.
            Ok(ret) if engine::is_wait(&ret.0) => {
                if let Some(kind) = eng.op.take() {
                    *eng.pending_op.borrow_mut() = Some((sock, kind));
                }
                Ok(ret.0)
            }
            // A plain result crosses alone: the prelude reads the missing values as nil.
            Ok((v, Value::Nil, Value::Nil)) => th.resume(v).and_then(|y| serve(lua, eng, &th, y)),
            Ok(ret) => th.resume(ret).and_then(|y| serve(lua, eng, &th, y)),
            Err(e) => Err(e),
        },
        None => th.resume(args).and_then(|y| serve(lua, eng, &th, y)),
    };
    eng.current.set(outer);
    let pending = eng.pending.take();
    let op = eng.pending_op.borrow_mut().take();
    eng.op.set(None);
    match r {
        Ok(v) if th.status() == ThreadStatus::Resumable => {
            let wait = engine::is_wait(&v);
            let op = op.filter(|_| wait);
            let mut s = eng.sched.borrow_mut();
            let task = s.task(tok);
            task.running = false;
            task.op = op;
            if tok < HELD {
                task.thread = Some(th);
            }
            drop(s);
            // A yield not of the marker (a stray coroutine.yield) counts as a swop.
            park(eng, tok, if wait { pending } else { Pending::Swop });
            Ok(())
        }
        r => finish(lua, eng, tok, th, r, false),
    }
}

/// What a thread yields: the wait marker alone, a receive request (the
/// marker, a socket id, a pattern), anything a stray `coroutine.yield` gives,
/// or (when it ends) its outcome.
type Yield = (Value, Value, Value);

/// Serves the thread's receive requests: each is done here and the thread
/// resumed with its result at once, until it waits or ends (whose first value
/// is returned).
fn serve(lua: &Lua, eng: &Engine, th: &Thread, mut y: Yield) -> Result<Value> {
    loop {
        let (v, Value::Integer(id), pattern) = y else { return Ok(y.0) };
        if !engine::is_wait(&v) {
            return Ok(v);
        }
        let r = socket::with(lua, eng, "receive", id, |s| socket::receive(lua, s, pattern))?;
        if engine::is_wait(&r.0) {
            return Ok(r.0);
        }
        y = match r {
            (v, Value::Nil, Value::Nil) => th.resume(v)?,
            r => th.resume(r)?,
        };
    }
}

fn park(eng: &Engine, tok: u32, p: Pending) {
    let mut s = eng.sched.borrow_mut();
    let parked = match p {
        Pending::Io(fd, dir, timeout) => {
            reactor(eng, |r| r.wait(fd, dir, tok, timeout));
            Parked::Io(fd, dir)
        }
        Pending::Sleep(ms) => Parked::Sleep(reactor(eng, |r| r.sleep(tok, ms))),
        Pending::Join(t) if s.tasks.get(t as usize).is_some_and(|t| t.is_some()) => {
            s.task(t).joiners.push(tok);
            s.task(tok).joining = Some(t);
            Parked::Join(t)
        }
        Pending::Resolve(q) if eng.resolver.borrow_mut().as_mut().is_some_and(|res| res.add_waiter(q, tok)) => {
            Parked::Resolve(q)
        }
        Pending::Join(_) | Pending::Resolve(_) => {
            s.runq.push_back(tok);
            Parked::Nowhere
        }
        Pending::Swop | Pending::None => {
            s.swopped.push(tok);
            Parked::Nowhere
        }
    };
    s.task(tok).parked = parked;
}

fn reactor<T>(eng: &Engine, f: impl FnOnce(&mut Reactor) -> T) -> T {
    f(eng.reactor.borrow_mut().as_mut().expect("loop running"))
}

/// `L.kill(t)`: ends a light thread where it waits. Its waiters get `nil, "killed"`;
/// what it held is left to the GC (and to the loop's end).
pub fn kill(lua: &Lua, eng: &Engine, t: Value) -> Result<Ret> {
    let Some(cur) = eng.current() else {
        return raise(lua, NOT_IN_LOOP);
    };
    let Value::Thread(th) = &t else {
        return bad_arg(lua, 1, "kill", &expected("light thread", &t));
    };
    let Some(&tok) = eng.sched.borrow().by_ptr.get(&(th.to_pointer() as usize)) else {
        return if eng.done.contains_key(t.clone())? {
            fail(lua, "already ended")
        } else {
            bad_arg(lua, 1, "kill", "not a light thread of this loop")
        };
    };
    if tok == cur {
        return raise(lua, "kill: a light thread cannot kill itself");
    }
    let mut s = eng.sched.borrow_mut();
    if s.task(tok).running {
        // Not parked but running: it is resuming a thread that kills it.
        return raise(lua, "kill: cannot kill a thread that is resuming the caller");
    }
    // A thread in the run queue was woken already: its registration is gone.
    let queued = s.runq.contains(&tok) || s.swopped.contains(&tok);
    s.runq.retain(|&x| x != tok);
    s.swopped.retain(|&x| x != tok);
    let parked = std::mem::replace(&mut s.task(tok).parked, Parked::Nowhere);
    match parked {
        _ if queued => {
            if let Some(res) = eng.resolver.borrow_mut().as_mut() {
                res.forget(tok);
            }
        }
        Parked::Join(t) => s.task(t).joiners.retain(|&x| x != tok),
        Parked::Io(fd, dir) => reactor(eng, |r| r.unwait(fd, dir)),
        Parked::Sleep(id) => reactor(eng, |r| r.cancel(id)),
        Parked::Resolve(q) => {
            if let Some(res) = eng.resolver.borrow_mut().as_mut() {
                res.remove_waiter(q, tok);
            }
        }
        Parked::Nowhere => {}
    }
    drop(s);
    eng.take_closed_under(Some(tok));
    let th = take_thread(eng, tok)?;
    finish(lua, eng, tok, th, Ok(Value::Table(failed(lua, "killed")?)), true)?;
    engine::ret(Value::Boolean(true))
}

/// Ends a task: keeps its results (or error) for waiters, wakes them. An
/// error nobody waits for is logged unless `quiet` (a kill).
fn finish(lua: &Lua, eng: &Engine, tok: u32, th: Thread, r: Result<Value>, quiet: bool) -> Result<()> {
    if tok >= HELD {
        eng.threads.raw_set(tok, Value::Nil)?;
    }
    let (task, is_main) = {
        let mut s = eng.sched.borrow_mut();
        let task = s.tasks[tok as usize].take().expect("live task");
        s.free.push(tok);
        s.by_ptr.remove(&(th.to_pointer() as usize));
        s.live -= 1;
        for &j in &task.joiners {
            s.task(j).joining = None;
            s.runq.push_back(j);
        }
        (task, s.main == Some(tok))
    };
    let result = match r {
        Ok(Value::Table(t)) => t,
        Ok(v) => return Err(Error::runtime(format!("coevent: light thread ended with a {}", v.type_name()))),
        // PUC 5.1, or an error mlua raised itself: the message comes with its traceback.
        Err(e) => {
            let full = error_text(&e);
            let msg = full.split("\nstack traceback:").next().unwrap_or_default();
            let t = failed(lua, msg)?;
            *eng.traceback.borrow_mut() = Some(full);
            t
        }
    };
    if !result.raw_get::<bool>(1)? {
        let err: Value = result.raw_get(2)?;
        let full = eng.traceback.take().unwrap_or_else(|| describe(&err));
        if is_main {
            // L raises a message with its traceback; an error object as it is.
            let raised = match err {
                Value::String(_) => Value::String(lua.create_string(full)?),
                v => v,
            };
            eng.sched.borrow_mut().main_error = Some(raised);
        } else if task.joiners.is_empty() && !quiet {
            eprintln!("coevent: error in light thread: {full}");
        }
    }
    eng.done.raw_set(th, result)
}

/// A thread's outcome when it failed: `{false, err, n = 2}`.
fn failed(lua: &Lua, err: &str) -> Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(1, false)?;
    t.raw_set(2, err)?;
    t.raw_set("n", 2)?;
    Ok(t)
}

fn error_text(e: &Error) -> String {
    match e {
        Error::RuntimeError(s) => s.clone(),
        Error::CallbackError { traceback, cause } => format!("{cause}\n{traceback}"),
        e => e.to_string(),
    }
}

/// `L(f, ...)`: runs `f` as the first light thread until every thread has ended.
/// Returns the first thread and its error, if it raised one.
pub fn run(lua: &Lua, eng: &Engine, body: &Function, f: Value, args: MultiValue) -> Result<Ret> {
    let Value::Function(f) = f else {
        return bad_arg(lua, 1, "L", &expected("function", &f));
    };
    if eng.reactor.borrow().is_some() {
        return raise(lua, "L: a coevent loop is already running");
    }
    let reactor = match Reactor::new() {
        Ok(r) => r,
        Err(e) => return raise(lua, &format!("L: epoll: {}", sys::error_string(&e))),
    };
    *eng.reactor.borrow_mut() = Some(reactor);
    let running = Running(eng);
    let main = spawn(lua, eng, body, f, args).and_then(|main| drive(eng, lua).map(|()| main));
    let main_error = eng.sched.borrow_mut().main_error.take();
    drop(running);
    Ok((Value::Thread(main?), main_error.unwrap_or(Value::Nil), Value::Nil))
}

/// Tears the loop down however `run` leaves (a panic unwinding included):
/// closes every fd, drops every thread, so `L` can run again.
struct Running<'a>(&'a Engine);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let eng = self.0;
        eng.bury();
        if let (Some(mut res), Some(r)) = (eng.resolver.borrow_mut().take(), eng.reactor.borrow_mut().as_mut()) {
            res.abort(r, &mut Vec::new());
        }
        drop(eng.reactor.borrow_mut().take());
        eng.epoch.set(eng.epoch.get() + 1);
        eng.closed_under.borrow_mut().clear();
        eng.current.set(None);
        drop(std::mem::take(&mut *eng.sched.borrow_mut()));
        let _ = eng.threads.clear();
    }
}

fn drive(eng: &Engine, lua: &Lua) -> Result<()> {
    let mut woken = Vec::new();
    loop {
        // Run what was ready when the turn began; what becomes ready now waits a turn.
        let n = eng.sched.borrow().runq.len();
        for _ in 0..n {
            let tok = eng.sched.borrow_mut().runq.pop_front();
            if let Some(tok) = tok {
                step(lua, eng, tok, ())?;
            }
        }
        eng.bury();
        let (live, busy) = {
            let s = eng.sched.borrow();
            (s.live, !s.runq.is_empty() || !s.swopped.is_empty())
        };
        if live == 0 {
            return Ok(());
        }
        {
            let mut r = eng.reactor.borrow_mut();
            let r = r.as_mut().expect("loop running");
            if !busy && r.pending() == 0 {
                return Err(Error::runtime("coevent: deadlock: every light thread waits on another"));
            }
            r.poll(busy.then_some(0), &mut woken).map_err(|e| Error::runtime(format!("coevent: epoll_wait: {e}")))?;
            // Resolver wake-ups advance their queries, which may wake threads
            // (appended to `woken`, so they are seen by this same loop).
            let mut i = 0;
            while i < woken.len() {
                if woken[i] & resolver::TOKEN != 0 {
                    if let Some(res) = eng.resolver.borrow_mut().as_mut() {
                        res.on_wake(r, woken[i] & !resolver::TOKEN, &mut woken);
                    }
                }
                i += 1;
            }
        }
        let s = &mut *eng.sched.borrow_mut();
        s.runq.extend(woken.drain(..).filter(|t| t & resolver::TOKEN == 0));
        s.runq.extend(s.swopped.drain(..));
    }
}

/// `coroutine_wait(t)` when `t` has not ended: parks the caller until it does.
pub fn join(lua: &Lua, eng: &Engine, t: Value) -> Result<Ret> {
    let Some(cur) = eng.current() else {
        return raise(lua, NOT_IN_LOOP);
    };
    let Value::Thread(th) = &t else {
        return bad_arg(lua, 1, "coroutine_wait", &expected("light thread", &t));
    };
    let mut s = eng.sched.borrow_mut();
    let Some(&tok) = s.by_ptr.get(&(th.to_pointer() as usize)) else {
        return bad_arg(lua, 1, "coroutine_wait", "not a light thread of this loop");
    };
    // Waiting on oneself, directly or round a cycle, would never end.
    let mut t = Some(tok);
    while let Some(x) = t {
        if x == cur {
            return raise(lua, "coroutine_wait: deadlock: a light thread would wait on itself");
        }
        t = s.task(x).joining;
    }
    drop(s);
    eng.park(Pending::Join(tok))
}

/// `sleep(seconds)`.
pub fn sleep(lua: &Lua, eng: &Engine, sec: Value) -> Result<Ret> {
    let Some(_) = eng.current() else {
        return raise(lua, NOT_IN_LOOP);
    };
    let Some(s) = engine::number(lua, &sec) else {
        return bad_arg(lua, 1, "sleep", &expected("number", &sec));
    };
    if s.is_nan() || s < 0.0 {
        return bad_arg(lua, 1, "sleep", "seconds must be >= 0");
    }
    eng.park(Pending::Sleep((s * 1000.0).ceil().min(u64::MAX as f64) as u64))
}

/// `swop()`: yields until every other ready thread and pending I/O has had a turn.
pub fn swop(lua: &Lua, eng: &Engine) -> Result<Ret> {
    match eng.current() {
        Some(_) => eng.park(Pending::Swop),
        None => raise(lua, NOT_IN_LOOP),
    }
}
