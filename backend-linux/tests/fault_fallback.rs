//! When the OS refuses to make a view fault, on real memory: a seccomp
//! filter makes the kernel refuse (`ENOMEM`) the `MAP_FIXED` of
//! inaccessible memory over a view (`Action::MapFixed { src: Src::Fault }`,
//! `sys::map_fault_fixed`) and, in a second variant, the `mprotect` to
//! `PROT_NONE` that the core falls back to (`Action::Protect`,
//! `sys::protect_none`). The control runs the same scenario with no filter.
//!
//! Each test runs in a fork child (the filter must not touch the test
//! harness): the child installs the filter before any connection exists,
//! so the pin thread it starts later inherits it. The filter refuses only
//! calls with the length of the views the test maps, `BLKS` pages, which
//! nothing else in the process maps `MAP_FIXED` or protects to `PROT_NONE`.
//! The tmpfs directory laid out like WCFS and the scripted server on a
//! socketpair are those of `common`.
mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{bs, open, Server, Tree, F};
use wcfs_core::link::LinkError;
use wcfs_core::wire::WireError;
use wcfs_core::{Errno, OsOp};
use wcfs_linux::{sys, Conn, FileH, Mapping};

/// Blocks of each view: with blocks of one page (`common::bs`), the length
/// the filter refuses. Past head's 4 blocks the views show zeros.
const BLKS: u64 = 13;

fn view_len() -> usize {
    BLKS as usize * bs()
}

/// What the filter refuses.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Refuse {
    /// No filter: the control.
    Nothing,
    /// `mmap(len, PROT_NONE, MAP_FIXED)`; `mprotect` is allowed.
    Mmap,
    /// Both `mmap` as above and `mprotect(len, PROT_NONE)`.
    MmapAndMprotect,
}

impl Refuse {
    /// `/proc/self/maps` permissions of a view that ended: replaced by an
    /// anonymous `PROT_NONE` mapping, or the same shared file mapping
    /// protected in place, or left as it was.
    fn perms(self) -> &'static str {
        match self {
            Refuse::Nothing => "---p",
            Refuse::Mmap => "---s",
            Refuse::MmapAndMprotect => "r--s",
        }
    }

    /// Why a view's end takes the connection down (the first refusal, the
    /// fault map's), when nothing took it down before.
    fn down_reason(self) -> Option<wcfs_core::Error> {
        (self != Refuse::Nothing).then_some(wcfs_core::Error::Os {
            call: OsOp::MapFixed,
            errno: Errno(libc::ENOMEM),
        })
    }
}

// ---- the seccomp filter ----

/// The audit architecture of this build's syscalls, where the test knows
/// its syscall numbers (`libc::SYS_*`) and its byte order (little endian).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(0xc000_003e); // EM_X86_64 | 64BIT | LE
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: Option<u32> = Some(0xc000_00b7); // EM_AARCH64 | 64BIT | LE
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: Option<u32> = None;

/// Where a jump of the filter goes.
#[derive(Clone, Copy)]
enum To {
    Next,
    Over(usize),
    Refuse,
    Allow,
}

/// One instruction of a filter under construction.
enum Ins {
    /// Load the 32-bit word at this offset of `struct seccomp_data`.
    Load(u32),
    /// Compare the word loaded with `k` by `op` (`BPF_JEQ`, `BPF_JSET`).
    Jump { op: u32, k: u32, jt: To, jf: To },
    /// Jump unconditionally (`BPF_JA`, whose offset is its `k`).
    Goto(To),
}

/// A classic BPF program under construction; `finish` appends the two
/// returns (refuse with `ENOMEM`, allow) and resolves the jumps to them.
#[derive(Default)]
struct Prog(Vec<Ins>);

impl Prog {
    fn load(&mut self, off: u32) {
        self.0.push(Ins::Load(off));
    }

    fn jump(&mut self, op: u32, k: u32, jt: To, jf: To) {
        self.0.push(Ins::Jump { op, k, jt, jf });
    }

    fn goto(&mut self, to: To) {
        self.0.push(Ins::Goto(to));
    }

    /// Goes on when syscall argument `i` (64 bits: two words, the low one
    /// first on little endian) equals `v`; allows the call otherwise.
    fn arg_is(&mut self, i: u32, v: u64) {
        let off = 16 + 8 * i; // offsetof(struct seccomp_data, args[i])
        self.load(off);
        self.jump(libc::BPF_JEQ, v as u32, To::Next, To::Allow);
        self.load(off + 4);
        self.jump(libc::BPF_JEQ, (v >> 32) as u32, To::Next, To::Allow);
    }

