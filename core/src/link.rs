//! Stream bookkeeping of one watch link, sans IO.
//!
//! [`Link`] hands out odd stream ids for our requests, remembers which of
//! them await a reply and which even-stream server requests await our
//! answer, classifies every incoming line, and encodes what we send. Any
//! violation brings the link down for good: it then refuses to send and
//! every request still pending is failed by the owner (see [`Link::down`]).

use core::fmt;

use hashbrown::HashSet;

use crate::wire::{Frame, Msg, Oid, OutLine, Rev, StreamId, Tid, WireError};

/// Server requests we may have received and not answered yet. We answer
/// each pin before reading the next line (see `conn`), so a handful is
/// plenty; more is a server flooding us.
pub const MAX_SERVER_REQUESTS: usize = 16;

/// Longest server text (of a fatal message) we keep once the line is gone.
pub const MAX_KEPT_TEXT: usize = 192;

/// Free text kept beyond the line it came in (errors only, never on the
/// pin path): at most [`MAX_KEPT_TEXT`] bytes, cut at a char boundary.
pub type Text = alloc::string::String;

/// Copies `s` into a [`Text`], cutting it to fit.
pub fn text(s: &str) -> Text {
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if i + c.len_utf8() > MAX_KEPT_TEXT {
            break;
        }
        end = i + c.len_utf8();
    }
    Text::from(&s[..end])
}

/// A classified line from the server. Its stream was checked by the
/// [`Link`]: a reply's is one of ours awaiting it, a pin's is a new even one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// The reply to our request on `stream`: `Ok(())` for `ok`, `Err(text)` for `error <text>`.
    Reply {
        /// Our request's (odd) stream.
        stream: StreamId,
        /// `ok` or the server's error text.
        result: Result<(), &'a str>,
    },
    /// A pin request on the even `stream`; it must be answered exactly once.
    Pin {
        /// The server's (even) stream, to answer on.
        stream: StreamId,
        /// The bigfile.
        oid: Oid,
        /// The block to remap.
        blk: u64,
        /// What the block shows from now on.
        rev: Rev,
    },
}

