//! [`TestServer`]: the FUSE filesystem of `fs.rs` mounted and
//! served by threads of the calling process.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, Config, INodeNo, MountOption, Notifier};
use wcfs_core::wire::Tid;

use super::fs::{pin_timer, pump, stop, Fs, Node, Shared};
use super::teardown::{detach, remove_mountpoint, watchdog};
use super::{rtt_stats, temp_mountpoint, WcfsServer};
use crate::model::{Change, CommitError, LinkId, Model, ModelConfig};

/// A mounted test server. Unmounts on drop (also when a test panics).
pub struct TestServer {
    sh: Arc<Shared>,
    session: Option<BackgroundSession>,
    notifier: Notifier,
    mountpoint: PathBuf,
    temp: bool,
    timer: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Mounts a server of a fresh model at `mountpoint`.
    pub fn mount(mountpoint: &Path, cfg: ModelConfig) -> io::Result<TestServer> {
        Self::mount_model(mountpoint, Model::new(cfg), false)
    }

    /// Mounts on a new temporary directory (removed at unmount).
    pub fn start_temp(cfg: ModelConfig) -> io::Result<TestServer> {
        Self::mount_model(&temp_mountpoint("test")?, Model::new(cfg), true)
    }

    /// Mounts a server of `model` at `mountpoint`; `temp`: the server owns
    /// the directory and removes it at unmount.
    pub fn mount_model(mountpoint: &Path, model: Model, temp: bool) -> io::Result<TestServer> {
        let sh = Arc::new(Shared::new(model));
        // As the real server: type `fuse.wcfs`, source the zurl (`join`
        // checks both). `subtype=` as a kernel option reaches mount(2) as
        // well as fusermount3; fusermount3 splits its options at commas
        // unless escaped, mount(2) takes the source as is.
        let zurl = sh.lock().model.config().zurl.clone();
        let mut cfg = Config::default();
        cfg.mount_options = vec![
            // SAFETY: geteuid has no preconditions.
            MountOption::FSName(if unsafe { libc::geteuid() } == 0 {
                zurl
            } else {
                zurl.replace('\\', "\\\\").replace(',', "\\,")
            }),
            MountOption::CUSTOM("subtype=wcfs".into()),
        ];
        cfg.n_threads = Some(4);
        let session = fuser::spawn_mount(Fs { sh: sh.clone() }, mountpoint, &cfg)?;
        let notifier = session.notifier();
        let timer = {
            let sh = sh.clone();
            std::thread::spawn(move || pin_timer(&sh))
        };
        watchdog(sh.clone(), mountpoint);
        Ok(TestServer {
            sh,
            session: Some(session),
            notifier,
            mountpoint: mountpoint.to_path_buf(),
            temp,
            timer: Some(timer),
        })
    }

    /// Waits for `-autoexit`'s moment: a client came, and none has been
    /// left for `idle` (a client reconnecting at once keeps the server);
    /// or none came within `first` of the start.
    pub fn wait_autoexit(&self, idle: Duration, first: Duration) {
        let start = Instant::now();
        let mut idle_since: Option<Instant> = None;
        let mut st = self.sh.lock();
        loop {
            let now = Instant::now();
            if !st.had_client {
                if now.duration_since(start) >= first {
                    return;
                }
            } else if st.clients == 0 {
                let since = *idle_since.get_or_insert(now);
                if now.duration_since(since) >= idle {
                    return;
                }
            } else {
                idle_since = None;
            }
            st = self
                .sh
                .cv
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Unmounts (waking every blocked read first).
    pub fn unmount(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        stop(&self.sh);
        if let Some(s) = self.session.take() {
            // A plain unmount fails while a client still holds the mount
            // (EBUSY): detach it then, or it stays behind, dead, once this
            // process is gone.
            if let Err(busy) = s.umount_and_join() {
                if let Err(e) = detach(&self.mountpoint) {
                    eprintln!(
                        "wcfs test server: cannot unmount {}: {busy}; detach: {e}",
                        self.mountpoint.display()
                    );
                }
            }
        }
        if let Some(t) = self.timer.take() {
            let _ = t.join();
        }
        if self.temp {
            remove_mountpoint(&self.mountpoint);
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl WcfsServer for TestServer {
    fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    fn head(&self) -> Tid {
        self.sh.lock().model.head()
    }

    /// Drops the changed head blocks from the kernel page cache, and with
    /// them the inode's attributes (its size), once committed.
    fn try_commit_changes(&self, changes: &[Change]) -> Result<Tid, CommitError> {
        let mut st = self.sh.lock();
        st.committers += 1;
        while !st.model.can_commit() || st.reads_in_flight > 0 {
            st = self.sh.wait(st);
        }
        st.committers -= 1;
        let at = st.model.commit_changes(changes)?;
        pump(&self.sh, &mut st);
        let inval = std::mem::take(&mut st.invalidate);
        let inos: Vec<(u64, u64)> = inval
            .into_iter()
            .filter_map(|(oid, blk)| {
                st.nodes
                    .by_node
                    .get(&Node::HeadFile(oid))
                    .map(|&i| (i, blk))
            })
            .collect();
        self.sh.unlock(st);
        let bs = self.sh.blksize as i64;
        for (ino, blk) in inos {
            let _ = self.notifier.inval_inode(INodeNo(ino), blk as i64 * bs, bs);
        }
        Ok(at)
    }

    fn with_model<T>(&self, f: impl FnOnce(&Model) -> T) -> T {
        f(&self.sh.lock().model)
    }

    fn failures(&self) -> Vec<(LinkId, String)> {
        self.sh.lock().failures.clone()
    }

    fn pin_rtt_stats(&self) -> (u64, u64, u64) {
        rtt_stats(self.sh.lock().rtts.clone())
    }
}
