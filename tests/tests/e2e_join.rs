//! `Wcfs::join` end to end against `wcfs-testserver` in the real server's
//! command-line shape: autostart, `-autoexit`, one server for two processes
//! joining at once, the environment variables, a dead mount replaced, and
//! the refusal of a server mounted by another user.
//!
//! Without a test harness (`harness = false`): the refusal case forks a
//! server that becomes another user, and the concurrent joiners are this
//! binary re-executed.
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wcfs_linux::{mountpoint_under, Autostart, ErrorKind, JoinOptions, MountEntry, Wcfs};
use wcfs_testkit::model::{Model, ModelConfig};
use wcfs_testkit::server::{
    block_end_signals, built_binary, end_cleanly, fuse_available, is_mountpoint, TestServer,
};

const ROLE: &str = "WCFS_JOIN_ROLE";
const BASE: &str = "WCFS_JOIN_BASE";
const ZURL: &str = "WCFS_JOIN_ZURL";

fn testserver() -> PathBuf {
    built_binary("wcfs-testserver").unwrap()
}

/// A fresh directory of mountpoints, named so that `.ci/leaked-mounts`
/// knows whose it is.
fn base(n: u32) -> PathBuf {
    let b = std::env::temp_dir().join(format!("wcfs-join-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&b);
    b
}

fn opts(base: &Path, autostart: Autostart) -> JoinOptions {
    JoinOptions {
        autostart,
        server: Some(testserver()),
        options: vec!["--blksize".into(), "4096".into()],
        base: base.to_path_buf(),
        start_timeout: Duration::from_secs(20),
    }
}

/// Processes whose command line names `mnt`: the servers serving it.
fn servers_of(mnt: &Path) -> Vec<(u32, Vec<String>)> {
    let want = mnt.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = cmd
            .strip_suffix(&[0])
            .unwrap_or(&cmd)
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if argv.contains(&want) {
            found.push((pid, argv));
        }
    }
    found
}

fn mounts_at(mnt: &Path) -> usize {
    let want = mnt.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(MountEntry::parse)
        .filter(|e| e.mount_point == want)
        .count()
}

/// Waits up to 10 s for the server at `mnt` to be gone: no mount, no
/// directory, no process.
fn assert_gone(what: &str, mnt: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_mountpoint(mnt) || mnt.exists() || !servers_of(mnt).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{what}: server at {} still there (mounted: {}, servers: {:?})",
            mnt.display(),
            is_mountpoint(mnt),
            servers_of(mnt)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Autostart, the mount as the real server makes it, one `Wcfs` for every
/// spelling of the database, and `-autoexit` once the last client is gone.
fn autostart_shares_and_autoexits() {
    let b = base(1);
    let zurl = "neo://e2e@m2:2051,m1:2051?cert=/a.crt&key=/a.key&compress=true";
    let w = Wcfs::join_with(zurl, &opts(&b, Autostart::Yes)).expect("join with autostart");
    let mnt = mountpoint_under(&b.canonicalize().unwrap(), zurl).unwrap();
    assert_eq!(w.mountpoint(), mnt);
    let e = MountEntry::lookup(&mnt).unwrap().expect("mounted");
    assert_eq!((e.fstype.as_str(), e.source.as_str()), ("fuse.wcfs", zurl));
    let servers = servers_of(&mnt);
    assert_eq!(servers.len(), 1, "{servers:?}");
    let argv = &servers[0].1;
    assert_eq!(
        argv[1..],
        [
            "--blksize",
            "4096",
            "-autoexit",
            zurl,
            &*mnt.to_string_lossy()
        ],
        "{argv:?}"
    );
    // Other credentials and options, other master order: the same server.
    let w2 = Wcfs::join_with(
        "neos://e2e@m1:2051,m2:2051?ca=/b.ca",
        &opts(&b, Autostart::No),
    )
    .expect("join again");
    assert_eq!(format!("{w:?}"), format!("{w2:?}"));
    let c = w.connect(w.head_at().unwrap()).expect("connect");
    drop(w2);
    drop(w);
    // The connection keeps the server.
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        is_mountpoint(&mnt),
        "server left while a client was connected"
    );
    drop(c);
    assert_gone("-autoexit", &mnt);
    let _ = std::fs::remove_dir_all(&b);
}

/// An autostarted server that exits, or serves another database, fails
/// the join, and leaves nothing mounted.
fn autostart_failures() {
    let b = base(6);
    let zurl = "zeo://fail.example:1";
    let mut o = opts(&b, Autostart::Yes);
    o.options = vec!["--no-such-option".into()];
    let e = Wcfs::join_with(zurl, &o).unwrap_err();
    match &e.kind {
        ErrorKind::ServerExited { status, .. } => assert_eq!(status.code(), Some(2), "{e}"),
        _ => panic!("{e}"),
    }
    let mnt = mountpoint_under(&b.canonicalize().unwrap(), zurl).unwrap();
    assert!(
        e.to_string().contains(zurl) && e.to_string().contains(&*mnt.to_string_lossy()),
        "{e}"
    );
    o.options = vec!["--zurl".into(), "zeo://other.example:1".into()];
    let e = Wcfs::join_with(zurl, &o).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::ZurlMismatch { .. }), "{e}");
    assert!(e.to_string().contains("zeo://other.example:1"), "{e}");
    assert_gone("refused autostarted server", &mnt);
    let _ = std::fs::remove_dir_all(&b);
}

