//! The raw watch link: a `head/watch` link of the caller's own, spoken line
//! by line (`Wcfs::open_watch`), as tools and server tests do.
//!
//! The streams and the checks of every line are the core's
//! ([`wcfs_core::rawlink::RawLink`]); this file performs the I/O. A reader
//! thread per link reads the server's lines and files them: replies for
//! the callers waiting on them, server requests (pins) in a queue for
//! [`WatchLink::recv_req`], fatal messages in a list. Bad input from the
//! server takes the link down: every waiting call fails with the reason,
//! the thread ends and lets go of the link.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use wcfs_core::link::LinkError;
use wcfs_core::rawlink::{RawError, RawIncoming, RawLink};
use wcfs_core::wire::{Framer, Oid, Rev, StreamId};

use crate::error::{Context, Error, ErrorKind, WatchError};
use crate::handles::{Wcfs, LINK_END_WAIT};
use crate::sys;

/// Most fatal messages kept (the server sends one, then ends the link).
pub const MAX_FATALS: usize = 16;

/// A request of the server, to be answered once with [`WatchLink::reply_req`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinReq {
    /// The server's stream, to reply on.
    pub stream: StreamId,
    /// The bigfile.
    pub oid: Oid,
    /// The block.
    pub blk: u64,
    /// The revision the block is to show, or head (an unpin).
    pub rev: Rev,
    /// The line as received, after `<stream> ` and without `\n`.
    pub msg: String,
}

/// A `head/watch` link of the caller's own. Cheap to share between threads
/// (`&self` everywhere); dropped, it closes as [`WatchLink::close`] does.
pub struct WatchLink {
    l: Arc<Link>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

struct Link {
    ctx: Context,
    /// The link, -1 once closed; closed only by the reader thread as it
    /// ends (no read is then in flight), holding `wr` (no write either).
    fd: AtomicI32,
    /// The mountpoint, held while the link is open (see `mountdir`).
    mount: Mutex<Option<Arc<sys::Mount>>>,
    /// The process that opened the link: in any other (a fork child), the
    /// link says nothing and lets go without a word.
    pid: rustix::process::Pid,
    st: Mutex<St>,
    cv: Condvar,
    /// One write at a time, and none while the link closes.
    wr: Mutex<()>,
}

struct St {
    raw: RawLink,
    /// Our requests whose caller still waits for the reply.
    waiting: HashSet<StreamId>,
    /// Replies arrived for them.
    replies: HashMap<StreamId, String>,
    /// Server requests not taken by `recv_req` yet (bounded by the core:
    /// at most `MAX_SERVER_REQUESTS` unanswered).
    requests: VecDeque<PinReq>,
    fatals: Vec<String>,
    /// Set as the reader thread ends: why the link ended (`Closed`: after
    /// our `bye`, the normal end).
    rx_end: Option<LinkError>,
}

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

impl Wcfs {
    /// Opens a new `head/watch` link, to be spoken line by line.
    pub fn open_watch(&self) -> Result<WatchLink, Error> {
        let ctx = self.watch_ctx();
        let mount = self
            .inner
            .mount
            .get()
            .map_err(|e| Error::io(ctx.clone(), "open mountpoint", e))?;
        let fd = mount
            .open_watch()
            .map_err(|e| Error::io(ctx.clone(), "open head/watch", e))?;
        WatchLink::start(ctx, fd, Some(mount))
    }

    /// A raw watch link over an already open link (for tests: a socketpair end).
    pub fn open_watch_over(&self, link: OwnedFd) -> Result<WatchLink, Error> {
        WatchLink::start(self.watch_ctx(), link, None)
    }

