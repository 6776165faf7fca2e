//! The WCFS test server, in one of two command-line shapes:
//!
//! ```text
//! wcfs-testserver <mountpoint> [--blksize N] [--pintimeout SECS] [--zurl URL] [--history TIDS] [--rmdir]
//! wcfs-testserver [-autoexit] [--blksize N] [--pintimeout SECS] [--history TIDS] [--zurl URL] <zurl> <mountpoint>
//! ```
//!
//! The first, for tests and for trying a runtime by hand, mounts and reads
//! commands on stdin, one per line, answering `ok ...` or `error ...` on
//! stdout:
//!
//! ```text
//! commit <oid-hex16> <blk> <text>             commit one block; prints the new tid
//! commitx <oid> <blk> <hex>|- [<oid> <blk> <hex>|-]...   several changes, data in hex;
//!                                             `-` deletes the blocks from <blk> on
//! delete <oid-hex16> <blk>                    delete the blocks from <blk> on: head shrinks
//! head                                        prints head/at
//! failures                                    prints the clients that nak'ed or timed out
//! stats                                       pin round trips: count, median ns, p99 ns
//! panic                                       panics (tests of how the server ends)
//! quit                                        unmounts and exits (so does EOF)
//! ```
//!
//! The second is the real server's (`wcfs [options] <zurl> <mountpoint>`),
//! as `Wcfs::join` autostarts it: no control channel; with `-autoexit` it
//! unmounts and exits once its last client (watch link or open bigfile) is
//! gone, after at least one came (or when none came within a minute).
//!
//! However it ends (`quit`, EOF, `-autoexit`, SIGINT, SIGTERM, SIGHUP, a
//! panic), it unmounts, removes the mountpoint directory with `--rmdir` (in
//! the second shape, always), and says on stderr, with the path, what it
//! could not do.
use std::path::PathBuf;
use std::time::Duration;

use wcfs_testkit::model::{Model, ModelConfig, PinRevChoice};
use wcfs_testkit::server::{block_end_signals, end_cleanly, TestServer};

/// How long `-autoexit` waits, once the last client is gone, for another.
const AUTOEXIT_IDLE: Duration = Duration::from_millis(500);
/// How long `-autoexit` waits for a first client.
const AUTOEXIT_FIRST: Duration = Duration::from_secs(60);

fn usage() -> ! {
    eprintln!(
        "usage: wcfs-testserver <mountpoint> [--blksize N] [--pintimeout SECS] [--zurl URL] [--history TIDS] [--rmdir]\n\
         \x20      wcfs-testserver [-autoexit] [--blksize N] [--pintimeout SECS] [--history TIDS] [--zurl URL] <zurl> <mountpoint>"
    );
    std::process::exit(2)
}

fn main() {
    // Before any thread starts: the signal thread of `end_cleanly` takes them.
    let set = block_end_signals();
    let mut cfg = ModelConfig {
        blksize: 2 * 1024 * 1024,
        history: 0x0000_0001_0000_0000, // about one minute of ZODB time
        pin_rev: PinRevChoice::Exact,
        zurl: String::new(),
        pintimeout_secs: 30.0,
    };
    let (mut rmdir, mut autoexit, mut zurl) = (false, false, None);
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rmdir" => rmdir = true,
            "-autoexit" | "--autoexit" => autoexit = true,
            "--blksize" | "--pintimeout" | "--zurl" | "--history" => {
                let v = args.next().unwrap_or_else(|| usage());
                match a.as_str() {
                    "--blksize" => cfg.blksize = v.parse().unwrap_or_else(|_| usage()),
                    "--pintimeout" => cfg.pintimeout_secs = v.parse().unwrap_or_else(|_| usage()),
                    "--history" => cfg.history = v.parse().unwrap_or_else(|_| usage()),
                    _ => zurl = Some(v),
                }
            }
            _ if a.starts_with('-') => usage(),
            _ => positional.push(a),
        }
    }
    let (mnt, real_shape) = match positional.as_slice() {
        [mnt] if !autoexit => {
            cfg.zurl = zurl.unwrap_or_else(|| format!("testserver://{mnt}"));
            (PathBuf::from(mnt), false)
        }
        [z, mnt] => {
            // `--zurl` here serves another database than the one named:
            // for tests of what `join` refuses.
            cfg.zurl = zurl.unwrap_or_else(|| z.clone());
            rmdir = true;
            (PathBuf::from(mnt), true)
        }
        _ => usage(),
    };
    let srv = match TestServer::mount_model(&mnt, Model::new(cfg), rmdir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wcfs-testserver: mount {}: {e}", mnt.display());
            std::process::exit(1)
        }
    };
    end_cleanly(set, &mnt, rmdir);
    if !real_shape {
        return wcfs_testkit::server::serve(srv, std::io::stdin().lock(), std::io::stdout());
    }
    if autoexit {
        srv.wait_autoexit(AUTOEXIT_IDLE, AUTOEXIT_FIRST);
        srv.unmount();
    } else {
        loop {
            std::thread::park(); // until a signal ends the process
        }
    }
}