    fn append(&mut self, block: Prog) {
        self.0.extend(block.0);
    }

    fn finish(self) -> Vec<libc::sock_filter> {
        let refuse = self.0.len();
        let allow = refuse + 1;
        let off = |pc: usize, to: To| -> u8 {
            let target = match to {
                To::Next => pc + 1,
                To::Over(n) => pc + 1 + n,
                To::Refuse => refuse,
                To::Allow => allow,
            };
            u8::try_from(target - pc - 1).expect("a short program")
        };
        let ins = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        };
        let mut out: Vec<libc::sock_filter> = self
            .0
            .iter()
            .enumerate()
            .map(|(pc, i)| match *i {
                Ins::Load(off) => ins(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, off),
                Ins::Jump { op, k, jt, jf } => ins(
                    libc::BPF_JMP | op | libc::BPF_K,
                    off(pc, jt),
                    off(pc, jf),
                    k,
                ),
                Ins::Goto(to) => ins(libc::BPF_JMP | libc::BPF_JA, 0, 0, off(pc, to).into()),
            })
            .collect();
        let ret = libc::BPF_RET | libc::BPF_K;
        out.push(ins(
            ret,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::ENOMEM as u32,
        ));
        out.push(ins(ret, 0, 0, libc::SECCOMP_RET_ALLOW));
        out
    }
}

/// The filter: `ENOMEM` for `mmap(_, len, PROT_NONE, flags & MAP_FIXED, ..)`
/// and, for `MmapAndMprotect`, `mprotect(_, len, PROT_NONE)`; any other
/// call (other numbers, lengths, protections, architectures) is allowed.
fn filter(refuse: Refuse, arch: u32, len: usize) -> Vec<libc::sock_filter> {
    let len = len as u64;
    let mut p = Prog::default();
    p.load(4); // arch
    p.jump(libc::BPF_JEQ, arch, To::Next, To::Allow);
    p.load(0); // nr
    let mut mmap = Prog::default();
    mmap.arg_is(1, len);
    mmap.arg_is(2, libc::PROT_NONE as u64);
    mmap.load(16 + 8 * 3); // flags, low word
    mmap.jump(
        libc::BPF_JSET,
        libc::MAP_FIXED as u32,
        To::Refuse,
        To::Allow,
    );
    p.jump(
        libc::BPF_JEQ,
        libc::SYS_mmap as u32,
        To::Next,
        To::Over(mmap.0.len()),
    );
    p.append(mmap);
    if refuse == Refuse::MmapAndMprotect {
        p.jump(
            libc::BPF_JEQ,
            libc::SYS_mprotect as u32,
            To::Next,
            To::Allow,
        );
        p.arg_is(1, len);
        p.arg_is(2, libc::PROT_NONE as u64);
        p.goto(To::Refuse);
    } else {
        p.goto(To::Allow);
    }
    p.finish()
}

/// Installs the filter on the calling thread (and the threads it starts
/// from now on).
fn install(refuse: Refuse, arch: u32) {
    if refuse == Refuse::Nothing {
        return;
    }
    let mut prog = filter(refuse, arch, view_len());
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl with integer arguments only; it changes this thread's
    // privileges, which the fork child may do.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(
        r,
        0,
        "PR_SET_NO_NEW_PRIVS: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fprog` points to `prog`, a valid program of `len`
    // instructions that outlives the call (the kernel copies it).
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
    check_filter(refuse);
}

/// The filter refuses what it should and nothing close to it.
fn check_filter(refuse: Refuse) {
    let len = view_len();
    let scratch = sys::reserve(len + bs()).expect("a plain PROT_NONE mmap is allowed") as usize;
    let mprotect_refused = refuse == Refuse::MmapAndMprotect;
    // SAFETY: `scratch` is a reservation of this function's own, which
    // nothing else uses; it is released at the end.
    unsafe {
        assert_eq!(
            sys::map_fault_fixed(scratch, len).map_err(|e| e.raw_os_error()),
            Err(libc::ENOMEM)
        );
        assert!(sys::map_fault_fixed(scratch, len - bs()).is_ok());
        assert!(sys::map_fault_fixed(scratch, len + bs()).is_ok());
        assert_eq!(
            sys::protect_none(scratch, len).map_err(|e| e.raw_os_error()),
            if mprotect_refused {
                Err(libc::ENOMEM)
            } else {
                Ok(())
            }
        );
        assert!(sys::protect_none(scratch, len - bs()).is_ok());
        assert_eq!(
            libc::mprotect(scratch as *mut _, len, libc::PROT_READ),
            0,
            "only PROT_NONE is refused"
        );
        sys::unmap(scratch, len + bs()).unwrap();
    }
}

