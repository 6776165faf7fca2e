//! A raw watch link, sans IO: the caller speaks the protocol line by line.
//!
//! Tools and server tests open a `head/watch` link of their own and send
//! whatever request text they like (malformed ones included, to see the
//! server's answer). [`RawLink`] keeps the framing and the streams: each
//! request goes out on a new odd stream, each line from the server is
//! checked and classified ([`RawIncoming`]), each server request is
//! answered exactly once. It takes no decision about what a request means.
//!
//! Two kinds of failure, kept apart ([`RawError`]):
//! * the server's: a line that does not parse, a reply on a stream that
//!   awaits none, a server request on a stream in use or a client stream,
//!   a flood of unanswered requests, an end of the link before our `bye`.
//!   The link is then down for good, with the same [`LinkError`] a
//!   connection would report.
//! * the caller's: request or reply text that is no line
//!   ([`RawError::BadText`]), a reply to a stream that awaits none
//!   ([`RawError::NotPending`]), sending after `bye` or once down. The link
//!   stays as it was.
//!
//! Stream-0 fatal messages (`0 error: <text>`) do not take the link down:
//! they are handed to the caller, who collects them; the server ends the
//! link after one, and that EOF is the link's end.

use alloc::string::String;
use core::fmt;

use crate::link::{Link, LinkError};
use crate::wire::{check_text, parse_stream, Msg, Oid, Rev, StreamId, WireError, MAX_LINE};

/// A server request: a `pin`, to be answered once on its even stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinRequest {
    /// The server's (even) stream.
    pub stream: StreamId,
    /// The bigfile.
    pub oid: Oid,
    /// The block.
    pub blk: u64,
    /// What the block is to show: a revision, or head (an unpin).
    pub rev: Rev,
}

/// A line from the server, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawIncoming<'a> {
    /// The reply to our request on the odd `stream`: its text as sent
    /// (`ok`, `error <text>`, or anything else the server says there).
    Reply {
        /// Our request's stream.
        stream: StreamId,
        /// The line after `<stream> `.
        text: &'a str,
    },
    /// A server request; `text` is the line after `<stream> `.
    Request {
        /// The request, parsed.
        pin: PinRequest,
        /// The line after `<stream> `.
        text: &'a str,
    },
    /// A fatal message on stream 0: the text after `error: `. The server
    /// ends the link after it.
    Fatal(&'a str),
}

