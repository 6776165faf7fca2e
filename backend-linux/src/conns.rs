//! Every connection of this process, for the handlers that act on all of
//! them: the fork handlers (`fork`) and the exit handler (`exit`), which
//! read it and are installed before the first connection is listed.

use std::sync::{Arc, Weak};

use spin::mutex::SpinMutex;
use spin::relax::Yield;

use crate::driver::Shared;

/// Every connection of this process (weak): pruned of ended ones at each
/// registration.
pub(crate) static CONNS: SpinMutex<Vec<Weak<Shared>>, Yield> = SpinMutex::new(Vec::new());

/// Lists a new connection.
pub(crate) fn register(sh: &Arc<Shared>) {
    let mut conns = CONNS.lock();
    conns.retain(|w| w.strong_count() > 0);
    conns.push(Arc::downgrade(sh));
}
