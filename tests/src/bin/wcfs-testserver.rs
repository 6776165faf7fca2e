//! `wcfs-testserver <mountpoint> [--blksize N] [--pintimeout SECS] [--zurl URL] [--history TIDS]`
//!
//! Mounts the WCFS test server and reads commands on stdin, one per line,
//! answering `ok ...` or `error ...` on stdout:
//!
//! ```text
//! commit <oid-hex16> <blk> <text>             commit one block; prints the new tid
//! commitx <oid> <blk> <hex> [<oid> <blk> <hex>]...   several blocks, data in hex
//! head                                        prints head/at
//! failures                                    prints the clients that nak'ed or timed out
//! quit                                        unmounts and exits (so does EOF, SIGINT, SIGTERM)
//! ```
use std::io::{BufRead, Write};
use std::path::PathBuf;

use wcfs_core::wire::Oid;
use wcfs_testkit::model::{ModelConfig, PinRevChoice};
use wcfs_testkit::server::TestServer;

fn usage() -> ! {
    eprintln!("usage: wcfs-testserver <mountpoint> [--blksize N] [--pintimeout SECS] [--zurl URL] [--history TIDS]");
    std::process::exit(2)
}

fn hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(mnt) = args.next().map(PathBuf::from) else {
        usage()
    };
    let mut cfg = ModelConfig {
        blksize: 2 * 1024 * 1024,
        history: 0x0000_0001_0000_0000, // about one minute of ZODB time
        pin_rev: PinRevChoice::Exact,
        zurl: format!("testserver://{}", mnt.display()),
        pintimeout_secs: 30.0,
    };
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--blksize" => cfg.blksize = v.parse().unwrap_or_else(|_| usage()),
            "--pintimeout" => cfg.pintimeout_secs = v.parse().unwrap_or_else(|_| usage()),
            "--zurl" => cfg.zurl = v,
            "--history" => cfg.history = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    // SIGINT/SIGTERM: handled by one thread with sigwait, so block them
    // everywhere before any thread starts.
    // SAFETY: plain signal-mask calls on a set we own.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let srv = match TestServer::mount(&mnt, cfg) {
        Ok(s) => std::sync::Arc::new(std::sync::Mutex::new(Some(s))),
        Err(e) => {
            eprintln!("wcfs-testserver: mount {}: {e}", mnt.display());
            std::process::exit(1)
        }
    };
    {
        let srv = srv.clone();
        std::thread::spawn(move || {
            let mut sig = 0;
            // SAFETY: waits for one of the signals blocked above.
            unsafe { libc::sigwait(&set, &mut sig) };
            if let Some(s) = srv.lock().unwrap_or_else(|e| e.into_inner()).take() {
                s.unmount();
            }
            std::process::exit(0);
        });
    }
    let head = srv
        .lock()
        .unwrap()
        .as_ref()
        .map(|s| s.head())
        .expect("mounted");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ready {head}");
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let guard = srv.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = guard.as_ref() else { break };
        let mut w = line.split(' ');
        let reply = match w.next() {
            Some("head") => format!("ok {}", s.head()),
            Some("commit") => {
                let (oid, blk) = (
                    w.next().and_then(|o| Oid::parse(o).ok()),
                    w.next().and_then(|b| b.parse().ok()),
                );
                let text: Vec<&str> = w.collect();
                match (oid, blk) {
                    (Some(oid), Some(blk)) => format!(
                        "ok {}",
                        s.commit(&[(oid, blk, text.join(" ").into_bytes())])
                    ),
                    _ => "error usage: commit <oid-hex16> <blk> <text>".into(),
                }
            }
            Some("commitx") => {
                let parts: Vec<&str> = w.collect();
                let changes: Option<Vec<_>> = parts
                    .chunks(3)
                    .map(|c| {
                        Some((
                            Oid::parse(c.first()?).ok()?,
                            c.get(1)?.parse().ok()?,
                            hex(c.get(2)?)?,
                        ))
                    })
                    .collect();
                match changes {
                    Some(ch) if !ch.is_empty() => format!("ok {}", s.commit(&ch)),
                    _ => "error usage: commitx <oid> <blk> <hex>...".into(),
                }
            }
            Some("failures") => {
                let f = s.failures();
                let mut r = format!("ok {}", f.len());
                for (link, why) in f {
                    r.push_str(&format!("\t{link} {why}"));
                }
                r
            }
            Some("quit") => break,
            _ => "error unknown command".into(),
        };
        drop(guard);
        let _ = writeln!(out, "{reply}");
        let _ = out.flush();
    }
    let last = srv.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(s) = last {
        s.unmount();
    }
}
