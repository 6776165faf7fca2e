//! `wcfs-testserver <mountpoint> [--blksize N] [--pintimeout SECS] [--zurl URL] [--history TIDS] [--rmdir]`
//!
//! Mounts the WCFS test server and reads commands on stdin, one per line,
//! answering `ok ...` or `error ...` on stdout:
//!
//! ```text
//! commit <oid-hex16> <blk> <text>             commit one block; prints the new tid
//! commitx <oid> <blk> <hex> [<oid> <blk> <hex>]...   several blocks, data in hex
//! head                                        prints head/at
//! failures                                    prints the clients that nak'ed or timed out
//! stats                                       pin round trips: count, median ns, p99 ns
//! panic                                       panics (tests of how the server ends)
//! quit                                        unmounts and exits (so does EOF)
//! ```
//!
//! However it ends (`quit`, EOF, SIGINT, SIGTERM, SIGHUP, a panic), it
//! unmounts, and with `--rmdir` removes the mountpoint directory; it says
//! so on stderr, with the path, when it cannot.
use std::path::PathBuf;

use wcfs_testkit::model::{ModelConfig, PinRevChoice};
use wcfs_testkit::server::{block_end_signals, end_cleanly, TestServer};

fn usage() -> ! {
    eprintln!("usage: wcfs-testserver <mountpoint> [--blksize N] [--pintimeout SECS] [--zurl URL] [--history TIDS] [--rmdir]");
    std::process::exit(2)
}

fn main() {
    // Before any thread starts: the signal thread of `end_cleanly` takes them.
    let set = block_end_signals();
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
    let mut rmdir = false;
    while let Some(a) = args.next() {
        if a == "--rmdir" {
            rmdir = true;
            continue;
        }
        let v = args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--blksize" => cfg.blksize = v.parse().unwrap_or_else(|_| usage()),
            "--pintimeout" => cfg.pintimeout_secs = v.parse().unwrap_or_else(|_| usage()),
            "--zurl" => cfg.zurl = v,
            "--history" => cfg.history = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let srv = match TestServer::mount_model(&mnt, wcfs_testkit::model::Model::new(cfg), rmdir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wcfs-testserver: mount {}: {e}", mnt.display());
            std::process::exit(1)
        }
    };
    end_cleanly(set, &mnt, rmdir);
    wcfs_testkit::server::serve(srv, std::io::stdin().lock(), std::io::stdout());
}
