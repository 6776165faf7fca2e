//! The ends: close after going down, fork, send errors, the drain rule.

use alloc::string::String;
use alloc::vec::Vec;

use super::*;

#[test]
fn close_after_going_down_completes_at_once() {
    let mut t = T::new();
    t.open(F1, 1);
    t.c.abandon_link(Errno(110));
    t.drain();
    let op = t.c.close().unwrap();
    assert_eq!(t.c.poll_op(op), Some(Ok(OpOk::Done)));
    assert_eq!(t.drain(), NONE);
    assert_eq!(t.c.state(), ConnState::Closed);
    assert_eq!(t.c.close(), Err(Error::ConnClosed));
}

#[test]
fn fork_child_faults_everything_and_says_nothing() {
    let mut t = T::new();
    let f = t.open(F1, 1);
    t.mmap(f, 0, 1);
    let open2 = t.c.open(F2).unwrap();
    t.c.fork_child();
    let acts = t.drain();
    assert_eq!(sent(&acts), Vec::<String>::new());
    assert_eq!(acts.last(), Some(&Action::CloseLink));
    assert_all_fault(&t, &acts);
    assert_eq!(t.c.state(), ConnState::Forked);
    assert_eq!(t.c.poll_op(open2), Some(Err(Error::ConnClosed)));
    // Input after the fork belongs to the parent: nothing happens.
    t.c.handle_bytes(pin(2, F1, 0, "head").as_bytes());
    t.c.handle_eof();
    assert_eq!(t.drain(), NONE);
    t.c.check_invariants().unwrap();
}

#[test]
fn send_error_takes_the_connection_down_only_before_bye() {
    let mut t = T::new();
    t.open(F1, 1);
    t.c.handle_send_error(Errno(32));
    let acts = t.drain();
    assert_down(&t, &acts, &Error::Link(LinkError::Io(32)));
    assert_eq!(sent(&acts), Vec::<String>::new(), "no bye on a broken link");

    let mut t = T::new();
    t.open(F1, 1);
    let close = t.c.close().unwrap();
    t.drain();
    t.c.handle_send_error(Errno(32));
    assert_eq!(t.c.state(), ConnState::Closing);
    t.c.handle_link_error(Errno(104)); // the server's end, seen as a reset
    assert_eq!(t.drain(), [Action::CloseLink]);
    assert_eq!(t.c.poll_op(close), Some(Ok(OpOk::Done)));
    assert_eq!(t.c.state(), ConnState::Closed);
}

#[test]
fn a_blocking_action_is_polled_after_every_quick_one() {
    let mut q = Actions::with_capacity(4);
    q.push_back(Action::OpenHead {
        tok: Tok::Op(OpId(1)),
        oid: F1,
    });
    q.push_back(Action::Close(Fd(3)));
    q.push_back(Action::CloseLink);
    assert_eq!(q.pop_front(), Some(Action::Close(Fd(3))));
    assert_eq!(q.pop_front(), Some(Action::CloseLink));
    assert_eq!(
        q.pop_front(),
        Some(Action::OpenHead {
            tok: Tok::Op(OpId(1)),
            oid: F1
        })
    );
    assert_eq!(q.pop_front(), None);
    assert!(!q.overrun());
}

#[test]
fn a_second_blocking_action_before_a_drain_takes_the_connection_down() {
    let mut t = T::new();
    // Two opens started without draining in between: the driver broke the
    // drain contract, and the second `OpenHead` finds the slot taken.
    let op1 = t.c.open(F1).unwrap();
    assert_eq!(t.c.poll_op(op1), None);
    let op2 = t.c.open(F2).unwrap();
    assert_eq!(t.c.poll_op(op2), None);
    let acts = t.drain();
    assert!(
        acts.iter().all(|a| !a.is_blocking()),
        "no call into the mount once down: {acts:?}"
    );
    assert_eq!(t.c.state(), ConnState::Down);
    assert_eq!(t.c.down_reason(), Some(&Error::NotDrained));
    assert_eq!(t.c.poll_op(op1), Some(Err(Error::NotDrained)));
    assert_eq!(t.c.poll_op(op2), Some(Err(Error::NotDrained)));
}

#[test]
fn an_outcome_of_another_operation_takes_the_connection_down() {
    // Each blocking action of an open, handed back with an outcome it
    // cannot have: the connection goes down, a file the outcome carried is
    // closed, the op fails.
    let wrong = [
        Outcome::Done,
        Outcome::Mapped(0x1000),
        Outcome::Opened(
            Fd(7),
            Stat {
                size: 0,
                blksize: BS,
            },
        ),
    ];
    for o in wrong {
        let mut t = T::new();
        let op = t.c.open(F1).unwrap();
        assert_eq!(t.c.poll_op(op), None);
        let a = only(t.drain());
        assert!(matches!(a, Action::OpenHead { .. }));
        let acts = t.answer(&a, o);
        // (an Opened outcome is right for OpenHead: that one opens the file)
        if matches!(o, Outcome::Opened(..)) {
            assert_eq!(t.c.state(), ConnState::Up);
            continue;
        }
        assert_down(&t, &acts, &Error::BadCompletion(OsOp::OpenHead));
        assert_eq!(
            t.c.poll_op(op),
            Some(Err(Error::BadCompletion(OsOp::OpenHead)))
        );
    }
    // A wait for head/at answered with a file: the file is closed.
    let mut t = T::new();
    t.open(F1, 1);
    let op = t.c.resync(Tid(0x20)).unwrap();
    assert_eq!(t.c.poll_op(op), None);
    let a = only(t.drain());
    assert!(matches!(a, Action::WaitHeadAt { .. }));
    let acts = t.answer(
        &a,
        Outcome::Opened(
            Fd(9),
            Stat {
                size: 0,
                blksize: BS,
            },
        ),
    );
    assert!(acts.contains(&Action::Close(Fd(9))), "{acts:?}");
    assert_down(&t, &acts, &Error::BadCompletion(OsOp::WaitHeadAt));
}

#[test]
fn an_ops_action_handed_back_as_the_pins_takes_the_connection_down() {
    let mut t = T::new();
    let op = t.c.open(F1).unwrap();
    assert_eq!(t.c.poll_op(op), None);
    let a = only(t.drain());
    let Action::OpenHead { oid, .. } = a else {
        panic!("{a:?}")
    };
    let forged = Action::OpenHead { tok: Tok::Pin, oid };
    let acts = t.answer(&forged, opened(101, 1));
    assert_down(&t, &acts, &Error::BadCompletion(OsOp::OpenHead));
}