    fn watch_ctx(&self) -> Context {
        let id = NEXT_LINK.fetch_add(1, Ordering::Relaxed);
        Context::wcfs(&self.inner.mountpoint).op(format!("wlink{id}"))
    }
}

fn watch_err(ctx: &Context, op: &str, e: WatchError) -> Error {
    Error {
        context: ctx.clone().op(op),
        kind: ErrorKind::Watch(e),
    }
}

impl WatchLink {
    fn start(ctx: Context, fd: OwnedFd, mount: Option<Arc<sys::Mount>>) -> Result<Self, Error> {
        let l = Arc::new(Link {
            ctx,
            fd: AtomicI32::new(fd.into_raw_fd()),
            mount: Mutex::new(mount),
            pid: rustix::process::getpid(),
            st: Mutex::new(St {
                raw: RawLink::new(),
                waiting: HashSet::new(),
                replies: HashMap::new(),
                requests: VecDeque::new(),
                fatals: Vec::new(),
                rx_end: None,
            }),
            cv: Condvar::new(),
            wr: Mutex::new(()),
        });
        let t = {
            let l = l.clone();
            std::thread::Builder::new()
                .name("wcfs-wlink".into())
                .stack_size(crate::PIN_THREAD_STACK)
                .spawn(move || l.serve_rx())
        };
        match t {
            Ok(t) => Ok(WatchLink {
                l,
                reader: Mutex::new(Some(t)),
            }),
            Err(e) => {
                let fd = l.fd.swap(-1, Ordering::AcqRel);
                // SAFETY: no thread was started: we own the fd alone.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
                Err(Error::io(l.ctx.clone(), "spawn reader thread", e))
            }
        }
    }

    /// Sends `req` (any text: it goes out as given, `<stream> <req>\n`) on a
    /// new odd stream and waits for the reply, at most until `deadline`.
    /// Returns the reply's text (`ok`, `error ...`, ...).
    pub fn send_req(&self, req: &str, deadline: Option<Instant>) -> Result<String, Error> {
        let stream = self.start_req(req)?;
        let r = self.wait_reply(stream, deadline);
        self.abandon_req(stream);
        r
    }

    /// Sends `req` as [`WatchLink::send_req`] does, and returns its stream
    /// without waiting: [`WatchLink::wait_reply`] waits (in as many slices
    /// as the caller likes), [`WatchLink::abandon_req`] gives it up.
    pub fn start_req(&self, req: &str) -> Result<StreamId, Error> {
        let l = &self.l;
        let err = |e| watch_err(&l.ctx, "send request", e);
        l.check_pid().map_err(err)?;
        let (stream, line) = {
            let mut st = l.lock();
            let (stream, line) = st.raw.request(req).map_err(|e| err(WatchError::Link(e)))?;
            st.waiting.insert(stream);
            (stream, line)
        };
        if let Err(e) = l.write(line.as_bytes()) {
            l.lock().waiting.remove(&stream);
            return Err(err(e));
        }
        Ok(stream)
    }

    /// Waits for the reply to our request on `stream`, at most until
    /// `deadline` (then `DeadlinePassed`, and the request still waits).
    pub fn wait_reply(&self, stream: StreamId, deadline: Option<Instant>) -> Result<String, Error> {
        let l = &self.l;
        let err = |e| watch_err(&l.ctx, "wait for reply", e);
        let mut st = l
            .wait(deadline, |st| {
                !st.waiting.contains(&stream)
                    || st.replies.contains_key(&stream)
                    || !st.raw.awaits_reply(stream)
            })
            .map_err(err)?;
        if !st.waiting.remove(&stream) {
            return Err(err(WatchError::NoSuchRequest(stream)));
        }
        match st.replies.remove(&stream) {
            Some(text) => Ok(text),
            None => {
                drop(st);
                Err(err(l.down_error()))
            }
        }
    }

    /// Gives up waiting for the reply on `stream`: should it come, it is
    /// dropped (a reply to a request given up is no violation).
    pub fn abandon_req(&self, stream: StreamId) {
        let mut st = self.l.lock();
        st.waiting.remove(&stream);
        st.replies.remove(&stream);
    }

    /// Waits for the next request of the server, at most until `deadline`;
    /// `None` once the link has ended (after the requests received before).
    /// A link brought down by bad input from the server gives its reason.
    pub fn recv_req(&self, deadline: Option<Instant>) -> Result<Option<PinReq>, Error> {
        let l = &self.l;
        let err = |e| watch_err(&l.ctx, "receive request", e);
        l.check_pid().map_err(err)?;
        let mut st = l
            .wait(deadline, |st| {
                !st.requests.is_empty() || st.rx_end.is_some()
            })
            .map_err(err)?;
        if let Some(r) = st.requests.pop_front() {
            return Ok(Some(r));
        }
        match st.rx_end.clone() {
            Some(LinkError::Closed | LinkError::UnexpectedEof) | None => Ok(None),
            Some(e) => Err(err(WatchError::Link(RawError::Down(e)))),
        }
    }

