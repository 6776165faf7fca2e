//! Every way a test server ends leaves the mount table and `/tmp` as it
//! found them: the demo binary run twice, a forked server quit while its
//! client still holds the mount, SIGTERM/SIGINT, a panic in the server, its
//! parent killed, and the `wcfs-testserver` binary on SIGTERM.
//!
//! Without a test harness (`harness = false`): `ServerProcess::fork_temp`
//! wants a process with one thread, and the parent-dies case re-executes
//! this binary as that parent.
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wcfs_linux::Wcfs;
use wcfs_testkit::model::ModelConfig;
use wcfs_testkit::server::{
    built_binary, fuse_available, is_mountpoint, ServerProcess, WcfsServer,
};

const ROLE: &str = "WCFS_HYGIENE_ROLE";

fn cfg() -> ModelConfig {
    ModelConfig {
        pintimeout_secs: 10.0,
        ..ModelConfig::new("test://hygiene", 4096)
    }
}

fn bin(name: &str) -> PathBuf {
    built_binary(name).unwrap()
}

/// Waits up to 10 s for `mnt` to leave the mount table and the file system.
fn assert_gone(what: &str, mnt: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_mountpoint(mnt) || mnt.exists() {
        assert!(
            Instant::now() < deadline,
            "{what}: {} left behind (mounted: {})",
            mnt.display(),
            is_mountpoint(mnt)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn started(what: &str, srv: &ServerProcess) -> PathBuf {
    let mnt = srv.mountpoint().to_path_buf();
    assert!(is_mountpoint(&mnt), "{what}: {} not mounted", mnt.display());
    mnt
}

fn demo_twice() {
    for run in 0..2 {
        let out = Command::new(bin("wcfs-demo"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run wcfs-demo");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "wcfs-demo run {run}: {}\n{text}",
            out.status
        );
        let mnt = text
            .lines()
            .find_map(|l| l.strip_prefix("WCFS test server mounted at "))
            .unwrap_or_else(|| panic!("wcfs-demo printed no mountpoint:\n{text}"));
        assert!(text.contains("unmounted;"), "{text}");
        // Gone at once: the demo waits for its server to end.
        assert!(
            !is_mountpoint(Path::new(mnt)),
            "demo run {run}: {mnt} still mounted"
        );
        assert!(
            !Path::new(mnt).exists(),
            "demo run {run}: {mnt} left in /tmp"
        );
    }
}

/// The demo's bug: the client still holds the mount when the server quits.
fn quit_while_client_holds_mount() {
    let srv = ServerProcess::fork_temp(cfg()).expect("fork server");
    let mnt = started("busy quit", &srv);
    let w = Wcfs::open(&mnt).expect("open mount");
    let c = w.connect(w.head_at().expect("head")).expect("connect");
    drop(srv);
    assert_gone("quit while busy", &mnt);
    drop((c, w));
}

fn signal(sig: i32, name: &str) {
    let srv = ServerProcess::fork_temp(cfg()).expect("fork server");
    let mnt = started(name, &srv);
    let w = Wcfs::open(&mnt).expect("open mount");
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(srv.pid(), sig) }, 0);
    assert_gone(name, &mnt);
    drop((srv, w));
}

fn panic_in_server() {
    let srv = ServerProcess::fork_temp(cfg()).expect("fork server");
    let mnt = started("panic", &srv);
    eprintln!("(a panic message from the test server follows: expected)");
    srv.ask_panic();
    assert_gone("panic in the server", &mnt);
    drop(srv);
}

/// Re-executed as the parent: forks a server, says where, waits to be killed.
fn parent_role() {
    let srv = ServerProcess::fork_temp(cfg()).expect("fork server");
    println!("{}", srv.mountpoint().display());
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn parent_killed() {
    let mut parent = Command::new(std::env::current_exe().expect("exe"))
        .env(ROLE, "parent")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn parent");
    let mut line = String::new();
    std::io::BufReader::new(parent.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("parent's mountpoint");
    let mnt = PathBuf::from(line.trim_end());
    assert!(
        is_mountpoint(&mnt),
        "parent role: {} not mounted",
        mnt.display()
    );
    parent.kill().expect("kill parent");
    parent.wait().expect("reap parent");
    assert_gone("parent killed", &mnt);
}

fn testserver_binary_sigterm() {
    let srv = ServerProcess::start_temp(cfg()).expect("start wcfs-testserver");
    let mnt = started("wcfs-testserver", &srv);
    let w = Wcfs::open(&mnt).expect("open mount");
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(srv.pid(), libc::SIGTERM) }, 0);
    // Not `drop(srv)` first: that would remove the directory for the server.
    assert_gone("wcfs-testserver SIGTERM", &mnt);
    drop((srv, w));
}

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("parent") {
        return parent_role();
    }
    if let Err(why) = fuse_available() {
        eprintln!("SKIPPED: FUSE is not available: {why}");
        return;
    }
    // Forking cases first, while this process has one thread.
    let cases: [(&str, fn()); 7] = [
        (
            "quit_while_client_holds_mount",
            quit_while_client_holds_mount,
        ),
        ("sigterm", || signal(libc::SIGTERM, "SIGTERM")),
        ("sigint", || signal(libc::SIGINT, "SIGINT")),
        ("panic_in_server", panic_in_server),
        ("parent_killed", parent_killed),
        ("testserver_binary_sigterm", testserver_binary_sigterm),
        ("demo_twice", demo_twice),
    ];
    for (name, f) in cases {
        print!("test {name} ... ");
        // Flushed: a forked server would print what is left in the buffer.
        std::io::Write::flush(&mut std::io::stdout()).expect("flush");
        f();
        println!("ok");
    }
}
