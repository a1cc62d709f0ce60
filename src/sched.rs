//! The scheduler: light threads, the run queue and the loop that drives them.
//!
//! A thread is in one place at a time: running (its `Thread` taken out of its
//! task), queued (the run queue or `swopped`), parked (on a socket side, a
//! timer, a query or another thread), or ended (its task gone, its results in
//! `done`). A wake carries its reason (`Wake`), which is stored on the task it
//! wakes and handed to the operation the task waited in; nothing of a wait
//! outlives it anywhere else.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use coevent_engine::reactor::{Handle, Reactor, Side, Src, Tid, Token};
use coevent_engine::slab::Slab;
use coevent_engine::sockets::Id;
use coevent_engine::sys;
use coevent_engine::wheel::TimerId;
use mlua::thread::ThreadStatus;
use mlua::{Error, Function, IntoLuaMulti, Lua, MultiValue, Result, Table, Thread, Value};

use crate::engine::{Core, Engine, Wake, BUSY};
use crate::op::{On, Op, Pending};
use crate::ret::{self, bad_arg, expected, fail, is_wait, raise, Ret, NOT_IN_LOOP};
use crate::socket;

struct Task {
    /// True while the thread runs.
    running: bool,
    /// Its coroutine, held here for the first `HELD` tokens (the rest are in
    /// `Sched::threads`).
    thread: Option<Thread>,
    /// The arguments of its first resume, if it has not started (spawned
    /// while the engine was busy: see `spawn`).
    start: Option<MultiValue>,
    /// Tasks waiting for this one to end.
    joiners: Vec<Tid>,
    /// The task this one waits for.
    joining: Option<Tid>,
    parked: Parked,
    /// The socket operation it waits in, finished for it when it wakes.
    op: Option<Op>,
    /// Why it was woken.
    wake: Wake,
}

/// Where a thread is, so that a wake finds it parked and `kill` can take it out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parked {
    /// Running, or being filed.
    Nowhere,
    Queued,
    Io(Src, Side),
    Sleep(TimerId),
    Join(Tid),
    Resolve(u32),
    /// In a keepalive pool's backlog.
    Pool(Handle),
    /// In a queue of the engine's, with its timeout's timer.
    Turn(Option<TimerId>),
}

#[derive(Default)]
struct State {
    /// By `Tid`: a wake for a thread that has ended finds nothing.
    tasks: Slab<Task>,
    runq: VecDeque<Tid>,
    /// Threads that swopped: queued after the next poll, so I/O goes first.
    swopped: Vec<Tid>,
    by_ptr: HashMap<usize, Tid>,
    main: Option<Tid>,
    /// The first thread's error, with its traceback, for `L` to raise.
    main_error: Option<Value>,
    /// The listeners were closed by a stop signal.
    stopped: bool,
}

impl State {
    fn task(&mut self, tok: Tid) -> &mut Task {
        self.tasks.get_mut(tok).expect("live task")
    }

    /// The timer of a task waiting its turn in a queue, if it has one.
    fn turn_timer(&self, tok: Tid) -> Option<TimerId> {
        match self.tasks.get(tok) {
            Some(Task { parked: Parked::Turn(timer), .. }) => *timer,
            _ => None,
        }
    }

    /// Queues a parked task, woken for `why`; a wake for a task that has
    /// ended (its `Tid` stale) or is not parked is dropped.
    fn wake(&mut self, tok: Tid, why: Wake) {
        if let Some(t) = self.tasks.get_mut(tok) {
            if !t.running && !matches!(t.parked, Parked::Nowhere | Parked::Queued) {
                t.parked = Parked::Queued;
                t.wake = why;
                self.runq.push_back(tok);
            }
        }
    }
}

/// Tokens below this hold their coroutine in Rust: a lookup in a Lua table
/// costs more than the rest of a wake-up. LuaJIT caps mlua's references near
/// 8000, so beyond it they live in `Sched::threads`.
const HELD: u32 = 4096;

/// The function every light thread runs: it calls `f` and packs the outcome
/// into one table, `{true, results...}` or `{false, err}`. Where a yield can
/// cross xpcall (Lua 5.2+, LuaJIT) the error value is kept as it is and the
/// handler notes its traceback; PUC 5.1 cannot yield across xpcall, so there an
/// error ends the coroutine and arrives as mlua's string (with the traceback).
const BODY: &str = "local handler, protect = ...
local function pack(...) return { n = select('#', ...), ... } end
if protect then return function(f, ...) return pack(xpcall(f, handler, ...)) end end
return function(f, ...) return pack(true, f(...)) end";

