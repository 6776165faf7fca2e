//! The mock OS's view of the filesystem, answered by the server model.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::Stat;
use wcfs_mock::{Path, Store};

use crate::model::Model;

/// The mock OS's view of the filesystem, answered by the model. One per
/// client: it remembers the head size it last told that client.
#[derive(Clone)]
pub struct ModelStore {
    /// The server's model, shared by every client of the run.
    pub model: Rc<RefCell<Model>>,
    /// `oid -> size` of `head/bigfile/<oid>` at this client's last open or
    /// fstat of it.
    pub told: BTreeMap<Oid, u64>,
    /// Opens and fstats of head that told a smaller size than the last one.
    pub shrunk: usize,
}

impl ModelStore {
    /// A store answering from `model`, having told this client nothing yet.
    pub fn new(model: Rc<RefCell<Model>>) -> ModelStore {
        ModelStore {
            model,
            told: BTreeMap::new(),
            shrunk: 0,
        }
    }
}

impl Store for ModelStore {
    fn head_at(&mut self) -> Tid {
        self.model.borrow().head()
    }

    fn stat(&mut self, path: Path) -> Option<Stat> {
        let mut m = self.model.borrow_mut();
        let blksize = m.config().blksize;
        let size = match path {
            Path::Head(oid) => {
                let size = m.open_head(oid)?;
                if self.told.insert(oid, size).is_some_and(|was| size < was) {
                    self.shrunk += 1;
                }
                size
            }
            Path::Rev(oid, rev) => {
                if !m.revs().contains(&rev) {
                    return None;
                }
                m.size(oid, rev)?
            }
        };
        Some(Stat { size, blksize })
    }
}
