//! `Wcfs::join`: the WCFS server of a database, found or started where
//! wendelin.core puts it.
//!
//! * Where: `/dev/shm/wcfs/<sha1 hex of the normalized zurl>`
//!   ([`mountpoint_for`]; normalization is [`wcfs_core::zurl::normalize`]).
//!   `/dev/shm/wcfs` is created with mode 1777 when missing.
//! * What is accepted there: a mount table entry (`/proc/self/mountinfo`)
//!   of type `fuse.wcfs`, mounted by root or by us (`user_id=`: the
//!   directory is world-writable, another user could mount a server of
//!   their own there first), whose source and `.wcfs/zurl` name the same
//!   database (compared normalized). [`check_mount`] decides.
//! * Autostart, when nothing is mounted: `<server> [options] -autoexit <zurl>
//!   <mountpoint>`, then wait until the mount answers, failing with the
//!   server's exit status if it exits first. A dead mount (its server gone:
//!   `ENOTCONN`) is detached first. Whether to start:
//!   [`JoinOptions::autostart`], else `$WENDELIN_CORE_WCFS_AUTOSTART`
//!   (`yes`, the default, or `no`); the server: [`JoinOptions::server`], else
//!   `$WCFS_SERVER`; its options: `$WENDELIN_CORE_WCFS_OPTIONS` (split on
//!   white space), then [`JoinOptions::options`].
//! * One server per database: the check and the start run under an
//!   exclusive `flock` of `<base>/<sha1 hex>.lock`, so processes joining the
//!   same database at once start one server; the last holder unlinks it
//!   ([`JoinLock`]); within a process, one `Wcfs` per mountpoint is shared.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use wcfs_core::zurl;

use crate::error::{Context, Error, ErrorKind};
use crate::handles::Wcfs;
use crate::join_lock::JoinLock;
use crate::wcfs::WcfsInner;

/// Where wendelin.core mounts WCFS servers.
pub const WCFS_BASE: &str = "/dev/shm/wcfs";

/// `$WENDELIN_CORE_WCFS_AUTOSTART`: `yes` (default) or `no`.
pub const ENV_AUTOSTART: &str = "WENDELIN_CORE_WCFS_AUTOSTART";
/// `$WENDELIN_CORE_WCFS_OPTIONS`: options for an autostarted server.
pub const ENV_OPTIONS: &str = "WENDELIN_CORE_WCFS_OPTIONS";
/// `$WCFS_SERVER`: the wcfs executable to autostart.
pub const ENV_SERVER: &str = "WCFS_SERVER";

/// The mountpoint of the WCFS server of `zurl`:
/// `/dev/shm/wcfs/<sha1 hex of the normalized zurl>`.
pub fn mountpoint_for(zurl: &str) -> Result<PathBuf, zurl::ZurlError> {
    mountpoint_under(Path::new(WCFS_BASE), zurl)
}

/// [`mountpoint_for`] with another directory of mountpoints.
pub fn mountpoint_under(base: &Path, zurl: &str) -> Result<PathBuf, zurl::ZurlError> {
    let norm = zurl::normalize(zurl)?;
    Ok(base.join(sha1_smol::Sha1::from(norm).digest().to_string()))
}

/// Whether `join` starts a server when none is mounted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Autostart {
    /// As `$WENDELIN_CORE_WCFS_AUTOSTART` says (`yes` when unset).
    #[default]
    FromEnv,
    /// Start a server when none is mounted.
    Yes,
    /// Fail with `NotMounted` when none is mounted.
    No,
}

/// How [`Wcfs::join_with`] finds or starts the server.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// Whether to start a server when none is mounted.
    pub autostart: Autostart,
    /// The wcfs executable to autostart; `None`: `$WCFS_SERVER`.
    pub server: Option<PathBuf>,
    /// Options for an autostarted server, after `$WENDELIN_CORE_WCFS_OPTIONS`.
    pub options: Vec<String>,
    /// The directory of mountpoints (`/dev/shm/wcfs`; others for tests).
    pub base: PathBuf,
    /// How long an autostarted server has to answer.
    pub start_timeout: Duration,
}