pub struct Sched {
    eng: Rc<Engine>,
    st: RefCell<State>,
    pub body: Function,
    /// `threads[token]`: light threads past the first few thousand (see `HELD`).
    threads: Table,
    /// `done[thread]`: a finished thread's outcome, `{true, results...}` or `{false, err}`.
    /// Weak-keyed, so results nobody can wait for any more are collected.
    pub done: Table,
    /// The traceback of the error a light thread is ending with.
    traceback: Rc<RefCell<Option<String>>>,
}

impl Sched {
    pub fn new(lua: &Lua, eng: Rc<Engine>) -> Result<Sched> {
        let traceback = Rc::new(RefCell::new(None));
        let tb = traceback.clone();
        let handler = lua.create_function(move |lua, err: Value| {
            let msg = describe(&err);
            *tb.borrow_mut() = Some(lua.traceback(Some(&msg), 1)?.to_string_lossy());
            Ok(err)
        })?;
        let body = lua.load(BODY).set_name("=coevent.body").call((handler, !cfg!(feature = "lua51")))?;
        let done = lua.create_table()?;
        let mt = lua.create_table()?;
        mt.raw_set("__mode", "k")?;
        done.set_metatable(Some(mt))?;
        Ok(Sched { eng, st: RefCell::new(State::default()), body, threads: lua.create_table()?, done, traceback })
    }

