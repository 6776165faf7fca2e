//! Syscalls per client operation, measured with strace on real memory.
//!
//! A scripted server runs in a forked child on the other end of a
//! socketpair; the client marks each phase with a failing `write(-1,
//! "MARK <phase>")` so the trace can be cut. Run:
//!
//!     cargo build --release -p wcfs-linux --example syscalls
//!     strace -f -qq -o /tmp/sc.trace target/release/examples/syscalls
//!     python3 backend-linux/examples/count_syscalls.py /tmp/sc.trace
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use wcfs_linux::{sys, Oid, Tid, Wcfs};

const F: Oid = Oid(1);
const AT: Tid = Tid(0x0400);
const REV: Tid = Tid(0x0300);
const NBLK: usize = 256;
const PINS: usize = 100;

fn mark(phase: &str) {
    // SAFETY: a write to an invalid fd: it only fails, and shows in the trace.
    unsafe { libc::write(-1, format!("MARK {phase}").as_ptr().cast(), phase.len() + 5) };
}

fn server(sock: UnixStream, ctl: UnixStream) -> ! {
    let mut rx = BufReader::new(sock.try_clone().unwrap());
    let mut tx = sock;
    let mut ctl = BufReader::new(ctl);
    let mut stream = 2u64;
    loop {
        // Requests from the client, or a command on the control socket.
        let mut cmd = String::new();
        ctl.read_line(&mut cmd).unwrap();
        let cmd = cmd.trim();
        if let Some(n) = cmd.strip_prefix("pins ") {
            let (n, first): (usize, usize) = {
                let mut it = n.split(' ').map(|x| x.parse().unwrap());
                (it.next().unwrap(), it.next().unwrap())
            };
            for i in 0..n {
                tx.write_all(format!("{stream} pin {F} #{} @{REV}\n", first + i).as_bytes())
                    .unwrap();
                let mut l = String::new();
                rx.read_line(&mut l).unwrap();
                assert_eq!(l.trim(), format!("{stream} ack"));
                stream += 2;
            }
        } else if let Some(n) = cmd.strip_prefix("replies ") {
            for _ in 0..n.parse::<usize>().unwrap() {
                let mut l = String::new();
                rx.read_line(&mut l).unwrap();
                let s = l.split(' ').next().unwrap().to_string();
                if !l.contains(" bye") {
                    tx.write_all(format!("{s} ok\n").as_bytes()).unwrap();
                }
            }
        } else {
            // SAFETY: end the server child.
            unsafe { libc::_exit(0) };
        }
    }
}

fn main() {
    let bs = sys::page_size();
    let dir = PathBuf::from(format!("/dev/shm/wcfs-syscalls-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("head/bigfile")).unwrap();
    std::fs::create_dir_all(dir.join(format!("@{REV}/bigfile"))).unwrap();
    std::fs::write(dir.join("head/at"), AT.to_string()).unwrap();
    std::fs::write(dir.join(format!("head/bigfile/{F}")), vec![1u8; NBLK * bs]).unwrap();
    std::fs::write(
        dir.join(format!("@{REV}/bigfile/{F}")),
        vec![2u8; NBLK * bs],
    )
    .unwrap();

    let (a, b) = UnixStream::pair().unwrap();
    let (mut ctl, ctl_srv) = UnixStream::pair().unwrap();
    // SAFETY: the child runs only the scripted server and exits with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(a);
        server(b, ctl_srv);
    }
    drop((b, ctl_srv));

    mark(&format!("server-{pid}"));
    let w = Wcfs::open(&dir).unwrap();
    let conn = w.connect_over(AT, a.into()).unwrap();
    std::thread::sleep(Duration::from_millis(50)); // the pin thread starts up
    let fh = {
        writeln!(ctl, "replies 1").unwrap();
        mark("open");
        conn.open(F).unwrap()
    };
    mark("mmap16-nopins");
    let m0 = fh.mmap(0, 16).unwrap();
    mark("mmap-all");
    let m1 = fh.mmap(0, NBLK as u64).unwrap();
    mark("pin-first");
    writeln!(ctl, "pins 1 0").unwrap();
    while fh.pinned().is_empty() {
        std::thread::sleep(Duration::from_micros(200));
    }
    // Let the pin thread go back to its read before counting.
    std::thread::sleep(Duration::from_millis(20));
    mark("pins-steady");
    writeln!(ctl, "pins {PINS} 1").unwrap();
    while fh.pinned().len() < 1 + PINS {
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(Duration::from_millis(20));
    mark("mmap16-16pins");
    let m2 = fh.mmap(0, 16).unwrap();
    mark("resync");
    writeln!(ctl, "replies 1").unwrap();
    conn.resync(AT).unwrap();
    mark("end");
    drop((m0, m1, m2));
    writeln!(ctl, "replies 1").unwrap(); // the unwatch of fh's drop
    drop(fh);
    writeln!(ctl, "quit").unwrap();
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}
