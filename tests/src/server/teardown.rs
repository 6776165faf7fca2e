//! How a test server ends without leaving its mount behind: unmount or
//! detach, remove the mountpoint it owns, end on a signal or a panic, and
//! the watchdog for a hung in-process mount.

use std::io;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fs::Shared;

/// Unmounts `mnt` at once, whatever its clients are doing: lazily, so the
/// kernel drops the filesystem when its last user goes. Not mounted there
/// (any more) is success.
pub fn detach(mnt: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(mnt.as_os_str().as_bytes())?;
    // SAFETY: umount2 on a NUL-terminated path; MNT_DETACH never waits for users.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
        // Not root: the setuid helper unmounts what this user mounted.
        Some(libc::EPERM) => {
            let st = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(mnt)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()?;
            if st.success() || !is_mountpoint(mnt) {
                Ok(())
            } else {
                Err(io::Error::other(format!("fusermount3 -u -z: {st}")))
            }
        }
        _ => Err(e),
    }
}

/// Whether `path` is a mount point in this process's mount table.
pub fn is_mountpoint(path: &Path) -> bool {
    matches!(wcfs_linux::MountEntry::lookup(path), Ok(Some(_)))
}

/// Removes a mountpoint directory the server was given to own; says so on
/// stderr when it cannot.
pub(super) fn remove_mountpoint(mnt: &Path) {
    match std::fs::remove_dir(mnt) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => eprintln!(
            "wcfs test server: cannot remove mountpoint {}: {e}",
            mnt.display()
        ),
    }
}

/// The signals that end a server process: SIGINT, SIGTERM, SIGHUP.
///
/// Blocks them in the calling thread and so in every thread it starts
/// afterwards: call it first thing in a server process, before any thread,
/// then [`end_cleanly`] once mounted.
pub fn block_end_signals() -> libc::sigset_t {
    // SAFETY: plain signal-set calls on a set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Makes every abrupt end of this server process leave no mount behind:
/// one of the signals of [`block_end_signals`] (`set`), or a panic on any
/// thread, unmounts `mnt` (detached: clients may still hold it), removes
/// it when `rmdir`, and exits the process (0 on a signal, 101 on a panic).
/// An orderly end (`quit`, end of input) goes through
/// [`TestServer::unmount`](super::TestServer::unmount).
pub fn end_cleanly(set: libc::sigset_t, mnt: &Path, rmdir: bool) {
    fn finish(mnt: &Path, rmdir: bool, code: i32) -> ! {
        if let Err(e) = detach(mnt) {
            eprintln!("wcfs test server: cannot unmount {}: {e}", mnt.display());
        }
        if rmdir {
            remove_mountpoint(mnt);
        }
        let _ = io::stdout().flush();
        // SAFETY: ends the process without running destructors or atexit
        // handlers (a forked server shares them with its parent).
        unsafe { libc::_exit(code) }
    }
    let m = mnt.to_path_buf();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        prev(info);
        finish(&m, rmdir, 101)
    }));
    let m = mnt.to_path_buf();
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: waits for one of the signals `set` holds, blocked in
        // every thread by `block_end_signals`.
        unsafe { libc::sigwait(&set, &mut sig) };
        finish(&m, rmdir, 0)
    });
}

/// How long a mount may live before the watchdog declares the test hung.
pub const WATCHDOG: Duration = Duration::from_secs(240);

/// A hang on a FUSE mount served by this very process never ends by
/// itself (threads wait in the kernel for answers nobody will send). Past
/// [`WATCHDOG`] abort the FUSE connection, say so, and exit.
pub(super) fn watchdog(sh: Arc<Shared>, mountpoint: &Path) {
    // The FUSE connection's number from the mount table, not from a stat of
    // the mountpoint: a server process must not wait on its own mount (a
    // signal ending it then leaves that thread waiting forever).
    let mnt = mountpoint.to_path_buf();
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut st = sh.lock();
        while !st.stopping {
            if start.elapsed() > WATCHDOG {
                eprintln!(
                    "watchdog: FUSE test server at {} hung for {WATCHDOG:?}: aborting",
                    mnt.display()
                );
                if let Ok(Some(e)) = wcfs_linux::MountEntry::lookup(&mnt) {
                    let minor = e.minor;
                    let _ = std::fs::write(format!("/sys/fs/fuse/connections/{minor}/abort"), "1");
                }
                if let Err(e) = detach(&mnt) {
                    eprintln!("watchdog: cannot unmount {}: {e}", mnt.display());
                }
                std::process::exit(101);
            }
            st = sh
                .cv
                .wait_timeout(st, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    });
}
