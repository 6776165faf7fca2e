//! Handles that let go of the mount: once every connection, file, mapping
//! and watch link is closed (their handles still alive), the process holds
//! no descriptor and no mapping inside the mount, and a plain (not lazy)
//! unmount succeeds.
mod e2e_common;
use std::path::Path;
use std::process::Command;

use e2e_common::*;
use wcfs_linux::Wcfs;
use wcfs_testkit::require_fuse;

/// What of this process points inside `mnt`: descriptors and mappings.
fn held_inside(mnt: &Path) -> Vec<String> {
    let mut held = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(e.path()) {
            if target.starts_with(mnt) {
                held.push(format!(
                    "fd {}: {}",
                    e.file_name().to_string_lossy(),
                    target.display()
                ));
            }
        }
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let m = mnt.to_string_lossy();
    held.extend(
        maps.lines()
            .filter(|l| l.contains(&*m))
            .map(|l| format!("map {l}")),
    );
    held
}

/// A plain unmount, as wendelin.core's tests do it: fails with EBUSY while
/// anything holds the mount.
fn unmount(mnt: &Path) -> Result<(), String> {
    let out = Command::new("fusermount3").arg("-u").arg(mnt).output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
        // No fusermount3: the syscall, without MNT_DETACH.
        Err(_) => {
            let c = std::ffi::CString::new(mnt.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: umount2 on a NUL-terminated path.
            match unsafe { libc::umount2(c.as_ptr(), 0) } {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error().to_string()),
            }
        }
    }
}

#[test]
fn closed_handles_hold_nothing_inside_the_mount() {
    require_fuse!();
    let srv = server();
    let mnt = srv.mountpoint().to_path_buf();
    let at1 = srv.commit(&[change(F, 0, "a0"), change(F, 1, "a1"), change(G, 0, "g0")]);
    let w = Wcfs::open(&mnt).unwrap();
    assert_eq!(
        held_inside(&mnt),
        Vec::<String>::new(),
        "a Wcfs alone holds nothing"
    );
    let old = w.connect(at1).unwrap();
    let f = old.open(F).unwrap();
    let m = f.mmap(0, 2).unwrap();
    let g = old.open(G).unwrap();
    let mg = g.mmap(0, 1).unwrap();
    let at2 = srv.commit(&[change(F, 1, "b1")]);
    let new = w.connect(at2).unwrap();
    let f2 = new.open(F).unwrap();
    let m2 = f2.mmap(0, 2).unwrap();
    assert_eq!(tags(&m2, 0..2), ["a0", "b1"]);
    assert_eq!(tags(&m, 0..2), ["a0", "a1"], "pinned to @at1");
    let l = w.open_watch().unwrap();
    assert!(!held_inside(&mnt).is_empty());
    assert!(unmount(&mnt).is_err(), "busy while in use");

    // A connection brought down (going back) lets go too.
    assert!(new.resync(at1).is_err());
    m.unmap().unwrap();
    f.close().unwrap();
    old.close().unwrap();
    l.close().unwrap();
    new.close().unwrap();
    assert!(mg.is_faulting() && m2.is_faulting());
    // Every handle is alive still; only the closes happened.
    assert_eq!(held_inside(&mnt), Vec::<String>::new());
    assert_eq!(
        w.head_at().unwrap(),
        at2,
        "a Wcfs call holds nothing after it"
    );
    assert_eq!(held_inside(&mnt), Vec::<String>::new());
    unmount(&mnt).expect("a plain unmount succeeds once everything is closed");
    drop((m, mg, m2, f, g, f2, old, new, l, w));
}
