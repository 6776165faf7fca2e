//! Going down: naks, faults, OS refusals and the fault fallback.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::*;

#[test]
fn down_naks_queued_acks_and_unanswered_pins_and_says_bye() {
    let mut t = T::new();
    let f = t.open(F1, 4);
    let (m, addr) = t.mmap(f, 0, 4);
    // One read: an unpin (applied, its remap and ack queued), then a pin for
    // a file we do not watch. Nothing was drained in between.
    let input = [pin(2, F1, 1, "head"), pin(4, F2, 0, "head")].concat();
    assert_eq!(t.c.handle_bytes(input.as_bytes()), input.len());
    let acts = t.drain();
    let why = Error::UnexpectedPin(F2);
    assert_down(&t, &acts, &why);
    let lines = sent(&acts);
    let nak = format!("nak: {why}\n");
    assert_eq!(
        lines,
        [
            format!("2 {nak}"),
            format!("4 {nak}"),
            String::from("3 bye\n")
        ]
    );
    // The unpin's remap was dropped; the mapping faults instead.
    assert!(!acts.contains(&Action::MapFixed {
        addr: addr + BS as usize,
        len: BS as usize,
        src: Src::File {
            fd: Fd(101),
            offset: BS
        }
    }));
    assert!(t.c.mapping(m).unwrap().faulting);
    assert!(acts.contains(&Action::Close(Fd(101))));
}

#[test]
fn down_fails_every_op_and_closes_what_opens_late() {
    let mut t = T::new();
    let f = t.open(F1, 2);
    t.mmap(f, 0, 2);
    t.mmap(f, 1, 1);
    let open2 = t.c.open(F2).unwrap();
    assert_eq!(t.c.poll_op(open2), None);
    let open_head = only(t.drain());
    let resync = t.c.resync(Tid(0x20)).unwrap();
    let acts = t.feed("0 error: gone\n");
    let why = Error::Link(LinkError::Fatal(String::from("gone")));
    assert_down(&t, &acts, &why);
    assert_eq!(t.c.mappings().count(), 2);
    assert_eq!(t.c.poll_op(open2), Some(Err(why.clone())));
    assert_eq!(t.c.poll_op(resync), Some(Err(why.clone())));
    // The open that was under way returns its fd: closed at once.
    assert_eq!(t.answer(&open_head, opened(7, 1)), [Action::Close(Fd(7))]);
    // Nothing new starts; faulting mappings can still be released.
    assert_eq!(t.c.open(F1), Err(Error::ConnClosed));
    assert_eq!(t.c.mmap(f, 0, 1), Err(Error::FileClosed));
    let (m, mapping) = t.c.mappings().next().map(|(id, m)| (id, m.addr)).unwrap();
    t.c.unmap(m).unwrap();
    assert!(matches!(only(t.drain()), Action::Unmap { addr, .. } if addr == mapping));
}

#[test]
fn broken_link_goes_down_without_bye() {
    for (name, brk) in [
        ("eof", (|c: &mut Conn| c.handle_eof()) as fn(&mut Conn)),
        ("read error", |c| c.handle_link_error(Errno(104))),
        ("abandoned", |c| c.abandon_link(Errno(110))),
        ("eof in a line", |c| {
            assert_eq!(c.handle_bytes(b"2 pin"), 5);
            c.handle_eof()
        }),
    ] {
        let mut t = T::new();
        let f = t.open(F1, 1);
        t.mmap(f, 0, 1);
        brk(&mut t.c);
        let acts = t.drain();
        assert_eq!(sent(&acts), Vec::<String>::new(), "{name}");
        assert_eq!(t.c.state(), ConnState::Down, "{name}");
        assert_all_fault(&t, &acts);
    }
}

#[test]
fn protocol_error_goes_down_with_bye() {
    // The link itself still works: `bye` tells the server to end it.
    let mut t = T::new();
    t.open(F1, 1);
    let acts = t.feed("7 ok\n");
    assert_down(&t, &acts, &Error::Link(LinkError::UnexpectedReply(7)));
    assert_eq!(sent(&acts), ["3 bye\n"]);
    // The server's EOF after that changes nothing.
    t.c.handle_eof();
    assert_eq!(t.drain(), NONE);
    assert_eq!(t.c.state(), ConnState::Down);
}

#[test]
fn os_error_of_a_quick_action_takes_the_connection_down() {
    let mut t = T::new();
    let f = t.open(F1, 2);
    t.mmap(f, 0, 2);
    let unpin = pin(2, F1, 0, "head");
    assert_eq!(t.c.handle_bytes(unpin.as_bytes()), unpin.len());
    let remap = t.c.poll_action().unwrap();
    assert!(matches!(remap, Action::MapFixed { .. }));
    t.c.complete(&remap, Outcome::Failed(Errno(12)));
    let acts = t.drain();
    let why = Error::Os {
        call: OsOp::MapFixed,
        errno: Errno(12),
    };
    assert_down(&t, &acts, &why);
    // The ack queued after the failed remap became a nak.
    assert_eq!(sent(&acts), [format!("2 nak: {why}\n"), "3 bye\n".into()]);
}