// ---- the fork child ----

/// Runs `child` in a fork child with the filter for `refuse` installed
/// first; the parent waits for it (at most a minute) and asserts that it
/// exited 0, with the child's panic message otherwise. The pattern of
/// `common::in_fork_child`, plus the filter, a panic caught in the child
/// (it must not unwind into the harness's code there) and reported through
/// a pipe (the harness captures the child's output where nobody reads it),
/// and a bound on the wait.
fn in_filtered_child(refuse: Refuse, child: impl FnOnce()) {
    // One child at a time, and never while another test of this file is
    // in its panic hook: a fork child inherits whatever lock another
    // thread holds (the panic hook's among them) and would wait for ever.
    static FORKS: Mutex<()> = Mutex::new(());
    let _one = FORKS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(arch) = AUDIT_ARCH else {
        println!(
            "fault_fallback: skipped: no seccomp audit arch known for {}",
            std::env::consts::ARCH
        );
        return;
    };
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    assert_eq!(r, 0);
    // SAFETY: the pipe's ends, just made, owned here only.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child installs its filter, runs the test's own scenario
    // (its own tmpfs tree, connection, threads and memory; nothing it
    // shares with the harness's other threads but the allocator, which
    // glibc keeps usable across fork), and ends with `_exit` without
    // returning into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let report = wr.as_raw_fd();
        std::panic::set_hook(Box::new(move |info| {
            let msg = format!("{info}\n");
            // SAFETY: writing our own bytes to the pipe's write end.
            unsafe { libc::write(report, msg.as_ptr().cast(), msg.len()) };
        }));
        let ok = catch_unwind(AssertUnwindSafe(|| {
            install(refuse, arch);
            child();
        }))
        .is_ok();
        // SAFETY: end the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    drop(wr);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "waitpid: {}", std::io::Error::last_os_error());
        if Instant::now() > deadline {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child ({refuse:?}) did not end within a minute");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // The child is gone: what it wrote is in the pipe. (Read without
    // waiting for EOF: a child another test file's code forked meanwhile
    // may hold a copy of the write end.)
    let mut msg = Vec::new();
    let _ = std::fs::File::from(rd).read_to_end(&mut msg); // stops at EAGAIN
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child ({refuse:?}): status {status:#x} ({}): {}",
        if libc::WIFSIGNALED(status) {
            format!("killed by signal {}", libc::WTERMSIG(status))
        } else {
            "exited".to_string()
        },
        String::from_utf8_lossy(&msg)
    );
}

// ---- the scenario ----

/// An open file of a connection, viewed twice over `BLKS` blocks: a
/// mapping of the client's own (`FileH::mmap`) and one in a range the test
/// reserved (`FileH::mmap_at`).
struct Views {
    conn: Conn,
    fh: FileH,
    own: Mapping,
    caller: Mapping,
    /// The test's reservation under `caller`, released by `Drop`.
    range: usize,
    _tree: Tree,
}

impl Views {
    fn new(name: &str) -> (Views, Server) {
        let tree = Tree::new(name);
        let (conn, fh, srv) = open(&tree);
        let own = fh.mmap(0, BLKS).unwrap();
        let range = sys::reserve(view_len()).unwrap();
        // SAFETY: `range` is the test's reservation, which no Rust object
        // uses; the test touches it only through probes and `Mapping`.
        let caller = unsafe { fh.mmap_at(0, BLKS, range, view_len()) }.unwrap();
        let v = Views {
            conn,
            fh,
            own,
            caller,
            range: range as usize,
            _tree: tree,
        };
        for m in [&v.own, &v.caller] {
            let addr = m.addr() as usize;
            assert_eq!(sys::probe_read(addr), Ok(b'h'), "block 0 shows h0");
            assert_eq!(sys::probe_read(addr + 3 * bs() + 1), Ok(b'3'));
            assert_eq!(sys::probe_read(addr + 12 * bs()), Ok(0), "zeros");
            assert_eq!(sys::map_perms(addr).as_deref(), Some("r--s"));
        }
        (v, srv)
    }
}

impl Drop for Views {
    fn drop(&mut self) {
        // The range is left to its owner, the test, which releases it.
        let unmapped = self.caller.unmap();
        // SAFETY: the test's reservation, which no mapping of the client
        // lies in any more.
        let released = unsafe { sys::unmap(self.range, view_len()) };
        if !std::thread::panicking() {
            unmapped.unwrap();
            released.unwrap();
            assert_eq!(sys::map_perms(self.range), None);
        }
    }
}

/// The scripted server from now on: answers unwatches with `ok`, ends the
/// link after `bye`; the lines it read.
fn serve(mut srv: Server) -> JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while let Some(l) = srv.read_line() {
            if let Some(id) = l.strip_suffix(&format!(" watch {F} -")) {
                srv.send(&format!("{id} ok"));
            }
            let bye = l.ends_with(" bye");
            seen.push(l);
            if bye {
                break;
            }
        }
        seen
    })
}

