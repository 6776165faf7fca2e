//! End-to-end figures on the FUSE test server (a process of its own), each
//! a ratio of two things measured side by side in this run.
//!
//! `cargo bench -p wcfs-testkit --bench e2e`
use std::time::{Duration, Instant};

use wcfs_core::wire::Oid;
use wcfs_linux::{sys, Wcfs};
use wcfs_testkit::model::{ModelConfig, PinRevChoice};
use wcfs_testkit::server::{fuse_available, ServerProcess};

fn cfg() -> ModelConfig {
    ModelConfig {
        blksize: sys::page_size() as u64,
        history: u64::MAX / 2,
        pin_rev: PinRevChoice::Exact,
        zurl: "bench://".into(),
        pintimeout_secs: 30.0,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn c(oid: Oid, blk: u64, s: &str) -> (Oid, u64, Vec<u8>) {
    (oid, blk, s.as_bytes().to_vec())
}

/// 4. resync with 64 open files vs 1.
fn resync_64_vs_1(srv: &ServerProcess, w: &Wcfs) {
    let files: Vec<Oid> = (100..164).map(Oid).collect();
    let init: Vec<_> = files.iter().map(|&o| c(o, 0, "x")).collect();
    srv.commit(&init);
    let time = |n: usize| {
        let conn = w.connect(srv.head()).unwrap();
        let fhs: Vec<_> = files[..n].iter().map(|&o| conn.open(o).unwrap()).collect();
        let mut v = Vec::new();
        for i in 0..30 {
            let at = srv.commit(&[c(Oid(99), 0, &format!("t{i}"))]);
            let t = Instant::now();
            conn.resync(at).unwrap();
            v.push(t.elapsed());
        }
        drop(fhs);
        median(v)
    };
    let (one, many) = (time(1), time(64));
    println!(
        "4. resync, 1 open file:                 {:9.1} µs",
        one.as_secs_f64() * 1e6
    );
    println!(
        "   resync, 64 open files:               {:9.1} µs",
        many.as_secs_f64() * 1e6
    );
    println!(
        "   ratio:                               {:9.2} x   (target <= 3 x)",
        many.as_secs_f64() / one.as_secs_f64()
    );
}

/// 5. sequential read through a Mapping vs a plain mmap of the head file.
fn read_throughput(srv: &ServerProcess, w: &Wcfs) {
    let f = Oid(200);
    let bs = sys::page_size() as u64;
    let nblk = (32 << 20) / bs;
    let init: Vec<_> = (0..nblk).map(|b| c(f, b, "data")).collect();
    let at = srv.commit(&init);
    let conn = w.connect(at).unwrap();
    let fh = conn.open(f).unwrap();
    let m = fh.mmap(0, nblk).unwrap();
    let file = std::fs::File::open(srv.mountpoint().join(format!("head/bigfile/{f}"))).unwrap();
    let len = (nblk * bs) as usize;
    let plain = sys::map_file(std::os::fd::AsFd::as_fd(&file), 0, len).unwrap();
    let sum = |p: *const u8| {
        let mut s = 0u64;
        for i in (0..len).step_by(8) {
            // SAFETY: inside a live read-only mapping of `len` bytes.
            s = s.wrapping_add(unsafe { std::ptr::read_volatile(p.add(i) as *const u64) });
        }
        s
    };
    // Warm the page cache through both.
    assert_eq!(sum(m.addr()), sum(plain as *const u8));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let t = Instant::now();
        std::hint::black_box(sum(m.addr()));
        a.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(sum(plain as *const u8));
        b.push(t.elapsed());
    }
    let (a, b) = (median(a), median(b));
    let gbs = |d: Duration| len as f64 / d.as_secs_f64() / 1e9;
    println!(
        "5. read 32 MiB through a Mapping:       {:9.2} GB/s",
        gbs(a)
    );
    println!(
        "   read 32 MiB through a plain mmap:    {:9.2} GB/s",
        gbs(b)
    );
    println!(
        "   Mapping / plain:                     {:9.3}     (target >= 0.95)",
        b.as_secs_f64() / a.as_secs_f64()
    );
    // SAFETY: our own mapping, not used any more.
    unsafe { sys::unmap(plain, len).unwrap() };
}

/// 3. FileH::mmap of 16 blocks with 10,000 pins elsewhere vs none; 6. quiet pin round trip.
fn mmap_with_pins_and_rtt(srv: &ServerProcess, w: &Wcfs) {
    let f = Oid(300);
    let n: u64 = 10_016;
    let init: Vec<_> = (0..n).map(|b| c(f, b, "v1")).collect();
    let at = srv.commit(&init);
    let pinned_conn = w.connect(at).unwrap();
    let clean_conn = w.connect(at).unwrap();
    let fp = pinned_conn.open(f).unwrap();
    let fc = clean_conn.open(f).unwrap();
    let (rtt0, _, _) = srv.pin_rtt_stats();
    let stats0 = pinned_conn.stats();
    // 10,000 blocks change; reading each through head pins `pinned_conn`.
    let changes: Vec<_> = (16..n).map(|b| c(f, b, "v2")).collect();
    srv.commit(&changes);
    let whole = fp.mmap(0, n).unwrap();
    let t = Instant::now();
    let mut b = [0u8; 1];
    for blk in 16..n {
        whole
            .read((blk * sys::page_size() as u64) as usize, &mut b)
            .unwrap();
    }
    let per_pin = t.elapsed() / (n - 16) as u32;
    let handled = pinned_conn.stats().since(&stats0);
    let floor = mmap_ack_floor(srv, f, 2000);
    drop(whole);
    let pins = fp.pinned().len();
    let time = |fh: &wcfs_linux::FileH| {
        let mut v = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            let m = fh.mmap(0, 16).unwrap();
            v.push(t.elapsed());
            drop(m);
        }
        median(v)
    };
    let (none, with) = (time(&fc), time(&fp));
    println!(
        "3. FileH::mmap(16 blocks), no pins:     {:9.1} µs",
        none.as_secs_f64() * 1e6
    );
    println!(
        "   FileH::mmap(16 blocks), {pins} pins elsewhere: {:9.1} µs",
        with.as_secs_f64() * 1e6
    );
    println!(
        "   ratio:                               {:9.2} x   (target <= 2 x)",
        with.as_secs_f64() / none.as_secs_f64()
    );
    let (n_rtt, med, p99) = srv.pin_rtt_stats();
    println!(
        "6. pin round trip (server: pin queued -> ack), {} pins in a quiet loop: median {:.1} µs, p99 {:.1} µs (all {} so far)",
        n_rtt - rtt0,
        med as f64 / 1e3,
        p99 as f64 / 1e3,
        n_rtt
    );
    println!(
        "   a read that pins, end to end (fault -> pin -> remap -> ack -> data): {:.1} µs",
        per_pin.as_secs_f64() * 1e6
    );
    let q = |x: f64| {
        handled
            .pin_time_quantile(x)
            .map_or(0.0, |ns| ns as f64 / 1e3)
    };
    println!(
        "   pin handling time (client: line read -> ack written), {} pins, from ConnStats: median <= {:.1} µs, p99 <= {:.1} µs (bucket ends)",
        handled.pin_times(),
        q(0.5),
        q(0.99)
    );
    println!(
        "   floor: mmap(MAP_FIXED) of a head page + write of an ack line to a socket: median {:.1} µs, p99 {:.1} µs",
        floor.0.as_secs_f64() * 1e6,
        floor.1.as_secs_f64() * 1e6
    );
}

