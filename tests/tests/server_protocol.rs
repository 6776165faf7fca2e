//! The FUSE test server answers as the real server does: layout, and every
//! exchange recorded in PROTOCOL section 4, over a real `head/watch` fd.
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;

use wcfs_core::wire::{Oid, Tid};
use wcfs_testkit::model::{Model, ModelConfig};
use wcfs_testkit::require_fuse;
use wcfs_testkit::server::{temp_mountpoint, TestServer, WcfsServer};

const F: Oid = Oid(1);

fn cfg() -> ModelConfig {
    ModelConfig::new("zeo://localhost:9001", 4096)
}

fn temp_mount(model: Model) -> TestServer {
    let dir = temp_mountpoint("proto").unwrap();
    TestServer::mount_model(&dir, model, true).unwrap()
}

struct Watch {
    rx: BufReader<std::fs::File>,
    tx: std::fs::File,
}

impl Watch {
    fn open(srv: &TestServer) -> Watch {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(srv.mountpoint().join("head/watch"))
            .unwrap();
        Watch {
            rx: BufReader::new(f.try_clone().unwrap()),
            tx: f,
        }
    }
    fn send(&mut self, line: &str) {
        self.tx.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    fn recv(&mut self) -> String {
        let mut l = String::new();
        self.rx.read_line(&mut l).unwrap();
        l.trim_end_matches('\n').to_string()
    }
    fn exchange(&mut self, line: &str) -> String {
        self.send(line);
        self.recv()
    }
    fn eof(&mut self) -> bool {
        let mut b = [0u8; 1];
        self.rx.read(&mut b).unwrap() == 0
    }
}

#[test]
fn layout() {
    require_fuse!();
    let srv = TestServer::start_temp(cfg()).unwrap();
    let at1 = srv.commit(&[(F, 0, b"hello".to_vec()), (F, 2, b"world".to_vec())]);
    let at2 = srv.commit(&[(F, 0, b"HELLO".to_vec())]);
    let m = srv.mountpoint();
    assert_eq!(
        std::fs::read_to_string(m.join("head/at")).unwrap(),
        at2.to_string()
    );
    assert_eq!(
        std::fs::read_to_string(m.join(".wcfs/zurl")).unwrap(),
        "zeo://localhost:9001"
    );
    assert_eq!(
        std::fs::read_to_string(m.join(".wcfs/pintimeout")).unwrap(),
        "30.0"
    );
    let head = m.join(format!("head/bigfile/{F}"));
    let md = std::fs::metadata(&head).unwrap();
    assert_eq!((md.size(), md.blksize()), (3 * 4096, 4096));
    let data = std::fs::read(&head).unwrap();
    assert_eq!(&data[..5], b"HELLO");
    assert_eq!(&data[2 * 4096..2 * 4096 + 5], b"world");
    let rev = std::fs::read(m.join(format!("@{at1}/bigfile/{F}"))).unwrap();
    assert_eq!(&rev[..5], b"hello");
    assert_eq!(
        rev,
        srv.with_model(|md| (0..3).flat_map(|b| md.data(F, at1, b)).collect::<Vec<u8>>())
    );
    let root: Vec<String> = std::fs::read_dir(m)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(root.contains(&"head".to_string()) && root.contains(&".wcfs".to_string()));
    assert!(
        !root.iter().any(|n| n.starts_with('@')),
        "@rev dirs are not listed: {root:?}"
    );
    assert!(
        std::fs::metadata(m.join("@0000000000000001")).is_err(),
        "unknown revision"
    );
    let files: Vec<String> = std::fs::read_dir(m.join("head/bigfile"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, [F.to_string()]);
    srv.unmount();
}

#[test]
fn recorded_exchanges() {
    require_fuse!();
    let head = Tid(0x040d3dfb3836f122);
    let mut model = Model::new_at(
        ModelConfig {
            history: 0,
            ..cfg()
        },
        Tid(0x040d3dfb3836f000),
    );
    model
        .commit_at(0x040d3dfb3836f121, &[(F, 0, b"a".to_vec())])
        .unwrap();
    model.commit_at(head.0, &[(F, 0, b"b".to_vec())]).unwrap();
    let srv = temp_mount(model);
    let mut w = Watch::open(&srv);
    assert_eq!(
        w.exchange("1 watch 0000000000000001 @040d3dfb3836f122"),
        "1 error setup watch f<0000000000000001> @040d3dfb3836f122: file not yet known to wcfs or is not a ZBigFile"
    );
    let _f = std::fs::File::open(srv.mountpoint().join(format!("head/bigfile/{F}"))).unwrap();
    assert_eq!(
        w.exchange("5 watch 0000000000000001 @040d3dfb3836f122"),
        "5 ok"
    );
    assert_eq!(
        w.exchange("5 watch 0000000000000001 @040d3dfb3836f121"),
        "5 error setup watch f<0000000000000001> @040d3dfb3836f121: going back in history is forbidden"
    );
    assert_eq!(w.exchange("7 watch 0000000000000001 -"), "7 ok");
    assert_eq!(
        w.exchange("3 watch 0000000000000001 @040d3dfb3836f121"),
        "3 error setup watch f<0000000000000001> @040d3dfb3836f121: too far away back from head/at (@040d3dfb3836f122); δt = 14ns"
    );
    assert_eq!(
        w.exchange("1 watch 01 @040d3dfb3836f122"),
        "1 error bad watch: invalid oid"
    );
    assert_eq!(
        w.exchange("1 watch 0000000000000001 @zz"),
        "1 error bad watch: invalid at"
    );
    assert_eq!(
        w.exchange("1 hello"),
        "1 error bad watch: not a watch request: \"hello\""
    );
    assert_eq!(
        w.exchange("7 watch 0000000000000001 -"),
        "7 ok",
        "also when not watching"
    );
    assert_eq!(w.exchange("hello"), "0 error: invalid frame: \"hello\\n\"");
    assert!(w.eof(), "the server closes the link after a fatal error");

    let mut w = Watch::open(&srv);
    assert_eq!(
        w.exchange("2 watch 0000000000000001 @040d3dfb3836f122"),
        "0 error: 2: reply on unexpected stream"
    );
    assert!(w.eof());
    let mut w = Watch::open(&srv);
    w.send("11 bye");
    assert!(w.eof(), "bye: the server closes the link");
}

#[test]
fn setup_pins_lazy_pin_and_move_forward() {
    require_fuse!();
    let srv = TestServer::start_temp(cfg()).unwrap();
    let a = srv.commit(&[
        (F, 0, b"a0".to_vec()),
        (F, 1, b"a1".to_vec()),
        (F, 2, b"a2".to_vec()),
    ]);
    let w_at = a;
    let path = srv.mountpoint().join(format!("head/bigfile/{F}"));
    let c = srv.commit(&[
        (F, 0, b"c0".to_vec()),
        (F, 1, b"c1".to_vec()),
        (F, 2, b"c2".to_vec()),
    ]);
    // #0 and #2 were read through head (they are in the page cache).
    let f = std::fs::File::open(&path).unwrap();
    let mut buf = vec![0u8; 3 * 4096];
    use std::os::unix::fs::FileExt;
    f.read_exact_at(&mut buf[..4096], 0).unwrap();
    f.read_exact_at(&mut buf[..4096], 2 * 4096).unwrap();
    let mut w = Watch::open(&srv);
    w.send(&format!("1 watch {F} @{w_at}"));
    assert_eq!(w.recv(), format!("2 pin {F} #0 @{a}"));
    w.send("2 ack");
    assert_eq!(w.recv(), format!("4 pin {F} #2 @{a}"));
    w.send("4 ack");
    assert_eq!(w.recv(), "1 ok");

    // A read of #1 blocks until the pin for it is acked.
    let p2 = path.clone();
    let reader = std::thread::spawn(move || {
        let f = std::fs::File::open(p2).unwrap();
        let mut b = [0u8; 2];
        f.read_exact_at(&mut b, 4096).unwrap();
        b
    });
    assert_eq!(w.recv(), format!("6 pin {F} #1 @{a}"));
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!reader.is_finished(), "the read waits for the ack");
    w.send("6 ack");
    assert_eq!(&reader.join().unwrap(), b"c1");

    w.send(&format!("3 watch {F} @{c}"));
    let mut unpins = Vec::new();
    for _ in 0..3 {
        let l = w.recv();
        let s = l.split(' ').next().unwrap().to_string();
        unpins.push(l.split_once(' ').unwrap().1.to_string());
        w.send(&format!("{s} ack"));
    }
    unpins.sort();
    assert_eq!(unpins, [0, 1, 2].map(|b| format!("pin {F} #{b} @head")));
    assert_eq!(w.recv(), "3 ok");
    drop(f);
}

#[test]
fn nak_and_timeout_are_reported_and_close_the_link() {
    require_fuse!();
    use std::os::unix::fs::FileExt;
    let srv = TestServer::start_temp(ModelConfig {
        pintimeout_secs: 0.3,
        ..cfg()
    })
    .unwrap();
    let init: Vec<(Oid, u64, Vec<u8>)> = (0..10).map(|b| (F, b, b"a".to_vec())).collect();
    let a = srv.commit(&init);
    let path = srv.mountpoint().join(format!("head/bigfile/{F}"));
    let _keep = std::fs::File::open(&path).unwrap();
    let read_blk = |blk: u64| {
        let p = path.clone();
        std::thread::spawn(move || {
            let mut b = [0u8; 1];
            std::fs::File::open(p)
                .unwrap()
                .read_exact_at(&mut b, blk * 4096)
                .unwrap();
            b
        })
    };
    let mut w1 = Watch::open(&srv);
    assert_eq!(w1.exchange(&format!("1 watch {F} @{a}")), "1 ok");
    srv.commit(&[(F, 4, b"B".to_vec())]);
    let r = read_blk(4);
    assert_eq!(w1.recv(), format!("2 pin {F} #4 @{a}"));
    w1.send("2 nak: out of memory");
    assert_eq!(
        &r.join().unwrap(),
        b"B",
        "the read goes on once the failing client is gone"
    );
    assert!(w1.eof());
    assert!(srv.failures().iter().any(|(_, why)| why == "out of memory"));

    // A client that never acks is timed out.
    let mut w2 = Watch::open(&srv);
    w2.send(&format!("1 watch {F} @{a}"));
    assert_eq!(
        w2.recv(),
        format!("2 pin {F} #4 @{a}"),
        "#4 was read: pinned at setup"
    );
    w2.send("2 ack");
    assert_eq!(w2.recv(), "1 ok");
    srv.commit(&[(F, 8, b"C".to_vec())]);
    let r = read_blk(8);
    assert_eq!(w2.recv(), format!("4 pin {F} #8 @{a}"));
    assert_eq!(&r.join().unwrap(), b"C");
    assert!(w2.eof());
    assert!(srv.failures().iter().any(|(_, why)| why == "pin timeout"));
}

#[test]
fn unmounts_on_drop_after_a_panic() {
    require_fuse!();
    let srv = TestServer::start_temp(cfg()).unwrap();
    let m = srv.mountpoint().to_path_buf();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _s = srv;
        panic!("test failure");
    }));
    assert!(r.is_err());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(m.to_str().unwrap()), "still mounted");
}