/// A view that ended: faulting for the client; what its memory shows and
/// how `/proc/self/maps` lists it depends on what the OS refused.
fn assert_ended(m: &Mapping, refuse: Refuse, what: &str) {
    let addr = m.addr() as usize;
    let last = addr + (BLKS as usize - 1) * bs();
    assert!(m.is_faulting(), "{what}");
    assert!(m.read(0, &mut [0; 2]).is_err(), "{what}: read refuses it");
    assert_eq!(m.is_exposed(), refuse == Refuse::MmapAndMprotect, "{what}");
    for a in [addr, last] {
        assert_eq!(
            sys::map_perms(a).as_deref(),
            Some(refuse.perms()),
            "{what} at {a:#x}"
        );
    }
    if refuse == Refuse::MmapAndMprotect {
        // The documented limit: an exposed view may still show its bytes.
        assert_eq!(sys::probe_read(addr), Ok(b'h'), "{what}");
        assert_eq!(sys::probe_read(last), Ok(0), "{what}");
    } else {
        assert_eq!(sys::probe_read(addr), Err(libc::EFAULT), "{what}");
        assert_eq!(sys::probe_read(last), Err(libc::EFAULT), "{what}");
    }
}

/// Unmaps both views after they ended: the own mapping is released
/// (`munmap` is never refused here); the caller's range stays mapped for
/// its owner, the fault map refused again and the range as it was.
fn unmap_ended(v: &Views, refuse: Refuse) {
    let own = v.own.addr() as usize;
    v.own.unmap().unwrap();
    assert_eq!(sys::map_perms(own), None, "the own mapping is released");
    v.caller.unmap().unwrap();
    assert_eq!(sys::map_perms(v.range).as_deref(), Some(refuse.perms()));
    let probe = sys::probe_read(v.range);
    if refuse == Refuse::MmapAndMprotect {
        assert_eq!(probe, Ok(b'h'), "the caller's range still shows h0");
    } else {
        assert_eq!(probe, Err(libc::EFAULT), "the caller's range faults");
    }
}

/// Closing the file ends both views. With a refusal, the connection goes
/// down with the fault map's error (the close fails with it); the mappings
/// are protected in place, or exposed.
fn close_file(refuse: Refuse) {
    let (v, srv) = Views::new(&format!("close-{refuse:?}"));
    let mut server = Some(serve(srv));
    let closed = v.fh.close();
    assert_eq!(v.conn.down_reason(), refuse.down_reason());
    match refuse.down_reason() {
        None => closed.unwrap(),
        Some(e) => assert_eq!(closed.unwrap_err().core_error(), Some(&e)),
    }
    assert_ended(&v.own, refuse, "own");
    assert_ended(&v.caller, refuse, "caller's");
    if refuse != Refuse::Nothing {
        // Going down said `bye` (the unwatch was dropped) and let go of
        // the link: the server saw its end.
        let lines = server.take().unwrap().join().unwrap();
        assert!(
            lines.last().is_some_and(|l| l.ends_with(" bye")),
            "{lines:?}"
        );
        assert!(v.conn.open(F).is_err());
    }
    unmap_ended(&v, refuse);
    v.conn.close().unwrap();
    if let Some(server) = server {
        let lines = server.join().unwrap();
        assert_eq!(lines.len(), 2, "unwatch, bye: {lines:?}");
    }
}

/// Bad server input takes the connection down; faulting its views is
/// refused as well, but the reason stays the input's.
fn bad_input(refuse: Refuse) {
    let (v, mut srv) = Views::new(&format!("bad-{refuse:?}"));
    srv.send(&format!("2 pin {F} #-1 @head"));
    let lines = serve(srv).join().unwrap();
    assert!(
        lines.last().is_some_and(|l| l.ends_with(" bye")),
        "{lines:?}"
    );
    // The first reason stays, though faulting the views was refused after.
    assert_eq!(
        v.conn.down_reason(),
        Some(wcfs_core::Error::Link(LinkError::Wire(
            WireError::NegativeBlk
        )))
    );
    assert_ended(&v.own, refuse, "own");
    assert_ended(&v.caller, refuse, "caller's");
    unmap_ended(&v, refuse);
}

