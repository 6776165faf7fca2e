//! A connection on the mock OS with a server scripted by the test.

use wcfs_core::wire::Tid;

use crate::{FaultInjector, MockBackend, Store};

/// A connection on the mock OS with a server scripted by the test: the test
/// feeds server lines with [`Harness::recv`] and takes what the client sent
/// with [`Harness::sent`]. Every step drains the actions (blocking ones
/// too, synchronously) and checks the core's invariants. The mock sits in
/// a [`FaultInjector`] that fails nothing unless a chance is set.
pub struct Harness<S> {
    /// The connection under test.
    pub conn: wcfs_core::Conn,
    /// The mock OS it runs on, in a fault injector that fails nothing
    /// until told.
    pub be: FaultInjector<MockBackend<S>>,
}

impl<S: Store> Harness<S> {
    /// A connection as of `at` on a mock OS over `store`.
    pub fn new(at: Tid, cfg: wcfs_core::Config, store: S) -> Self {
        Harness::seeded(at, cfg, store, 0)
    }

    /// A harness whose fault injector draws from `seed`.
    pub fn seeded(at: Tid, cfg: wcfs_core::Config, store: S, seed: u64) -> Self {
        Harness {
            conn: wcfs_core::Conn::new(at, cfg),
            be: FaultInjector::new(MockBackend::new(store), seed),
        }
    }

    /// Performs every queued action.
    pub fn drain(&mut self) {
        self.conn.drain_with(&mut self.be);
        if let Err(e) = self.conn.check_invariants() {
            panic!("core invariant broken: {e}");
        }
    }

    /// Drives `op` as far as it goes without the server; its result if done.
    pub fn poll(
        &mut self,
        op: wcfs_core::OpId,
    ) -> Option<Result<wcfs_core::OpOk, wcfs_core::Error>> {
        loop {
            self.drain();
            if let Some(r) = self.conn.poll_op(op) {
                self.drain();
                return Some(r);
            }
            if !self.conn.has_actions() {
                return None;
            }
        }
    }

    /// Feeds raw bytes from the server, draining between stalls.
    pub fn recv_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = self.conn.handle_bytes(bytes);
            bytes = &bytes[n..];
            self.drain();
        }
    }

    /// Feeds one server line (`\n` added).
    pub fn recv(&mut self, line: &str) {
        self.recv_bytes(format!("{line}\n").as_bytes());
    }

    /// The server ends the link.
    pub fn eof(&mut self) {
        self.conn.handle_eof();
        self.drain();
    }

    /// Lines the client sent since the last call.
    pub fn sent(&mut self) -> Vec<String> {
        self.be.take_sent()
    }
}