#[test]
fn refused_fault_map_is_protected_in_place_first() {
    // Going down, the OS refuses to lay inaccessible memory over a
    // mapping: the range is protected in place before anything else runs.
    let mut t = T::new();
    let f = t.open(F1, 2);
    let (m, addr) = t.mmap(f, 0, 2);
    let (_, addr2) = t.mmap(f, 0, 1);
    assert_eq!(t.c.handle_bytes(b"7 ok\n"), 5);
    let fault = |addr, len| Action::MapFixed {
        addr,
        len,
        src: Src::Fault,
    };
    let mut first = None;
    while let Some(a) = t.c.poll_action() {
        if a == fault(addr, 2 * BS as usize) {
            first = Some(a);
            break;
        }
        t.c.complete(&a, Outcome::Done);
    }
    t.c.complete(&first.unwrap(), Outcome::Failed(Errno(12)));
    let acts = t.drain();
    assert_eq!(
        acts[0],
        Action::Protect {
            addr,
            len: 2 * BS as usize
        }
    );
    assert!(acts.contains(&fault(addr2, BS as usize)));
    let mapping = t.c.mapping(m).unwrap();
    assert!(mapping.faulting && !mapping.exposed);
    // The first error stands: the protocol one that took the link down.
    assert_eq!(
        t.c.down_reason(),
        Some(&Error::Link(LinkError::UnexpectedReply(7)))
    );
}

#[test]
fn refused_protect_marks_the_mapping_exposed() {
    let mut t = T::new();
    let f = t.open(F1, 1);
    let (m, addr) = t.mmap(f, 0, 1);
    let (m2, _) = t.mmap(f, 0, 1);
    // Going down faults every mapping; the OS refuses both ways for the
    // first one.
    assert_eq!(t.c.handle_bytes(b"7 ok\n"), 5);
    let mut refused = Vec::new();
    while let Some(a) = t.c.poll_action() {
        let o = match a {
            Action::MapFixed {
                addr: at,
                src: Src::Fault,
                ..
            }
            | Action::Protect { addr: at, .. }
                if at == addr =>
            {
                refused.push(a.op());
                Outcome::Failed(Errno(12))
            }
            _ => Outcome::Done,
        };
        t.c.complete(&a, o);
    }
    assert_eq!(refused, [OsOp::MapFixed, OsOp::Protect]);
    assert!(t.c.mapping(m).unwrap().exposed);
    assert!(!t.c.mapping(m2).unwrap().exposed);
    assert!(t.c.mappings().all(|(_, m)| m.faulting));
    assert_eq!(t.c.state(), ConnState::Down);
    t.c.check_invariants().unwrap();
    // Released like any other mapping.
    t.c.unmap(m).unwrap();
    assert!(matches!(only(t.drain()), Action::Unmap { addr: at, .. } if at == addr));
}

#[test]
fn refused_fault_map_of_a_released_caller_range_is_protected() {
    // After `unmap` of a caller's range the core keeps no record; the
    // fallback still protects the range (and the down connection stays so).
    let mut t = T::new();
    let f = t.open(F1, 1);
    let op = t.c.mmap_at(f, 0, 1, 0x7000_0000, BS as usize).unwrap();
    t.drain();
    let Some(Ok(OpOk::Mapped(m))) = t.c.poll_op(op) else {
        panic!("mmap_at")
    };
    t.c.unmap(m).unwrap();
    let a = t.c.poll_action().unwrap();
    t.c.complete(&a, Outcome::Failed(Errno(12)));
    assert_eq!(
        t.c.poll_action(),
        Some(Action::Protect {
            addr: 0x7000_0000,
            len: BS as usize
        })
    );
}

#[test]
fn unmap_learns_of_its_own_refusal_only() {
    let mut t = T::new();
    let f = t.open(F1, 2);
    let (m1, a1) = t.mmap(f, 0, 1);
    let (m2, _) = t.mmap(f, 1, 1);
    let (m3, _) = t.mmap(f, 0, 2);
    // Nothing refused: nothing to learn.
    t.c.unmap(m3).unwrap();
    t.drain();
    assert_eq!(t.c.take_unmap_refusal(), None);
    // The OS refuses this unmap's munmap: it learns of it, once.
    t.c.unmap(m1).unwrap();
    let a = t.c.poll_action().unwrap();
    let len = BS as usize;
    assert_eq!(a, Action::Unmap { addr: a1, len });
    let enomem = Errno(12);
    t.c.complete(&a, Outcome::Failed(enomem));
    t.drain();
    let why = Error::Os {
        call: OsOp::Unmap,
        errno: enomem,
    };
    assert_eq!(t.c.take_unmap_refusal(), Some(why.clone()));
    assert_eq!(t.c.take_unmap_refusal(), None, "told once");
    assert_eq!(t.c.down_reason(), Some(&why));
    // Down already: a later unmap's refusal is not its own news.
    t.c.unmap(m2).unwrap();
    while let Some(a) = t.c.poll_action() {
        t.c.complete(&a, Outcome::Failed(enomem));
    }
    assert_eq!(t.c.take_unmap_refusal(), None);
    t.c.check_invariants().unwrap();
}
