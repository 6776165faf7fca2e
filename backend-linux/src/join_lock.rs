//! The per-database lock of [`Wcfs::join`](crate::Wcfs::join): an exclusive
//! `flock` of `<base>/<sha1 hex>.lock`, so that processes joining one
//! database at once start one server, and that leaves no file behind.
//!
//! Invariant: the file at the path is unlinked only by a holder of its
//! lock, and every holder has checked, after acquiring, that the inode it
//! locked is the one at the path. So whoever holds the lock of the inode
//! at the path is alone: a waiter woken on an inode already unlinked (or
//! replaced) sees that the path names another inode, or none, and starts
//! over on what the path names now.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

/// The lock, held while the value lives; dropping it unlinks the file
/// (when we may: in another user's lock file we only wait) and unlocks.
pub(crate) struct JoinLock {
    file: File,
    path: PathBuf,
}

impl JoinLock {
    /// Takes the lock of `path`, creating the file. `None` when the file
    /// cannot be opened (another user's, unreadable) or locked: then the
    /// join goes on unlocked, as it would without this guard.
    pub(crate) fn acquire(path: &Path) -> Option<JoinLock> {
        loop {
            let file = open(path)?;
            loop {
                match rustix::fs::flock(&file, FlockOperation::LockExclusive) {
                    Ok(()) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => return None,
                }
            }
            if same_inode(&file, path) {
                return Some(JoinLock {
                    file,
                    path: path.to_path_buf(),
                });
            }
            // The holder before us unlinked it (or someone put another
            // file there): this lock guards nothing; start over.
        }
    }
}

impl Drop for JoinLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock (see the module doc); a
        // failure (another user's file in a sticky directory) leaves one
        // file per database there, as many as there are databases.
        if same_inode(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
        // Closing `file` unlocks.
    }
}

fn open(path: &Path) -> Option<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .or_else(|_| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
        })
        .ok()
}

/// Whether `path` (not followed if a symlink) names the inode open in `file`.
fn same_inode(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wcfs-join-lock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        d
    }

    #[test]
    fn the_last_holder_leaves_no_file() {
        let d = scratch("last");
        let p = d.join("x.lock");
        let l = JoinLock::acquire(&p).expect("lock");
        assert!(p.exists());
        drop(l);
        assert!(!p.exists(), "lock file left behind");
        std::fs::remove_dir(&d).unwrap();
    }

    /// Many threads (each its own open file description, as processes
    /// are) take the lock at once, over and over: never two inside, and
    /// nothing left after the last.
    #[test]
    fn exclusive_under_contention_and_nothing_left() {
        let d = scratch("contention");
        let p = Arc::new(d.join("x.lock"));
        let inside = Arc::new(AtomicUsize::new(0));
        let entries = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (p, inside, entries) = (p.clone(), inside.clone(), entries.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let l = JoinLock::acquire(&p).expect("lock");
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        entries.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(l);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(entries.load(Ordering::Relaxed), 800);
        assert!(!p.exists(), "lock file left behind");
        std::fs::remove_dir(&d).unwrap();
    }

    #[test]
    fn a_file_we_cannot_open_means_no_lock() {
        let d = scratch("missing-dir");
        let p = d.join("no/such/dir/x.lock");
        assert!(JoinLock::acquire(&p).is_none());
        std::fs::remove_dir(&d).unwrap();
    }
}
