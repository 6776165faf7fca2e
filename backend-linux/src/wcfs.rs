//! A mounted WCFS as every handle of it shares it: its mountpoint, the
//! descriptor of the mountpoint in use (`mountdir`), `/dev/zero` for zero
//! blocks, and reads of `head/at`.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wcfs_core::wire::Tid;

use crate::mountdir::MountDir;
use crate::sys;

pub(crate) struct WcfsInner {
    pub(crate) mountpoint: PathBuf,
    /// Held by live connections and watch links only (see `mountdir`).
    pub(crate) mount: MountDir,
    pub(crate) zeros: sys::Zeros,
    next_conn: AtomicU64,
}

impl WcfsInner {
    pub(crate) fn new(mountpoint: PathBuf, mount: MountDir, zeros: sys::Zeros) -> WcfsInner {
        WcfsInner {
            mountpoint,
            mount,
            zeros,
            next_conn: AtomicU64::new(1),
        }
    }

    /// A number for a new connection (`conn<N>`), never reused.
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn head_at(&self) -> std::io::Result<Tid> {
        self.head_at_keep().map(|(t, _)| t)
    }

    /// `head/at`, and its file still open (see `sys::Mount::read_tid_text`).
    fn head_at_keep(&self) -> std::io::Result<(Tid, OwnedFd)> {
        let mut buf = [0u8; 64];
        let (n, fd) = self.mount.get()?.read_tid_text("head/at", &mut buf)?;
        let s = std::str::from_utf8(&buf[..n]).unwrap_or("").trim_end();
        let head = Tid::parse(s).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("head/at {s:?}: {e}"),
            )
        })?;
        Ok((head, fd))
    }

    /// Waits until `head/at >= at`; the last `head/at` file read is left
    /// open in `last` for the caller to close off its path.
    pub(crate) fn wait_head_at(&self, at: Tid, last: &mut Option<OwnedFd>) -> std::io::Result<Tid> {
        let mut delay = Duration::from_micros(100);
        loop {
            let (head, fd) = self.head_at_keep()?;
            *last = Some(fd);
            if head >= at {
                return Ok(head);
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(20));
        }
    }
}