/// PROTOCOL section 5, "Files can shrink", with the real server's 2 MiB
/// blocks and the four observations of issue 14: the head file shrinks and
/// `@rev` files keep their size; a watcher already at the old `at` gets no
/// pin for the deleted block, and re-watching at the new `at` is a bare
/// `ok`; a new watch at the old `at` after the deletion pins it at setup;
/// appending it again grows head back with no pin to anyone.
#[test]
fn deleting_the_last_block_shrinks_head() {
    use wcfs_testkit::model::Change;
    require_fuse!();
    const BS: u64 = 2 * 1024 * 1024;
    let srv = TestServer::start_temp(ModelConfig {
        blksize: BS,
        ..cfg()
    })
    .unwrap();
    let t0 = srv.commit(&[
        (F, 0, b"b0".to_vec()),
        (F, 1, b"b1".to_vec()),
        (F, 2, b"b2".to_vec()),
        (F, 3, b"b3".to_vec()),
    ]);
    let m = srv.mountpoint();
    let head = m.join(format!("head/bigfile/{F}"));
    let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().size();
    assert_eq!(size(&head), 8388608);
    // Every block read through head.
    let data = std::fs::read(&head).unwrap();
    assert_eq!(data.len(), 8388608);
    assert_eq!(&data[3 * BS as usize..3 * BS as usize + 2], b"b3");
    let mut w1 = Watch::open(&srv);
    assert_eq!(w1.exchange(&format!("1 watch {F} @{t0}")), "1 ok");
    // An unwatch of a file not watched answers `ok` at once: the next line
    // proves no pin was queued before it.
    let probe = |w: &mut Watch, stream: u32| {
        assert_eq!(
            w.exchange(&format!("{stream} watch 0000000000000002 -")),
            format!("{stream} ok"),
            "no pin before the reply"
        );
    };

    let t1 = srv.commit_changes(&[Change::DeleteFrom(F, 3)]);
    assert_eq!(size(&head), 6291456, "head shrank");
    assert_eq!(size(&m.join(format!("@{t0}/bigfile/{F}"))), 8388608);
    assert_eq!(size(&m.join(format!("@{t1}/bigfile/{F}"))), 6291456);
    let data = std::fs::read(&head).unwrap();
    assert_eq!(data.len(), 6291456, "blocks 0..3 read through head again");
    probe(&mut w1, 3);
    assert_eq!(
        w1.exchange(&format!("5 watch {F} @{t1}")),
        "5 ok",
        "re-watching at the new at: no pin or unpin"
    );

    let mut w2 = Watch::open(&srv);
    assert_eq!(
        w2.exchange(&format!("1 watch {F} @{t0}")),
        format!("2 pin {F} #3 @{t0}"),
        "a new watch at the old at pins the deleted block at setup"
    );
    assert_eq!(w2.exchange("2 ack"), "1 ok");

    let t2 = srv.commit(&[(F, 3, b"c3".to_vec())]);
    assert_eq!(size(&head), 8388608, "head grew back");
    assert_eq!(size(&m.join(format!("@{t2}/bigfile/{F}"))), 8388608);
    probe(&mut w1, 7);
    probe(&mut w2, 3);
    drop((w1, w2));
    let data = std::fs::read(&head).unwrap();
    assert_eq!(&data[3 * BS as usize..3 * BS as usize + 2], b"c3");
    let old = std::fs::read(m.join(format!("@{t0}/bigfile/{F}"))).unwrap();
    assert_eq!(&old[3 * BS as usize..3 * BS as usize + 2], b"b3");
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
    srv.unmount();
}