/// Why the link is down, in the protocol's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// A line from the server did not parse.
    Wire(WireError),
    /// `<stream> ok|error` with no request of ours pending on that stream.
    UnexpectedReply(StreamId),
    /// A server request on a stream it already uses.
    StreamInUse(StreamId),
    /// A server request on an odd stream (ours) or on stream 0.
    BadRequestStream(StreamId),
    /// A message the server never sends (`watch`, `bye`, `ack`, `nak`), or `error:` off stream 0.
    UnexpectedMessage(StreamId),
    /// More unanswered server requests than [`MAX_SERVER_REQUESTS`].
    TooManyRequests,
    /// The server sent a fatal `0 error: <text>`.
    Fatal(Text),
    /// The link ended while we had not said `bye`.
    UnexpectedEof,
    /// Reading or writing the link failed with this errno.
    Io(i32),
    /// We said `bye`; the link is closed (not an error of the server).
    Closed,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Wire(e) => write!(f, "invalid line: {e}"),
            LinkError::UnexpectedReply(s) => write!(f, "{s}: reply on unexpected stream"),
            LinkError::StreamInUse(s) => write!(f, "{s}: request on a stream already in use"),
            LinkError::BadRequestStream(s) => write!(f, "{s}: server request on a client stream"),
            LinkError::UnexpectedMessage(s) => write!(f, "{s}: unexpected message"),
            LinkError::TooManyRequests => f.write_str("too many server requests in flight"),
            LinkError::Fatal(t) => write!(f, "server: {t}"),
            LinkError::UnexpectedEof => f.write_str("unexpected EOF"),
            LinkError::Io(e) => write!(f, "I/O error: errno {e}"),
            LinkError::Closed => f.write_str("link closed"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LinkError {}

impl From<WireError> for LinkError {
    fn from(e: WireError) -> Self {
        LinkError::Wire(e)
    }
}

/// One watch link.
///
/// Invariants: `next_request` is odd; every stream in `awaiting_reply` is
/// odd and `< next_request`; every stream in `unanswered` is even and
/// non-zero; once `down` is set both sets are empty and stay so.
pub struct Link {
    next_request: StreamId,
    awaiting_reply: HashSet<StreamId>,
    unanswered: heapless::Vec<StreamId, MAX_SERVER_REQUESTS>,
    bye_sent: bool,
    down: Option<LinkError>,
}

impl Default for Link {
    fn default() -> Self {
        Link::new()
    }
}

impl Link {
    /// A fresh link: no stream used yet, nothing pending.
    pub fn new() -> Link {
        Link {
            next_request: 1,
            awaiting_reply: HashSet::new(),
            unanswered: heapless::Vec::new(),
            bye_sent: false,
            down: None,
        }
    }

    /// `Some(why)` once the link is down.
    pub fn down(&self) -> Option<&LinkError> {
        self.down.as_ref()
    }

    /// Requests of ours still awaiting a reply.
    pub fn awaiting_reply(&self) -> usize {
        self.awaiting_reply.len()
    }

    /// Server requests not answered yet.
    pub fn unanswered(&self) -> &[StreamId] {
        &self.unanswered
    }

    fn check_up(&self) -> Result<(), LinkError> {
        match &self.down {
            Some(e) => Err(e.clone()),
            None if self.bye_sent => Err(LinkError::Closed),
            None => Ok(()),
        }
    }

    /// Takes the link down with `err` (first reason wins) and forgets every
    /// pending stream. Returns the reason in force.
    pub fn fail(&mut self, err: LinkError) -> &LinkError {
        if self.down.is_none() {
            self.down = Some(err);
            self.awaiting_reply.clear();
            self.unanswered.clear();
        }
        self.down.as_ref().expect("just set")
    }

    /// Encodes `watch <oid> @<at>` on a new odd stream.
    pub fn watch(&mut self, oid: Oid, at: Tid) -> Result<(StreamId, OutLine), LinkError> {
        self.request(Msg::Watch { oid, at })
    }

    /// Encodes `watch <oid> -` on a new odd stream.
    pub fn unwatch(&mut self, oid: Oid) -> Result<(StreamId, OutLine), LinkError> {
        self.request(Msg::Unwatch { oid })
    }

    fn request(&mut self, msg: Msg<'_>) -> Result<(StreamId, OutLine), LinkError> {
        let stream = self.open_request()?;
        Ok((stream, OutLine::new(&Frame { stream, msg })))
    }

    /// A new odd stream for a request of ours, which awaits its reply from now on.
    pub fn open_request(&mut self) -> Result<StreamId, LinkError> {
        self.check_up()?;
        let stream = self.next_request;
        self.next_request += 2;
        self.awaiting_reply.insert(stream);
        Ok(stream)
    }

    /// Whether our request on `stream` still awaits its reply.
    pub fn awaits_reply(&self, stream: StreamId) -> bool {
        self.awaiting_reply.contains(&stream)
    }

    /// A reply arrived on `stream`: the request it answers is done. A
    /// stream with no request of ours pending is a violation (the caller
    /// takes the link down with it).
    pub fn take_reply(&mut self, stream: StreamId) -> Result<(), LinkError> {
        match self.awaiting_reply.remove(&stream) {
            true => Ok(()),
            false => Err(LinkError::UnexpectedReply(stream)),
        }
    }

    /// A server request arrived on `stream`: it awaits our answer from now
    /// on. Its stream must be even, non-zero and not in use, and at most
    /// [`MAX_SERVER_REQUESTS`] may wait (else a violation, as above).
    pub fn take_request(&mut self, stream: StreamId) -> Result<(), LinkError> {
        if stream == 0 || stream % 2 == 1 {
            return Err(LinkError::BadRequestStream(stream));
        }
        if self.unanswered.contains(&stream) {
            return Err(LinkError::StreamInUse(stream));
        }
        self.unanswered
            .push(stream)
            .map_err(|_| LinkError::TooManyRequests)
    }

    /// Marks the server request on `stream` answered; each is answered
    /// once (`UnexpectedReply` for a stream with none waiting: the
    /// caller's error, the link stays up).
    pub fn answered(&mut self, stream: StreamId) -> Result<(), LinkError> {
        if let Some(e) = &self.down {
            return Err(e.clone());
        }
        let i = self
            .unanswered
            .iter()
            .position(|&s| s == stream)
            .ok_or(LinkError::UnexpectedReply(stream))?;
        self.unanswered.swap_remove(i);
        Ok(())
    }

    /// Encodes `bye`; afterwards nothing more may be sent and EOF is the normal end.
    /// `bye` awaits no reply, so it may still be said after the server broke
    /// the protocol (the server then ends the link); not once the link
    /// itself is gone (EOF, I/O error) or after `bye`.
    pub fn bye(&mut self) -> Result<OutLine, LinkError> {
        match &self.down {
            Some(e @ (LinkError::UnexpectedEof | LinkError::Io(_) | LinkError::Closed)) => {
                return Err(e.clone())
            }
            Some(LinkError::Wire(WireError::EofInLine)) => return Err(LinkError::UnexpectedEof),
            _ if self.bye_sent => return Err(LinkError::Closed),
            _ => {}
        }
        let stream = self.next_request;
        self.next_request += 2;
        self.bye_sent = true;
        Ok(OutLine::new(&Frame {
            stream,
            msg: Msg::Bye,
        }))
    }

    /// Encodes the answer (`ack` or `nak: <text>`) to server request `stream`.
    pub fn answer(&mut self, stream: StreamId, nak: Option<&str>) -> Result<OutLine, LinkError> {
        self.answered(stream)?;
        Ok(match nak {
            None => OutLine::ack(stream),
            Some(t) => OutLine::new(&Frame {
                stream,
                msg: Msg::Nak(t),
            }),
        })
    }

    /// Classifies one line (without `\n`) from the server. An error takes the link down.
    pub fn recv<'a>(&mut self, line: &'a [u8]) -> Result<Incoming<'a>, LinkError> {
        if let Some(e) = &self.down {
            return Err(e.clone());
        }
        let r = self.classify(line);
        if let Err(e) = &r {
            self.fail(e.clone());
        }
        r
    }

    fn classify<'a>(&mut self, line: &'a [u8]) -> Result<Incoming<'a>, LinkError> {
        let Frame { stream, msg } = Frame::parse(line)?;
        match msg {
            Msg::Fatal(t) if stream == 0 => Err(LinkError::Fatal(text(t))),
            Msg::Ok | Msg::Error(_) => {
                self.take_reply(stream)?;
                let result = match msg {
                    Msg::Error(t) => Err(t),
                    _ => Ok(()),
                };
                Ok(Incoming::Reply { stream, result })
            }
            Msg::Pin { oid, blk, rev } => {
                self.take_request(stream)?;
                Ok(Incoming::Pin {
                    stream,
                    oid,
                    blk,
                    rev,
                })
            }
            _ => Err(LinkError::UnexpectedMessage(stream)),
        }
    }

    /// The server ended the link: the normal end after our `bye`, a failure otherwise.
    pub fn eof(&mut self) -> Result<(), LinkError> {
        if self.bye_sent && self.down.is_none() {
            self.fail(LinkError::Closed);
            return Ok(());
        }
        Err(self.fail(LinkError::UnexpectedEof).clone())
    }

    /// Whether `bye` was sent (the link ends with the server's EOF).
    pub fn bye_sent(&self) -> bool {
        self.bye_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(l: &OutLine) -> &str {
        core::str::from_utf8(l.as_bytes()).unwrap()
    }

    const F: Oid = Oid(1);

    #[test]
    fn requests_use_odd_streams_and_replies_complete_them() {
        let mut l = Link::new();
        let (s1, w1) = l.watch(F, Tid(0x040d3dfb08ebeb99)).unwrap();
        let (s3, w3) = l.unwatch(F).unwrap();
        assert_eq!((s1, s3), (1, 3));
        assert_eq!(s(&w1), "1 watch 0000000000000001 @040d3dfb08ebeb99\n");
        assert_eq!(s(&w3), "3 watch 0000000000000001 -\n");
        assert_eq!(l.awaiting_reply(), 2);
        assert_eq!(
            l.recv(b"3 ok"),
            Ok(Incoming::Reply {
                stream: 3,
                result: Ok(())
            })
        );
        assert_eq!(
            l.recv(b"1 error setup watch f<0000000000000001> @040d3dfb08ebeb99: going back in history is forbidden"),
            Ok(Incoming::Reply {
                stream: 1,
                result: Err("setup watch f<0000000000000001> @040d3dfb08ebeb99: going back in history is forbidden")
            })
        );
        assert_eq!(l.awaiting_reply(), 0);
        assert!(l.down().is_none(), "an error reply leaves the link up");
    }

    #[test]
    fn recorded_setup_exchange() {
        // PROTOCOL section 4: a watch setup with pins.
        let mut l = Link::new();
        let (s1, _) = l.watch(F, Tid(0x040d3dfb08ebeb99)).unwrap();
        let pin = l
            .recv(b"2 pin 0000000000000001 #2 @040d3dfb078a3c22")
            .unwrap();
        assert_eq!(
            pin,
            Incoming::Pin {
                stream: 2,
                oid: F,
                blk: 2,
                rev: Rev::At(Tid(0x040d3dfb078a3c22))
            }
        );
        assert_eq!(s(&l.answer(2, None).unwrap()), "2 ack\n");
        l.recv(b"4 pin 0000000000000001 #0 @040d3dfb078a3c22")
            .unwrap();
        assert_eq!(s(&l.answer(4, None).unwrap()), "4 ack\n");
        assert_eq!(
            l.recv(b"1 ok").unwrap(),
            Incoming::Reply {
                stream: s1,
                result: Ok(())
            }
        );
        // lazy pin, later
        l.recv(b"6 pin 0000000000000001 #1 @040d3dfb078a3c22")
            .unwrap();
        assert_eq!(
            s(&l.answer(6, Some("no memory")).unwrap()),
            "6 nak: no memory\n"
        );
    }

    /// Each line (after the given setup requests) takes the link down with the error.
    macro_rules! violations {
        ($($name:ident: [$($req:expr),*] $line:expr => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                let mut l = Link::new();
                $( l.watch(F, Tid($req)).unwrap(); )*
                assert_eq!(l.recv($line), Err($err));
                assert_eq!(l.down(), Some(&$err));
                assert_eq!(l.awaiting_reply(), 0);
                assert!(l.watch(F, Tid(9)).is_err(), "no request after down");
                assert_eq!(l.recv(b"1 ok"), Err($err), "nothing accepted after down");
            }
        )*};
    }

    violations! {
        reply_without_request: [] b"1 ok" => LinkError::UnexpectedReply(1);
        reply_on_even_stream: [1] b"2 ok" => LinkError::UnexpectedReply(2);
        reply_twice: [1] b"3 ok" => LinkError::UnexpectedReply(3);
        pin_on_odd_stream: [1] b"1 pin 0000000000000001 #1 @head" => LinkError::BadRequestStream(1);
        pin_on_stream0: [] b"0 pin 0000000000000001 #1 @head" => LinkError::BadRequestStream(0);
        server_sends_watch: [] b"2 watch 0000000000000001 -" => LinkError::UnexpectedMessage(2);
        server_sends_ack: [] b"2 ack" => LinkError::UnexpectedMessage(2);
        fatal_off_stream0: [1] b"1 error: boom" => LinkError::UnexpectedMessage(1);
        fatal: [1] b"0 error: invalid frame: \"hello\\n\"" => LinkError::Fatal(text("invalid frame: \"hello\\n\""));
        malformed: [1] b"1 okay" => LinkError::Wire(WireError::UnknownMessage);
        negative_blk: [] b"2 pin 0000000000000001 #-1 @head" => LinkError::Wire(WireError::NegativeBlk);
    }

    #[test]
    fn server_request_on_stream_in_use() {
        let mut l = Link::new();
        l.recv(b"2 pin 0000000000000001 #1 @head").unwrap();
        assert_eq!(
            l.recv(b"2 pin 0000000000000001 #2 @head"),
            Err(LinkError::StreamInUse(2))
        );
        assert!(l.answer(2, None).is_err(), "down: nothing answered");
    }

    #[test]
    fn answered_stream_may_not_be_answered_twice() {
        let mut l = Link::new();
        l.recv(b"2 pin 0000000000000001 #1 @head").unwrap();
        l.answer(2, None).unwrap();
        assert_eq!(l.answer(2, None), Err(LinkError::UnexpectedReply(2)));
        assert_eq!(l.answer(4, None), Err(LinkError::UnexpectedReply(4)));
    }

    #[test]
    fn flood_of_unanswered_requests_is_bounded() {
        let mut l = Link::new();
        let mut line = heapless::String::<64>::new();
        for i in 1..=MAX_SERVER_REQUESTS as u64 + 1 {
            line.clear();
            core::fmt::write(
                &mut line,
                format_args!("{} pin 0000000000000001 #{} @head", 2 * i, i),
            )
            .unwrap();
            let r = l.recv(line.as_bytes());
            if i as usize <= MAX_SERVER_REQUESTS {
                assert!(r.is_ok());
            } else {
                assert_eq!(r, Err(LinkError::TooManyRequests));
            }
        }
    }

    #[test]
    fn eof_after_bye_is_normal_end() {
        let mut l = Link::new();
        l.watch(F, Tid(1)).unwrap();
        assert_eq!(s(&l.bye().unwrap()), "3 bye\n");
        assert_eq!(l.watch(F, Tid(2)), Err(LinkError::Closed));
        assert_eq!(l.eof(), Ok(()));
        assert_eq!(l.down(), Some(&LinkError::Closed));
    }

    #[test]
    fn eof_without_bye_is_unexpected() {
        let mut l = Link::new();
        l.watch(F, Tid(1)).unwrap();
        assert_eq!(l.eof(), Err(LinkError::UnexpectedEof));
        assert_eq!(l.awaiting_reply(), 0);
        assert_eq!(l.bye(), Err(LinkError::UnexpectedEof));
    }

    #[test]
    fn first_failure_reason_wins() {
        let mut l = Link::new();
        l.fail(LinkError::Io(5));
        assert_eq!(l.eof(), Err(LinkError::Io(5)));
    }

    #[test]
    fn text_is_cut_at_char_boundary() {
        let long = "δ".repeat(MAX_KEPT_TEXT);
        let t = text(&long);
        assert!(t.len() <= MAX_KEPT_TEXT && t.chars().all(|c| c == 'δ'));
        assert_eq!(t.chars().count(), MAX_KEPT_TEXT / 2);
    }
}