/// The syscalls a steady pin cannot avoid, timed apart: `mmap(MAP_FIXED)`
/// of one page of the head file over a mapping of it, then a write of an
/// ack line to a socket. (A real ack goes to the FUSE watch file: a round
/// trip through the server process, which this floor leaves out.) Median
/// and p99 over `n`.
fn mmap_ack_floor(srv: &ServerProcess, f: Oid, n: usize) -> (Duration, Duration) {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    let bs = sys::page_size();
    let file = std::fs::File::open(srv.mountpoint().join(format!("head/bigfile/{f}"))).unwrap();
    let base = sys::map_file(file.as_fd(), 0, 16 * bs).unwrap();
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut sink = [0u8; 64];
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let off = i % 16 * bs;
        let t = Instant::now();
        // SAFETY: a page of our own mapping of the file, nothing in it borrowed.
        unsafe { sys::map_file_fixed(base + off, bs, file.as_fd(), off as u64).unwrap() };
        a.write_all(b"123456 ack\n").unwrap();
        v.push(t.elapsed());
        let _ = b.read(&mut sink).unwrap();
    }
    // SAFETY: our own mapping, not used any more.
    unsafe { sys::unmap(base, 16 * bs).unwrap() };
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn main() {
    if let Err(why) = fuse_available() {
        println!("SKIPPED: FUSE is not available: {why}");
        return;
    }
    let srv = ServerProcess::start_temp(cfg()).expect("start the test server");
    let w = Wcfs::open(srv.mountpoint()).unwrap();
    resync_64_vs_1(&srv, &w);
    read_throughput(&srv, &w);
    mmap_with_pins_and_rtt(&srv, &w);
}
