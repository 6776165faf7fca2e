//! End-to-end figures on the FUSE test server (a process of its own), each
//! a ratio of two things measured side by side in this run.
//!
//! `cargo bench -p wcfs-testkit --bench e2e` (`E2E_ONLY=7,8` runs only the
//! figures named; `E2E_RAW_PAUSE_US=2000` pauses before the by-hand `watch -`
//! of figure 8, and `E2E_CLOSE_PAUSE_US` before each timed file close, to
//! see how much of its excess comes from what precedes the close rather
//! than from the pins; figure 8's control line does that without a pause)
use std::time::{Duration, Instant};

use wcfs_core::wire::Oid;
use wcfs_linux::{sys, Wcfs};
use wcfs_testkit::model::ModelConfig;
use wcfs_testkit::server::{fuse_available, ServerProcess, WcfsServer};

fn cfg() -> ModelConfig {
    ModelConfig::new("bench://", sys::page_size() as u64)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn c(oid: Oid, blk: u64, s: &str) -> (Oid, u64, Vec<u8>) {
    (oid, blk, s.as_bytes().to_vec())
}

/// 4. resync with 64 open files vs 1.
fn resync_64_vs_1(srv: &impl WcfsServer, w: &Wcfs) {
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
fn read_throughput(srv: &impl WcfsServer, w: &Wcfs) {
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
fn mmap_with_pins_and_rtt(srv: &impl WcfsServer, w: &Wcfs) {
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
fn mmap_ack_floor(srv: &impl WcfsServer, f: Oid, n: usize) -> (Duration, Duration) {
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

/// Write syscalls of this process so far (all threads: `/proc/self/io`).
fn writes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("syscw: ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One `bye` round trip done by hand: open a watch link, write `bye`, read
/// EOF, close it.
fn bye_round_trip(srv: &impl WcfsServer) -> Duration {
    use std::io::{Read, Write};
    let t = Instant::now();
    let mut link = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(srv.mountpoint().join("head/watch"))
        .unwrap();
    link.write_all(b"1 bye\n").unwrap();
    let mut b = [0u8; 64];
    assert_eq!(link.read(&mut b).unwrap(), 0, "EOF after bye");
    drop(link);
    t.elapsed()
}

/// Opening `head/watch` plus one thread spawn with the pin thread's stack
/// (and closing both, untimed).
fn watch_and_spawn(srv: &impl WcfsServer) -> Duration {
    let t = Instant::now();
    let link = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(srv.mountpoint().join("head/watch"))
        .unwrap();
    let th = std::thread::Builder::new()
        .name("bench-spawn".into())
        .stack_size(wcfs_linux::PIN_THREAD_STACK)
        .spawn(|| {})
        .unwrap();
    let d = t.elapsed();
    th.join().unwrap();
    drop(link);
    d
}

/// 7. Conn::close vs one `bye` round trip; connect vs head/watch + spawn.
fn close_and_connect(srv: &impl WcfsServer, w: &Wcfs) {
    let (mut close, mut bye, mut conn, mut base) = (vec![], vec![], vec![], vec![]);
    for _ in 0..200 {
        let at = srv.head();
        let t = Instant::now();
        let c = w.connect(at).unwrap();
        conn.push(t.elapsed());
        let t = Instant::now();
        c.close().unwrap();
        close.push(t.elapsed());
        drop(c);
        bye.push(bye_round_trip(srv));
        base.push(watch_and_spawn(srv));
    }
    let (close, bye, conn, base) = (median(close), median(bye), median(conn), median(base));
    println!(
        "7. Conn::close (no files):              {:9.1} µs",
        us(close)
    );
    println!(
        "   bye round trip (open watch, write bye, read EOF, close): {:9.1} µs",
        us(bye)
    );
    println!(
        "   ratio:                               {:9.2} x   (target <= 1.5 x)",
        close.as_secs_f64() / bye.as_secs_f64()
    );
    println!(
        "   Wcfs::connect:                       {:9.1} µs",
        us(conn)
    );
    println!(
        "   open head/watch + spawn a thread:    {:9.1} µs",
        us(base)
    );
    println!(
        "   ratio:                               {:9.2} x   (report)",
        conn.as_secs_f64() / base.as_secs_f64()
    );
}

/// One write on a watch link (a FUSE WRITE round trip), as acks cost:
/// `watch <oid> -` of a file not watched (its reply read untimed).
fn write_round_trip(srv: &impl WcfsServer) -> Duration {
    use std::io::{Read, Write};
    let mut link = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(srv.mountpoint().join("head/watch"))
        .unwrap();
    let mut v = Vec::new();
    let mut b = [0u8; 256];
    for i in 0..50 {
        let line = format!("{} watch 0000000000000fff -\n", 2 * i + 1);
        let t = Instant::now();
        link.write_all(line.as_bytes()).unwrap();
        v.push(t.elapsed());
        let n = link.read(&mut b).unwrap();
        assert!(n > 0);
    }
    link.write_all(b"1001 bye\n").unwrap();
    median(v)
}

/// The server's side of a file close, by hand on a raw link: the time of
/// writing `watch <f> -` and reading its `ok`, for a watch @`at` that got
/// its pins (acked) at setup.
fn raw_unwatch(srv: &impl WcfsServer, f: Oid, at: wcfs_core::wire::Tid) -> (Duration, usize) {
    use std::io::{BufRead, BufReader, Write};
    let link = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(srv.mountpoint().join("head/watch"))
        .unwrap();
    let mut w = &link;
    let mut r = BufReader::new(&link);
    w.write_all(format!("1 watch {f} @{at}\n").as_bytes())
        .unwrap();
    let mut pins = 0;
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let (stream, msg) = line.trim_end().split_once(' ').unwrap();
        if stream == "1" {
            assert_eq!(msg, "ok");
            break;
        }
        pins += 1;
        w.write_all(format!("{stream} ack\n").as_bytes()).unwrap();
    }
    if let Ok(us) = std::env::var("E2E_RAW_PAUSE_US") {
        std::thread::sleep(Duration::from_micros(us.parse().unwrap()));
    }
    let t = Instant::now();
    w.write_all(format!("3 watch {f} -\n").as_bytes()).unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    let d = t.elapsed();
    assert_eq!(line, "3 ok\n");
    w.write_all(b"5 bye\n").unwrap();
    (d, pins)
}

/// The machine's part: a one-byte round trip through pipes to another
/// thread of this process, after spinning `short` vs `long` first (the
/// other thread idle meanwhile), alternating; medians.
fn idle_wake_round_trip(short: Duration, long: Duration) -> (Duration, Duration) {
    use std::io::{Read, Write};
    let (mut to_r, mut to_w) = std::io::pipe().unwrap();
    let (mut back_r, mut back_w) = std::io::pipe().unwrap();
    let echo = std::thread::spawn(move || {
        let mut b = [0u8; 1];
        while to_r.read(&mut b).unwrap() == 1 {
            back_w.write_all(&b).unwrap();
        }
    });
    let (mut s, mut l) = (vec![], vec![]);
    let mut b = [0u8; 1];
    for i in 0..400 {
        let gap = if i % 2 == 0 { short } else { long };
        let t = Instant::now();
        while t.elapsed() < gap {
            std::hint::spin_loop();
        }
        let t = Instant::now();
        to_w.write_all(b"x").unwrap();
        back_r.read_exact(&mut b).unwrap();
        if i % 2 == 0 {
            s.push(t.elapsed())
        } else {
            l.push(t.elapsed())
        }
    }
    drop(to_w);
    echo.join().unwrap();
    (median(s), median(l))
}

/// 8. file close after 64 pins vs no pins; 9. open / mmap / resync per pin.
fn pins_64(srv: &impl WcfsServer, w: &Wcfs) {
    const N: u64 = 64;
    let f = Oid(400);
    let bs = sys::page_size() as u64;
    let at1 = srv.commit(&(0..N).map(|b| c(f, b, "v1")).collect::<Vec<_>>());
    let at2 = srv.commit(&(0..N).map(|b| c(f, b, "v2")).collect::<Vec<_>>());
    // Reading head marks the blocks accessed: a watch @at1 then pins all 64.
    let head = std::fs::read(srv.mountpoint().join(format!("head/bigfile/{f}"))).unwrap();
    assert_eq!(head.len() as u64, N * bs);
    let old = w.connect(at1).unwrap();
    let new = w.connect(at2).unwrap();
    // Warm up: @rev files, server caches.
    for conn in [&old, &new] {
        let fh = conn.open(f).unwrap();
        drop(fh.mmap(0, N).unwrap());
        fh.close().unwrap();
    }
    let (mut open_p, mut open_0, mut close_p, mut close_0) = (vec![], vec![], vec![], vec![]);
    let (mut mmap_p, mut mmap_0) = (vec![], vec![]);
    let (mut w_open_p, mut w_open_0, mut w_mmap_p) = (0, 0, 0);
    // The control: a close with no pins that comes as long after the open
    // as one with pins (the client spinning through the pinned mmap's
    // time, the server idle meanwhile).
    let mut close_pad = vec![];
    let mut pinned_mmap = Duration::ZERO;
    const ITERS: u32 = 100;
    let close_pause = std::env::var("E2E_CLOSE_PAUSE_US")
        .ok()
        .map(|us| Duration::from_micros(us.parse().unwrap()));
    #[derive(Clone, Copy, PartialEq)]
    enum Case {
        Pinned,
        Plain,
        Padded,
    }
    for i in 0..ITERS {
        // Rotate which goes first: each runs as often after each other.
        let mut order = [
            (&old, Case::Pinned),
            (&new, Case::Plain),
            (&new, Case::Padded),
        ];
        order.rotate_left(i as usize % 3);
        for (conn, case) in order {
            let w0 = writes();
            let t = Instant::now();
            let fh = conn.open(f).unwrap();
            let d_open = t.elapsed();
            let w1 = writes();
            let t = Instant::now();
            let m = fh.mmap(0, N).unwrap();
            let d_mmap = t.elapsed();
            if case == Case::Padded {
                while t.elapsed() < pinned_mmap {
                    std::hint::spin_loop();
                }
            }
            let w2 = writes();
            if let Some(p) = close_pause {
                std::thread::sleep(p);
            }
            let t = Instant::now();
            fh.close().unwrap();
            let d_close = t.elapsed();
            drop(m);
            match case {
                Case::Pinned => {
                    assert_eq!(fh.pinned().len(), 0, "closed");
                    open_p.push(d_open);
                    mmap_p.push(d_mmap);
                    close_p.push(d_close);
                    w_open_p += w1 - w0;
                    w_mmap_p += w2 - w1;
                    pinned_mmap = d_mmap;
                }
                Case::Plain => {
                    open_0.push(d_open);
                    mmap_0.push(d_mmap);
                    close_0.push(d_close);
                    w_open_0 += w1 - w0;
                }
                Case::Padded => close_pad.push(d_close),
            }
        }
    }
    let (mut raw_p, mut raw_0) = (vec![], vec![]);
    for _ in 0..50 {
        let (d, n) = raw_unwatch(srv, f, at1);
        assert_eq!(n, N as usize);
        raw_p.push(d);
        let (d, n) = raw_unwatch(srv, f, at2);
        assert_eq!(n, 0);
        raw_0.push(d);
    }
    let (rp, r0) = (median(raw_p), median(raw_0));
    let (cp, c0) = (median(close_p), median(close_0));
    println!("8. file close after {N} pins:           {:9.1} µs", us(cp));
    println!("   file close, no pins:                 {:9.1} µs", us(c0));
    println!(
        "   ratio:                               {:9.2} x   (target <= 1.2 x)",
        cp.as_secs_f64() / c0.as_secs_f64()
    );
    let cpad = median(close_pad);
    println!(
        "   control, no pins but closed as long after the open (spinning through the pinned mmap's time): \
         {:.1} µs: after pins / this {:.2} x",
        us(cpad),
        cp.as_secs_f64() / cpad.as_secs_f64()
    );
    let short = Duration::from_micros(5);
    let pinned_mmap = median(mmap_p.clone());
    let (ws, wl) = idle_wake_round_trip(short, pinned_mmap);
    println!(
        "   the machine, no server: a pipe round trip to an idle thread after spinning {:.0} µs: {:.1} µs, \
         after spinning {:.1} µs (the pinned mmap's time): {:.1} µs: {:.2} x",
        us(short),
        us(ws),
        us(pinned_mmap),
        us(wl),
        wl.as_secs_f64() / ws.as_secs_f64()
    );
    println!(
        "   the test server's part, by hand on a raw link (write `watch -`, read `ok`): \
         after {N} pins {:.1} µs vs none {:.1} µs: {:.2} x",
        us(rp),
        us(r0),
        rp.as_secs_f64() / r0.as_secs_f64()
    );
    println!(
        "   the client's part (close minus the raw round trip): after {N} pins {:.1} µs vs none {:.1} µs",
        us(cp) - us(rp),
        us(c0) - us(r0)
    );
    let wrt = write_round_trip(srv);
    let per = |p: Duration, z: Duration| (us(p) - us(z)) / N as f64;
    let ack_writes = (w_open_p - w_open_0) as f64 / ITERS as f64;
    let (op, o0) = (median(open_p), median(open_0));
    let open_per = per(op, o0);
    println!(
        "9. open with {N} pins at watch setup:    {:9.1} µs vs {:.1} µs without: {:.2} µs per pin; \
         {ack_writes:.1} extra writes (acks batched), one write ~{:.1} µs: acks {:.0} % of the pins' cost",
        us(op),
        us(o0),
        open_per,
        us(wrt),
        100.0 * ack_writes * us(wrt) / (open_per * N as f64)
    );
    let (mp, m0) = (median(mmap_p), median(mmap_0));
    println!(
        "   mmap of {N} blocks, all pinned:       {:9.1} µs vs {:.1} µs unpinned: {:.2} µs per pin ({} writes: no acks)",
        us(mp),
        us(m0),
        per(mp, m0),
        w_mmap_p / ITERS as u64
    );
    drop((old, new));
    // Resync with N changed blocks: a connection @at1 with the file mapped
    // and N pins moves to head, where all N blocks changed (N unpins).
    let (mut rs_p, mut rs_0, mut w_rs_p, mut w_rs_0) = (vec![], vec![], 0, 0);
    const RS: u32 = 30;
    for i in 0..RS {
        for changed in [true, false] {
            let from = if changed { at1 } else { srv.head() };
            let conn = w.connect(from).unwrap();
            let fh = conn.open(f).unwrap();
            let m = fh.mmap(0, N).unwrap();
            let to = srv.commit(&[c(Oid(99), 0, &format!("r{i}"))]);
            let w0 = writes();
            let t = Instant::now();
            conn.resync(to).unwrap();
            let d = t.elapsed();
            let dw = writes() - w0;
            assert!(fh.pinned().is_empty());
            drop(m);
            if changed {
                rs_p.push(d);
                w_rs_p += dw;
            } else {
                rs_0.push(d);
                w_rs_0 += dw;
            }
        }
    }
    let (rp, r0) = (median(rs_p), median(rs_0));
    let rs_per = per(rp, r0);
    let ack_writes = (w_rs_p - w_rs_0) as f64 / RS as f64;
    println!(
        "   resync with {N} changed blocks:       {:9.1} µs vs {:.1} µs with none: {:.2} µs per pin; \
         {ack_writes:.1} extra writes: acks {:.0} % of the pins' cost",
        us(rp),
        us(r0),
        rs_per,
        100.0 * ack_writes * us(wrt) / (rs_per * N as f64)
    );
}

fn main() {
    if let Err(why) = fuse_available() {
        println!("SKIPPED: FUSE is not available: {why}");
        return;
    }
    let srv = ServerProcess::start_temp(cfg()).expect("start the test server");
    let w = Wcfs::open(srv.mountpoint()).unwrap();
    // E2E_ONLY=7,8 runs only the figures named (7 and 8..9 here).
    let only = std::env::var("E2E_ONLY").ok();
    let want = |n: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x == n));
    if want("4") {
        resync_64_vs_1(&srv, &w);
    }
    if want("5") {
        read_throughput(&srv, &w);
    }
    if want("3") || want("6") {
        mmap_with_pins_and_rtt(&srv, &w);
    }
    if want("7") {
        close_and_connect(&srv, &w);
    }
    if want("8") || want("9") {
        pins_64(&srv, &w);
    }
}