impl Default for JoinOptions {
    fn default() -> JoinOptions {
        JoinOptions {
            autostart: Autostart::FromEnv,
            server: None,
            options: Vec::new(),
            base: PathBuf::from(WCFS_BASE),
            start_timeout: Duration::from_secs(30),
        }
    }
}

/// `Wcfs` given out by `join`, by mountpoint: one per server in a process.
static JOINED: Mutex<Vec<(PathBuf, Weak<WcfsInner>)>> = Mutex::new(Vec::new());

impl Wcfs {
    /// The server of database `zurl`, where wendelin.core mounts it
    /// (`/dev/shm/wcfs/<sha1 hex of the normalized zurl>`), started if
    /// none is mounted and the environment allows it (see
    /// [`JoinOptions`]). The same `Wcfs` for the same database within a
    /// process.
    pub fn join(zurl: &str) -> Result<Wcfs, Error> {
        Self::join_with(zurl, &JoinOptions::default())
    }

    /// [`Wcfs::join`] with another directory of mountpoints and no
    /// autostart (for tests).
    pub fn join_under(base: &Path, zurl: &str) -> Result<Wcfs, Error> {
        Self::join_with(
            zurl,
            &JoinOptions {
                autostart: Autostart::No,
                base: base.to_path_buf(),
                ..JoinOptions::default()
            },
        )
    }

    /// [`Wcfs::join`] as `opts` say.
    pub fn join_with(zurl: &str, opts: &JoinOptions) -> Result<Wcfs, Error> {
        let ctx0 = || Context::join(&opts.base, zurl);
        let norm = zurl::normalize(zurl).map_err(|e| Error {
            context: ctx0(),
            kind: ErrorKind::BadZurl(e),
        })?;
        let hex = sha1_smol::Sha1::from(&norm).digest().to_string();
        make_base(&opts.base)
            .map_err(|e| Error::io(ctx0(), "create the mountpoints' directory", e))?;
        let base = opts
            .base
            .canonicalize()
            .map_err(|e| Error::io(ctx0(), "resolve the mountpoints' directory", e))?;
        let mnt = base.join(&hex);
        let ctx = || Context::join(&mnt, zurl);

        let mut joined = JOINED.lock().unwrap_or_else(|e| e.into_inner());
        joined.retain(|(_, w)| w.strong_count() > 0);
        if let Some(inner) = joined
            .iter()
            .find(|(m, _)| *m == mnt)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(Wcfs { inner });
        }

        let _lock = JoinLock::acquire(&base.join(format!("{hex}.lock")));
        let w = match attach(&mnt, zurl, &norm)? {
            Attach::Joined(w) => w,
            found => {
                let start = match opts.autostart {
                    Autostart::Yes => true,
                    Autostart::No => false,
                    Autostart::FromEnv => autostart_env(
                        std::env::var(ENV_AUTOSTART).ok().as_deref(),
                    )
                    .map_err(|value| Error {
                        context: ctx(),
                        kind: ErrorKind::BadEnv {
                            var: ENV_AUTOSTART,
                            value,
                        },
                    })?,
                };
                if !start {
                    return Err(match found {
                        Attach::Dead => Error::io(
                            ctx(),
                            "read .wcfs/zurl",
                            io::Error::from_raw_os_error(libc::ENOTCONN),
                        ),
                        _ => Error::not_mounted(&mnt, zurl),
                    });
                }
                let server = opts
                    .server
                    .clone()
                    .or_else(|| std::env::var_os(ENV_SERVER).map(PathBuf::from))
                    .filter(|s| !s.as_os_str().is_empty())
                    .ok_or_else(|| Error {
                        context: ctx(),
                        kind: ErrorKind::NoServerExecutable,
                    })?;
                if matches!(found, Attach::Dead) {
                    detach(&mnt).map_err(|e| Error::io(ctx(), "unmount the dead mount", e))?;
                }
                let mut options = options_env(std::env::var(ENV_OPTIONS).ok().as_deref());
                options.extend(opts.options.iter().cloned());
                start_server(&server, &options, &mnt, zurl, &norm, opts.start_timeout)?
            }
        };
        joined.push((mnt, Arc::downgrade(&w.inner)));
        Ok(w)
    }
}

