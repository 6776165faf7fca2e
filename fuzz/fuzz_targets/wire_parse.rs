//! Arbitrary bytes, cut in arbitrary chunks, through the framer and the
//! parser: no panic, no line over MAX_LINE, and every line that parses
//! re-encodes to exactly the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wcfs_core::wire::{Frame, Framer, MAX_LINE};

fuzz_target!(|data: &[u8]| {
    let (cut, data) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 64) + 1, rest),
        None => return,
    };
    let mut fr = Framer::new();
    for chunk in data.chunks(cut) {
        let mut input = chunk;
        while let Some(r) = fr.next_line(&mut input) {
            let Ok(line) = r else { return };
            assert!(line.len() <= MAX_LINE);
            if let Ok(f) = Frame::parse(line) {
                let mut buf = [0u8; MAX_LINE + 1];
                let n = f.encode(&mut buf).expect("a parsed line re-encodes");
                assert_eq!(&buf[..n - 1], line, "re-encoding differs");
                assert_eq!(buf[n - 1], b'\n');
            }
        }
    }
    let _ = fr.finish();
});
