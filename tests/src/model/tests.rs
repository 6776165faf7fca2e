use super::*;

const F: Oid = Oid(1);

fn cfg(pin_rev: PinRevChoice) -> ModelConfig {
    ModelConfig {
        pin_rev,
        ..ModelConfig::new("test://", 16)
    }
}

fn sent(m: &mut Model) -> Vec<String> {
    let mut v = Vec::new();
    while let Some(o) = m.poll_output() {
        match o {
            Output::Send { line, .. } => v.push(line),
            Output::Close { .. } => v.push("<close>".into()),
            Output::ClientFailed { reason, .. } => v.push(format!("<failed: {reason}>")),
            Output::ReadReady { read } => v.push(format!("<ready {read}>")),
            Output::Invalidate { .. } => {}
        }
    }
    v
}

fn recv(m: &mut Model, l: LinkId, line: &str) -> Vec<String> {
    m.link_recv(l, line.as_bytes());
    sent(m)
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[test]
fn verbatim_errors_and_frames() {
    let head = Tid(0x040d3dfb3836f121);
    let mut m = Model::new_at(
        ModelConfig {
            history: 0,
            ..cfg(PinRevChoice::Exact)
        },
        Tid(0x040d3dfb3836f000),
    );
    m.commit_at(head.0, &[(F, 0, b("a"))]).unwrap();
    m.commit_at(0x040d3dfb3836f122, &[(F, 0, b("b"))]).unwrap();
    sent(&mut m);
    let l = m.link_open();
    assert_eq!(
        recv(&mut m, l, "1 watch 0000000000000001 @040d3dfb3836f122"),
        ["1 error setup watch f<0000000000000001> @040d3dfb3836f122: file not yet known to wcfs or is not a ZBigFile"]
    );
    m.open_head(F).unwrap();
    assert_eq!(
        recv(&mut m, l, "3 watch 0000000000000001 @040d3dfb3836f121"),
        ["3 error setup watch f<0000000000000001> @040d3dfb3836f121: too far away back from head/at (@040d3dfb3836f122); δt = 14ns"]
    );
    assert_eq!(
        recv(&mut m, l, "5 watch 0000000000000001 @040d3dfb3836f122"),
        ["5 ok"]
    );
    assert_eq!(
        recv(&mut m, l, "5 watch 0000000000000001 @040d3dfb3836f121"),
        ["5 error setup watch f<0000000000000001> @040d3dfb3836f121: going back in history is forbidden"]
    );
    assert_eq!(
        recv(&mut m, l, "1 watch 01 @040d3dfb3836f122"),
        ["1 error bad watch: invalid oid"]
    );
    assert_eq!(
        recv(&mut m, l, "1 watch 0000000000000001 @zz"),
        ["1 error bad watch: invalid at"]
    );
    assert_eq!(
        recv(&mut m, l, "1 hello"),
        ["1 error bad watch: not a watch request: \"hello\""]
    );
    assert_eq!(recv(&mut m, l, "7 watch 0000000000000001 -"), ["7 ok"]);
    assert_eq!(
        recv(&mut m, l, "7 watch 0000000000000002 -"),
        ["7 ok"],
        "also when not watching"
    );
    assert_eq!(
        recv(&mut m, l, "hello"),
        ["0 error: invalid frame: \"hello\\n\"", "<close>"]
    );
    let l = m.link_open();
    assert_eq!(
        recv(&mut m, l, "2 watch 0000000000000001 @040d3dfb3836f122"),
        ["0 error: 2: reply on unexpected stream", "<close>"]
    );
    let l = m.link_open();
    assert_eq!(recv(&mut m, l, "11 bye"), ["<close>"]);
}

#[test]
fn recorded_setup_lazy_pin_and_move_forward() {
    // PROTOCOL section 4: pins during setup, a lazy pin, unpins when moving forward.
    let (a, w, c) = (
        Tid(0x040d3dfb078a3c22),
        Tid(0x040d3dfb08ebeb99),
        Tid(0x040d3dfb0a880eee),
    );
    let mut m = Model::new_at(cfg(PinRevChoice::Exact), Tid(0x040d3dfb00000000));
    m.commit_at(a.0, &[(F, 0, b("a0")), (F, 1, b("a1")), (F, 2, b("a2"))])
        .unwrap();
    m.commit_at(c.0, &[(F, 0, b("c0")), (F, 1, b("c1")), (F, 2, b("c2"))])
        .unwrap();
    m.open_head(F).unwrap();
    for blk in [0, 2] {
        assert!(matches!(m.read_head(F, blk), HeadRead::Ready(_)));
    }
    sent(&mut m);
    let l = m.link_open();
    assert_eq!(
        recv(&mut m, l, &format!("1 watch {F} @{w}")),
        [format!("2 pin {F} #0 @{a}"), format!("4 pin {F} #2 @{a}")]
    );
    assert!(!m.can_commit(), "setup holds the head lock");
    assert_eq!(m.commit(&[(F, 0, b("x"))]), Err(CommitError::Busy));
    assert!(recv(&mut m, l, "2 ack").is_empty());
    assert_eq!(recv(&mut m, l, "4 ack"), ["1 ok"]);
    // Lazy pin on a head read of #1.
    let HeadRead::Wait(r) = m.read_head(F, 1) else {
        panic!("must wait")
    };
    assert_eq!(sent(&mut m), [format!("6 pin {F} #1 @{a}")]);
    assert_eq!(m.take_read(r), None);
    assert_eq!(recv(&mut m, l, "6 ack"), [format!("<ready {r}>")]);
    assert_eq!(&m.take_read(r).unwrap()[..2], b"c1");
    assert_eq!(m.pinned(l, F).len(), 3);
    // Move forward: unpins.
    assert_eq!(
        recv(&mut m, l, &format!("3 watch {F} @{c}")),
        [
            format!("8 pin {F} #0 @head"),
            format!("10 pin {F} #1 @head"),
            format!("12 pin {F} #2 @head")
        ]
    );
    recv(&mut m, l, "8 ack");
    recv(&mut m, l, "10 ack");
    assert_eq!(recv(&mut m, l, "12 ack"), ["3 ok"]);
    assert!(m.pinned(l, F).is_empty());
    assert!(m.can_commit());
}

#[test]
fn nak_fails_the_client_and_close_releases_waits() {
    let mut m = Model::new(cfg(PinRevChoice::Oldest));
    let at1 = m.commit(&[(F, 0, b("a"))]).unwrap();
    m.commit(&[(F, 0, b("b"))]).unwrap();
    m.open_head(F).unwrap();
    let l1 = m.link_open();
    let l2 = m.link_open();
    recv(&mut m, l1, &format!("1 watch {F} @{at1}"));
    recv(&mut m, l2, &format!("1 watch {F} @{at1}"));
    let HeadRead::Wait(r) = m.read_head(F, 0) else {
        panic!()
    };
    assert_eq!(sent(&mut m).len(), 2);
    let l3 = m.link_open();
    assert_eq!(m.links_awaiting_ack(), [l1, l2]);
    assert!(m.awaits_ack(l1) && m.awaits_ack(l2) && !m.awaits_ack(l3));
    assert_eq!(
        recv(&mut m, l1, "2 nak: cannot"),
        ["<failed: cannot>", "<close>"]
    );
    assert_eq!(m.links_awaiting_ack(), [l2], "a failed link's pins go");
    m.link_close(l2);
    assert!(m.links_awaiting_ack().is_empty());
    assert_eq!(sent(&mut m), [format!("<ready {r}>")]);
    assert!(m.can_commit());
    m.pin_timeout(l2);
    assert!(sent(&mut m).is_empty(), "closed links are not timed out");
}

#[test]
fn watch_in_the_future_waits_for_head() {
    let mut m = Model::new(cfg(PinRevChoice::Exact));
    m.commit(&[(F, 0, b("a"))]).unwrap();
    m.open_head(F).unwrap();
    let l = m.link_open();
    let future = Tid(m.head().0 + TID_STEP);
    assert!(recv(&mut m, l, &format!("1 watch {F} @{future}")).is_empty());
    m.commit(&[(F, 1, b("b"))]).unwrap();
    assert_eq!(sent(&mut m), ["1 ok"]);
    assert_eq!(m.watch_at(l, F), Some(future));
}

/// Every pin names a revision <= at whose data is the data as of at.
#[test]
fn pins_name_valid_revisions() {
    for (seed, choice) in (0..60u64).map(|s| {
        (
            s,
            [
                PinRevChoice::Exact,
                PinRevChoice::Oldest,
                PinRevChoice::Seeded(s),
            ][s as usize % 3],
        )
    }) {
        let mut m = Model::new(cfg(choice));
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut rnd = |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        let mut revs = vec![m.commit(&[(F, 0, b("init"))]).unwrap()];
        for i in 0..8 {
            let blk = rnd(5);
            revs.push(m.commit(&[(F, blk, format!("v{i}").into_bytes())]).unwrap());
        }
        m.open_head(F).unwrap();
        for blk in 0..5 {
            let _ = m.read_head(F, blk);
        }
        sent(&mut m);
        let at = revs[rnd(revs.len() as u64) as usize];
        let l = m.link_open();
        m.link_recv(l, format!("1 watch {F} @{at}").as_bytes());
        for line in sent(&mut m) {
            if let Some(rest) = line.split_once(" pin ").map(|x| x.1) {
                let parts: Vec<&str> = rest.split(' ').collect();
                let blk: u64 = parts[1][1..].parse().unwrap();
                let rev = Tid::parse(&parts[2][1..]).unwrap();
                assert!(rev <= at, "seed {seed}: pin after at");
                assert_eq!(
                    m.data(F, rev, blk),
                    m.data(F, at, blk),
                    "seed {seed}: wrong data"
                );
                assert_ne!(
                    m.data(F, m.head(), blk),
                    m.data(F, at, blk),
                    "seed {seed}: needless pin"
                );
            }
        }
    }
}

#[test]
fn reference_scenario_pins() {
    // PROTOCOL section 7 at the model level: what the client's pinned becomes.
    let mut m = Model::new(cfg(PinRevChoice::Exact));
    m.commit(&[(F, 0, b("")), (F, 1, b(""))]).unwrap();
    let at1 = m.commit(&[(F, 2, b("c1")), (F, 3, b("d1"))]).unwrap();
    let at2 = m.commit(&[(F, 2, b("c2"))]).unwrap();
    m.open_head(F).unwrap();
    let l = m.link_open();
    assert_eq!(recv(&mut m, l, &format!("1 watch {F} @{at1}")), ["1 ok"]);
    let HeadRead::Wait(_) = m.read_head(F, 2) else {
        panic!()
    };
    assert_eq!(sent(&mut m), [format!("2 pin {F} #2 @{at1}")]);
    recv(&mut m, l, "2 ack");
    assert!(matches!(m.read_head(F, 3), HeadRead::Ready(_)));
    let at3 = m.commit(&[(F, 3, b("d3")), (F, 4, b("e3"))]).unwrap();
    let HeadRead::Wait(_) = m.read_head(F, 3) else {
        panic!()
    };
    assert_eq!(sent(&mut m), [format!("4 pin {F} #3 @{at1}")]);
    recv(&mut m, l, "4 ack");
    assert_eq!(m.pinned(l, F), BTreeMap::from([(2, at1), (3, at1)]));
    // resync(at2): #2 unpinned, #3 stays.
    assert_eq!(
        recv(&mut m, l, &format!("3 watch {F} @{at2}")),
        [format!("6 pin {F} #2 @head")]
    );
    assert_eq!(recv(&mut m, l, "6 ack"), ["3 ok"]);
    assert_eq!(m.pinned(l, F), BTreeMap::from([(3, at1)]));
    // resync(at3): nothing pinned.
    assert_eq!(
        recv(&mut m, l, &format!("5 watch {F} @{at3}")),
        [format!("8 pin {F} #3 @head")]
    );
    assert_eq!(recv(&mut m, l, "8 ack"), ["5 ok"]);
    assert!(m.pinned(l, F).is_empty());
}

/// PROTOCOL section 5, "Files can shrink": the four observations.
#[test]
fn deleting_the_last_blocks_shrinks_head() {
    let mut m = Model::new(cfg(PinRevChoice::Exact));
    let t0 = m
        .commit(&[
            (F, 0, b("a")),
            (F, 1, b("b")),
            (F, 2, b("c")),
            (F, 3, b("d")),
        ])
        .unwrap();
    m.open_head(F).unwrap();
    for blk in 0..4 {
        assert!(matches!(m.read_head(F, blk), HeadRead::Ready(_)));
    }
    sent(&mut m);
    let l = m.link_open();
    assert_eq!(recv(&mut m, l, &format!("1 watch {F} @{t0}")), ["1 ok"]);

    let t1 = m.commit_changes(&[Change::DeleteFrom(F, 3)]).unwrap();
    assert_eq!(m.size(F, t0), Some(64));
    assert_eq!(m.size(F, t1), Some(48));
    assert_eq!(m.data(F, t1, 3), vec![0; 16]);
    assert!(sent(&mut m).is_empty(), "no pin for the deleted block");
    assert!(matches!(m.read_head(F, 3), HeadRead::Ready(d) if d == vec![0; 16]));
    assert!(
        sent(&mut m).is_empty(),
        "a read past head's end pins nobody"
    );
    assert_eq!(
        recv(&mut m, l, &format!("3 watch {F} @{t1}")),
        ["3 ok"],
        "re-watching at the new head: no pin or unpin"
    );

    let l2 = m.link_open();
    assert_eq!(
        recv(&mut m, l2, &format!("1 watch {F} @{t0}")),
        [format!("2 pin {F} #3 @{t0}")],
        "a new watch at an older at pins the deleted block at setup"
    );
    assert_eq!(recv(&mut m, l2, "2 ack"), ["1 ok"]);

    let t2 = m.commit(&[(F, 3, b("d2"))]).unwrap();
    assert_eq!(m.size(F, t2), Some(64));
    assert!(sent(&mut m).is_empty(), "growing back pins nobody");
    assert_eq!(&m.data(F, t2, 3)[..2], b"d2");

    // A deleted block that is not written again reads as a hole.
    m.commit_changes(&[Change::DeleteFrom(F, 2)]).unwrap();
    let t4 = m.commit(&[(F, 3, b("e"))]).unwrap();
    assert_eq!(m.data(F, t4, 2), vec![0; 16]);
    assert_eq!(
        m.commit_changes(&[Change::DeleteFrom(Oid(9), 0)]),
        Err(CommitError::BadBlock),
        "no deletion in a file that does not exist"
    );
}

#[test]
fn go_formats() {
    assert_eq!(go_duration(14), "14ns");
    assert_eq!(go_duration(1_500), "1.5µs");
    assert_eq!(go_duration(3_200_000), "3.2ms");
    assert_eq!(go_duration(62_500_000_000), "1m2.5s");
    assert_eq!(go_quote(b"hello\n"), "\"hello\\n\"");
    assert_eq!(go_quote(b"a\"b\xff"), "\"a\\\"b\\xff\"");
}
