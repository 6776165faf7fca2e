//! Stress: commits x several reader threads x resyncs for a fixed time
//! budget (`E2E_STRESS_SECS`, default 15), every read checked against the
//! model as of the reader's connection.
mod e2e_common;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_common::*;
use wcfs_linux::Wcfs;
use wcfs_testkit::require_fuse;

const NBLK: u64 = 16;

#[test]
fn stress() {
    require_fuse!();
    let secs: u64 = std::env::var("E2E_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let srv = Arc::new(server());
    let init: Vec<_> = (0..NBLK).map(|b| change(F, b, &format!("i{b}"))).collect();
    srv.commit(&init);
    let w = Wcfs::open(srv.mountpoint()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let resyncs = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for r in 0..3u64 {
        let (srv, w, stop, reads, resyncs) = (
            srv.clone(),
            w.clone(),
            stop.clone(),
            reads.clone(),
            resyncs.clone(),
        );
        readers.push(std::thread::spawn(move || {
            let conn = w.connect(srv.head()).unwrap();
            let fh = conn.open(F).unwrap();
            let m = fh.mmap(0, NBLK + 2).unwrap();
            let mut x = r + 1;
            while !stop.load(Ordering::Relaxed) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = conn.at();
                if (x >> 40) % 50 == 0 {
                    let head = srv.head();
                    conn.resync(head).unwrap();
                    resyncs.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let b = (x >> 33) % (NBLK + 2);
                let got = tag(&m, b);
                let want = srv.with_model(|md| {
                    String::from_utf8_lossy(&md.data(F, at, b)[..8])
                        .trim_end_matches('\0')
                        .to_string()
                });
                assert_eq!(got, want, "reader {r} @{at} #{b}");
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let t = Instant::now();
    let mut commits = 0;
    while t.elapsed() < Duration::from_secs(secs) {
        let b = commits % NBLK;
        srv.commit(&[change(F, b, &format!("c{commits}"))]);
        commits += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader");
    }
    println!(
        "stress {secs}s: {commits} commits, {} checked reads, {} resyncs",
        reads.load(Ordering::Relaxed),
        resyncs.load(Ordering::Relaxed)
    );
    let (n, median, p99) = srv.pin_rtt_stats();
    println!("pin round trip on the FUSE server (pin queued -> ack): {n} pins, median {:.1} µs, p99 {:.1} µs", median as f64 / 1e3, p99 as f64 / 1e3);
    assert!(n > 0, "the stress must pin");
    assert!(reads.load(Ordering::Relaxed) > 100);
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}