/// The control protocol of `wcfs-testserver` (`serve`): `commit`, `commitx`
/// with a `-` deletion, `delete`, and refusals that leave the server up.
#[test]
fn control_commands_commit_and_delete() {
    require_fuse!();
    let srv = TestServer::start_temp(cfg()).unwrap();
    let head = srv.mountpoint().join(format!("head/bigfile/{F}"));
    let (in_r, mut in_w) = std::io::pipe().unwrap();
    let (out_r, out_w) = std::io::pipe().unwrap();
    let server =
        std::thread::spawn(move || wcfs_testkit::server::serve(srv, BufReader::new(in_r), out_w));
    let mut out = BufReader::new(out_r);
    let mut ready = String::new();
    out.read_line(&mut ready).unwrap();
    assert!(ready.starts_with("ready "), "{ready}");
    let mut call = |cmd: &str| {
        writeln!(in_w, "{cmd}").unwrap();
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        l.trim_end().to_string()
    };
    let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().size();
    assert!(call("head").starts_with("ok "));
    let t1 = call(&format!("commit {F} 3 hello"));
    assert!(t1.starts_with("ok "), "{t1}");
    assert_eq!(size(&head), 4 * 4096);
    let t2 = call(&format!("delete {F} 2"));
    assert!(t2.starts_with("ok ") && t2 > t1, "{t2}");
    assert_eq!(size(&head), 2 * 4096);
    let r = call(&format!("commitx {F} 1 6869 {F} 1 -"));
    assert!(r.starts_with("ok "), "{r}");
    assert_eq!(size(&head), 4096, "deletions apply in order");
    let r = call(&format!("commitx {F} 2 6869"));
    assert!(r.starts_with("ok "), "{r}");
    assert_eq!(size(&head), 3 * 4096, "grows back");
    assert_eq!(
        call("delete 0000000000000009 0"),
        "error commit refused: BadBlock",
        "no such file"
    );
    assert_eq!(
        call(&format!("delete {F}")),
        "error usage: delete <oid-hex16> <blk>"
    );
    assert!(call("head").starts_with("ok "), "still serving");
    writeln!(in_w, "quit").unwrap();
    server.join().unwrap();
}