/// Unmapping the caller's range while the connection is up: the core lays
/// inaccessible memory over it instead of releasing it; refused, that
/// takes the connection down (and with it the own mapping), and the range
/// is protected in place, or left as it was.
fn unmap_caller_range(refuse: Refuse) {
    let (v, srv) = Views::new(&format!("unmap-{refuse:?}"));
    let mut server = Some(serve(srv));
    // What the OS refused is told by the unmap, and by the connection
    // going down for it.
    let r = v.caller.unmap();
    match refuse.down_reason() {
        None => r.unwrap(),
        Some(why) => {
            let e = r.unwrap_err();
            assert!(
                matches!(&e.kind, wcfs_linux::ErrorKind::Core(k) if *k == why),
                "{e}"
            );
        }
    }
    assert_eq!(v.conn.down_reason(), refuse.down_reason());
    assert!(v.caller.is_faulting(), "unmapped");
    assert!(v.caller.read(0, &mut [0; 2]).is_err());
    // Never released: the range stays its owner's.
    let last = v.range + (BLKS as usize - 1) * bs();
    for a in [v.range, last] {
        assert_eq!(sys::map_perms(a).as_deref(), Some(refuse.perms()));
    }
    if refuse == Refuse::MmapAndMprotect {
        // Both refused: it still shows what it showed (the unmap's error
        // and the connection's down reason say the OS refused).
        assert_eq!(sys::probe_read(v.range), Ok(b'h'));
        assert_eq!(sys::probe_read(last), Ok(0));
    } else {
        assert_eq!(sys::probe_read(v.range), Err(libc::EFAULT));
        assert_eq!(sys::probe_read(last), Err(libc::EFAULT));
    }
    if refuse == Refuse::Nothing {
        assert!(!v.own.is_faulting(), "the own mapping lives on");
        assert_eq!(sys::probe_read(v.own.addr() as usize), Ok(b'h'));
        let mut buf = [0; 2];
        v.own.read(0, &mut buf).unwrap();
        assert_eq!(&buf, b"h0");
    } else {
        assert_ended(&v.own, refuse, "own");
        let lines = server.take().unwrap().join().unwrap();
        assert_eq!(lines.len(), 1, "bye: {lines:?}");
    }
    let own = v.own.addr() as usize;
    v.own.unmap().unwrap();
    assert_eq!(sys::map_perms(own), None, "the own mapping is released");
    v.conn.close().unwrap();
    if let Some(server) = server {
        let lines = server.join().unwrap();
        assert_eq!(lines.len(), 1, "bye: {lines:?}");
    }
}

#[test]
fn control_close_file_replaces_views_by_inaccessible_memory() {
    in_filtered_child(Refuse::Nothing, || close_file(Refuse::Nothing));
}

#[test]
fn mmap_refused_close_file_protects_views_in_place() {
    in_filtered_child(Refuse::Mmap, || close_file(Refuse::Mmap));
}

#[test]
fn both_refused_close_file_leaves_views_exposed() {
    in_filtered_child(Refuse::MmapAndMprotect, || {
        close_file(Refuse::MmapAndMprotect)
    });
}

#[test]
fn control_bad_input_replaces_views_by_inaccessible_memory() {
    in_filtered_child(Refuse::Nothing, || bad_input(Refuse::Nothing));
}

#[test]
fn mmap_refused_bad_input_protects_views_in_place() {
    in_filtered_child(Refuse::Mmap, || bad_input(Refuse::Mmap));
}

#[test]
fn both_refused_bad_input_leaves_views_exposed() {
    in_filtered_child(Refuse::MmapAndMprotect, || {
        bad_input(Refuse::MmapAndMprotect)
    });
}

#[test]
fn control_unmap_caller_range_replaces_it_by_inaccessible_memory() {
    in_filtered_child(Refuse::Nothing, || unmap_caller_range(Refuse::Nothing));
}

#[test]
fn mmap_refused_unmap_caller_range_protects_it_in_place() {
    in_filtered_child(Refuse::Mmap, || unmap_caller_range(Refuse::Mmap));
}

#[test]
fn both_refused_unmap_caller_range_leaves_it_mapped() {
    in_filtered_child(Refuse::MmapAndMprotect, || {
        unmap_caller_range(Refuse::MmapAndMprotect)
    });
}
