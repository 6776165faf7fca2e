//! Per-connection statistics: what the core decided (counted by the core)
//! and how long pins took (measured by the driver, which has the clock).
//!
//! [`Stats`] holds atomics so that any thread reads a snapshot
//! ([`ConnStats`]) at any time, without the lock that guards the
//! [`Conn`](crate::Conn) and without stopping the pin thread. Every update
//! goes through `&mut Conn` (the core's own counting, and
//! [`Conn::record_pin_time`](crate::Conn::record_pin_time) for the driver),
//! so there is one writer at a time: an update is a relaxed load and store,
//! no read-modify-write, no allocation, no lock.

use core::sync::atomic::{AtomicU64, Ordering};

/// Buckets of the pin handling time histogram: bucket `i` counts times in
/// `[2^i, 2^(i+1))` ns (bucket 0 also counts 0 ns), the last one everything
/// from `2^(PIN_TIME_BUCKETS-1)` ns (about 9 minutes) on.
pub const PIN_TIME_BUCKETS: usize = 40;

/// A counter with one writer at a time (see the module doc).
#[derive(Default)]
struct Counter(AtomicU64);

impl Counter {
    #[inline(always)]
    fn add(&self, n: u64) {
        let c = &self.0;
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Declares the counters once: the snapshot's fields, the live atomics, and
/// the copy from one to the other.
macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// A snapshot of a connection's statistics (plain data, `repr(C)`).
        ///
        /// Counters only grow; fields read at one moment are each exact but
        /// may be a few events apart from one another.
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct ConnStats {
            $($(#[doc = $doc])* pub $name: u64,)*
            /// Pin handling time, from reading the pin's line to writing its
            /// ack, in power-of-two buckets of ns (see [`PIN_TIME_BUCKETS`]).
            pub pin_time_ns: [u64; PIN_TIME_BUCKETS],
        }

        /// The live counters of one connection. Shared (`Arc`) between the
        /// core, which updates them, and whoever reads them.
        pub struct Stats {
            $($name: Counter,)*
            pin_time: [Counter; PIN_TIME_BUCKETS],
        }

        impl Default for Stats {
            fn default() -> Self {
                Stats {
                    $($name: Counter::default(),)*
                    pin_time: core::array::from_fn(|_| Counter::default()),
                }
            }
        }

        /// Names a counter of [`Stats`].
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Event {
            $($name,)*
        }

        impl Stats {
            #[inline(always)]
            pub(crate) fn add(&self, e: Event, n: u64) {
                match e {
                    $(Event::$name => self.$name.add(n),)*
                }
            }

            /// The counters now.
            pub fn snapshot(&self) -> ConnStats {
                let mut pin_time_ns = [0; PIN_TIME_BUCKETS];
                for (s, c) in pin_time_ns.iter_mut().zip(&self.pin_time) {
                    *s = c.get();
                }
                ConnStats {
                    $($name: self.$name.get(),)*
                    pin_time_ns,
                }
            }
        }

        impl ConnStats {
            fn sub_counters(&mut self, earlier: &ConnStats) {
                $(self.$name = self.$name.wrapping_sub(earlier.$name);)*
            }
        }
    };
}

counters! {
    /// Pins to a revision applied (`pin <oid> #<blk> @<rev>`).
    pins,
    /// Pins back to head applied (`pin <oid> #<blk> @head`).
    unpins,
    /// `ack` lines sent.
    acks,
    /// `nak` lines sent.
    naks,
    /// `@rev` files opened (for pins, new mappings, `remap_blk`, resync).
    rev_opens,
    /// Pins to a revision whose `@rev` file was already open (no open needed).
    rev_hits,
    /// Blocks remapped one by one: by pins (each mapping showing the block),
    /// `remap_blk`, and pinned blocks of new mappings and resyncs.
    remaps,
    /// Resyncs completed.
    resyncs,
    /// Pins that found the VM's page dirty over a block and left it
    /// (`Conn::mmap_vm`; a resync's tail remap counts too).
    dirty_kept,
}

impl Stats {
    /// Counts one pin handled in `ns` nanoseconds.
    pub(crate) fn record_pin_time(&self, ns: u64) {
        self.pin_time[pin_time_bucket(ns)].add(1);
    }
}

/// The histogram bucket of a pin handled in `ns` nanoseconds.
pub fn pin_time_bucket(ns: u64) -> usize {
    (63 - (ns | 1).leading_zeros() as usize).min(PIN_TIME_BUCKETS - 1)
}

impl Default for ConnStats {
    fn default() -> Self {
        Stats::default().snapshot()
    }
}

impl ConnStats {
    /// Pins whose handling time was recorded.
    pub fn pin_times(&self) -> u64 {
        self.pin_time_ns.iter().sum()
    }

    /// An upper bound (ns) of the `q`-quantile of the pin handling time
    /// (`q` in `[0, 1]`, e.g. 0.5, 0.99): the end of the bucket holding it.
    /// `None` when no time was recorded.
    pub fn pin_time_quantile(&self, q: f64) -> Option<u64> {
        let n = self.pin_times();
        if n == 0 {
            return None;
        }
        // The rank (1-based) of the wanted sample.
        let rank = ((q.clamp(0.0, 1.0) * n as f64) as u64).clamp(1, n);
        let mut seen = 0;
        for (i, &c) in self.pin_time_ns.iter().enumerate() {
            seen += c;
            if seen >= rank {
                // The last bucket has no end.
                return Some(if i + 1 == PIN_TIME_BUCKETS {
                    u64::MAX
                } else {
                    1u64 << (i + 1)
                });
            }
        }
        None
    }

    /// What happened between `earlier` and `self` (counters and histogram).
    pub fn since(&self, earlier: &ConnStats) -> ConnStats {
        let mut d = *self;
        for (x, e) in d.pin_time_ns.iter_mut().zip(&earlier.pin_time_ns) {
            *x = x.wrapping_sub(*e);
        }
        d.sub_counters(earlier);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(pin_time_bucket(0), 0);
        assert_eq!(pin_time_bucket(1), 0);
        assert_eq!(pin_time_bucket(2), 1);
        assert_eq!(pin_time_bucket(3), 1);
        assert_eq!(pin_time_bucket(4), 2);
        assert_eq!(pin_time_bucket(1023), 9);
        assert_eq!(pin_time_bucket(1024), 10);
        assert_eq!(pin_time_bucket(u64::MAX), PIN_TIME_BUCKETS - 1);
    }

    #[test]
    fn quantiles_name_the_bucket_end() {
        let s = Stats::default();
        assert_eq!(s.snapshot().pin_time_quantile(0.5), None);
        for _ in 0..98 {
            s.record_pin_time(1500); // bucket 10: [1024, 2048)
        }
        s.record_pin_time(5000); // bucket 12
        s.record_pin_time(70_000); // bucket 16
        let snap = s.snapshot();
        assert_eq!(snap.pin_times(), 100);
        assert_eq!(snap.pin_time_quantile(0.5), Some(2048));
        assert_eq!(snap.pin_time_quantile(0.99), Some(8192));
        assert_eq!(snap.pin_time_quantile(1.0), Some(131_072));
        assert_eq!(snap.pin_time_quantile(0.0), Some(2048));
    }

    #[test]
    fn counters_add_and_diff() {
        let s = Stats::default();
        s.add(Event::pins, 3);
        s.add(Event::acks, 2);
        let a = s.snapshot();
        s.add(Event::pins, 1);
        s.record_pin_time(10);
        let b = s.snapshot();
        assert_eq!((a.pins, a.acks, a.naks), (3, 2, 0));
        let d = b.since(&a);
        assert_eq!((d.pins, d.acks, d.pin_times()), (1, 0, 1));
        assert_eq!(d.pin_time_ns[3], 1);
    }
}
