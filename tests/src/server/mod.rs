//! The FUSE test server: the stand-in for the real (Go, ZODB) WCFS server,
//! backed by the [`model`](crate::model).
//!
//! One room per job:
//! - `fs`: the filesystem itself (layout, reads, `head/watch`, pins);
//! - [`in_process`]: [`TestServer`], that filesystem mounted by threads of
//!   this process;
//! - [`control`]: the stdin control protocol of `wcfs-testserver` ([`serve`]);
//! - [`process`]: [`ServerProcess`], the server in a process of its own,
//!   driven over that protocol;
//! - [`teardown`]: how a server ends without leaving its mount behind
//!   (unmount, detach, signals, panics, the watchdog).
//!
//! Both servers offer the calls of [`WcfsServer`], which the end-to-end
//! tests, the benches and the demo use.

use std::path::Path;
use std::time::Duration;

use wcfs_core::wire::{Oid, Tid};

use crate::model::{Change, CommitError, LinkId, Model};

pub mod control;
mod fs;
pub mod in_process;
pub mod process;
pub mod teardown;

pub use control::serve;
pub use in_process::TestServer;
pub use process::ServerProcess;
pub use teardown::{block_end_signals, detach, end_cleanly, is_mountpoint, WATCHDOG};

/// Whether this machine can mount FUSE filesystems (`/dev/fuse` and `fusermount3`, or root).
pub fn fuse_available() -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("no /dev/fuse".into());
    }
    let root = rustix_uid_is_root();
    let fusermount = [
        "/bin/fusermount3",
        "/usr/bin/fusermount3",
        "/bin/fusermount",
        "/usr/bin/fusermount",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    if !root && !fusermount {
        return Err("neither root nor fusermount3".into());
    }
    Ok(())
}

fn rustix_uid_is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// Skips a test (prints why and returns) when FUSE is not usable here.
#[macro_export]
macro_rules! require_fuse {
    () => {
        if let Err(why) = $crate::server::fuse_available() {
            eprintln!("SKIPPED: FUSE is not available: {why}");
            return;
        }
    };
}

/// A binary of this package (`wcfs-testserver`, `wcfs-demo`) as cargo
/// builds it for integration tests and benches: next to, or above, the
/// running executable.
pub fn built_binary(name: &str) -> std::io::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name} not built next to {}", exe.display()),
            )
        })
}

/// A new directory `wcfs-<kind>-<pid>-<n>` under the temporary directory,
/// for a server to mount on and own (remove at its end).
pub fn temp_mountpoint(kind: &str) -> std::io::Result<std::path::PathBuf> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("wcfs-{kind}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// What a test sees of a WCFS test server, wherever it runs: in this
/// process ([`TestServer`]) or in its own ([`ServerProcess`]).
///
/// A commit returns the new head as the server sees it; `with_model`
/// answers from a store equal to the server's at every head it returned.
pub trait WcfsServer {
    /// Where the server is mounted.
    fn mountpoint(&self) -> &Path;

    /// The server's head.
    fn head(&self) -> Tid;

    /// Commits writes and deletions of last blocks at once and returns the
    /// new head, or the change the store refuses (nothing committed then).
    ///
    /// The commit waits until no read or watch setup waits for acks; the
    /// changed head blocks then leave the kernel page cache, and a deletion
    /// shrinks head (the kernel learns the new size at the next `stat`), as
    /// with the real server.
    fn try_commit_changes(&self, changes: &[Change]) -> Result<Tid, CommitError>;

    /// [`WcfsServer::try_commit_changes`] that panics when refused.
    fn commit_changes(&self, changes: &[Change]) -> Tid {
        self.try_commit_changes(changes).expect("commit")
    }

    /// Commits writes of whole blocks `(oid, blk, data)`; returns the new head.
    fn commit(&self, changes: &[(Oid, u64, Vec<u8>)]) -> Tid {
        let changes: Vec<Change> = changes.iter().map(Change::from).collect();
        self.commit_changes(&changes)
    }

    /// Deletes the blocks of `oid` from `blk` on (head shrinks); returns the new head.
    fn delete_from(&self, oid: Oid, blk: u64) -> Tid {
        self.commit_changes(&[Change::DeleteFrom(oid, blk)])
    }

    /// Runs `f` on the server's store, for the tests' oracles (data and
    /// sizes at every revision; a server in its own process answers from a
    /// replica, without its links).
    fn with_model<T>(&self, f: impl FnOnce(&Model) -> T) -> T;

    /// Clients that nak'ed or did not ack in time, as `(link, reason)`.
    fn failures(&self) -> Vec<(LinkId, String)>;

    /// Pin round trips (pin queued for a client -> its ack received) so
    /// far: `(count, median ns, p99 ns)`.
    fn pin_rtt_stats(&self) -> (u64, u64, u64);
}

/// `(count, median ns, p99 ns)` of round trips, as
/// [`WcfsServer::pin_rtt_stats`] reports them.
pub fn rtt_stats(mut rtts: Vec<Duration>) -> (u64, u64, u64) {
    rtts.sort();
    let q = |p: usize| {
        rtts.get((rtts.len() * p / 100).min(rtts.len().saturating_sub(1)))
            .map_or(0, |d| d.as_nanos() as u64)
    };
    (rtts.len() as u64, q(50), q(99))
}