/// Why a call on a [`RawLink`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawError {
    /// The link is down (the server broke the protocol, the link ended or
    /// failed, or we said `bye`): nothing more goes out.
    Down(LinkError),
    /// The text given is not one line of the protocol's text (a `\n` or
    /// control character, invalid UTF-8, too long).
    BadText(WireError),
    /// A reply to a stream where no server request awaits one (never
    /// received, or answered already).
    NotPending(StreamId),
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawError::Down(LinkError::Closed) => f.write_str("link is closed"),
            RawError::Down(e) => write!(f, "link is down: {e}"),
            RawError::BadText(e) => write!(f, "not a line of the protocol: {e}"),
            RawError::NotPending(s) => write!(f, "{s}: no server request awaits a reply there"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RawError {}

/// The streams of one raw link: a [`Link`]'s bookkeeping (its invariants),
/// with request and reply text the caller's.
pub struct RawLink {
    link: Link,
}

impl Default for RawLink {
    fn default() -> Self {
        RawLink::new()
    }
}

/// Checks that `text` can be the body of one line, `<stream> ` and `\n` added.
fn body(text: &str) -> Result<&str, RawError> {
    if text.len() + 22 > MAX_LINE {
        return Err(RawError::BadText(WireError::TooLong));
    }
    check_text(text.as_bytes()).map_err(RawError::BadText)
}

impl RawLink {
    /// A fresh link: no stream used yet.
    pub fn new() -> RawLink {
        RawLink { link: Link::new() }
    }

    /// `Some(why)` once the link is down (`LinkError::Closed` after `bye` and the end).
    pub fn down(&self) -> Option<&LinkError> {
        self.link.down()
    }

    /// Whether `bye` was said.
    pub fn bye_sent(&self) -> bool {
        self.link.bye_sent()
    }

    /// Whether our request on `stream` still awaits its reply.
    pub fn awaits_reply(&self, stream: StreamId) -> bool {
        self.link.awaits_reply(stream)
    }

    /// Server requests not answered yet.
    pub fn unanswered(&self) -> &[StreamId] {
        self.link.unanswered()
    }

    /// Encodes `<stream> <text>\n` on a new odd stream, which then awaits
    /// its reply. The text is sent as given (it may be no valid request).
    pub fn request(&mut self, text: &str) -> Result<(StreamId, String), RawError> {
        if let Some(e) = self.link.down() {
            return Err(RawError::Down(e.clone()));
        }
        let text = body(text)?;
        let stream = self.link.open_request().map_err(RawError::Down)?;
        Ok((stream, alloc::format!("{stream} {text}\n")))
    }

    /// Encodes the reply `<stream> <text>\n` to the server request on
    /// `stream`; each is answered once. Allowed after `bye` (a pin that
    /// crossed it still wants its answer), not once the link is down.
    pub fn reply(&mut self, stream: StreamId, text: &str) -> Result<String, RawError> {
        if let Some(e) = self.link.down() {
            return Err(RawError::Down(e.clone()));
        }
        let text = body(text)?;
        self.link
            .answered(stream)
            .map_err(|_| RawError::NotPending(stream))?;
        Ok(alloc::format!("{stream} {text}\n"))
    }

    /// Encodes `bye` on a new odd stream; afterwards no request goes out,
    /// and the server's EOF is the normal end.
    pub fn bye(&mut self) -> Result<String, RawError> {
        let line = self.link.bye().map_err(RawError::Down)?;
        Ok(String::from_utf8_lossy(line.as_bytes()).into_owned())
    }

    /// Classifies one line (without `\n`) from the server. A violation
    /// takes the link down and is returned as `RawError::Down`.
    pub fn recv<'a>(&mut self, line: &'a [u8]) -> Result<RawIncoming<'a>, RawError> {
        if let Some(e) = self.link.down() {
            return Err(RawError::Down(e.clone()));
        }
        self.classify(line)
            .map_err(|e| RawError::Down(self.fail(e)))
    }

    fn classify<'a>(&mut self, line: &'a [u8]) -> Result<RawIncoming<'a>, LinkError> {
        if line.len() > MAX_LINE {
            return Err(WireError::TooLong.into());
        }
        let line = check_text(line)?;
        let (num, text) = line.split_once(' ').ok_or(WireError::BadStream)?;
        let stream = parse_stream(num.as_bytes()).ok_or(WireError::BadStream)?;
        if stream == 0 {
            return match Msg::parse(text)? {
                Msg::Fatal(t) => Ok(RawIncoming::Fatal(t)),
                _ => Err(LinkError::UnexpectedMessage(0)),
            };
        }
        if stream % 2 == 1 {
            // A reply's text is the caller's business: taken as sent.
            self.link.take_reply(stream)?;
            return Ok(RawIncoming::Reply { stream, text });
        }
        let Msg::Pin { oid, blk, rev } = Msg::parse(text)? else {
            return Err(LinkError::UnexpectedMessage(stream));
        };
        self.link.take_request(stream)?;
        let pin = PinRequest {
            stream,
            oid,
            blk,
            rev,
        };
        Ok(RawIncoming::Request { pin, text })
    }

    /// Takes the link down with `err` (the first reason wins) and forgets
    /// every pending stream; returns the reason in force.
    pub fn fail(&mut self, err: LinkError) -> LinkError {
        self.link.fail(err).clone()
    }

    /// The server ended the link: the normal end after our `bye`
    /// (`Ok`), a failure otherwise (also after a fatal message).
    pub fn eof(&mut self) -> Result<(), LinkError> {
        self.link.eof()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::MAX_SERVER_REQUESTS;
    use crate::wire::Tid;

    #[test]
    fn requests_go_out_as_given_on_odd_streams() {
        let mut l = RawLink::new();
        let (s1, w1) = l
            .request("watch 0000000000000001 @00000000000000a3")
            .unwrap();
        let (s3, w3) = l.request("hello").unwrap();
        assert_eq!((s1, s3), (1, 3));
        assert_eq!(w1, "1 watch 0000000000000001 @00000000000000a3\n");
        assert_eq!(w3, "3 hello\n");
        assert_eq!(
            l.recv(b"3 error bad watch: not a watch request: \"hello\""),
            Ok(RawIncoming::Reply {
                stream: 3,
                text: "error bad watch: not a watch request: \"hello\""
            })
        );
        assert_eq!(
            l.recv(b"1 ok"),
            Ok(RawIncoming::Reply {
                stream: 1,
                text: "ok"
            })
        );
        assert!(l.down().is_none());
        assert!(!l.awaits_reply(1) && !l.awaits_reply(3));
    }

    #[test]
    fn a_reply_the_codec_does_not_know_is_still_a_reply() {
        let mut l = RawLink::new();
        l.request("frobnicate").unwrap();
        assert_eq!(
            l.recv(b"1 whatever the server says"),
            Ok(RawIncoming::Reply {
                stream: 1,
                text: "whatever the server says"
            })
        );
    }

    #[test]
    fn pins_are_answered_exactly_once() {
        let mut l = RawLink::new();
        l.request("watch 0000000000000001 @040d3dfb08ebeb99")
            .unwrap();
        let line = b"2 pin 0000000000000001 #2 @040d3dfb078a3c22";
        assert_eq!(
            l.recv(line),
            Ok(RawIncoming::Request {
                pin: PinRequest {
                    stream: 2,
                    oid: Oid(1),
                    blk: 2,
                    rev: Rev::At(Tid(0x040d3dfb078a3c22)),
                },
                text: "pin 0000000000000001 #2 @040d3dfb078a3c22",
            })
        );
        assert_eq!(l.unanswered(), &[2]);
        assert_eq!(l.reply(2, "ack").unwrap(), "2 ack\n");
        // Twice, or to a stream that never asked: the caller's error, the link stays up.
        assert_eq!(l.reply(2, "ack"), Err(RawError::NotPending(2)));
        assert_eq!(l.reply(4, "ack"), Err(RawError::NotPending(4)));
        assert_eq!(l.reply(3, "ack"), Err(RawError::NotPending(3)));
        assert!(l.down().is_none());
        let unpin = l.recv(b"4 pin 0000000000000001 #2 @head").unwrap();
        assert!(matches!(
            unpin,
            RawIncoming::Request {
                pin: PinRequest { rev: Rev::Head, .. },
                ..
            }
        ));
        assert_eq!(l.reply(4, "nak: no memory").unwrap(), "4 nak: no memory\n");
    }

    #[test]
    fn fatal_messages_are_handed_over_and_the_eof_after_them_ends_the_link() {
        let mut l = RawLink::new();
        l.request("x").unwrap();
        assert_eq!(
            l.recv(b"0 error: invalid frame: \"hello\\n\""),
            Ok(RawIncoming::Fatal("invalid frame: \"hello\\n\""))
        );
        assert!(l.down().is_none());
        assert_eq!(l.eof(), Err(LinkError::UnexpectedEof));
        assert_eq!(
            l.request("y"),
            Err(RawError::Down(LinkError::UnexpectedEof))
        );
    }

    #[test]
    fn caller_text_that_is_no_line_is_refused_untouched() {
        let mut l = RawLink::new();
        assert_eq!(
            l.request("watch\n2 pin"),
            Err(RawError::BadText(WireError::ControlChar))
        );
        let long = "x".repeat(MAX_LINE);
        assert_eq!(l.request(&long), Err(RawError::BadText(WireError::TooLong)));
        l.recv(b"2 pin 0000000000000001 #1 @head").unwrap();
        assert_eq!(
            l.reply(2, "ack\n"),
            Err(RawError::BadText(WireError::ControlChar))
        );
        assert_eq!(l.unanswered(), &[2], "still awaiting its reply");
        assert_eq!(l.request("ok").unwrap().0, 1, "no stream used by a refusal");
    }

    #[test]
    fn bye_then_eof_is_the_normal_end() {
        let mut l = RawLink::new();
        l.request("a").unwrap();
        assert_eq!(l.bye().unwrap(), "3 bye\n");
        assert_eq!(l.request("b"), Err(RawError::Down(LinkError::Closed)));
        assert_eq!(l.bye(), Err(RawError::Down(LinkError::Closed)));
        // A pin that crossed the bye is still answered.
        l.recv(b"2 pin 0000000000000001 #1 @head").unwrap();
        assert_eq!(l.reply(2, "ack").unwrap(), "2 ack\n");
        assert_eq!(l.eof(), Ok(()));
        assert_eq!(l.down(), Some(&LinkError::Closed));
    }

    /// A link with `n` requests of ours awaiting replies (streams 1, 3, ...).
    fn with_requests(n: usize) -> RawLink {
        let mut l = RawLink::new();
        for _ in 0..n {
            l.request("watch 0000000000000001 -").unwrap();
        }
        l
    }

    /// Each server line takes the link down with the error.
    macro_rules! violations {
        ($($name:ident: $reqs:expr, $line:expr => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                let mut l = with_requests($reqs);
                assert_eq!(l.recv($line), Err(RawError::Down($err)));
                assert_eq!(l.down(), Some(&$err));
                assert!(!l.awaits_reply(1));
                assert!(matches!(l.request("x"), Err(RawError::Down(_))));
                assert!(matches!(l.recv(b"1 ok"), Err(RawError::Down(_))));
            }
        )*};
    }

    violations! {
        reply_without_request: 0, b"1 ok" => LinkError::UnexpectedReply(1);
        unknown_reply_on_unknown_stream: 1, b"5 whatever" => LinkError::UnexpectedReply(5);
        pin_on_stream0: 0, b"0 pin 0000000000000001 #1 @head" => LinkError::UnexpectedMessage(0);
        ok_on_stream0: 0, b"0 ok" => LinkError::UnexpectedMessage(0);
        server_sends_ack: 0, b"2 ack" => LinkError::UnexpectedMessage(2);
        server_sends_gibberish: 0, b"2 gibberish" => LinkError::Wire(WireError::UnknownMessage);
        no_stream: 1, b"ok" => LinkError::Wire(WireError::BadStream);
        leading_zero_stream: 1, b"01 ok" => LinkError::Wire(WireError::BadStream);
        negative_blk: 0, b"2 pin 0000000000000001 #-1 @head" => LinkError::Wire(WireError::NegativeBlk);
        huge_blk: 0, b"2 pin 0000000000000001 #99999999999999999999 @head" => LinkError::Wire(WireError::BadBlk);
        control_char: 1, b"1 o\x01k" => LinkError::Wire(WireError::ControlChar);
        invalid_utf8: 1, b"1 error \xff" => LinkError::Wire(WireError::InvalidUtf8);
    }

    #[test]
    fn pin_on_a_stream_in_use_and_floods() {
        let mut l = RawLink::new();
        l.recv(b"2 pin 0000000000000001 #1 @head").unwrap();
        assert_eq!(
            l.recv(b"2 pin 0000000000000001 #2 @head"),
            Err(RawError::Down(LinkError::StreamInUse(2)))
        );
        let mut l = RawLink::new();
        for i in 1..=MAX_SERVER_REQUESTS + 1 {
            let line = alloc::format!("{} pin 0000000000000001 #{i} @head", 2 * i);
            let r = l.recv(line.as_bytes());
            if i <= MAX_SERVER_REQUESTS {
                assert!(r.is_ok());
            } else {
                assert_eq!(r, Err(RawError::Down(LinkError::TooManyRequests)));
            }
        }
    }

    // Not under Miri (see wire's properties).
    #[cfg(not(miri))]
    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// Lines near the protocol: a stream (ours, the server's, 0, or
        /// none) and one of its messages, or bytes of any kind.
        fn line() -> impl Strategy<Value = alloc::vec::Vec<u8>> {
            let msg = prop_oneof![
                Just(String::from("ok")),
                "error [a-z :δ]{0,20}",
                "error: [a-z ]{0,20}",
                "pin 0000000000000001 #[0-9]{1,3} @(head|0000000000000002)",
                "pin 0000000000000001 #-1 @head",
                "[a-z]{0,8}",
            ];
            prop_oneof![
                (0u64..12, msg).prop_map(|(s, m)| alloc::format!("{s} {m}").into_bytes()),
                proptest::collection::vec(any::<u8>(), 0..40),
            ]
        }

        proptest! {
            /// Whatever the server sends: no panic, a violation is final,
            /// the bookkeeping's invariants hold, and our replies to what
            /// was not asked are refused without taking the link down.
            #[test]
            fn any_server_input_is_a_clean_answer_or_a_final_failure(
                lines in proptest::collection::vec(line(), 0..24),
                replies in proptest::collection::vec(0u64..12, 0..8),
            ) {
                let mut l = with_requests(3);
                let mut down: Option<LinkError> = None;
                let mut replies = replies.into_iter();
                for line in &lines {
                    match l.recv(line) {
                        Ok(_) => prop_assert!(down.is_none()),
                        Err(RawError::Down(e)) => {
                            prop_assert!(down.is_none() || down.as_ref() == Some(&e));
                            down = Some(e);
                        }
                        Err(e) => prop_assert!(false, "not a link failure: {e}"),
                    }
                    prop_assert!(l.unanswered().iter().all(|s| *s != 0 && s % 2 == 0));
                    prop_assert!(l.unanswered().len() <= MAX_SERVER_REQUESTS);
                    if let Some(s) = replies.next() {
                        let pending = l.unanswered().contains(&s);
                        match l.reply(s, "ack") {
                            Ok(_) => prop_assert!(pending && down.is_none()),
                            Err(RawError::NotPending(t)) => prop_assert!(t == s && !pending),
                            Err(RawError::Down(_)) => prop_assert!(down.is_some()),
                            Err(e) => prop_assert!(false, "{e}"),
                        }
                    }
                }
                prop_assert_eq!(l.down(), down.as_ref());
            }
        }
    }
}