    /// Replies `reply` (e.g. `ack`, `nak: <why>`) to the server request on
    /// `stream`; each is answered once (twice, or a stream with no request:
    /// refused, the link stays up).
    pub fn reply_req(&self, stream: StreamId, reply: &str) -> Result<(), Error> {
        let l = &self.l;
        let err = |e| watch_err(&l.ctx, "reply", e);
        l.check_pid().map_err(err)?;
        let line = l
            .lock()
            .raw
            .reply(stream, reply)
            .map_err(|e| err(WatchError::Link(e)))?;
        l.write(line.as_bytes()).map_err(err)
    }

    /// Writes `bytes` to the link as they are (for tests: frames no
    /// request would make, e.g. a line without a stream).
    pub fn write_raw(&self, bytes: &[u8]) -> Result<(), Error> {
        let l = &self.l;
        let err = |e| watch_err(&l.ctx, "write", e);
        l.check_pid().map_err(err)?;
        l.write(bytes).map_err(err)
    }

    /// Says `bye`: nothing more is sent, and the server ends the link.
    pub fn close_write(&self) -> Result<(), Error> {
        let l = &self.l;
        let err = |e| watch_err(&l.ctx, "bye", e);
        l.check_pid().map_err(err)?;
        let line = l.lock().raw.bye().map_err(|e| err(WatchError::Link(e)))?;
        l.write(line.as_bytes()).map_err(err)
    }

    /// The fatal messages of the server, in order (the text after `error: `).
    pub fn fatals(&self) -> Vec<String> {
        self.l.lock().fatals.clone()
    }

    /// Whether the link has ended (the server's EOF, or it went down).
    pub fn is_ended(&self) -> bool {
        self.l.lock().rx_end.is_some()
    }

    /// Waits until the link has ended, at most until `deadline`; true if it has.
    pub fn wait_ended(&self, deadline: Option<Instant>) -> bool {
        self.l.wait(deadline, |st| st.rx_end.is_some()).is_ok()
    }

    /// Closes the link: says `bye` unless said, waits (at most
    /// `LINK_END_WAIT`) for the server to end it, and lets go of it and of
    /// the mountpoint. Closing twice is fine. In a fork child of the
    /// process that opened it, lets go without a word.
    pub fn close(&self) -> Result<(), Error> {
        let l = &self.l;
        let t = self.reader.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(t) = t else { return Ok(()) };
        if l.check_pid().is_err() {
            std::mem::forget(t); // the thread does not exist in this process
            let fd = l.fd.swap(-1, Ordering::AcqRel);
            if fd >= 0 {
                sys::close_raw_no_write(fd);
            }
            drop(l.mount.lock().unwrap_or_else(|e| e.into_inner()).take());
            return Ok(());
        }
        let bye = l.lock().raw.bye();
        if let Ok(line) = bye {
            if l.write(line.as_bytes()).is_err() {
                l.shutdown();
            }
        }
        let deadline = Instant::now() + LINK_END_WAIT;
        if !self.wait_ended(Some(deadline)) {
            // A socket wakes its reader; a FUSE link ends with its server.
            l.shutdown();
            if !self.wait_ended(Some(Instant::now() + LINK_END_WAIT / 10)) {
                return Err(watch_err(&l.ctx, "close", WatchError::NoEnd));
            }
        }
        let _ = t.join();
        Ok(())
    }
}

impl Drop for WatchLink {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl fmt::Debug for WatchLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WatchLink({})", self.l.ctx)
    }
}

impl Link {
    fn lock(&self) -> MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_pid(&self) -> Result<(), WatchError> {
        if rustix::process::getpid() == self.pid {
            Ok(())
        } else {
            Err(WatchError::ForkChild)
        }
    }

