//! Pin handling with a VM hook (`FileH::mmap_vm`) vs without (`mmap_at`),
//! on real memory: two connections over socketpairs, each with a
//! caller-owned mapping of the same 4 blocks, a scripted server pinning
//! them in alternating rounds (pins to `@REV` and back to head: each one
//! remaps a block). Printed: the pin round trip as the server sees it
//! (pin written -> ack read) and the client's own pin handling time
//! (`ConnStats`, pin line read -> ack written; power-of-two buckets), with
//! and without the hook, and how long each pin holds the VM's lock
//! (measured by the hook: from `lock` returning to `unlock`).
//!
//! Run: `cargo bench -p wcfs-linux --bench vm_pin`
#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::{bs, open, Server, Tree, F, REV};
use wcfs_linux::{sys, Conn, Mapping, Vm, VmError};

/// A VM whose lock is a flag (never contended here) and whose blocks are
/// all clean; it records how long each lock was held.
struct TimedVm {
    locked: AtomicBool,
    since: Mutex<Option<Instant>>,
    held_ns: Mutex<Vec<u64>>,
}

impl Vm for TimedVm {
    fn lock(&self) -> Result<(), VmError> {
        while self.locked.swap(true, Ordering::Acquire) {
            std::thread::yield_now();
        }
        *self.since.lock().unwrap() = Some(Instant::now());
        Ok(())
    }
    fn unlock(&self) {
        if let Some(t) = self.since.lock().unwrap().take() {
            let mut v = self.held_ns.lock().unwrap();
            if v.len() < v.capacity() {
                v.push(t.elapsed().as_nanos() as u64);
            }
        }
        self.locked.store(false, Ordering::Release);
    }
    fn is_dirty(&self, page: *const u8, blk: u64) -> Result<bool, VmError> {
        std::hint::black_box((page, blk));
        Ok(false)
    }
}

/// A connection with a 4-block mapping in a reservation of its own.
struct Side {
    conn: Conn,
    srv: Server,
    _m: Mapping,
    stream: u64,
    rtt: Vec<u64>,
}

fn side(tree: &Tree, vm: Option<&Arc<dyn Vm>>) -> Side {
    let (conn, fh, srv) = open(tree);
    let len = 4 * bs();
    let base = sys::reserve(len).unwrap();
    // SAFETY: our own reservation, which nothing else uses; the bench never
    // touches it (the mapping stays until the process ends).
    let m = unsafe {
        match vm {
            None => fh.mmap_at(0, 4, base, len),
            Some(vm) => fh.mmap_vm(0, 4, base, len, vm),
        }
    }
    .unwrap();
    Side {
        conn,
        srv,
        _m: m,
        stream: 2,
        rtt: Vec::new(),
    }
}

impl Side {
    /// `n` pins, each waited for; their round trips recorded.
    fn pins(&mut self, n: usize) {
        for i in 0..n {
            let rev = if i % 2 == 0 {
                REV.to_string()
            } else {
                "head".into()
            };
            let line = format!("{} pin {F} #{} @{rev}", self.stream, i / 2 % 3);
            let t = Instant::now();
            self.srv.send(&line);
            let ack = self.srv.read_line().expect("ack");
            self.rtt.push(t.elapsed().as_nanos() as u64);
            assert_eq!(ack, format!("{} ack", self.stream));
            self.stream += 2;
        }
    }
}

fn quantile(v: &[u64], q: f64) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q) as usize]
}

fn main() {
    const ROUNDS: usize = 20;
    const N: usize = 1000;
    let tree = Tree::new("bench-vm");
    let vm = Arc::new(TimedVm {
        locked: AtomicBool::new(false),
        since: Mutex::new(None),
        held_ns: Mutex::new(Vec::with_capacity(ROUNDS * N + 16)),
    });
    let hook: Arc<dyn Vm> = vm.clone();
    let mut plain = side(&tree, None);
    let mut with = side(&tree, Some(&hook));
    plain.pins(200); // warm up both
    with.pins(200);
    plain.rtt.clear();
    with.rtt.clear();
    vm.held_ns.lock().unwrap().clear();
    let (s0p, s0v) = (plain.conn.stats(), with.conn.stats());
    let mut ratios = Vec::new();
    for r in 0..ROUNDS {
        let (a, b) = (plain.rtt.len(), with.rtt.len());
        if r % 2 == 0 {
            plain.pins(N);
            with.pins(N);
        } else {
            with.pins(N);
            plain.pins(N);
        }
        let mp = quantile(&plain.rtt[a..], 0.5);
        let mv = quantile(&with.rtt[b..], 0.5);
        ratios.push(mv as f64 / mp as f64);
    }
    ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (dp, dv) = (
        plain.conn.stats().since(&s0p),
        with.conn.stats().since(&s0v),
    );
    assert_eq!(
        dv.remaps, dp.remaps,
        "every pin remapped its block both ways"
    );
    let held = vm.held_ns.lock().unwrap().clone();
    assert_eq!(held.len(), ROUNDS * N, "one lock per pin");
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "pins per side: {} ({ROUNDS} alternating rounds of {N})",
        ROUNDS * N
    );
    for (name, s, d) in [("no VM  ", &plain, &dp), ("VM hook", &with, &dv)] {
        println!(
            "{name}: round trip median {:6.1} us, p99 {:6.1} us; handling (ConnStats) median <= {:6.1} us, p99 <= {:6.1} us",
            us(quantile(&s.rtt, 0.5)),
            us(quantile(&s.rtt, 0.99)),
            us(d.pin_time_quantile(0.5).unwrap_or(0)),
            us(d.pin_time_quantile(0.99).unwrap_or(0)),
        );
    }
    println!(
        "VM / no VM, round trip medians per round: median {:.3} x (min {:.3}, max {:.3})",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
    println!(
        "VM lock held per pin: median {:.2} us, p99 {:.2} us, max {:.1} us",
        us(quantile(&held, 0.5)),
        us(quantile(&held, 0.99)),
        us(quantile(&held, 1.0))
    );
}
