//! Core costs, measured side by side in one run (ratios, not absolute times).
//!
//! 1. Core cost per pin (parse + lookup + actions) vs one `mmap(MAP_FIXED)`
//!    syscall; and per pin with 1,000 mappings and 100,000 pins vs 1 mapping.
//! 3. `mmap` of 16 blocks with 10,000 pins elsewhere vs none (core part).
//! 4. Statistics: core cost per pin with counting on (counters plus the
//!    histogram update the driver makes per ack) vs off; and the driver's
//!    two clock reads per pin.
//! 5. VM-served mappings: core cost per pin over a mapping that serves a
//!    VM (`mmap_vm`: lock, dirty query, unlock as actions) vs the same
//!    caller-owned mapping without one (`mmap_at`).
//!
//! Run: `cargo bench -p wcfs-mock --bench core`
use std::hint::black_box;
use std::time::Instant;

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{Config, Conn, FileId, OpOk};
use wcfs_mock::QuietBackend;

const BS: u64 = 4096;

type Quiet = QuietBackend;

const F: Oid = Oid(1);
const AT: Tid = Tid(0x50);

fn opened(nblk: u64) -> (Conn, Quiet, FileId) {
    let mut c = Conn::new(AT, Config::default());
    let mut b = QuietBackend::new(nblk * BS, BS);
    let op = c.open(F).unwrap();
    let _ = c.poll_op(op);
    c.drain_with(&mut b);
    c.handle_bytes(b"1 ok\n");
    c.drain_with(&mut b);
    let Some(Ok(OpOk::Opened(f))) = c.poll_op(op) else {
        panic!("open")
    };
    (c, b, f)
}

fn mmap(c: &mut Conn, b: &mut Quiet, f: FileId, start: u64, len: u64) {
    let op = c.mmap(f, start, len).unwrap();
    c.drain_with(b);
    assert!(matches!(c.poll_op(op), Some(Ok(OpOk::Mapped(_)))));
}

/// Pin lines over `blocks`, alternating pins and unpins, streams even and fresh.
fn pin_lines(blocks: &[u64], first_stream: u64) -> Vec<Vec<u8>> {
    blocks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let rev = if i % 2 == 0 {
                AT.to_string()
            } else {
                "head".into()
            };
            format!("{} pin {F} #{b} @{rev}\n", first_stream + 2 * i as u64).into_bytes()
        })
        .collect()
}

/// ns per pin, over `lines` fed one by one (parse, lookup, actions, ack).
fn time_pins(c: &mut Conn, b: &mut Quiet, lines: &[Vec<u8>]) -> f64 {
    let t = Instant::now();
    for l in lines {
        c.handle_bytes(l);
        c.drain_with(b);
    }
    t.elapsed().as_nanos() as f64 / lines.len() as f64
}

/// As `time_pins`, also recording each pin's handling time as the Linux
/// driver does after writing its ack (a fixed value: the clock is timed apart).
fn time_pins_recorded(c: &mut Conn, b: &mut Quiet, lines: &[Vec<u8>]) -> f64 {
    let t = Instant::now();
    for l in lines {
        c.handle_bytes(l);
        c.drain_with(b);
        c.record_pin_time(black_box(3000));
    }
    t.elapsed().as_nanos() as f64 / lines.len() as f64
}

