//! Going down: what the server waits for is answered, every mapping made
//! to fault, every descriptor let go, every op failed.

use alloc::vec::Vec;
use core::fmt::Write as _;

use super::{Conn, ConnState, Error};
use crate::action::{Action, Src};
use crate::ids::FileId;
use crate::link::{LinkError, Text};
use crate::wire::{Frame, Msg, OutLine, StreamId, WireError};

impl Conn {
    /// Takes the connection down: nak what the server waits for, fault
    /// every mapping, let go of every descriptor, fail every op.
    pub(super) fn go_down(&mut self, err: Error) {
        if !self.reading() {
            return;
        }
        let mut why = Text::new();
        let _ = write!(why, "{err}");
        // Queued acks are not true any more: they become naks. Queued maps
        // and blocking calls are dropped (their ops fail below).
        let mut naks: heapless::Vec<StreamId, { crate::link::MAX_SERVER_REQUESTS }> =
            heapless::Vec::new();
        self.actions.retain(|a| match a {
            Action::Send(line) => {
                let bytes = line.as_bytes();
                if let Ok(f) = Frame::parse(&bytes[..bytes.len() - 1]) {
                    if f.msg == Msg::Ack {
                        let _ = naks.push(f.stream);
                    }
                }
                false
            }
            Action::Close(_)
            | Action::CloseLink
            | Action::VmUnlock { .. }
            | Action::Unmap { .. }
            | Action::Protect { .. }
            | Action::MapFixed {
                src: Src::Fault, ..
            } => true,
            _ => false,
        });
        self.vm_down();
        for s in naks {
            self.actions.push_back(Action::Send(OutLine::new(&Frame {
                stream: s,
                msg: Msg::Nak(&why),
            })));
        }
        let waiting: heapless::Vec<StreamId, { crate::link::MAX_SERVER_REQUESTS }> =
            self.link.unanswered().iter().copied().collect();
        for s in waiting {
            if let Ok(line) = self.link.answer(s, Some(&why)) {
                self.actions.push_back(Action::Send(line));
            }
        }
        // Unless the link itself broke, say `bye`: the server then ends the
        // link, and whoever reads it sees EOF instead of waiting for ever.
        let link_broken = matches!(
            err,
            Error::Link(
                LinkError::UnexpectedEof | LinkError::Io(_) | LinkError::Wire(WireError::EofInLine)
            )
        );
        if !link_broken {
            if let Ok(line) = self.link.bye() {
                self.actions.push_back(Action::Send(line));
            }
        }
        self.link.fail(match &err {
            Error::Link(e) => e.clone(),
            _ => LinkError::Closed,
        });
        self.stalled = None;
        self.fail_ops(&err);
        self.drop_views();
        self.actions.push_back(Action::CloseLink);
        self.state = ConnState::Down;
        self.down = Some(err);
    }

    /// Faults every mapping and closes every file and `@rev` file.
    pub(super) fn drop_views(&mut self) {
        let ids: Vec<FileId> = self.files.ids().collect();
        for fid in ids {
            self.close_file_now(fid);
        }
        self.close_revs();
        self.maps.fault_all(&mut self.actions);
    }

    pub(super) fn fault_file_maps(&mut self, fid: FileId) {
        let Some(f) = self.files.get_mut(&fid) else {
            return;
        };
        for (_, mid) in core::mem::take(&mut f.maps) {
            self.maps.fault(mid, &mut self.actions);
        }
        f.max_map_len = 0;
    }

    pub(super) fn close_file_now(&mut self, fid: FileId) {
        self.fault_file_maps(fid);
        if let Some(f) = self.files.get(&fid) {
            if let Some(fd) = f.fd {
                self.actions.push_back(Action::Close(fd));
            }
        }
        self.forget_file(fid);
    }
}
