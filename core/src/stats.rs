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

/// Sub-buckets per power of two of the pin handling time histogram (log2).
pub const PIN_TIME_SUB_BITS: u32 = 4;
const SUB: usize = 1 << PIN_TIME_SUB_BITS;

/// Buckets of the pin handling time histogram, log-linear as in
/// HdrHistogram: times below 16 ns have a bucket each; every power of two
/// above, `[2^e, 2^(e+1))` for `e` in `4..36`, is cut into 16 buckets of
/// `2^(e-4)` ns. A bucket's width is at most 1/16 of its start, so the end
/// of the bucket holding a time (what [`ConnStats::pin_time_quantile`]
/// returns) is at most 6.25 % above it. The last bucket also counts
/// everything longer (about 66 s and on). See [`pin_time_bucket`] and
/// [`pin_time_bucket_end`].
pub const PIN_TIME_BUCKETS: usize = SUB * 33;

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
            /// ack, in log-linear buckets of ns (see [`PIN_TIME_BUCKETS`]).
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

/// The histogram bucket of a pin handled in `ns` nanoseconds (see
/// [`PIN_TIME_BUCKETS`]): a leading-zeros count and two shifts, no loop, no
/// table.
pub const fn pin_time_bucket(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let e = 63 - ns.leading_zeros(); // 2^e <= ns, e >= PIN_TIME_SUB_BITS
    let shift = e - PIN_TIME_SUB_BITS;
    // ns >> shift is in [SUB, 2 * SUB): its low bits pick the sub-bucket.
    let i = (shift as usize + 1) * SUB + ((ns >> shift) as usize - SUB);
    if i < PIN_TIME_BUCKETS {
        i
    } else {
        PIN_TIME_BUCKETS - 1
    }
}

/// The first time (ns) bucket `i` counts.
pub const fn pin_time_bucket_start(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = (i / SUB - 1) as u32;
    ((SUB + i % SUB) as u64) << shift
}

/// The end (ns, exclusive) of bucket `i`: the first time of the next one;
/// `u64::MAX` for the last bucket, which has no end.
pub const fn pin_time_bucket_end(i: usize) -> u64 {
    if i >= PIN_TIME_BUCKETS - 1 {
        u64::MAX
    } else {
        pin_time_bucket_start(i + 1)
    }
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
                return Some(pin_time_bucket_end(i));
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
    fn buckets_are_log_linear_and_tile_the_line() {
        assert_eq!(pin_time_bucket(0), 0);
        assert_eq!(pin_time_bucket(15), 15);
        assert_eq!(pin_time_bucket(16), 16);
        assert_eq!(pin_time_bucket(31), 31);
        assert_eq!(pin_time_bucket(32), 32);
        assert_eq!(pin_time_bucket(33), 32);
        assert_eq!(pin_time_bucket(34), 33);
        assert_eq!(pin_time_bucket(1024), 16 * 7);
        assert_eq!(pin_time_bucket(1024 + 63), 16 * 7);
        assert_eq!(pin_time_bucket(1024 + 64), 16 * 7 + 1);
        assert_eq!(pin_time_bucket(u64::MAX), PIN_TIME_BUCKETS - 1);
        assert_eq!(pin_time_bucket(1 << 36), PIN_TIME_BUCKETS - 1);
        assert_eq!(pin_time_bucket((1 << 36) - 1), PIN_TIME_BUCKETS - 1);
        assert_eq!(pin_time_bucket_end(PIN_TIME_BUCKETS - 1), u64::MAX);
        assert_eq!(pin_time_bucket_end(usize::MAX), u64::MAX);
        // Consecutive buckets tile [0, 2^36): each starts where the one
        // before ends, and every time falls in the bucket whose range holds it.
        for i in 0..PIN_TIME_BUCKETS - 1 {
            let (a, b) = (pin_time_bucket_start(i), pin_time_bucket_end(i));
            assert!(a < b && b == pin_time_bucket_start(i + 1), "bucket {i}");
            assert_eq!((pin_time_bucket(a), pin_time_bucket(b - 1)), (i, i));
            // At most 1/16 wide (exact below 16 ns).
            assert!((b - a) * 16 <= a.max(16), "bucket {i}: [{a}, {b})");
        }
        assert_eq!(
            pin_time_bucket_start(PIN_TIME_BUCKETS - 1),
            (1 << 36) - (1 << 31)
        );
    }

    #[test]
    fn quantiles_name_the_bucket_end() {
        let s = Stats::default();
        assert_eq!(s.snapshot().pin_time_quantile(0.5), None);
        for _ in 0..98 {
            s.record_pin_time(1500); // [1472, 1536)
        }
        s.record_pin_time(5000); // [4864, 5120)
        s.record_pin_time(70_000); // [69632, 73728)
        let snap = s.snapshot();
        assert_eq!(snap.pin_times(), 100);
        assert_eq!(snap.pin_time_quantile(0.5), Some(1536));
        assert_eq!(snap.pin_time_quantile(0.99), Some(5120));
        assert_eq!(snap.pin_time_quantile(1.0), Some(73_728));
        assert_eq!(snap.pin_time_quantile(0.0), Some(1536));
    }

    /// A deterministic spread of times, about 1 µs .. 34 s: a power of two
    /// (2^10 .. 2^34) and an offset in it, both drawn by xorshift.
    fn known_times() -> impl Iterator<Item = u64> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..20_000).map(move |_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let e = 10 + (x >> 58) % 25;
            (1 << e) + (x & ((1 << e) - 1))
        })
    }

    #[test]
    fn quantiles_are_within_ten_percent_of_the_true_times() {
        let s = Stats::default();
        let mut times: alloc::vec::Vec<u64> = known_times().collect();
        for &t in &times {
            s.record_pin_time(t);
        }
        // 600 µs and 1 ms, one power-of-two bucket, are told apart.
        assert_ne!(pin_time_bucket(600_000), pin_time_bucket(1_000_000));
        times.sort_unstable();
        let snap = s.snapshot();
        for q in [0.01, 0.1, 0.5, 0.9, 0.99, 0.999] {
            let rank = ((q * times.len() as f64) as usize).clamp(1, times.len());
            let truth = times[rank - 1];
            let est = snap.pin_time_quantile(q).unwrap();
            let err = (est as f64 - truth as f64) / truth as f64;
            assert!((0.0..=0.0625).contains(&err), "q {q}: {est} vs {truth}");
        }
        // One known time: its quantiles are its bucket's end, < 6.25 % above.
        let one = Stats::default();
        one.record_pin_time(600_000);
        assert_eq!(one.snapshot().pin_time_quantile(0.5), Some(622_592)); // 19 << 15
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
        assert_eq!(d.pin_time_ns[pin_time_bucket(10)], 1);
    }
}
