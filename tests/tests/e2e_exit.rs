//! A process that exits with a connection still open ends at once: the exit
//! handler says `bye`, and the server answers the pin thread's pending read
//! of `head/watch` with EOF (without it, the kernel waits for that answer
//! and the exit hangs as long as the server stays silent).
mod e2e_common;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e_common::*;
use wcfs_linux::Wcfs;
use wcfs_testkit::require_fuse;

const ROLE: &str = "WCFS_E2E_EXIT_ROLE";
const MNT: &str = "WCFS_E2E_EXIT_MNT";
const AT: &str = "WCFS_E2E_EXIT_AT";
/// How long a child may take to exit (it takes milliseconds).
const EXIT_BOUND: Duration = Duration::from_secs(15);

/// The child: a connection with a pinned mapping, then exit without closing.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return; // run as a test of its own: nothing to do
    };
    let mnt = std::env::var(MNT).unwrap();
    let at: u64 = u64::from_str_radix(&std::env::var(AT).unwrap(), 16).unwrap();
    let w = Wcfs::open(&mnt).unwrap();
    let conn = w.connect(wcfs_linux::Tid(at)).unwrap();
    let fh = conn.open(F).unwrap();
    let m = fh.mmap(0, 2).unwrap();
    assert_eq!(tags(&m, 0..2), ["a1", "b1"]);
    assert_eq!(fh.pinned(), [(0, wcfs_linux::Tid(at))]);
    println!("ready");
    match role.as_str() {
        "process-exit" => std::process::exit(7),
        // SAFETY: ends the process as C's exit does, running exit handlers.
        "libc-exit" => unsafe { libc::exit(7) },
        // Another thread than the connection's maker exits.
        "exit-from-another-thread" => {
            std::thread::spawn(|| std::process::exit(7));
            loop {
                std::thread::park();
            }
        }
        r => panic!("unknown role {r}"),
    }
}

fn exits_promptly(role: &str) {
    require_fuse!();
    let srv = server();
    let at1 = srv.commit(&[change(F, 0, "a1"), change(F, 1, "b1")]);
    srv.commit(&[change(F, 0, "a2")]);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(MNT, srv.mountpoint())
        .env(AT, at1.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("ready") {
        line.clear();
    }
    assert!(
        line.contains("ready"),
        "{role}: the child did not get ready"
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > EXIT_BOUND {
            // Stuck in the kernel, it ends once the server unmounts (drop).
            let _ = child.kill();
            panic!("{role}: the child did not exit within {EXIT_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(7), "{role}: {status}");
    eprintln!("{role}: exited {:?} after ready", t0.elapsed());
    // The server saw a goodbye, not a client that stopped answering: a
    // later head read that needs pins for old watchers fails nobody.
    srv.commit(&[change(F, 1, "b3")]);
    let head = std::fs::read(srv.mountpoint().join(format!("head/bigfile/{F}"))).unwrap();
    assert_eq!(&head[bs() as usize..bs() as usize + 2], b"b3");
    assert!(srv.failures().is_empty(), "{role}: {:?}", srv.failures());
}

#[test]
fn process_exit_with_a_conn_open() {
    exits_promptly("process-exit");
}

#[test]
fn libc_exit_with_a_conn_open() {
    exits_promptly("libc-exit");
}

#[test]
fn exit_from_another_thread() {
    exits_promptly("exit-from-another-thread");
}