/// Re-executed: joins, connects, says `joined`, waits for a line on stdin.
fn joiner_role() {
    let base = PathBuf::from(std::env::var(BASE).unwrap());
    let zurl = std::env::var(ZURL).unwrap();
    let o = JoinOptions {
        autostart: Autostart::FromEnv,
        server: None, // $WCFS_SERVER
        options: Vec::new(),
        base,
        start_timeout: Duration::from_secs(20),
    };
    match Wcfs::join_with(&zurl, &o) {
        Ok(w) => {
            let c = w.connect(w.head_at().unwrap()).expect("connect");
            println!("joined {}", w.mountpoint().display());
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            drop((c, w));
        }
        Err(e) => {
            let kind = match e.kind {
                ErrorKind::NotMounted { .. } => "not-mounted",
                ErrorKind::NoServerExecutable => "no-server",
                ErrorKind::BadEnv { .. } => "bad-env",
                _ => "other",
            };
            println!("error {kind} {e}");
        }
    }
}

fn joiner(base: &Path, zurl: &str, env: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(ROLE, "joiner")
        .env(BASE, base)
        .env(ZURL, zurl)
        .env_remove(wcfs_linux::ENV_AUTOSTART)
        .env_remove(wcfs_linux::ENV_OPTIONS)
        .env_remove(wcfs_linux::ENV_SERVER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn joiner");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("joiner's answer");
    (child, line.trim_end().to_string())
}

fn release(mut child: Child) {
    let _ = writeln!(child.stdin.take().unwrap(), "exit");
    let st = child.wait().expect("joiner exit");
    assert!(st.success(), "joiner: {st}");
}

/// Two processes joining one database at once start one server.
fn two_processes_start_one_server() {
    let b = base(2);
    let server = testserver();
    let env = [(wcfs_linux::ENV_SERVER, server.to_str().unwrap())];
    let za = "neos://two@m1,m2?ca=/a&cert=/a&key=/a";
    let zb = "neo://two@m2,m1?key=/b";
    let (a, b_) = std::thread::scope(|s| {
        let ta = s.spawn(|| joiner(&b, za, &env));
        let tb = s.spawn(|| joiner(&b, zb, &env));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    let mnt = mountpoint_under(&b.canonicalize().unwrap(), za).unwrap();
    let want = format!("joined {}", mnt.display());
    assert_eq!(a.1, want);
    assert_eq!(b_.1, want);
    assert_eq!(
        mounts_at(&mnt),
        1,
        "two servers mounted at {}",
        mnt.display()
    );
    assert_eq!(servers_of(&mnt).len(), 1, "{:?}", servers_of(&mnt));
    release(a.0);
    assert!(
        is_mountpoint(&mnt),
        "the server left while the second client was there"
    );
    release(b_.0);
    assert_gone("two processes", &mnt);
    let _ = std::fs::remove_dir_all(&b);
}

/// `$WENDELIN_CORE_WCFS_AUTOSTART`, `$WENDELIN_CORE_WCFS_OPTIONS`, `$WCFS_SERVER`.
fn environment() {
    let b = base(3);
    let server = testserver();
    let server = server.to_str().unwrap();
    let zurl = "zeo://env.example:8100";
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("WENDELIN_CORE_WCFS_AUTOSTART", "no"),
                ("WCFS_SERVER", server),
            ],
            "error not-mounted",
        ),
        (&[], "error no-server"),
        (
            &[("WENDELIN_CORE_WCFS_AUTOSTART", "sometimes")],
            "error bad-env",
        ),
        (
            &[
                ("WENDELIN_CORE_WCFS_AUTOSTART", "yes"),
                ("WCFS_SERVER", server),
                ("WENDELIN_CORE_WCFS_OPTIONS", " --blksize  8192 "),
            ],
            "joined",
        ),
    ];
    for (env, want) in cases {
        let (child, got) = joiner(&b, zurl, env);
        assert!(got.starts_with(want), "{env:?}: {got}");
        if want == "joined" {
            let mnt = mountpoint_under(&b.canonicalize().unwrap(), zurl).unwrap();
            let servers = servers_of(&mnt);
            assert_eq!(servers.len(), 1, "{servers:?}");
            assert_eq!(servers[0].1[1..3], ["--blksize", "8192"], "{servers:?}");
            release(child);
            assert_gone("environment", &mnt);
        } else {
            let st = child.wait_with_output().expect("joiner");
            assert!(st.status.success());
        }
    }
    let _ = std::fs::remove_dir_all(&b);
}

