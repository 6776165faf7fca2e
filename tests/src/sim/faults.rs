//! Faults injected into a client's connection.

use wcfs_core::wire::Oid;

use super::{Check, Fault, World};

impl World {
    // ---- faults ----

    /// Injects one of the run's faults into client `i` (nothing when the
    /// fault does not apply to the client's state now).
    pub(super) fn inject(&mut self, i: usize) -> Check {
        let Some(fault) = self.rng.pick(&self.swarm.faults) else {
            return Ok(());
        };
        let c = self.client(i);
        if !c.up() {
            return Ok(());
        }
        let line = match fault {
            Fault::Malformed => "2000000000 pin zz #1 @head\n".to_string(),
            Fault::TooLong => format!("{}\n", "x".repeat(3000)),
            Fault::WrongStream => "1999999999 ok\n".to_string(),
            Fault::EofMidRequest => "2000000002 pin 00000000".to_string(),
            Fault::ErrorReply => match c.op {
                Some(_) => "1999999997 error boom\n".to_string(),
                None => return Ok(()),
            },
            // An oid no client ever opens: unwatched however the client
            // moves on before it reads the line.
            Fault::UnwatchedPin => format!("2000000004 pin {} #0 @head\n", Oid(0xdead)),
            Fault::HugeBlk => match c.h.conn.files().next() {
                Some((_, o)) => format!("2000000006 pin {o} #9223372036854775807 @head\n"),
                None => return Ok(()),
            },
            Fault::GoBack => return self.go_back(i),
        };
        self.report.faults_injected += 1;
        let c = self.client(i);
        c.faulted = true;
        c.inbox.extend(line.as_bytes());
        if fault == Fault::EofMidRequest {
            c.inbox_eof = true;
        }
        self.log(format!("client {i} fault {fault:?} injected"));
        Ok(())
    }

    /// [`Fault::GoBack`]: the user of an idle client resyncs to a revision
    /// older than its connection's.
    pub(super) fn go_back(&mut self, i: usize) -> Check {
        if self.client(i).op.is_some() {
            return Ok(());
        }
        let at = self.client(i).h.conn.at();
        let back = self
            .model
            .borrow()
            .revs()
            .into_iter()
            .rev()
            .find(|&r| r < at);
        let Some(back) = back else {
            return Ok(());
        };
        self.client(i).faulted = true;
        self.report.faults_injected += 1;
        self.log(format!(
            "client {i} fault GoBack injected: Resync @{at} -> @{back}"
        ));
        self.resync(i, back)
    }
}
