//! Arbitrary incoming lines and local requests/answers against one `Link`,
//! checked against a shadow model: each server request is answered at most
//! once, each client request completes at most once, nothing is accepted
//! after the link is down.
#![no_main]
use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wcfs_core::link::{Incoming, Link};
use wcfs_core::wire::{Oid, Tid};

#[derive(Arbitrary, Debug)]
enum Op {
    Raw(Vec<u8>),
    Pin { stream: u8, blk: u8, head: bool },
    Reply { stream: u8, ok: bool },
    Watch(u8),
    Unwatch(u8),
    Answer { stream: u8, nak: bool },
    Bye,
    Eof,
}

fuzz_target!(|ops: Vec<Op>| {
    let mut l = Link::new();
    let mut pending: BTreeSet<u64> = BTreeSet::new();
    let mut unanswered: BTreeSet<u64> = BTreeSet::new();
    for op in ops {
        let was_down = l.down().is_some();
        let line = match &op {
            Op::Raw(b) => Some(b.clone()),
            Op::Pin { stream, blk, head } => Some(
                format!(
                    "{stream} pin {} #{blk} @{}",
                    Oid(1),
                    if *head { "head".to_string() } else { Tid(5).to_string() }
                )
                .into_bytes(),
            ),
            Op::Reply { stream, ok } => {
                Some(format!("{stream} {}", if *ok { "ok" } else { "error nope" }).into_bytes())
            }
            _ => None,
        };
        if let Some(line) = line {
            match l.recv(&line) {
                Ok(Incoming::Reply { stream, .. }) => {
                    assert!(!was_down, "accepted after down");
                    assert!(pending.remove(&stream), "reply to a stream not pending");
                }
                Ok(Incoming::Pin { stream, .. }) => {
                    assert!(!was_down, "accepted after down");
                    assert!(stream % 2 == 0 && stream != 0);
                    assert!(unanswered.insert(stream), "request on a stream in use");
                }
                Err(_) => {
                    assert!(l.down().is_some(), "an error takes the link down");
                }
            }
        }
        match op {
            Op::Watch(o) | Op::Unwatch(o) => {
                let r = if matches!(op, Op::Watch(_)) { l.watch(Oid(o.into()), Tid(9)) } else { l.unwatch(Oid(o.into())) };
                match r {
                    Ok((s, _)) => {
                        assert!(l.down().is_none() && !l.bye_sent());
                        assert!(s % 2 == 1 && pending.insert(s), "stream reused");
                    }
                    Err(_) => assert!(l.down().is_some() || l.bye_sent()),
                }
            }
            Op::Answer { stream, nak } => {
                let s = u64::from(stream);
                match l.answer(s, nak.then_some("no")) {
                    Ok(_) => assert!(!was_down && unanswered.remove(&s), "answered twice or never asked"),
                    Err(_) => assert!(l.down().is_some() || !unanswered.contains(&s)),
                }
            }
            Op::Bye => {
                let _ = l.bye();
            }
            Op::Eof => {
                let _ = l.eof();
                assert!(l.down().is_some());
            }
            _ => {}
        }
        if l.down().is_some() {
            pending.clear();
            unanswered.clear();
            assert_eq!(l.awaiting_reply(), 0);
            assert!(l.unanswered().is_empty());
        }
        assert_eq!(l.awaiting_reply(), pending.len());
        assert_eq!(l.unanswered().len(), unanswered.len());
    }
});