/// ns per pair of clock reads (`Instant::now` at the read, `elapsed` at the ack).
fn time_clock_pair(n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        let t0 = black_box(Instant::now());
        black_box(t0.elapsed());
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn lcg(x: &mut u64) -> u64 {
    *x = x
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *x >> 33
}

/// ns per `mmap(MAP_FIXED)` of one 4 KiB page of a memfd, read-only shared.
fn time_mmap_fixed(n: usize) -> f64 {
    // SAFETY: plain syscalls on a private memfd and a region we reserve and
    // own for the duration of this function.
    unsafe {
        let fd = libc::memfd_create(c"bench".as_ptr(), 0);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, 64 * 4096), 0);
        let base = libc::mmap(
            std::ptr::null_mut(),
            64 * 4096,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        );
        assert_ne!(base, libc::MAP_FAILED);
        let t = Instant::now();
        for i in 0..n {
            let off = (i % 64) * 4096;
            let p = libc::mmap(
                (base as usize + off) as *mut _,
                4096,
                libc::PROT_READ,
                libc::MAP_SHARED | libc::MAP_FIXED,
                fd,
                ((i * 7) % 64 * 4096) as i64,
            );
            assert_ne!(p, libc::MAP_FAILED);
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        libc::munmap(base, 64 * 4096);
        libc::close(fd);
        ns
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    pieces();
    const ROUNDS: usize = 7;
    const N: usize = 20_000;

    // Single mapping of 64 blocks.
    let (mut c1, mut b1, f1) = opened(1 << 20);
    mmap(&mut c1, &mut b1, f1, 0, 64);
    // 1,000 mappings of 100 blocks over 100,000 blocks, 100,000 pins in force.
    let (mut c2, mut b2, f2) = opened(1 << 20);
    for i in 0..1000 {
        mmap(&mut c2, &mut b2, f2, i * 100, 100);
    }
    let all: Vec<u64> = (0..100_000).collect();
    let mut stream = 2;
    for b in &all {
        c2.handle_bytes(format!("{stream} pin {F} #{b} @{AT}\n").as_bytes());
        c2.drain_with(&mut b2);
        stream += 2;
    }
    assert_eq!(c2.pinned(f2).len(), 100_000);

    let mut seed = 42;
    let (mut single, mut many, mut sys) = (vec![], vec![], vec![]);
    let mut s1 = 2u64;
    for _ in 0..ROUNDS {
        let blocks: Vec<u64> = (0..N).map(|_| lcg(&mut seed) % 64).collect();
        let lines = pin_lines(&blocks, s1);
        s1 += 2 * N as u64;
        single.push(time_pins(&mut c1, &mut b1, &lines));
        let blocks: Vec<u64> = (0..N).map(|_| lcg(&mut seed) % 100_000).collect();
        let lines = pin_lines(&blocks, stream);
        stream += 2 * N as u64;
        many.push(time_pins(&mut c2, &mut b2, &lines));
        sys.push(time_mmap_fixed(N));
    }
    let (single, many, sys) = (median(single), median(many), median(sys));
    println!("1. core cost per pin, 1 mapping:                    {single:8.1} ns");
    println!("   one mmap(MAP_FIXED) syscall (4 KiB, memfd):       {sys:8.1} ns");
    println!(
        "   core / syscall:                                   {:8.1} %   (target <= 5 %)",
        100.0 * single / sys
    );
    println!("   core cost per pin, 1,000 mappings, 100,000 pins:  {many:8.1} ns");
    println!(
        "   many / single:                                    {:8.2} x   (target <= 2 x)",
        many / single
    );

    // 3. mmap of 16 blocks with 10,000 pins elsewhere vs none (core part).
    let (mut c3, mut b3, f3) = opened(1 << 20);
    let (mut c4, mut b4, f4) = opened(1 << 20);
    for (i, b) in (100_000..110_000u64).enumerate() {
        c4.handle_bytes(format!("{} pin {F} #{b} @{AT}\n", 2 + 2 * i).as_bytes());
        c4.drain_with(&mut b4);
    }
    let time_mmaps = |c: &mut Conn, b: &mut Quiet, f: FileId| {
        let t = Instant::now();
        for i in 0..2000u64 {
            mmap(c, b, f, (i % 100) * 16, 16);
        }
        t.elapsed().as_nanos() as f64 / 2000.0
    };
    let (mut none, mut pinned) = (vec![], vec![]);
    for _ in 0..ROUNDS {
        none.push(time_mmaps(&mut c3, &mut b3, f3));
        pinned.push(time_mmaps(&mut c4, &mut b4, f4));
    }
    let (none, pinned) = (median(none), median(pinned));
    println!("3. core mmap(16 blocks), no pins:                    {none:8.1} ns");
    println!("   core mmap(16 blocks), 10,000 pins elsewhere:      {pinned:8.1} ns");
    println!(
        "   ratio:                                            {:8.2} x   (target <= 2 x)",
        pinned / none
    );

    // 4. Statistics on vs off, same lines, alternating, one mapping.
    let (mut on, mut bon, fon) = opened(1 << 20);
    mmap(&mut on, &mut bon, fon, 0, 64);
    let (mut off, mut boff, foff) = opened(1 << 20);
    mmap(&mut off, &mut boff, foff, 0, 64);
    off.set_counting(false);
    // Many short rounds, the order alternating, each round's ratio taken
    // apart: load from other jobs drifts slower than a round.
    let (mut t_on, mut t_off, mut ratio, mut clock) = (vec![], vec![], vec![], vec![]);
    let mut s = 2u64;
    const SROUNDS: usize = 41;
    for r in 0..SROUNDS {
        let blocks: Vec<u64> = (0..N / 4).map(|_| lcg(&mut seed) % 64).collect();
        let lines = pin_lines(&blocks, s);
        s += 2 * (N / 4) as u64;
        let (a, b) = if r % 2 == 0 {
            let a = time_pins(&mut off, &mut boff, &lines);
            (a, time_pins_recorded(&mut on, &mut bon, &lines))
        } else {
            let b = time_pins_recorded(&mut on, &mut bon, &lines);
            (time_pins(&mut off, &mut boff, &lines), b)
        };
        t_off.push(a);
        t_on.push(b);
        ratio.push(b / a);
        clock.push(time_clock_pair(N / 4));
    }
    let st = on.stats();
    assert_eq!(st.acks, (SROUNDS * (N / 4)) as u64, "every pin counted");
    assert_eq!(off.stats().acks, 0, "nothing counted while off");
    let (t_on, t_off, ratio, clock) = (median(t_on), median(t_off), median(ratio), median(clock));
    println!("4. core cost per pin, statistics off:               {t_off:8.1} ns");
    println!("   core cost per pin, statistics on (+ histogram):  {t_on:8.1} ns");
    println!(
        "   on / off (median of {SROUNDS} alternating rounds): {ratio:8.3} x   ({:+.1} ns per pin)",
        t_on - t_off
    );
    println!("   driver clock reads per pin (now + elapsed):       {clock:8.1} ns");

    vm_section();
}

/// 5. Pins over a caller-owned mapping with a VM vs without, alternating.
fn vm_section() {
    const VROUNDS: usize = 21;
    const N: usize = 20_000;
    let at = |c: &mut Conn, b: &mut Quiet, f: FileId, vm: Option<u64>| {
        let (addr, len) = (0x4000_0000, 64 * BS as usize);
        let op = match vm {
            None => c.mmap_at(f, 0, 64, addr, len),
            Some(v) => c.mmap_vm(f, 0, 64, addr, len, wcfs_core::VmId(v)),
        }
        .unwrap();
        c.drain_with(b);
        assert!(matches!(c.poll_op(op), Some(Ok(OpOk::Mapped(_)))));
    };
    let (mut plain, mut bp, fp) = opened(1 << 20);
    at(&mut plain, &mut bp, fp, None);
    let (mut vm, mut bv, fv) = opened(1 << 20);
    at(&mut vm, &mut bv, fv, Some(1));
    let mut x = 7u64;
    let blocks: Vec<u64> = (0..N).map(|_| lcg(&mut x) % 64).collect();
    let (mut s, mut ratios, mut tp, mut tv) = (2, vec![], vec![], vec![]);
    for r in 0..VROUNDS {
        let lines = pin_lines(&blocks, s);
        s += 2 * N as u64;
        let (a, b) = if r % 2 == 0 {
            let a = time_pins(&mut plain, &mut bp, &lines);
            (a, time_pins(&mut vm, &mut bv, &lines))
        } else {
            let b = time_pins(&mut vm, &mut bv, &lines);
            (time_pins(&mut plain, &mut bp, &lines), b)
        };
        tp.push(a);
        tv.push(b);
        ratios.push(b / a);
    }
    assert_eq!(bp.maps, bv.maps, "every pin remapped its block both ways");
    let (tp, tv, ratio) = (median(tp), median(tv), median(ratios));
    println!("5. core cost per pin, caller-owned mapping, no VM:  {tp:8.1} ns");
    println!("   core cost per pin, mapping serving a VM:         {tv:8.1} ns");
    println!("   VM / no VM (median of {VROUNDS} alternating rounds):  {ratio:8.3} x   ({:+.1} ns per pin)", tv - tp);
}

#[allow(dead_code)]
pub fn pieces() {
    use wcfs_core::wire::{Frame, Framer, OutLine};
    let line = b"123456 pin 0000000000000001 #12345 @0000000000000050\n";
    let n = 2_000_000;
    let t = Instant::now();
    for _ in 0..n {
        black_box(Frame::parse(black_box(&line[..line.len() - 1])).unwrap());
    }
    println!(
        "   parse:   {:6.1} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let mut fr = Framer::new();
    let t = Instant::now();
    for _ in 0..n {
        let mut inp = &line[..];
        black_box(fr.next_line(black_box(&mut inp)));
    }
    println!(
        "   framer:  {:6.1} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let t = Instant::now();
    for i in 0..n {
        black_box(OutLine::ack(black_box(i as u64)));
    }
    println!(
        "   ack:     {:6.1} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}
