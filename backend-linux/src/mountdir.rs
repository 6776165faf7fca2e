//! The mountpoint's descriptor, held only while something uses it.
//!
//! Every open of a file of the mount is relative to one `O_PATH`
//! descriptor of the mountpoint (`sys::Mount`), so that the files of a
//! connection stay under the mount it started on. Any descriptor inside
//! the mount keeps it busy (a plain `umount` fails with `EBUSY`), so the
//! descriptor is shared by whatever is live and let go of with the last of
//! them: each connection holds it until its link ends (`Shared::mount`),
//! each watch link until it is closed; a `Wcfs` holds none of its own, and
//! a call of it with nothing live opens the mountpoint for that call only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use rustix::io;

use crate::sys;

/// The mountpoint path and the descriptor of it in use, if any.
pub(crate) struct MountDir {
    path: PathBuf,
    /// Upgradable while a connection or watch link holds the descriptor.
    live: Mutex<Weak<sys::Mount>>,
}

impl MountDir {
    pub(crate) fn new(path: &Path) -> MountDir {
        MountDir {
            path: path.to_path_buf(),
            live: Mutex::new(Weak::new()),
        }
    }

    /// The descriptor in use, or a new one (shared from now on until its
    /// last holder lets go).
    pub(crate) fn get(&self) -> io::Result<Arc<sys::Mount>> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = live.upgrade() {
            return Ok(m);
        }
        let m = Arc::new(sys::Mount::open(&self.path)?);
        *live = Arc::downgrade(&m);
        Ok(m)
    }
}
