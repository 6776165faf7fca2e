//! [`ServerProcess`]: the test server in a process of its own (spawned
//! `wcfs-testserver` or forked), driven over the control protocol.

use std::io;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wcfs_core::wire::Tid;

use super::control::{commitx_line, serve};
use super::in_process::TestServer;
use super::teardown::{block_end_signals, detach, end_cleanly, is_mountpoint, remove_mountpoint};
use super::{temp_mountpoint, WcfsServer};
use crate::model::{Change, CommitError, LinkId, Model, ModelConfig};

/// The test server in a process of its own, driven over its stdin.
///
/// Clients that mmap head files must not share a process with the server:
/// a page fault on a FUSE file holds the process's `mmap_lock` while it
/// waits for the server, and a server thread that then grows its heap
/// (`mprotect`, `brk`, `mmap`) waits for that lock: a deadlock. The real
/// WCFS is a process of its own too. The handle keeps a replica of the
/// model's store (commits are deterministic) for the tests' oracles.
pub struct ServerProcess {
    proc_: Proc,
    io: Mutex<ControlPipes>,
    replica: Mutex<Model>,
    mountpoint: PathBuf,
}

/// The server process's control channel: commands in, answers out.
type ControlPipes = (
    Box<dyn io::Write + Send>,
    io::BufReader<Box<dyn io::Read + Send>>,
);

enum Proc {
    Spawned(std::process::Child),
    Forked(libc::pid_t),
}

impl Proc {
    /// Whether the process ended (reaping it).
    fn ended(&mut self) -> bool {
        match self {
            Proc::Spawned(c) => !matches!(c.try_wait(), Ok(None)),
            Proc::Forked(pid) => {
                let mut status = 0;
                // SAFETY: our own child; WNOHANG does not block.
                unsafe { libc::waitpid(*pid, &mut status, libc::WNOHANG) != 0 }
            }
        }
    }

    fn kill(&mut self) {
        match self {
            Proc::Spawned(c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Proc::Forked(pid) => {
                let mut status = 0;
                // SAFETY: our own child.
                unsafe {
                    libc::kill(*pid, libc::SIGKILL);
                    libc::waitpid(*pid, &mut status, 0);
                }
            }
        }
    }
}

impl ServerProcess {
    /// Starts `wcfs-testserver` (next to the running test binary, as cargo
    /// builds it for integration tests) on a new temporary directory.
    pub fn start_temp(cfg: ModelConfig) -> io::Result<ServerProcess> {
        let dir = temp_mountpoint("proc")?;
        let bin = super::built_binary("wcfs-testserver")?;
        let mut child = std::process::Command::new(bin)
            .arg(&dir)
            .args(["--blksize", &cfg.blksize.to_string()])
            .args(["--pintimeout", &cfg.pintimeout_secs.to_string()])
            .args(["--zurl", &cfg.zurl])
            .args(["--history", &cfg.history.to_string()])
            .arg("--rmdir")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdin: Box<dyn io::Write + Send> = Box::new(child.stdin.take().expect("piped"));
        let stdout: Box<dyn io::Read + Send> = Box::new(child.stdout.take().expect("piped"));
        Self::handshake(Proc::Spawned(child), stdin, stdout, cfg, dir)
    }