/// What the mountpoint holds.
enum Attach {
    Joined(Wcfs),
    /// Nothing mounted.
    Absent,
    /// A WCFS of ours whose server is gone (`ENOTCONN`).
    Dead,
}

/// Joins the server mounted at `mnt` if it passes [`check_mount`] and its
/// `.wcfs/zurl` names the database.
fn attach(mnt: &Path, zurl: &str, norm: &str) -> Result<Attach, Error> {
    let ctx = || Context::join(mnt, zurl);
    let Some(entry) =
        MountEntry::lookup(mnt).map_err(|e| Error::io(ctx(), "read /proc/self/mountinfo", e))?
    else {
        return Ok(Attach::Absent);
    };
    check_mount(&entry, norm, rustix::process::geteuid().as_raw()).map_err(|kind| Error {
        context: ctx(),
        kind,
    })?;
    let w = Wcfs::open(mnt).map_err(|e| Error {
        context: ctx(),
        kind: e.kind,
    })?;
    let mut buf = [0u8; 4096];
    let n = match (w.inner.mount.get()).and_then(|m| m.read_text(".wcfs/zurl", &mut buf)) {
        Ok(n) => n,
        Err(e) if e == rustix::io::Errno::NOTCONN => return Ok(Attach::Dead),
        Err(e) => return Err(Error::io(ctx(), "read .wcfs/zurl", e)),
    };
    let got = String::from_utf8_lossy(&buf[..n]);
    let got = got.trim_end();
    if zurl::normalize(got).as_deref() != Ok(norm) {
        return Err(Error {
            context: ctx(),
            kind: ErrorKind::ZurlMismatch {
                want: zurl.into(),
                got: got.into(),
            },
        });
    }
    Ok(Attach::Joined(w))
}

/// Spawns `<server> [options] -autoexit <zurl> <mnt>` and waits until its
/// filesystem answers.
fn start_server(
    server: &Path,
    options: &[String],
    mnt: &Path,
    zurl: &str,
    norm: &str,
    timeout: Duration,
) -> Result<Wcfs, Error> {
    let ctx = || Context::join(mnt, zurl);
    let name = server.display().to_string();
    match std::fs::create_dir(mnt) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(ctx(), "create the mountpoint", e)),
    }
    // The directory of mountpoints is world-writable: what stands at `mnt`
    // may be another user's symlink to elsewhere.
    let real_dir = std::fs::symlink_metadata(mnt).is_ok_and(|m| m.file_type().is_dir());
    if !real_dir {
        return Err(Error::start(
            ctx(),
            "the mountpoint is not a directory",
            io::Error::from_raw_os_error(libc::ENOTDIR),
        ));
    }
    let mut child = Command::new(server)
        .args(options)
        .arg("-autoexit")
        .arg(zurl)
        .arg(mnt)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| Error::start(ctx(), "spawn the wcfs server", e))?;
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                break Err(Error {
                    context: ctx(),
                    kind: ErrorKind::ServerExited {
                        server: name,
                        status,
                    },
                })
            }
            Ok(None) => {}
            Err(e) => break Err(Error::start(ctx(), "wait for the server", e)),
        }
        match attach(mnt, zurl, norm) {
            Ok(Attach::Joined(w)) => break Ok(w),
            Ok(Attach::Absent) => {}
            Ok(Attach::Dead) => {
                break Err(Error::start(
                    ctx(),
                    "read .wcfs/zurl",
                    io::Error::from_raw_os_error(libc::ENOTCONN),
                ))
            }
            Err(e) => break Err(e),
        }
        if Instant::now() > deadline {
            break Err(Error {
                context: ctx(),
                kind: ErrorKind::ServerTimeout {
                    server: name,
                    after: timeout,
                },
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    };
    if outcome.is_err() {
        stop_server(child, mnt);
        return outcome;
    }
    // The server outlives this call (and maybe this process): reap it when
    // it exits, or it stays a zombie while we live.
    let _ = std::thread::Builder::new()
        .name("wcfs-reaper".into())
        .spawn(move || child.wait());
    outcome
}

/// Stops a server we started and will not use: SIGTERM (it unmounts), then
/// SIGKILL after 5 s; a mount it left behind dead is detached.
fn stop_server(mut child: std::process::Child, mnt: &Path) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: signals our own child, not yet reaped (its pid is still ours).
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            _ => break,
        }
    }
    let dead = std::fs::metadata(mnt.join(".wcfs"))
        .is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN));
    if dead {
        let _ = detach(mnt);
    }
}

