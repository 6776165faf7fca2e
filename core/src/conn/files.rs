//! The connection's files: each by its id, and the one of each bigfile
//! that new opens share. The only code that changes either index.

use hashbrown::HashMap;

use crate::file::File;
use crate::ids::FileId;
use crate::wire::Oid;

/// Invariant: `by_oid` names, for each bigfile, at most one file of
/// `by_id`, one whose oid it is (the one a new open of that bigfile
/// shares); a file being closed may have left it.
#[derive(Debug, Default)]
pub(super) struct Files {
    by_id: HashMap<FileId, File>,
    by_oid: HashMap<Oid, FileId>,
}

impl Files {
    pub(super) fn get(&self, id: &FileId) -> Option<&File> {
        self.by_id.get(id)
    }

    pub(super) fn get_mut(&mut self, id: &FileId) -> Option<&mut File> {
        self.by_id.get_mut(id)
    }

    /// The file a new open of `oid` shares, if any.
    pub(super) fn of_oid(&self, oid: Oid) -> Option<FileId> {
        self.by_oid.get(&oid).copied()
    }

    /// A new file `id` for `oid`, the one new opens of `oid` share from now on.
    pub(super) fn open(&mut self, id: FileId, oid: Oid) {
        self.by_id.insert(id, File::new(oid));
        self.by_oid.insert(oid, id);
    }

    /// Forgets file `id` (and, if new opens of its oid shared it, that).
    pub(super) fn forget(&mut self, id: FileId) -> Option<File> {
        let f = self.by_id.remove(&id)?;
        if self.by_oid.get(&f.oid) == Some(&id) {
            self.by_oid.remove(&f.oid);
        }
        Some(f)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = FileId> + '_ {
        self.by_id.keys().copied()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (FileId, &File)> + '_ {
        self.by_id.iter().map(|(&id, f)| (id, f))
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (FileId, &mut File)> + '_ {
        self.by_id.iter_mut().map(|(&id, f)| (id, f))
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &File> + '_ {
        self.by_id.values()
    }

    /// Whether the index agrees with the files (the invariant above).
    pub(super) fn check(&self) -> Result<(), &'static str> {
        let agrees = self
            .by_oid
            .iter()
            .all(|(oid, id)| self.by_id.get(id).is_some_and(|f| f.oid == *oid));
        if agrees {
            Ok(())
        } else {
            Err("the oid index names a file that is gone or of another oid")
        }
    }
}

impl core::ops::Index<&FileId> for Files {
    type Output = File;

    fn index(&self, id: &FileId) -> &File {
        &self.by_id[id]
    }
}
