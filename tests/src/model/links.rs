//! The filesystem and the watch protocol of the model: head opens and reads,
//! watch links, pins and their acks, and the waits they hold up.

use std::collections::{BTreeMap, BTreeSet};

use wcfs_core::wire::{Oid, Tid};

use super::go_fmt::{go_duration, go_quote, tid_ns};
use super::{
    HeadRead, Link, LinkId, Model, Output, PinRec, PinRevChoice, ReadId, Wait, WaitKind, Watch,
};

impl Model {
    // ---- the filesystem ----

    /// An open of `head/bigfile/<oid>`: the file becomes known; its head size.
    pub fn open_head(&mut self, oid: Oid) -> Option<u64> {
        let head = self.head();
        let size = self.size(oid, head)?;
        self.files.get_mut(&oid).expect("file").known = true;
        Some(size)
    }

    /// A read of head block `blk` (a page-cache miss). Watchers whose view
    /// needs the old data are pinned first; the read then waits for acks.
    /// A read past head's end never reaches the server (the kernel answers
    /// it, or faults): it pins nobody and is not tracked.
    pub fn read_head(&mut self, oid: Oid, blk: u64) -> HeadRead {
        let head = self.head();
        let bs = self.cfg.blksize;
        if blk.saturating_mul(bs) >= self.size(oid, head).unwrap_or(0) {
            return HeadRead::Ready(vec![0; bs as usize]);
        }
        if let Some(f) = self.files.get_mut(&oid) {
            f.accessed.insert(blk);
        }
        let cur = self.data(oid, head, blk);
        let mut todo = Vec::new();
        for (&link, l) in &self.links {
            if let Some(w) = l.watches.get(&oid) {
                if !w.pinned.contains_key(&blk) && self.data(oid, w.at, blk) != cur {
                    todo.push((link, w.at));
                }
            }
        }
        // Pins of this block still in flight: the read waits for them too.
        let inflight: Vec<(LinkId, u64)> = self
            .pins
            .iter()
            .filter(|(_, p)| p.oid == oid && p.blk == blk)
            .map(|(&k, _)| k)
            .collect();
        if todo.is_empty() && inflight.is_empty() {
            return HeadRead::Ready(cur);
        }
        let read = self.next_read;
        self.next_read += 1;
        let wait = self.new_wait(WaitKind::Read { read, oid, blk });
        for k in inflight {
            self.pins.get_mut(&k).expect("pin").waits.push(wait);
            self.waits.get_mut(&wait).expect("wait").pins += 1;
        }
        for (link, at) in todo {
            let rev = self.pin_rev(link, oid, at, blk);
            self.send_pin(link, wait, oid, blk, Some(rev));
        }
        HeadRead::Wait(read)
    }

    /// The data of a waiting read once [`Output::ReadReady`] named it;
    /// `None` before, and after it was taken.
    pub fn take_read(&mut self, read: ReadId) -> Option<Vec<u8>> {
        self.ready.remove(&read)
    }

    // ---- watch links ----

    /// A client opened `head/watch`: a new link.
    pub fn link_open(&mut self) -> LinkId {
        let id = self.next_link;
        self.next_link += 1;
        self.links.insert(
            id,
            Link {
                next_stream: 2,
                ..Link::default()
            },
        );
        id
    }

    /// One line from the client, without its `\n`.
    pub fn link_recv(&mut self, link: LinkId, line: &[u8]) {
        if self.links.get(&link).is_none_or(|l| l.closed) {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (stream, msg) = match text.split_once(' ') {
            Some((s, m)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                match s.parse::<u64>() {
                    Ok(s) => (s, m),
                    Err(_) => {
                        return self.fatal(
                            link,
                            format!("invalid frame: {}", go_quote(&[line, b"\n"].concat())),
                        )
                    }
                }
            }
            _ => {
                return self.fatal(
                    link,
                    format!("invalid frame: {}", go_quote(&[line, b"\n"].concat())),
                )
            }
        };
        if stream % 2 == 0 {
            // A reply to one of our requests.
            let Some(pin) = self.pins.remove(&(link, stream)) else {
                return self.fatal(link, format!("{stream}: reply on unexpected stream"));
            };
            if msg == "ack" {
                return self.pin_done(pin);
            }
            self.pins.insert((link, stream), pin);
            let reason = msg.strip_prefix("nak: ").unwrap_or(msg).to_string();
            self.out.push_back(Output::ClientFailed { link, reason });
            return self.close_link(link);
        }
        if msg == "bye" {
            return self.close_link(link);
        }
        let reply = |m: &mut Model, r: String| m.send(link, format!("{stream} {r}"));
        let Some(args) = msg.strip_prefix("watch ") else {
            return reply(
                self,
                format!(
                    "error bad watch: not a watch request: {}",
                    go_quote(msg.as_bytes())
                ),
            );
        };
        let mut it = args.split(' ');
        let oid = match it.next().map(Oid::parse) {
            Some(Ok(o)) => o,
            _ => return reply(self, "error bad watch: invalid oid".into()),
        };
        match (it.next(), it.next()) {
            (Some("-"), None) => {
                if let Some(l) = self.links.get_mut(&link) {
                    l.watches.remove(&oid);
                }
                reply(self, "ok".into())
            }
            (Some(at), None) => match at.strip_prefix('@').map(Tid::parse) {
                Some(Ok(at)) => {
                    if at > self.head() {
                        self.future.push((link, stream, oid, at));
                    } else {
                        self.setup_watch(link, stream, oid, at);
                    }
                }
                _ => reply(self, "error bad watch: invalid at".into()),
            },
            _ => reply(self, "error bad watch: invalid at".into()),
        }
    }

    /// The client closed its end: its watches go, waits on it are released.
    pub fn link_close(&mut self, link: LinkId) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        l.closed = true;
        l.watches.clear();
        self.future.retain(|w| w.0 != link);
        let mine: Vec<(LinkId, u64)> = self.pins.keys().filter(|k| k.0 == link).copied().collect();
        for k in mine {
            if let Some(p) = self.pins.remove(&k) {
                self.pin_done(p);
            }
        }
    }