    /// The engine's state; the loop's own calls never find it busy.
    fn core(&self) -> std::cell::RefMut<'_, Core> {
        self.eng.core().expect("the engine is not busy between operations")
    }

    /// A live task's coroutine, taken out of the task if held there (moved, not
    /// cloned: mlua allocates a counter on a reference's first clone), and
    /// whether it was.
    fn take_thread(&self, tok: Tid) -> Result<(Thread, bool)> {
        let held = self.st.borrow_mut().task(tok).thread.take();
        match held {
            Some(th) => Ok((th, true)),
            None => Ok((self.threads.raw_get(tok.slot())?, false)),
        }
    }

    pub fn eng(&self) -> &Rc<Engine> {
        &self.eng
    }

    /// `th` is a new coroutine of `body`, made by the prelude.
    pub fn spawn(&self, lua: &Lua, th: Value, f: Value, args: MultiValue) -> Result<Ret> {
        // Between threads (a finalizer the scheduler's own allocation ran) the
        // loop still runs, and the thread is queued (`start`): no message made
        // there, whose allocation would nest mlua's protected calls.
        let looping = || self.st.try_borrow().map_or(true, |s| s.main.is_some());
        if self.eng.current().is_none() && !looping() {
            return raise(lua, NOT_IN_LOOP);
        }
        let (Value::Thread(th), Value::Function(f)) = (th, &f) else {
            return bad_arg(lua, 1, "newthread", &expected("function", &f));
        };
        self.start(lua, th.clone(), f.clone(), args)?;
        ret::ret(Value::Thread(th))
    }

    fn start(&self, lua: &Lua, th: Thread, f: Function, mut args: MultiValue) -> Result<()> {
        args.push_front(Value::Function(f));
        // Called by a finalizer inside an engine call, or inside Rust: started
        // later, and without a Lua allocation now (mlua's protected calls on
        // PUC 5.1 and LuaJIT are not re-entrant).
        let busy = self.eng.core().is_none() || self.eng.nested();
        let tok = {
            let Ok(mut s) = self.st.try_borrow_mut() else { return Err(Error::runtime(BUSY)) };
            let task = Task {
                running: false,
                thread: None,
                start: None,
                joiners: Vec::new(),
                joining: None,
                parked: Parked::Nowhere,
                op: None,
                wake: Wake::Ready,
            };
            let tok = s.tasks.insert(task);
            s.by_ptr.insert(th.to_pointer() as usize, tok);
            s.main.get_or_insert(tok);
            if tok.slot() < HELD || busy {
                s.task(tok).thread = Some(th.clone());
            }
            tok
        };
        if tok.slot() >= HELD && !busy {
            self.threads.raw_set(tok.slot(), &th)?;
        }
        let mut s = self.st.borrow_mut();
        s.task(tok).start = Some(args);
        if busy {
            s.task(tok).parked = Parked::Queued;
            s.runq.push_back(tok);
            return Ok(());
        }
        drop(s);
        self.step(lua, tok)
    }

    /// Resumes one thread and files it wherever its yield (or end) sends it.
    /// A thread woken in a socket operation has the operation finished here
    /// first: it is resumed with the result (one call into Rust saved per wait),
    /// or, if the wake was early, parked again without being resumed at all.
    fn step(&self, lua: &Lua, tok: Tid) -> Result<()> {
        let eng = &*self.eng;
        let (op, wake, start) = {
            let mut s = self.st.borrow_mut();
            // A token for no task, or for one that runs, has nothing to resume.
            let Some(task) = s.tasks.get_mut(tok) else { return Ok(()) };
            if task.running {
                return Ok(());
            }
            task.running = true;
            task.parked = Parked::Nowhere;
            (task.op.take(), std::mem::take(&mut task.wake), task.start.take())
        };
        let (th, held) = self.take_thread(tok)?;
        let outer = eng.enter(tok);
        let r = match op {
            Some(op) => match socket::complete(lua, eng, op, wake).or_else(|e| ret::rethrow(lua, e)) {
                // Still not ready: it parks again, unresumed, where `complete` said.
                Ok(ret) if is_wait(&ret.0) => Ok(ret.0),
                // A plain result crosses alone: the prelude reads the missing values as nil.
                Ok((v, Value::Nil, Value::Nil)) => self.resume(&th, v).and_then(|y| self.serve(lua, &th, y)),
                Ok(ret) => self.resume(&th, ret).and_then(|y| self.serve(lua, &th, y)),
                Err(e) => Err(e),
            },
            None => {
                // `leave` drops an answer the thread left untaken.
                if let Wake::Answer(a) = wake {
                    eng.answer.replace(Some(*a));
                }
                self.resume(&th, start.unwrap_or_default()).and_then(|y| self.serve(lua, &th, y))
            }
        };
        let pending = eng.leave(outer);
        match r {
            Ok(v) if th.status() == ThreadStatus::Resumable => {
                let wait = is_wait(&v);
                {
                    let mut s = self.st.borrow_mut();
                    let task = s.task(tok);
                    task.running = false;
                    task.op = pending.op.filter(|_| wait);
                    if held {
                        task.thread = Some(th);
                    }
                }
                // A yield not of the marker (a stray coroutine.yield) counts as a swop.
                self.park(tok, if wait { pending.on } else { On::Swop });
                Ok(())
            }
            r => self.finish(lua, tok, th, r, false),
        }
    }

    /// Resumes `th`: Lua runs, so no Rust function of ours is on the stack above.
    fn resume(&self, th: &Thread, args: impl IntoLuaMulti) -> Result<Yield> {
        let depth = self.eng.depth.replace(0);
        let r = th.resume(args);
        self.eng.depth.set(depth);
        self.eng.lend.clear();
        r
    }

    /// Serves the thread's receive requests: each is done here and the thread
    /// resumed with its result at once, until it waits or ends (whose first value
    /// is returned).
    fn serve(&self, lua: &Lua, th: &Thread, mut y: Yield) -> Result<Value> {
        loop {
            let (v, Value::Integer(id), pattern) = y else { return Ok(y.0) };
            if !is_wait(&v) {
                return Ok(v);
            }
            let r = socket::tcp::receive(lua, &self.eng, Id::from(id), pattern).or_else(|e| ret::rethrow(lua, e))?;
            if is_wait(&r.0) {
                return Ok(r.0);
            }
            y = match r {
                (v, Value::Nil, Value::Nil) => self.resume(th, v)?,
                r => self.resume(th, r)?,
            };
        }
    }

    fn park(&self, tok: Tid, on: On) {
        let mut s = self.st.borrow_mut();
        let parked = match on {
            On::Io(src, side, dir, timeout) => {
                let mut core = self.core();
                let r = reactor(&mut core);
                if r.live(src) {
                    r.wait(src, side, dir, Token::Thread(tok), timeout);
                    Parked::Io(src, side)
                } else {
                    // Closed between its answer and its yield (by a finalizer).
                    s.task(tok).wake = Wake::Closed(None);
                    s.runq.push_back(tok);
                    Parked::Queued
                }
            }
            On::Sleep(ms) => Parked::Sleep(reactor(&mut self.core()).sleep(Token::Thread(tok), ms)),
            On::Turn(ms) => Parked::Turn(ms.map(|ms| reactor(&mut self.core()).sleep(Token::Thread(tok), ms))),
            On::Join(t) if s.tasks.contains(t) => {
                s.task(t).joiners.push(tok);
                s.task(tok).joining = Some(t);
                Parked::Join(t)
            }
            On::Resolve(q) if self.core().res.as_mut().is_some_and(|res| res.add_waiter(q, tok)) => Parked::Resolve(q),
            On::Join(_) | On::Resolve(_) => {
                s.runq.push_back(tok);
                Parked::Queued
            }
            On::Pool(p, timeout) => {
                let mut core = self.core();
                let core = &mut *core;
                if let Some(ms) = timeout {
                    let timer = reactor(core).sleep(Token::Thread(tok), ms);
                    core.pools.set_timer(p, tok, timer);
                }
                Parked::Pool(p)
            }
            On::Swop => {
                s.swopped.push(tok);
                Parked::Queued
            }
        };
        s.task(tok).parked = parked;
    }

    /// Hands the wakes the engine gathered (closes, the poll, queries' ends)
    /// to the tasks they wake.
    fn deliver(&self) {
        let mut core = self.core();
        let core = &mut *core;
        if core.woken.is_empty() && core.answers.is_empty() {
            return;
        }
        let mut s = self.st.borrow_mut();
        // Taken and given back, so the buffer is kept for the next turn; the
        // pools append the wakes of the places they grant as it goes.
        let mut woken = std::mem::take(&mut core.woken);
        let mut i = 0;
        while let Some(&(t, why)) = woken.get(i) {
            i += 1;
            match t {
                Token::Thread(t) => match core.orphans.iter().position(|o| o.0 == t) {
                    Some(i) => s.wake(t, Wake::Closed(Some(Box::new(core.orphans.swap_remove(i).1)))),
                    None => {
                        // Woken from a queue before its timer fired: the timer goes.
                        // (A timer that fired already is not cancelled twice: its id is stale.)
                        if let Some(timer) = s.turn_timer(t) {
                            reactor_of(&mut core.r).cancel(timer);
                        }
                        s.wake(t, why.into())
                    }
                },
                Token::Query(q) => {
                    if let (Some(res), Some(r)) = (core.res.as_mut(), core.r.as_mut()) {
                        res.on_wake(r, q, why, &mut core.answers);
                    }
                }
                Token::Idle(_) | Token::Pool(_) => {
                    if let Some(r) = core.r.as_mut() {
                        core.pools.on_wake(r, t, why, &mut woken);
                    }
                }
            }
        }
        woken.clear();
        core.woken = woken;
        core.orphans.clear();
        for (t, a) in core.answers.drain(..) {
            s.wake(t, Wake::Answer(Box::new(a)));
        }
    }

    /// `L.kill(t)`: ends a light thread where it waits. Its waiters get `nil,
    /// "killed"`. A socket operation it was in is left half done, so its
    /// socket is closed (as OpenResty does), unless the operation's outcome
    /// left the stream whole (a receive that timed out): `socket::abandon`.
    pub fn kill(&self, lua: &Lua, t: Value) -> Result<Ret> {
        let Some(cur) = self.eng.current() else {
            return raise(lua, NOT_IN_LOOP);
        };
        let Value::Thread(th) = &t else {
            return bad_arg(lua, 1, "kill", &expected("light thread", &t));
        };
        let Some(mut core) = self.eng.core() else { return raise(lua, BUSY) };
        let Ok(mut s) = self.st.try_borrow_mut() else { return raise(lua, BUSY) };
        let Some(&tok) = s.by_ptr.get(&(th.to_pointer() as usize)) else {
            drop((s, core));
            return if self.done.contains_key(t.clone())? {
                fail(lua, "already ended")
            } else {
                bad_arg(lua, 1, "kill", "not a light thread of this loop")
            };
        };
        if tok == cur {
            drop((s, core));
            return raise(lua, "kill: a light thread cannot kill itself");
        }
        let task = s.task(tok);
        if task.running {
            // Not parked but running: it is resuming a thread that kills it.
            drop((s, core));
            return raise(lua, "kill: cannot kill a thread that is resuming the caller");
        }
        let parked = std::mem::replace(&mut task.parked, Parked::Nowhere);
        let (op, wake) = (task.op.take(), std::mem::take(&mut task.wake));
        match parked {
            Parked::Queued => {
                s.runq.retain(|&x| x != tok);
                s.swopped.retain(|&x| x != tok);
            }
            Parked::Join(t) => s.task(t).joiners.retain(|&x| x != tok),
            Parked::Io(src, side) => reactor(&mut core).unwait(src, side),
            Parked::Sleep(id) | Parked::Turn(Some(id)) => {
                reactor(&mut core).cancel(id);
            }
            Parked::Turn(None) => {}
            Parked::Resolve(q) => {
                if let Some(res) = core.res.as_mut() {
                    res.remove_waiter(q, tok);
                }
            }
            Parked::Pool(p) => {
                let core = &mut *core;
                core.pools.unqueue(p, tok, reactor_of(&mut core.r), &mut core.woken);
            }
            Parked::Nowhere => {}
        }
        drop(s);
        if let Some(op) = op {
            socket::abandon(&mut core, op, wake, tok);
        }
        drop(core);
        let (th, _) = self.take_thread(tok)?;
        self.finish(lua, tok, th, Ok(Value::Table(failed(lua, "killed")?)), true)?;
        ret::ret(Value::Boolean(true))
    }

    /// Ends a task: keeps its results (or error) for waiters, wakes them. An
    /// error nobody waits for is logged unless `quiet` (a kill).
    fn finish(&self, lua: &Lua, tok: Tid, th: Thread, r: Result<Value>, quiet: bool) -> Result<()> {
        if tok.slot() >= HELD {
            self.threads.raw_set(tok.slot(), Value::Nil)?;
        }
        let (task, is_main) = {
            let mut s = self.st.borrow_mut();
            let task = s.tasks.remove(tok).expect("live task");
            s.by_ptr.remove(&(th.to_pointer() as usize));
            for &j in &task.joiners {
                let t = s.task(j);
                t.joining = None;
                t.parked = Parked::Queued;
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
                *self.traceback.borrow_mut() = Some(full);
                t
            }
        };
        if !result.raw_get::<bool>(1)? {
            let err: Value = result.raw_get(2)?;
            let full = self.traceback.take().unwrap_or_else(|| describe(&err));
            if is_main {
                // L raises a message with its traceback; an error object as it is.
                let raised = match err {
                    Value::String(_) => Value::String(lua.create_string(full)?),
                    v => v,
                };
                self.st.borrow_mut().main_error = Some(raised);
            } else if task.joiners.is_empty() && !quiet {
                eprintln!("coevent: error in light thread: {full}");
            }
        }
        self.done.raw_set(th, result)
    }

    /// `L(f, ...)`: runs `f` as the first light thread until every thread has ended.
    /// Returns the first thread and its error, if it raised one.
    pub fn run(&self, lua: &Lua, f: Value, args: MultiValue) -> Result<Ret> {
        let Value::Function(f) = f else {
            return bad_arg(lua, 1, "L", &expected("function", &f));
        };
        {
            let Some(mut core) = self.eng.core() else { return raise(lua, BUSY) };
            if core.r.is_some() {
                drop(core);
                return raise(lua, "L: a coevent loop is already running");
            }
            match Reactor::new() {
                Ok(mut r) => {
                    // The runner's stop signals wake the poll (see `drive`).
                    if let Some(fd) = sys::process::stop_fd() {
                        let _ = r.add(fd);
                    }
                    core.r = Some(r)
                }
                Err(e) => {
                    drop(core);
                    return raise(lua, &format!("L: epoll: {}", sys::error_string(&e)));
                }
            }
        }
        let running = Running(self);
        let main = lua.create_thread(self.body.clone());
        let main = main.and_then(|th| self.start(lua, th.clone(), f, args).and_then(|()| self.drive(lua)).map(|()| th));
        let main_error = self.st.borrow_mut().main_error.take();
        drop(running);
        Ok((Value::Thread(main?), main_error.unwrap_or(Value::Nil), Value::Nil))
    }

    fn drive(&self, lua: &Lua) -> Result<()> {
        loop {
            // Run what was ready when the turn began; what becomes ready now waits a turn.
            let n = self.st.borrow().runq.len();
            for _ in 0..n {
                let tok = self.st.borrow_mut().runq.pop_front();
                if let Some(tok) = tok {
                    self.step(lua, tok)?;
                    self.deliver();
                }
            }
            self.eng.drain();
            self.deliver();
            let (live, busy) = {
                let s = self.st.borrow();
                (s.tasks.len(), !s.runq.is_empty() || !s.swopped.is_empty())
            };
            if live == 0 {
                return Ok(());
            }
            {
                let mut core = self.core();
                let core = &mut *core;
                let r = core.r.as_mut().expect("loop running");
                if !busy && r.pending() == 0 {
                    return Err(Error::runtime("coevent: deadlock: every light thread waits on another"));
                }
                r.poll(busy.then_some(0), &mut core.woken)
                    .map_err(|e| Error::runtime(format!("coevent: epoll_wait: {e}")))?;
            }
            self.deliver();
            self.stop_on_signal();
            let s = &mut *self.st.borrow_mut();
            for &t in &s.swopped {
                s.runq.push_back(t);
            }
            s.swopped.clear();
        }
    }

    /// SIGINT or SIGTERM to the runner: every listener closes, once, so
    /// its acceptors get `nil, "closed"` and the loop ends when the threads do.
    fn stop_on_signal(&self) {
        if !sys::process::stop_requested() || std::mem::replace(&mut self.st.borrow_mut().stopped, true) {
            return;
        }
        {
            let mut core = self.core();
            let core = &mut *core;
            let r = reactor_of(&mut core.r);
            let mut cx = coevent_engine::stream::Cx { r, spare: &mut core.spare, woken: &mut core.woken };
            core.table.close_listeners(&mut cx, &mut core.pools);
        }
        self.deliver();
    }

    /// `coroutine_wait(t)` when `t` has not ended: parks the caller until it does.
    pub fn join(&self, lua: &Lua, t: Value) -> Result<Ret> {
        let Some(cur) = self.eng.current() else {
            return raise(lua, NOT_IN_LOOP);
        };
        let Value::Thread(th) = &t else {
            return bad_arg(lua, 1, "coroutine_wait", &expected("light thread", &t));
        };
        let Ok(mut s) = self.st.try_borrow_mut() else { return raise(lua, BUSY) };
        let Some(&tok) = s.by_ptr.get(&(th.to_pointer() as usize)) else {
            drop(s);
            return bad_arg(lua, 1, "coroutine_wait", "not a light thread of this loop");
        };
        // Waiting on oneself, directly or round a cycle, would never end.
        let mut t = Some(tok);
        while let Some(x) = t {
            if x == cur {
                drop(s);
                return raise(lua, "coroutine_wait: deadlock: a light thread would wait on itself");
            }
            t = s.task(x).joining;
        }
        drop(s);
        self.eng.park(Pending { on: On::Join(tok), op: None })
    }
}