/// A mount whose server died (`ENOTCONN`) is detached and replaced.
fn dead_mount_is_replaced() {
    let b = base(4);
    let zurl = "zeo://dead.example:1";
    Wcfs::join_under(&b, zurl).unwrap_err(); // makes the base directory
    let mnt = mountpoint_under(&b.canonicalize().unwrap(), zurl).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let mut srv = Command::new(testserver())
        .args([zurl, &*mnt.to_string_lossy()])
        .spawn()
        .expect("spawn server");
    // Killed once it answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(mnt.join(".wcfs/zurl"))
        .ok()
        .as_deref()
        != Some(zurl)
    {
        assert!(Instant::now() < deadline, "server did not answer");
        std::thread::sleep(Duration::from_millis(10));
    }
    srv.kill().unwrap(); // SIGKILL: nothing unmounts
    srv.wait().unwrap();
    assert!(is_mountpoint(&mnt));
    match Wcfs::join_under(&b, zurl) {
        Err(e) => assert!(e.to_string().contains("not connected"), "{e}"),
        Ok(w) => panic!("joined a dead mount: {w:?}"),
    }
    let w = Wcfs::join_with(zurl, &opts(&b, Autostart::Yes)).expect("join over a dead mount");
    assert_eq!(mounts_at(&mnt), 1);
    let c = w.connect(w.head_at().unwrap()).expect("connect");
    drop((c, w));
    assert_gone("dead mount replaced", &mnt);
    let _ = std::fs::remove_dir_all(&b);
}

