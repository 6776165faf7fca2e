//! `wcfs-testserver <mountpoint> [--blksize N] [--pintimeout SECS] [--zurl URL] [--history TIDS]`
//!
//! Mounts the WCFS test server and reads commands on stdin, one per line,
//! answering `ok ...` or `error ...` on stdout:
//!
//! ```text
//! commit <oid-hex16> <blk> <text>             commit one block; prints the new tid
//! commitx <oid> <blk> <hex>|- [<oid> <blk> <hex>|-]...   several changes, data in hex;
//!                                             `-` deletes the blocks from <blk> on
//! delete <oid-hex16> <blk>                    delete the blocks from <blk> on: head shrinks
//! head                                        prints head/at
//! failures                                    prints the clients that nak'ed or timed out
//! quit                                        unmounts and exits (so does EOF, SIGINT, SIGTERM)
//! ```
use std::path::PathBuf;

use wcfs_testkit::model::{ModelConfig, PinRevChoice};
use wcfs_testkit::server::TestServer;

fn usage() -> ! {
    eprintln!("usage: wcfs-testserver <mountpoint> [--blksize N] [--pintimeout SECS] [--zurl URL] [--history TIDS]");
    std::process::exit(2)
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
        Ok(s) => s,
        Err(e) => {
            eprintln!("wcfs-testserver: mount {}: {e}", mnt.display());
            std::process::exit(1)
        }
    };
    {
        let mnt = mnt.clone();
        std::thread::spawn(move || {
            let mut sig = 0;
            // SAFETY: waits for one of the signals blocked above.
            unsafe { libc::sigwait(&set, &mut sig) };
            detach(&mnt);
            std::process::exit(0);
        });
    }
    wcfs_testkit::server::serve(srv, std::io::stdin().lock(), std::io::stdout());
}

/// Unmounts at once (lazily), whatever the threads serving it are doing.
fn detach(mnt: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(mnt.as_os_str().as_bytes()).expect("path");
    // SAFETY: umount2 of a path we mounted; MNT_DETACH never blocks on users.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        let _ = std::process::Command::new("fusermount3")
            .arg("-u")
            .arg("-z")
            .arg(mnt)
            .status();
    }
}
