//! Shared by the end-to-end tests: a server, data helpers, fault probes.
#![allow(dead_code)]

use wcfs_core::wire::{Oid, Tid};
use wcfs_linux::{sys, Mapping};
use wcfs_testkit::model::ModelConfig;
use wcfs_testkit::server::ServerProcess;
pub use wcfs_testkit::server::WcfsServer;

pub const F: Oid = Oid(1);
pub const G: Oid = Oid(2);

pub fn bs() -> u64 {
    sys::page_size() as u64
}

pub fn cfg() -> ModelConfig {
    ModelConfig {
        pintimeout_secs: 10.0,
        ..ModelConfig::new("test://e2e", bs())
    }
}

/// The server in a process of its own (see `ServerProcess` for why); the
/// tests see it through [`WcfsServer`] only.
pub fn server() -> impl WcfsServer {
    ServerProcess::start_temp(cfg()).expect("start the test server")
}

pub fn change(oid: Oid, blk: u64, tag: &str) -> (Oid, u64, Vec<u8>) {
    (oid, blk, tag.as_bytes().to_vec())
}

/// Commits blocks 0..4 of `F` tagged "a0".."a3"; returns the revision.
pub fn four_blocks(srv: &impl WcfsServer) -> Tid {
    srv.commit(&[
        change(F, 0, "a0"),
        change(F, 1, "a1"),
        change(F, 2, "a2"),
        change(F, 3, "a3"),
    ])
}

/// The tag at the start of block `blk` of a mapping ("" for zeros).
pub fn tag(m: &Mapping, blk: u64) -> String {
    let mut buf = [0u8; 8];
    m.read(((blk - m.blk_start()) * bs()) as usize, &mut buf)
        .unwrap_or_else(|e| panic!("read #{blk}: {e}"));
    String::from_utf8_lossy(&buf)
        .trim_end_matches('\0')
        .to_string()
}

pub fn tags(m: &Mapping, blks: std::ops::Range<u64>) -> Vec<String> {
    blks.map(|b| tag(m, b)).collect()
}

/// Whether touching block `blk` of the mapping faults (probed in a child).
pub fn faults(m: &Mapping, blk: u64) -> bool {
    sys::probe_read(m.addr() as usize + ((blk - m.blk_start()) * bs()) as usize).is_err()
}

pub fn pinned(v: Vec<(u64, Tid)>) -> Vec<(u64, Tid)> {
    v
}

/// A forked child process running a check (see [`fork_child`]).
#[must_use = "wait for the child"]
pub struct Child(libc::pid_t);

/// Forks; the child runs `check` and exits 0 if it holds, 1 if not (its
/// reason on stderr), 2 if it panicked (a panic must not unwind into the
/// child's copy of the test harness, whose thread would end with status 0).
///
/// The child must do only what is sound after fork in a threaded process:
/// the client's handles are (fork handlers), the test harness's are not.
pub fn fork_child(check: impl FnOnce() -> Result<(), String>) -> Child {
    // SAFETY: the child runs `check` (see above) and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                eprintln!("child: {e}");
                1
            }
            Err(_) => 2,
        };
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    Child(pid)
}

impl Child {
    /// Waits for the child; panics unless its check held.
    pub fn wait_ok(self) {
        let mut status = 0;
        // SAFETY: our own child, waited for once.
        assert_eq!(unsafe { libc::waitpid(self.0, &mut status, 0) }, self.0);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status:#x}"
        );
    }
}

/// Forks, runs `check` in the child, and waits for it to hold.
pub fn in_child(check: impl FnOnce() -> Result<(), String>) {
    fork_child(check).wait_ok();
}
