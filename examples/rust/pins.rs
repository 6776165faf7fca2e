//! A connection at a revision keeps showing that revision's bytes while
//! another writer commits: the server pins the changed block to the
//! connection's revision, and we print the pins seen.
//!
//! Runs the embedded WCFS test server (`wcfs-testserver`, the one the demo
//! runs) as a child and commits through its control channel (stdin).
//!
//! ```text
//! cargo build --release -p wcfs-testkit --bin wcfs-testserver
//! cargo run --release -p wcfs-examples --bin wcfs-example-pins
//! ```
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use wcfs_linux::{Oid, Tid, Wcfs};

type Error = Box<dyn std::error::Error + Send + Sync>;

const F: Oid = Oid(1);

/// The test server, in a process of its own, driven over stdin/stdout.
struct Server {
    child: Child,
    ctl: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Server {
    /// Mounts a new test server at `mnt` (removed again when it ends).
    fn start(mnt: &str) -> Result<Server, Error> {
        let bin = std::env::var("WCFS_TESTSERVER")
            .unwrap_or_else(|_| "target/release/wcfs-testserver".into());
        let mut child = Command::new(&bin)
            .args([mnt, "--rmdir"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{bin}: {e} (build it: see this file's doc)"))?;
        let ctl = child.stdin.take().expect("piped");
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut ready = String::new();
        out.read_line(&mut ready)?; // "ready <head>" once mounted
        if !ready.starts_with("ready ") {
            return Err(format!("test server: {ready:?}").into());
        }
        Ok(Server { child, ctl, out })
    }

    /// Commits `text` to block `blk` of bigfile `F`; the new revision.
    fn commit(&mut self, blk: u64, text: &str) -> Result<Tid, Error> {
        writeln!(self.ctl, "commit {F} {blk} {text}")?;
        let mut reply = String::new();
        self.out.read_line(&mut reply)?;
        let tid = reply.trim().strip_prefix("ok ").ok_or(reply.clone())?;
        Ok(Tid::parse(tid)?)
    }

    /// Unmounts (EOF on the control channel) and waits for the exit.
    fn quit(self) -> Result<(), Error> {
        let Server { mut child, ctl, .. } = self;
        drop(ctl);
        let status = child.wait()?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("test server: {status}").into()),
        }
    }
}

fn main() -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!("wcfs-example-{}", std::process::id()));
    std::fs::create_dir(&dir)?;
    let mnt = dir.to_str().ok_or("temp dir is not UTF-8")?.to_string();
    let srv = Arc::new(Mutex::new(Server::start(&mnt)?));
    let at1 = {
        let mut s = srv.lock().unwrap();
        s.commit(0, "apple")?;
        s.commit(1, "banana")?
    };
    println!("committed @{at1}: #0 apple, #1 banana");

    // Connect at a revision, open the bigfile, map its blocks #0 and #1.
    let w = Wcfs::open(&mnt)?;
    let conn = w.connect(at1)?;
    let f = conn.open(F)?;
    let m = f.mmap(0, 2)?;
    let bs = f.blksize() as usize;
    let block = |blk: usize| -> Result<String, Error> {
        let mut buf = [0u8; 16];
        m.read(blk * bs, &mut buf)?;
        Ok(String::from_utf8_lossy(&buf)
            .trim_end_matches('\0')
            .to_string())
    };
    println!("conn @{at1} sees #0 {:?}, #1 {:?}", block(0)?, block(1)?);

    // Another writer commits #1, then reads head as any other client
    // would: before that read returns, the server pins our block #1 to @at1.
    let writer = {
        let (srv, head) = (srv.clone(), format!("{mnt}/head/bigfile/{F}"));
        std::thread::spawn(move || -> Result<(Tid, String), Error> {
            let at2 = srv.lock().unwrap().commit(1, "BLUEBERRY")?;
            let mut h = std::fs::File::open(head)?;
            h.seek(SeekFrom::Start(bs as u64))?;
            let mut buf = [0u8; 9];
            h.read_exact(&mut buf)?;
            Ok((at2, String::from_utf8_lossy(&buf).into()))
        })
    };
    // Meanwhile we keep reading: always the bytes as of @at1.
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        assert_eq!(block(1)?, "banana", "the mapping moved off @{at1}");
        reads += 1;
    }
    let (at2, head) = writer.join().expect("writer")?;
    println!("another writer committed @{at2}: #1 BLUEBERRY; head shows {head:?}");
    println!(
        "conn @{at1} still sees #1 {:?} ({reads} reads during the commit)",
        block(1)?
    );
    for (blk, rev) in f.pinned() {
        println!("pin seen: #{blk} -> @{rev}");
    }
    let s = conn.stats();
    let p50 = s
        .pin_time_quantile(0.5)
        .map_or("-".into(), |ns| format!("<= {ns} ns"));
    println!("{} pin(s) acked, pin handling median {p50}", s.acks);
    if f.pinned() != [(1, at1)] {
        return Err(format!("expected one pin #1 -> @{at1}, got {:?}", f.pinned()).into());
    }

    drop((m, f, conn, w));
    Arc::into_inner(srv)
        .expect("writer done")
        .into_inner()
        .unwrap()
        .quit()?;
    println!("unmounted {mnt}");
    Ok(())
}