    /// Forks a child that mounts and serves (no binary needed). Call it
    /// before starting threads: the child keeps only the forking thread.
    /// The server ends, unmounting and removing its directory, when the
    /// handle is dropped, on SIGINT/SIGTERM/SIGHUP, on a panic, and when
    /// the thread that forked it ends (`PR_SET_PDEATHSIG`).
    pub fn fork_temp(cfg: ModelConfig) -> io::Result<ServerProcess> {
        let dir = temp_mountpoint("demo")?;
        let (to_child_r, to_child_w) = std::io::pipe()?;
        let (from_child_r, from_child_w) = std::io::pipe()?;
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the child only mounts, serves its pipe, and exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            drop((to_child_w, from_child_r));
            let set = block_end_signals();
            // The parent dying ends the server too (its end of the control
            // pipe closing does as well, unless a grandchild inherited it).
            // SAFETY: prctl with integer arguments; getppid has no preconditions.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if libc::getppid() != parent {
                    libc::raise(libc::SIGTERM);
                }
            }
            match TestServer::mount_model(&dir, Model::new(cfg), true) {
                Ok(srv) => {
                    end_cleanly(set, &dir, true);
                    serve(srv, io::BufReader::new(to_child_r), from_child_w)
                }
                Err(e) => {
                    let mut out = from_child_w;
                    let _ = writeln!(out, "error mount: {e}");
                    remove_mountpoint(&dir);
                }
            }
            // SAFETY: end the server child without the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        drop((to_child_r, from_child_w));
        Self::handshake(
            Proc::Forked(pid),
            Box::new(to_child_w),
            Box::new(from_child_r),
            cfg,
            dir,
        )
    }

    fn handshake(
        mut proc_: Proc,
        stdin: Box<dyn io::Write + Send>,
        stdout: Box<dyn io::Read + Send>,
        cfg: ModelConfig,
        dir: PathBuf,
    ) -> io::Result<ServerProcess> {
        use std::io::BufRead;
        let mut stdout = io::BufReader::new(stdout);
        let mut ready = String::new();
        stdout.read_line(&mut ready)?;
        if !ready.starts_with("ready ") {
            proc_.kill();
            return Err(io::Error::other(format!(
                "test server did not start: {ready:?}"
            )));
        }
        Ok(ServerProcess {
            proc_,
            io: Mutex::new((stdin, stdout)),
            replica: Mutex::new(Model::new(cfg)),
            mountpoint: dir,
        })
    }

    fn call(&self, cmd: &str) -> String {
        use std::io::{BufRead, Write};
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        writeln!(io.0, "{cmd}").expect("wcfs-testserver stdin");
        let mut l = String::new();
        io.1.read_line(&mut l).expect("wcfs-testserver stdout");
        let l = l.trim_end().to_string();
        assert!(l.starts_with("ok"), "wcfs-testserver: {cmd}: {l}");
        l
    }

    /// The server's process id.
    pub fn pid(&self) -> libc::pid_t {
        match &self.proc_ {
            Proc::Spawned(c) => c.id() as libc::pid_t,
            Proc::Forked(pid) => *pid,
        }
    }

    /// Asks the server to panic (to test how a server process ends).
    pub fn ask_panic(&self) {
        use std::io::Write;
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(io.0, "panic");
        let _ = io.0.flush();
    }
}

impl WcfsServer for ServerProcess {
    fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    fn head(&self) -> Tid {
        Tid::parse(self.call("head").trim_start_matches("ok ")).expect("tid")
    }

    /// Commits on the replica first, and sends the commit (`commitx`) only
    /// when the replica takes it: the server runs the same model, so it
    /// decides the same. Panics when the server's head differs from the
    /// replica's.
    fn try_commit_changes(&self, changes: &[Change]) -> Result<Tid, CommitError> {
        // The replica first: a reader may learn of the new head from the
        // server and ask the replica for it at once. An empty write goes
        // over the wire as one zero byte.
        let padded: Vec<Change> = changes
            .iter()
            .map(|c| match c {
                Change::Write(o, b, d) if d.is_empty() => Change::Write(*o, *b, vec![0]),
                c => c.clone(),
            })
            .collect();
        let at = self
            .replica
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .commit_changes(&padded)?;
        let got = self.call(&commitx_line(&padded));
        assert_eq!(got, format!("ok {at}"), "replica diverged from the server");
        Ok(at)
    }

    /// Answers from the replica of the store (data and sizes; no links).
    fn with_model<T>(&self, f: impl FnOnce(&Model) -> T) -> T {
        f(&self.replica.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn failures(&self) -> Vec<(LinkId, String)> {
        let l = self.call("failures");
        l.split('\t')
            .skip(1)
            .filter_map(|f| {
                f.split_once(' ')
                    .map(|(l, r)| (l.parse().unwrap_or(0), r.to_string()))
            })
            .collect()
    }

    fn pin_rtt_stats(&self) -> (u64, u64, u64) {
        let l = self.call("stats");
        let v: Vec<u64> = l
            .split(' ')
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        (v[0], v[1], v[2])
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        {
            use std::io::Write;
            let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(io.0, "quit");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.proc_.ended() {
            if Instant::now() > deadline {
                self.proc_.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // A server killed before it could unmount leaves its mount behind.
        if is_mountpoint(&self.mountpoint) {
            if let Err(e) = detach(&self.mountpoint) {
                eprintln!(
                    "wcfs test server: cannot unmount {}: {e}",
                    self.mountpoint.display()
                );
            }
        }
        remove_mountpoint(&self.mountpoint);
    }
}
