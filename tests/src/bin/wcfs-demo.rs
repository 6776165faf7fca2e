//! The wcfs-rs demo: a WCFS test server, two connections at different
//! revisions, pins arriving as the database moves on, and a resync.
//!
//! `cargo run --release -p wcfs-testkit --bin wcfs-demo`
use std::time::Instant;

use wcfs_core::wire::{Oid, Tid};
use wcfs_linux::{sys, FileH, Mapping, Wcfs};
use wcfs_testkit::model::ModelConfig;
use wcfs_testkit::server::{fuse_available, ServerProcess, WcfsServer};

const F: Oid = Oid(1);
const NBLK: u64 = 3;

/// The first bytes of a block, as one column of a view.
fn cell(bytes: &[u8]) -> String {
    format!(
        "{:<11}",
        String::from_utf8_lossy(&bytes[..12]).trim_end_matches('\0')
    )
}

fn view(m: &Mapping) -> String {
    let bs = sys::page_size();
    (0..NBLK)
        .map(|b| {
            let mut buf = [0u8; 12];
            m.read(b as usize * bs, &mut buf).expect("read");
            cell(&buf)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints what a connection's mapping shows and what is pinned.
fn show(who: &str, m: &Mapping, f: &FileH, names: &[(Tid, &str)]) {
    println!(
        "  {who} sees: {}  pins {}",
        view(m),
        pins(&f.pinned(), names)
    );
}

fn pins(p: &[(u64, Tid)], names: &[(Tid, &str)]) -> String {
    if p.is_empty() {
        return "{}".into();
    }
    let name = |t: Tid| {
        names
            .iter()
            .find(|n| n.0 == t)
            .map_or_else(|| t.to_string(), |n| n.1.to_string())
    };
    let v: Vec<String> = p
        .iter()
        .map(|(b, t)| format!("#{b}→@{}", name(*t)))
        .collect();
    format!("{{{}}}", v.join(", "))
}

fn main() {
    if let Err(why) = fuse_available() {
        eprintln!("wcfs-demo needs FUSE: {why} (install fuse3, run as root)");
        std::process::exit(1);
    }
    let t0 = Instant::now();
    let cfg = ModelConfig::new("demo://", sys::page_size() as u64);
    // The server runs in a process of its own, as the real WCFS does.
    let srv = ServerProcess::fork_temp(cfg).expect("start the test server");
    println!("WCFS test server mounted at {}", srv.mountpoint().display());
    let c = |oid, blk, s: &str| (oid, blk, s.as_bytes().to_vec());
    let a = srv.commit(&[c(F, 0, "apple"), c(F, 1, "banana"), c(F, 2, "cherry")]);
    println!("commit @A = {a}: #0 apple, #1 banana, #2 cherry");
    let b = srv.commit(&[c(F, 1, "BLUEBERRY")]);
    println!("commit @B = {b}: #1 BLUEBERRY");
    let names = [(a, "A"), (b, "B")];

    let w = Wcfs::open(srv.mountpoint()).expect("open the mount");
    let conn1 = w.connect(a).expect("connect @A");
    let conn2 = w.connect(b).expect("connect @B");
    let (f1, f2) = (conn1.open(F).expect("open"), conn2.open(F).expect("open"));
    let (m1, m2) = (
        f1.mmap(0, NBLK).expect("mmap"),
        f2.mmap(0, NBLK).expect("mmap"),
    );
    println!(
        "\nconn1 @A and conn2 @B each map blocks #0..#{} of bigfile {F}:",
        NBLK - 1
    );
    show("conn1 @A", &m1, &f1, &names);
    show("conn2 @B", &m2, &f2, &names);
    println!("  (reading #1 through head made the server pin conn1's #1 to @A first)");

    let cc = srv.commit(&[c(F, 0, "APRICOT"), c(F, 2, "CLEMENTINE")]);
    let names = [(a, "A"), (b, "B"), (cc, "C")];
    println!("\ncommit @C = {cc}: #0 APRICOT, #2 CLEMENTINE");
    let head =
        std::fs::read(srv.mountpoint().join(format!("head/bigfile/{F}"))).expect("read head");
    let bs = sys::page_size();
    let headview: Vec<String> = (0..NBLK as usize).map(|b| cell(&head[b * bs..])).collect();
    println!("  head/bigfile shows: {}", headview.join(" "));
    println!("  (that read of head pinned both connections before it returned)");
    show("conn1 @A", &m1, &f1, &names);
    show("conn2 @B", &m2, &f2, &names);

    conn1.resync(cc).expect("resync");
    println!("\nconn1.resync(@C): the server unpins what no longer differs from head");
    show("conn1 @C", &m1, &f1, &names);
    show("conn2 @B", &m2, &f2, &names);

    let e = conn2.resync(a).unwrap_err();
    println!("\nconn2.resync(@A) is refused: {e}");
    println!(
        "  conn2's mapping now faults on access: {}",
        m2.is_faulting()
    );

    println!("\nstatistics (Conn::stats, read without stopping the pin threads):");
    for (name, conn) in [("conn1", &conn1), ("conn2", &conn2)] {
        let s = conn.stats();
        let q = |x| {
            s.pin_time_quantile(x)
                .map_or("-".into(), |ns| format!("<= {:.0} µs", ns as f64 / 1e3))
        };
        println!(
            "  {name}: {} pins, {} unpins, {} acks, {} naks, {} @rev opened, {} @rev hits, {} blocks remapped, {} resyncs; pin handling median {}, p99 {}",
            s.pins, s.unpins, s.acks, s.naks, s.rev_opens, s.rev_hits, s.remaps, s.resyncs, q(0.5), q(0.99)
        );
    }

    drop((m1, m2, f1, f2, conn1, conn2));
    let failures = srv.failures();
    drop(srv);
    println!(
        "\nunmounted; clients reported by the server: {}; {:.2}s",
        failures.len(),
        t0.elapsed().as_secs_f64()
    );
}
