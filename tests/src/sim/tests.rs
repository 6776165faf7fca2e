use wcfs_core::OsOp;
use wcfs_mock::user_op::UserOpKind;

use super::*;

/// Swarm testing: across seeds, every fault and every operation other
/// than reads and opens is left out of some runs and on in others; reads,
/// opens and some kind of mapping are always on; no faults when the run
/// may not inject them.
#[test]
fn swarm_leaves_things_out_of_some_runs() {
    let swarms: Vec<Swarm> = (0..500)
        .map(|seed| Swarm::draw(&mut Rng::new(seed), true))
        .collect();
    let weight = |s: &Swarm, k: UserOpKind| s.ops.iter().find(|o| o.0 == k).expect("kind").1;
    for k in UserOpKind::ALL {
        let on = swarms.iter().filter(|s| weight(s, k) > 0).count();
        match k {
            UserOpKind::Read | UserOpKind::Open => assert_eq!(on, swarms.len(), "{k:?}"),
            _ => assert!(on > 0 && on < swarms.len(), "{k:?} on in {on} runs"),
        }
    }
    assert!(swarms
        .iter()
        .all(|s| weight(s, UserOpKind::Mmap) + weight(s, UserOpKind::MmapAt) > 0));
    for f in Fault::ALL {
        let on = swarms.iter().filter(|s| s.faults.contains(&f)).count();
        assert!(on > 0 && on < swarms.len(), "{f:?} on in {on} runs");
    }
    let inject = |s: &Swarm| {
        s.steps
            .iter()
            .find(|x| x.0 == Step::Inject)
            .expect("inject")
            .1
    };
    assert!(swarms
        .iter()
        .all(|s| s.faults.is_empty() == (inject(s) == 0)));
    assert!((0..100).all(|seed| Swarm::draw(&mut Rng::new(seed), false).faults.is_empty()));
    // Some runs fail OS calls, some fail none; MapNew and Send among them.
    assert!(swarms.iter().any(|s| s.os_faults.is_empty()));
    for op in [OsOp::MapNew, OsOp::Send, OsOp::OpenHead, OsOp::WaitHeadAt] {
        assert!(swarms.iter().any(|s| s.os_faults.iter().any(|f| f.0 == op)));
    }
    let text = swarms[0].to_string();
    assert!(
        text.contains("Read ") && text.contains("ToClient "),
        "{text}"
    );
}

#[test]
fn weighted_never_picks_a_weightless_choice() {
    let mut rng = Rng::new(7);
    let mut seen = [0usize; 3];
    for _ in 0..3000 {
        let k = rng
            .weighted(&[(0usize, 1), (1, 0), (2, 2)])
            .expect("some weight");
        seen[k] += 1;
    }
    assert_eq!(seen[1], 0);
    assert!(seen[0] > 700 && seen[2] > 1700, "{seen:?}");
    assert_eq!(rng.weighted(&[(0u8, 0)]), None);
}