/// What a thread yields: the wait marker alone, a receive request (the
/// marker, a socket id, a pattern), anything a stray `coroutine.yield` gives,
/// or (when it ends) its outcome.
type Yield = (Value, Value, Value);

fn reactor(core: &mut Core) -> &mut Reactor {
    reactor_of(&mut core.r)
}

fn reactor_of(r: &mut Option<Reactor>) -> &mut Reactor {
    r.as_mut().expect("loop running")
}

/// Tears the loop down however `run` leaves (a panic unwinding included):
/// closes every socket, drops every thread, so `L` can run again.
struct Running<'a>(&'a Sched);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let sched = self.0;
        sched.eng.drain();
        if let Some(mut core) = sched.eng.core() {
            core.end_loop();
        }
        sched.eng.current.set(None);
        // The tasks' slab keeps its generations: no Tid of this loop names a
        // task of the next.
        let mut s = sched.st.borrow_mut();
        let tasks = std::mem::take(&mut s.tasks);
        *s = State { tasks, ..State::default() };
        drop(s.tasks.drain());
        drop(s);
        let _ = sched.threads.clear();
    }
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

/// An error value as text: a string as it is, anything else through tostring.
fn describe(err: &Value) -> String {
    match err {
        Value::String(s) => s.to_string_lossy(),
        v => v.to_string().unwrap_or_else(|_| format!("(error object is a {} value)", ret::type_name(v))),
    }
}

/// `sleep(seconds)`.
pub fn sleep(lua: &Lua, eng: &Engine, sec: Value) -> Result<Ret> {
    let Some(_) = eng.current() else {
        return raise(lua, NOT_IN_LOOP);
    };
    let Some(s) = ret::number(lua, &sec) else {
        return bad_arg(lua, 1, "sleep", &expected("number", &sec));
    };
    if s.is_nan() || s < 0.0 {
        return bad_arg(lua, 1, "sleep", "seconds must be >= 0");
    }
    eng.park(Pending { on: On::Sleep((s * 1000.0).ceil().min(u64::MAX as f64) as u64), op: None })
}

/// `swop()`: yields until every other ready thread and pending I/O has had a turn.
pub fn swop(lua: &Lua, eng: &Engine) -> Result<Ret> {
    match eng.current() {
        Some(_) => eng.park(Pending { on: On::Swop, op: None }),
        None => raise(lua, NOT_IN_LOOP),
    }
}