    /// The link did not ack in time.
    pub fn pin_timeout(&mut self, link: LinkId) {
        if self.links.get(&link).is_none_or(|l| l.closed) {
            return;
        }
        self.out.push_back(Output::ClientFailed {
            link,
            reason: "pin timeout".into(),
        });
        self.close_link(link);
    }

    /// The links not closed, in id order.
    pub fn links(&self) -> Vec<LinkId> {
        self.links
            .iter()
            .filter(|(_, l)| !l.closed)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Pins the server believes in force (acked or not) for this watch.
    pub fn pinned(&self, link: LinkId, oid: Oid) -> BTreeMap<u64, Tid> {
        self.links
            .get(&link)
            .and_then(|l| l.watches.get(&oid))
            .map(|w| w.pinned.clone())
            .unwrap_or_default()
    }

    /// The revision `link` watches `oid` at, if it watches it.
    pub fn watch_at(&self, link: LinkId, oid: Oid) -> Option<Tid> {
        self.links.get(&link)?.watches.get(&oid).map(|w| w.at)
    }

    /// Whether a pin sent on `link` is still unacked.
    pub fn awaits_ack(&self, link: LinkId) -> bool {
        self.pins
            .range((link, 0)..=(link, u64::MAX))
            .next()
            .is_some()
    }

    /// The links with a pin still unacked, in id order: one lookup per
    /// such link, however many links and pins there are.
    pub fn links_awaiting_ack(&self) -> Vec<LinkId> {
        let mut links = Vec::new();
        let mut from = 0;
        while let Some((&(link, _), _)) = self.pins.range((from, 0)..).next() {
            links.push(link);
            match link.checked_add(1) {
                Some(next) => from = next,
                None => break,
            }
        }
        links
    }

    /// Whether block `blk` of `oid` is pinned (not `@head`) on `link` and
    /// the client acked that pin.
    pub fn pin_acked(&self, link: LinkId, oid: Oid, blk: u64) -> bool {
        self.links
            .get(&link)
            .and_then(|l| l.watches.get(&oid))
            .is_some_and(|w| w.pinned.contains_key(&blk))
            && !self
                .pins
                .iter()
                .any(|(k, p)| k.0 == link && p.oid == oid && p.blk == blk)
    }

    // ---- internals ----

    fn send(&mut self, link: LinkId, line: String) {
        self.out.push_back(Output::Send { link, line });
    }

    fn fatal(&mut self, link: LinkId, text: String) {
        self.send(link, format!("0 error: {text}"));
        self.close_link(link);
    }

    fn close_link(&mut self, link: LinkId) {
        self.link_close(link);
        self.out.push_back(Output::Close { link });
    }

    fn new_wait(&mut self, kind: WaitKind) -> u64 {
        let id = self.next_wait;
        self.next_wait += 1;
        self.waits.insert(id, Wait { kind, pins: 0 });
        id
    }

    /// Sends `pin <oid> #<blk> @<rev|head>` to `link` for `wait`, and records it.
    fn send_pin(&mut self, link: LinkId, wait: u64, oid: Oid, blk: u64, rev: Option<Tid>) {
        let l = self.links.get_mut(&link).expect("link");
        let stream = l.next_stream;
        l.next_stream += 2;
        let w = l.watches.get_mut(&oid).expect("watch");
        match rev {
            Some(r) => w.pinned.insert(blk, r),
            None => w.pinned.remove(&blk),
        };
        let rev = rev.map_or_else(|| "head".to_string(), |r| r.to_string());
        self.send(link, format!("{stream} pin {oid} #{blk} @{rev}"));
        self.pins.insert(
            (link, stream),
            PinRec {
                oid,
                blk,
                waits: vec![wait],
            },
        );
        self.waits.get_mut(&wait).expect("wait").pins += 1;
    }

    fn pin_done(&mut self, pin: PinRec) {
        for wait in pin.waits {
            let Some(w) = self.waits.get_mut(&wait) else {
                continue;
            };
            w.pins -= 1;
            if w.pins == 0 {
                let w = self.waits.remove(&wait).expect("wait");
                self.finish(w.kind);
            }
        }
    }

    fn finish(&mut self, kind: WaitKind) {
        match kind {
            WaitKind::Watch { link, stream } => {
                if self.links.get(&link).is_some_and(|l| !l.closed) {
                    self.send(link, format!("{stream} ok"));
                }
            }
            WaitKind::Read { read, oid, blk } => {
                let d = self.data(oid, self.head(), blk);
                self.ready.insert(read, d);
                self.out.push_back(Output::ReadReady { read });
            }
        }
    }

    /// Revisions `<= at` at which block `blk` already had its data as of `at`.
    fn valid_revs(&self, oid: Oid, at: Tid, blk: u64) -> Vec<Tid> {
        let want = self.data(oid, at, blk);
        self.revs
            .iter()
            .copied()
            .filter(|&r| r <= at && self.size(oid, r).is_some() && self.data(oid, r, blk) == want)
            .collect()
    }

    fn pin_rev(&self, link: LinkId, oid: Oid, at: Tid, blk: u64) -> Tid {
        let valid = self.valid_revs(oid, at, blk);
        let changed = self.files[&oid]
            .blocks
            .get(&blk)
            .and_then(|h| h.iter().rev().find(|e| e.0 <= at))
            .map(|e| e.0);
        match self.cfg.pin_rev {
            PinRevChoice::Exact => changed.filter(|c| valid.contains(c)).unwrap_or(valid[0]),
            PinRevChoice::Oldest => valid[0],
            PinRevChoice::Seeded(seed) => {
                let mut h =
                    seed ^ link.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ blk.rotate_left(17) ^ at.0;
                h ^= h >> 33;
                h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
                h ^= h >> 33;
                valid[(h % valid.len() as u64) as usize]
            }
        }
    }

    pub(super) fn setup_watch(&mut self, link: LinkId, stream: u64, oid: Oid, at: Tid) {
        if self.links.get(&link).is_none_or(|l| l.closed) {
            return;
        }
        let head = self.head();
        let prefix = format!("setup watch f<{oid}> @{at}");
        let known = self.files.get(&oid).is_some_and(|f| f.known);
        if !known {
            return self.send(
                link,
                format!("{stream} error {prefix}: file not yet known to wcfs or is not a ZBigFile"),
            );
        }
        if let Some(w) = self.links[&link].watches.get(&oid) {
            if at < w.at {
                return self.send(
                    link,
                    format!("{stream} error {prefix}: going back in history is forbidden"),
                );
            }
        }
        let oldest_watch = self
            .links
            .values()
            .flat_map(|l| l.watches.values().map(|w| w.at))
            .min();
        let kept_from = head.0.saturating_sub(self.cfg.history);
        if at.0 < kept_from && oldest_watch.is_none_or(|o| at < o) || self.size(oid, at).is_none() {
            let dt = go_duration(tid_ns(head).saturating_sub(tid_ns(at)));
            return self.send(
                link,
                format!(
                    "{stream} error {prefix}: too far away back from head/at (@{head}); δt = {dt}"
                ),
            );
        }
        let l = self.links.get_mut(&link).expect("link");
        let w = l.watches.entry(oid).or_insert_with(|| Watch {
            at,
            pinned: BTreeMap::new(),
        });
        w.at = at;
        let pinned = w.pinned.clone();
        let f = &self.files[&oid];
        let blocks: BTreeSet<u64> = f.accessed.iter().chain(pinned.keys()).copied().collect();
        let mut todo = Vec::new();
        for blk in blocks {
            let want = self.data(oid, at, blk);
            if want == self.data(oid, head, blk) {
                if pinned.contains_key(&blk) {
                    todo.push((blk, None));
                }
            } else {
                let keep = pinned
                    .get(&blk)
                    .is_some_and(|&r| r <= at && self.data(oid, r, blk) == want);
                if !keep {
                    todo.push((blk, Some(self.pin_rev(link, oid, at, blk))));
                }
            }
        }
        let wait = self.new_wait(WaitKind::Watch { link, stream });
        for (blk, rev) in todo {
            self.send_pin(link, wait, oid, blk, rev);
        }
        if self.waits[&wait].pins == 0 {
            let w = self.waits.remove(&wait).expect("wait");
            self.finish(w.kind);
        }
    }
}