/// `$WENDELIN_CORE_WCFS_AUTOSTART`: unset or `yes` starts, `no` does not;
/// anything else is returned as an error.
pub(crate) fn autostart_env(v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("yes") => Ok(true),
        Some("no") => Ok(false),
        Some(other) => Err(other.into()),
    }
}

/// `$WENDELIN_CORE_WCFS_OPTIONS`, split on white space.
pub(crate) fn options_env(v: Option<&str>) -> Vec<String> {
    v.unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Creates the directory of mountpoints, sticky and world-writable, when missing.
fn make_base(base: &Path) -> io::Result<()> {
    match std::fs::create_dir(base) {
        Ok(()) => std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o1777)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = base.parent() {
                std::fs::create_dir_all(parent)?;
            }
            make_base(base)
        }
        Err(e) => Err(e),
    }
}

/// Unmounts a dead mount (lazily: whoever still holds it keeps `ENOTCONN`).
fn detach(mnt: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(mnt.as_os_str().as_bytes())?;
    // SAFETY: umount2 on a NUL-terminated path; MNT_DETACH never waits for users.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EPERM) {
        return Err(e);
    }
    // Not root: the setuid helper unmounts what this user mounted.
    let st = Command::new("fusermount3")
        .args(["-u", "-z"])
        .arg(mnt)
        .stdin(Stdio::null())
        .status()?;
    if st.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("fusermount3 -u -z: {st}")))
    }
}

/// One line of `/proc/self/mountinfo` (paths unescaped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// The device of the mount (for FUSE, `minor` numbers its connection
    /// in `/sys/fs/fuse/connections`).
    pub major: u32,
    /// The device's minor number.
    pub minor: u32,
    /// Where it is mounted.
    pub mount_point: String,
    /// `fuse.wcfs` for a WCFS.
    pub fstype: String,
    /// The zurl for a WCFS.
    pub source: String,
    /// Per-superblock options (`rw,user_id=0,group_id=0`).
    pub super_options: String,
}

impl MountEntry {
    /// Parses `id parent maj:min root mount_point options [optional...] - type source super_options`.
    pub fn parse(line: &str) -> Option<MountEntry> {
        let (left, right) = line.split_once(" - ")?;
        let mut l = left.split(' ');
        let (major, minor) = l.nth(2)?.split_once(':')?;
        let mount_point = l.nth(1)?;
        let mut r = right.split(' ');
        let fstype = r.next()?;
        let source = r.next()?;
        let super_options = r.next().unwrap_or("");
        Some(MountEntry {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
            mount_point: unescape(mount_point),
            fstype: unescape(fstype),
            source: unescape(source),
            super_options: super_options.into(),
        })
    }

    /// The `user_id=` of a FUSE mount: who mounted it.
    pub fn user_id(&self) -> Option<u32> {
        self.super_options
            .split(',')
            .find_map(|o| o.strip_prefix("user_id="))
            .and_then(|u| u.parse().ok())
    }

