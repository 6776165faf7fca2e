//! Two processes at different revisions read the same file concurrently
//! while commits happen; every byte each reads is its view's.
mod e2e_common;
use e2e_common::*;
use wcfs_core::wire::Tid;
use wcfs_linux::Wcfs;
use wcfs_testkit::require_fuse;

const NBLK: u64 = 8;

/// Reads every block `rounds` times and checks it against `want`; exit code 0 if all matched.
fn reader(mnt: &std::path::Path, at: Tid, want: &[String], rounds: usize) -> bool {
    let w = Wcfs::open(mnt).unwrap();
    let conn = w.connect(at).unwrap();
    let fh = conn.open(F).unwrap();
    let m = fh.mmap(0, NBLK).unwrap();
    for _ in 0..rounds {
        for b in 0..NBLK {
            if tag(&m, b) != want[b as usize] {
                eprintln!("@{at} #{b}: {} != {}", tag(&m, b), want[b as usize]);
                return false;
            }
        }
    }
    true
}

#[test]
fn two_processes_at_different_revisions() {
    require_fuse!();
    let srv = server();
    let init: Vec<_> = (0..NBLK)
        .map(|b| change(F, b, &format!("v0b{b}")))
        .collect();
    let at1 = srv.commit(&init);
    let at2 = srv.commit(&[change(F, 1, "v2b1"), change(F, 5, "v2b5")]);
    let expect = |at: Tid| -> Vec<String> {
        srv.with_model(|md| {
            (0..NBLK)
                .map(|b| {
                    String::from_utf8_lossy(&md.data(F, at, b)[..8])
                        .trim_end_matches('\0')
                        .to_string()
                })
                .collect()
        })
    };
    let (want1, want2) = (expect(at1), expect(at2));
    // Each child connects on its own.
    let mnt = srv.mountpoint();
    let kids: Vec<Child> = [(at1, want1), (at2, want2)]
        .into_iter()
        .map(|(at, want)| {
            fork_child(move || {
                reader(mnt, at, &want, 200)
                    .then_some(())
                    .ok_or_else(|| format!("reader @{at} saw other data"))
            })
        })
        .collect();
    // Meanwhile the database moves on.
    for i in 0..20 {
        srv.commit(&[change(F, i % NBLK, &format!("n{i}"))]);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for kid in kids {
        kid.wait_ok();
    }
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}
