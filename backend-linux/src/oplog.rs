//! What an operator wants to see, through the `log` crate (feature `log`,
//! off by default): a connection's pin thread starting and ending, the
//! connection going down and why, a pin that took longer than
//! [`set_slow_pin_threshold`] (10 ms unless set). Target `wcfs_linux`.
//!
//! Without the feature none of this is compiled: the driver's calls into
//! this module are `#[cfg(feature = "log")]` statements, and the state
//! keeps no field for it. With it, nothing is logged while the
//! connection's lock is held: a slow pin is noted in the state (a `u64`)
//! and logged by the pin thread once it let go of the lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::driver::Shared;

/// Pins handled in more than this many ns are logged (a warning).
static SLOW_PIN_NS: AtomicU64 = AtomicU64::new(10_000_000);

/// Pins whose handling (from reading the pin's line to writing its ack)
/// takes longer than `d` are logged as warnings, with their time. Applies
/// to every connection of the process, from the next pin on.
pub fn set_slow_pin_threshold(d: Duration) {
    let ns = d.as_nanos().min(u64::MAX as u128) as u64;
    SLOW_PIN_NS.store(ns, Ordering::Relaxed);
}

/// Whether a pin handled in `ns` is slow enough to be logged.
#[inline]
pub(crate) fn is_slow(ns: u64) -> bool {
    ns > SLOW_PIN_NS.load(Ordering::Relaxed)
}

fn who(sh: &Shared, at: wcfs_core::wire::Tid) -> String {
    format!("wcfs {}: conn{} @{at}", sh.wcfs.mountpoint.display(), sh.id)
}

pub(crate) fn pin_thread_started(sh: &Shared) {
    let at = sh.lock().core.at();
    log::debug!(target: "wcfs_linux", "{}: pin thread started", who(sh, at));
}

/// Logged by the pin thread, without the lock: `slow_ns`, the slowest pin
/// noted (`State::slow_pin_ns`) since the last call.
pub(crate) fn slow_pin(sh: &Shared, at: wcfs_core::wire::Tid, slow_ns: u64) {
    log::warn!(
        target: "wcfs_linux",
        "{}: slow pin: {:.3} ms from reading it to writing its ack (threshold {:.3} ms)",
        who(sh, at),
        slow_ns as f64 / 1e6,
        SLOW_PIN_NS.load(Ordering::Relaxed) as f64 / 1e6
    );
}

/// The pin thread's end, and how the connection stands: down (and why,
/// as a warning), closing or closed by its user.
pub(crate) fn pin_thread_ended(sh: &Shared) {
    let (at, state, why) = {
        let st = sh.lock();
        let why = st.core.down_reason().map(|e| e.to_string());
        (st.core.at(), st.core.state(), why)
    };
    let who = who(sh, at);
    match why {
        Some(why) => log::warn!(target: "wcfs_linux", "{who}: connection down: {why}"),
        None => log::debug!(target: "wcfs_linux", "{who}: connection {state:?}"),
    }
    log::debug!(target: "wcfs_linux", "{who}: pin thread ended");
}