/// Another user mounts a server of their own at our mountpoint first:
/// `join` refuses it, naming the mountpoint and the owner.
fn another_users_server_is_refused() {
    const NOBODY: u32 = 65534;
    let b = base(5);
    let zurl = "zeo://trust.example:1";
    Wcfs::join_under(&b, zurl).unwrap_err(); // makes the base directory (1777)
    let mnt = mountpoint_under(&b.canonicalize().unwrap(), zurl).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let (r, w) = std::io::pipe().unwrap();
    // SAFETY: the child only changes its real uid, mounts, and serves until killed.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        drop(r);
        let set = block_end_signals();
        let mut w = w;
        // The mount's owner (`user_id=`) is the mounter's real uid. /dev/fuse
        // is root's alone here (mode 0600), and fuser opens it before
        // trying fusermount3, so an unprivileged mount cannot be made;
        // instead the real uid becomes nobody's, the effective one stays
        // root: the kernel records the mount as nobody's, as it would had
        // nobody mounted it through fusermount3.
        // SAFETY: plain credential calls in the single-threaded child.
        let ok =
            unsafe { libc::setresgid(NOBODY, 0, 0) == 0 && libc::setresuid(NOBODY, 0, 0) == 0 };
        if !ok {
            let _ = writeln!(w, "error setuid: {}", std::io::Error::last_os_error());
            // SAFETY: ends the child without the parent's destructors.
            unsafe { libc::_exit(1) };
        }
        let cfg = ModelConfig {
            pintimeout_secs: 10.0,
            ..ModelConfig::new(zurl, 4096)
        };
        match TestServer::mount_model(&mnt, Model::new(cfg), false) {
            Ok(srv) => {
                end_cleanly(set, &mnt, false);
                let _ = writeln!(w, "ready");
                loop {
                    std::thread::park();
                    let _ = &srv;
                }
            }
            Err(e) => {
                let _ = writeln!(w, "error mount as uid {NOBODY}: {e}");
                // SAFETY: as above.
                unsafe { libc::_exit(1) };
            }
        }
    }
    drop(w);
    let mut line = String::new();
    std::io::BufReader::new(r).read_line(&mut line).unwrap();
    let end = |pid| {
        // SAFETY: our own child.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    };
    if line.trim_end() != "ready" {
        end(pid);
        let _ = std::fs::remove_dir_all(&b);
        panic!("cannot mount as another user here: {line}");
    }
    let e = MountEntry::lookup(&mnt).unwrap().expect("mounted");
    assert_eq!(e.user_id(), Some(NOBODY), "{e:?}");
    assert_eq!((e.fstype.as_str(), e.source.as_str()), ("fuse.wcfs", zurl));
    for autostart in [Autostart::No, Autostart::Yes] {
        let err = Wcfs::join_with(zurl, &opts(&b, autostart)).unwrap_err();
        assert!(
            matches!(err.kind, ErrorKind::Untrusted { owner: NOBODY, .. }),
            "{autostart:?}: {err}"
        );
        let s = err.to_string();
        assert!(
            s.contains(&*mnt.to_string_lossy()) && s.contains("uid 65534"),
            "{s}"
        );
    }
    assert_eq!(
        mounts_at(&mnt),
        1,
        "autostart mounted over the refused server"
    );
    end(pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_mountpoint(&mnt) {
        assert!(
            Instant::now() < deadline,
            "the other user's server did not unmount"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&b);
}

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("joiner") {
        return joiner_role();
    }
    if let Err(why) = fuse_available() {
        eprintln!("SKIPPED: FUSE is not available: {why}");
        return;
    }
    let mut cases: Vec<(&str, fn())> = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // First: it forks, best while this process has one thread.
        cases.push((
            "another_users_server_is_refused",
            another_users_server_is_refused,
        ));
    } else {
        eprintln!("SKIPPED another_users_server_is_refused: needs root to become another user");
    }
    cases.extend([
        (
            "autostart_shares_and_autoexits",
            autostart_shares_and_autoexits as fn(),
        ),
        (
            "two_processes_start_one_server",
            two_processes_start_one_server,
        ),
        ("environment", environment),
        ("dead_mount_is_replaced", dead_mount_is_replaced),
        ("autostart_failures", autostart_failures),
    ]);
    for (name, f) in cases {
        print!("test {name} ... ");
        std::io::stdout().flush().unwrap();
        f();
        println!("ok");
    }
}