    /// Waits until `ready`, at most until `deadline`.
    fn wait(
        &self,
        deadline: Option<Instant>,
        ready: impl Fn(&St) -> bool,
    ) -> Result<MutexGuard<'_, St>, WatchError> {
        let mut st = self.lock();
        while !ready(&st) {
            st = match deadline {
                None => self.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(WatchError::DeadlinePassed);
                    }
                    self.cv
                        .wait_timeout(st, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        Ok(st)
    }

    /// Why nothing more comes: the link's reason for being down.
    fn down_error(&self) -> WatchError {
        let st = self.lock();
        let why = st.raw.down().cloned().unwrap_or(LinkError::UnexpectedEof);
        WatchError::Link(RawError::Down(why))
    }

    fn write(&self, bytes: &[u8]) -> Result<(), WatchError> {
        let _w = self.wr.lock().unwrap_or_else(|e| e.into_inner());
        let fd = self.fd.load(Ordering::Acquire);
        if fd < 0 {
            return Err(self.down_error());
        }
        // SAFETY: the fd is closed only holding `wr`, which we hold.
        let r = sys::write_all(unsafe { BorrowedFd::borrow_raw(fd) }, bytes);
        r.map_err(|e| {
            let mut st = self.lock();
            let why = st.raw.fail(LinkError::Io(e.raw_os_error()));
            drop(st);
            self.cv.notify_all();
            WatchError::Link(RawError::Down(why))
        })
    }

    /// Wakes the reader of a socket link (ENOTSOCK on a FUSE file: ignored).
    fn shutdown(&self) {
        let _w = self.wr.lock().unwrap_or_else(|e| e.into_inner());
        let fd = self.fd.load(Ordering::Acquire);
        if fd >= 0 {
            // SAFETY: as in `write`.
            let _ = sys::shutdown_read(unsafe { BorrowedFd::borrow_raw(fd) });
        }
    }

    /// The reader thread: files each line from the server until the link
    /// ends or goes down, then closes it and lets go of the mountpoint.
    fn serve_rx(self: Arc<Self>) {
        let mut framer = Framer::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            let fd = self.fd.load(Ordering::Acquire);
            // SAFETY: only this thread closes the fd (below), so it is open.
            let r = sys::read_some(unsafe { BorrowedFd::borrow_raw(fd) }, &mut buf);
            let mut st = self.lock();
            let n = match r {
                Ok(0) => {
                    let e = framer.finish().map_err(LinkError::Wire);
                    break e.and_then(|()| st.raw.eof()).err().map(|e| st.raw.fail(e));
                }
                Ok(n) => n,
                Err(e) => break Some(st.raw.fail(LinkError::Io(e.raw_os_error()))),
            };
            let mut input = &buf[..n];
            let mut down = None;
            while let Some(line) = framer.next_line(&mut input) {
                let r = line.map_err(|e| RawError::Down(st.raw.fail(LinkError::Wire(e))));
                match r.and_then(|line| st.raw.recv(line)) {
                    Ok(RawIncoming::Reply { stream, text }) => {
                        if st.waiting.contains(&stream) {
                            st.replies.insert(stream, text.to_string());
                        }
                    }
                    Ok(RawIncoming::Request { pin, text }) => st.requests.push_back(PinReq {
                        stream: pin.stream,
                        oid: pin.oid,
                        blk: pin.blk,
                        rev: pin.rev,
                        msg: text.to_string(),
                    }),
                    Ok(RawIncoming::Fatal(t)) => {
                        if st.fatals.len() < MAX_FATALS {
                            st.fatals.push(t.to_string());
                        }
                    }
                    Err(e) => {
                        down = Some(match e {
                            RawError::Down(e) => e,
                            _ => LinkError::UnexpectedEof,
                        });
                        break;
                    }
                }
            }
            drop(st);
            self.cv.notify_all();
            if down.is_some() {
                break down;
            }
        };
        {
            let _w = self.wr.lock().unwrap_or_else(|e| e.into_inner());
            let fd = self.fd.swap(-1, Ordering::AcqRel);
            // SAFETY: no read is in flight (we are the reader) and no write
            // (we hold `wr`); nobody uses the fd after the swap.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        drop(self.mount.lock().unwrap_or_else(|e| e.into_inner()).take());
        let mut st = self.lock();
        st.rx_end = Some(end.unwrap_or(LinkError::Closed));
        drop(st);
        self.cv.notify_all();
    }
}
