//! The FUSE test server: the stand-in for the real (Go, ZODB) WCFS server,
//! backed by the [`model`](crate::model).
//!
//! One room per job:
//! - [`fs`]: the filesystem itself (layout, reads, `head/watch`, pins);
//! - [`in_process`]: [`TestServer`], that filesystem mounted by threads of
//!   this process;
//! - [`control`]: the stdin control protocol of `wcfs-testserver` ([`serve`]);
//! - [`process`]: [`ServerProcess`], the server in a process of its own,
//!   driven over that protocol;
//! - [`teardown`]: how a server ends without leaving its mount behind
//!   (unmount, detach, signals, panics, the watchdog).

use std::path::Path;

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