    /// The entry mounted last at `path` in `table` (the one visible there).
    pub fn find(table: &str, path: &Path) -> Option<MountEntry> {
        let want = path.to_string_lossy();
        table
            .lines()
            .rev()
            .filter_map(MountEntry::parse)
            .find(|e| e.mount_point == want)
    }

    /// [`MountEntry::find`] in `/proc/self/mountinfo`.
    pub fn lookup(path: &Path) -> io::Result<Option<MountEntry>> {
        let table = std::fs::read_to_string("/proc/self/mountinfo")?;
        Ok(MountEntry::find(&table, path))
    }
}

/// The kernel writes space, tab, newline and `\` in mount table fields as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the mount `entry` is a WCFS serving the database whose
/// normalized zurl is `norm`, mounted by someone user `me` trusts (root or
/// `me`). Ownership is checked first: nothing else of an untrusted mount
/// matters.
pub fn check_mount(entry: &MountEntry, norm: &str, me: u32) -> Result<(), ErrorKind> {
    let not_wcfs = || ErrorKind::NotWcfs {
        fstype: entry.fstype.clone(),
        source: entry.source.clone(),
    };
    if !entry.fstype.starts_with("fuse") {
        return Err(not_wcfs());
    }
    let owner = entry.user_id().ok_or_else(not_wcfs)?;
    if owner != 0 && owner != me {
        return Err(ErrorKind::Untrusted { owner, me });
    }
    if entry.fstype != "fuse.wcfs" {
        return Err(not_wcfs());
    }
    if zurl::normalize(&entry.source).as_deref() != Ok(norm) {
        return Err(ErrorKind::ZurlMismatch {
            want: norm.into(),
            got: entry.source.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WCFS: &str = "61 25 0:52 / /dev/shm/wcfs/4747f6779bae6326101515625ae3c6f6d517dddd rw,nosuid,nodev,relatime shared:33 - fuse.wcfs zeo://db.example:8100 rw,user_id=1000,group_id=1000";

    #[test]
    fn mountinfo_lines() {
        let e = MountEntry::parse(WCFS).unwrap();
        assert_eq!(
            e.mount_point,
            "/dev/shm/wcfs/4747f6779bae6326101515625ae3c6f6d517dddd"
        );
        assert_eq!(e.fstype, "fuse.wcfs");
        assert_eq!(e.source, "zeo://db.example:8100");
        assert_eq!(e.user_id(), Some(1000));
        assert_eq!((e.major, e.minor), (0, 52));
        // No optional fields, escapes in the mount point and source.
        let e = MountEntry::parse(
            r"70 25 0:60 / /tmp/a\040b\134c rw - fuse.wcfs neo://c@m1?x=a\040b rw,user_id=0,group_id=0",
        )
        .unwrap();
        assert_eq!(e.mount_point, r"/tmp/a b\c");
        assert_eq!(e.source, "neo://c@m1?x=a b");
        assert_eq!(e.user_id(), Some(0));
        // Not FUSE: no user_id.
        let e = MountEntry::parse("22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw").unwrap();
        assert_eq!(e.user_id(), None);
        assert_eq!(MountEntry::parse("garbage"), None);
        assert_eq!(MountEntry::parse("1 2 3 - x"), None);
    }

    #[test]
    fn the_last_mount_at_a_path_is_the_visible_one() {
        let table = format!(
            "{WCFS}\n62 61 0:53 / /dev/shm/wcfs/4747f6779bae6326101515625ae3c6f6d517dddd rw - fuse.evil zeo://db.example:8100 rw,user_id=1001,group_id=1001\n"
        );
        let p = Path::new("/dev/shm/wcfs/4747f6779bae6326101515625ae3c6f6d517dddd");
        assert_eq!(MountEntry::find(&table, p).unwrap().user_id(), Some(1001));
        assert_eq!(MountEntry::find(&table, Path::new("/dev/shm/wcfs")), None);
    }

    #[test]
    fn trust_and_identity() {
        let norm = "zeo://db.example:8100";
        let e = MountEntry::parse(WCFS).unwrap(); // mounted by uid 1000
        assert!(check_mount(&e, norm, 1000).is_ok());
        assert!(matches!(
            check_mount(&e, norm, 1001),
            Err(ErrorKind::Untrusted {
                owner: 1000,
                me: 1001
            })
        ));
        // Root's mounts are trusted by everyone.
        let mut root = e.clone();
        root.super_options = "rw,user_id=0,group_id=0".into();
        assert!(check_mount(&root, norm, 1001).is_ok());
        // Untrusted is said first, whatever else is wrong.
        let mut evil = e.clone();
        evil.fstype = "fuse.other".into();
        assert!(matches!(
            check_mount(&evil, norm, 1001),
            Err(ErrorKind::Untrusted { owner: 1000, .. })
        ));
        assert!(matches!(
            check_mount(&evil, norm, 1000),
            Err(ErrorKind::NotWcfs { .. })
        ));
        let mut ext4 = e.clone();
        ext4.fstype = "ext4".into();
        assert!(matches!(
            check_mount(&ext4, norm, 1000),
            Err(ErrorKind::NotWcfs { .. })
        ));
        let mut no_owner = e.clone();
        no_owner.super_options = "rw".into();
        assert!(matches!(
            check_mount(&no_owner, norm, 1000),
            Err(ErrorKind::NotWcfs { .. })
        ));
        // Another database.
        assert!(matches!(
            check_mount(&e, "zeo://other:1", 1000),
            Err(ErrorKind::ZurlMismatch { .. })
        ));
        // The same database, written differently: accepted.
        let mut neo = root.clone();
        neo.source = "neo://db@m2,m1?cert=/c&key=/k&ca=/a".into();
        assert!(check_mount(&neo, "neos://db@m1,m2", 1000).is_ok());
    }

    #[test]
    fn environment() {
        assert_eq!(autostart_env(None), Ok(true));
        assert_eq!(autostart_env(Some("yes")), Ok(true));
        assert_eq!(autostart_env(Some("no")), Ok(false));
        assert_eq!(autostart_env(Some("maybe")), Err("maybe".into()));
        assert_eq!(options_env(None), Vec::<String>::new());
        assert_eq!(
            options_env(Some("  -d   -pintimeout 3s\t-x ")),
            ["-d", "-pintimeout", "3s", "-x"]
        );
    }

    #[test]
    fn mountpoints() {
        // sha1 of "zeo://db.example:8100", computed independently (sha1sum).
        assert_eq!(
            mountpoint_for("zeo://db.example:8100").unwrap(),
            Path::new("/dev/shm/wcfs/4747f6779bae6326101515625ae3c6f6d517dddd")
        );
        // Clients of one NEO cluster with different credentials share one.
        assert_eq!(
            mountpoint_for("neos://db@m2,m1?ca=/a&cert=/b&key=/c").unwrap(),
            mountpoint_for("neo://db@m1,m2?key=/z&compress=true").unwrap()
        );
        // The README's example.
        assert_eq!(
            mountpoint_for("neos://prod@10.0.0.2:2051,10.0.0.1:2051?ca=/etc/neo/ca.crt&cert=/etc/neo/a.crt&key=/etc/neo/a.key").unwrap(),
            mountpoint_for("neo://prod@10.0.0.1:2051,10.0.0.2:2051?key=/home/b/neo.key&compress=false").unwrap()
        );
        assert_eq!(
            mountpoint_for("neo://prod@10.0.0.1:2051,10.0.0.2:2051?key=/home/b/neo.key").unwrap(),
            mountpoint_for("neos://prod@10.0.0.1:2051,10.0.0.2:2051").unwrap()
        );
        assert!(mountpoint_for("http://x").is_err());
    }
}
