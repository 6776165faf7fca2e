//! The raw syscalls of the Linux backend, through rustix: one function per
//! OS operation, no protocol decisions.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::{self, Errno};
use rustix::mm::{MapFlags, ProtFlags};

/// The mountpoint, as a directory fd that every open is relative to.
///
/// Opened once, `O_PATH`: the files opened through it stay under this
/// mount even if another filesystem is later mounted over the path.
pub struct Mount {
    dir: OwnedFd,
}

impl Mount {
    /// Opens the mountpoint directory `path`.
    pub fn open(path: &Path) -> io::Result<Mount> {
        let dir = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Mount { dir })
    }

    /// Opens `rel` (e.g. `head/bigfile/<oid>`) read-only.
    pub fn open_file(&self, rel: &str) -> io::Result<OwnedFd> {
        rustix::fs::openat(
            &self.dir,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    /// Opens `head/watch`: each open is a new link.
    pub fn open_watch(&self) -> io::Result<OwnedFd> {
        rustix::fs::openat(
            &self.dir,
            "head/watch",
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    /// Reads a small text file (`head/at`, `.wcfs/zurl`) into `buf`; returns its length.
    pub fn read_text(&self, rel: &str, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.open_file(rel)?;
        let mut n = 0;
        while n < buf.len() {
            match read_some(fd.as_fd(), &mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    }

    /// Reads a file that holds one tid (`head/at`: 16 hex digits) into
    /// `buf`; returns its length and the file, still open (closing a file
    /// of the mount is a FLUSH round trip: the caller may do it later).
    /// Stops after the read that brought the whole tid instead of reading
    /// on to EOF: on FUSE that read is a round trip saved.
    pub fn read_tid_text(&self, rel: &str, buf: &mut [u8]) -> io::Result<(usize, OwnedFd)> {
        let fd = self.open_file(rel)?;
        let whole = |b: &[u8]| {
            (b.len() == 16 || b.len() == 17 && b[16] == b'\n')
                && b[..16].iter().all(u8::is_ascii_hexdigit)
        };
        let mut n = 0;
        while n < buf.len() {
            match read_some(fd.as_fd(), &mut buf[n..])? {
                0 => break,
                k => n += k,
            }
            if whole(&buf[..n]) {
                break;
            }
        }
        Ok((n, fd))
    }
}

/// `st_size` and `st_blksize` of an open file.
pub fn fstat_size_blksize(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_size as u64, st.st_blksize as u64))
}

/// The system's page size.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// Reserves `len` bytes of fresh address space that faults on any access
/// (anonymous, `PROT_NONE`, nothing committed): a range a runtime owns and
/// hands to `FileH::mmap_at`. Release it with [`unmap`] once no mapping
/// lies in it.
pub fn reserve(len: usize) -> io::Result<*mut u8> {
    // SAFETY: without MAP_FIXED the kernel picks fresh addresses, so no
    // existing memory is affected.
    let p = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::empty(),
            MapFlags::PRIVATE | MapFlags::NORESERVE,
        )?
    };
    Ok(p.cast())
}

/// Maps `len` bytes of `fd` from `offset`, read-only and shared, where the
/// kernel likes: the reservation of a whole new mapping in one call.
pub fn map_file(fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<usize> {
    // SAFETY: without MAP_FIXED the kernel picks fresh addresses, so no
    // existing memory is affected.
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ,
            MapFlags::SHARED,
            fd,
            offset,
        )?
    };
    Ok(p as usize)
}

/// Replaces `[addr, addr+len)` in place by `len` bytes of `fd` from `offset`.
///
/// # Safety
///
/// The range must be memory this process mapped and owns, holding no Rust
/// object that expects other contents.
pub unsafe fn map_file_fixed(
    addr: usize,
    len: usize,
    fd: BorrowedFd<'_>,
    offset: u64,
) -> io::Result<()> {
    // SAFETY: the caller owns the range (see above).
    unsafe {
        rustix::mm::mmap(
            addr as *mut _,
            len,
            ProtFlags::READ,
            MapFlags::SHARED | MapFlags::FIXED,
            fd,
            offset,
        )?;
    }
    Ok(())
}

/// `/dev/zero`, opened once: mapped shared with `MAP_NORESERVE`, it reads
/// as zeros and reserves no memory.
pub struct Zeros {
    fd: OwnedFd,
}

impl Zeros {
    /// Opens `/dev/zero` read-only.
    pub fn open() -> io::Result<Zeros> {
        let fd = rustix::fs::open("/dev/zero", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Zeros { fd })
    }

    /// Replaces `[addr, addr+len)` in place by zeros.
    ///
    /// # Safety
    ///
    /// As for [`map_file_fixed`].
    pub unsafe fn map_zeros_fixed(&self, addr: usize, len: usize) -> io::Result<()> {
        // SAFETY: the caller owns the range.
        unsafe {
            rustix::mm::mmap(
                addr as *mut _,
                len,
                ProtFlags::READ,
                MapFlags::SHARED | MapFlags::FIXED | MapFlags::NORESERVE,
                &self.fd,
                0,
            )?;
        }
        Ok(())
    }
}

/// Turns `[addr, addr+len)` into memory that faults on any access. An
/// anonymous `PROT_NONE` mapping (rather than `mprotect`) also lets go of
/// the file the range showed.
///
/// # Safety
///
/// As for [`map_file_fixed`]; afterwards any access to the range faults.
pub unsafe fn map_fault_fixed(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range.
    unsafe {
        rustix::mm::mmap_anonymous(
            addr as *mut _,
            len,
            ProtFlags::empty(),
            MapFlags::PRIVATE | MapFlags::FIXED | MapFlags::NORESERVE,
        )?;
    }
    Ok(())
}

/// Makes `[addr, addr+len)` fault on any access, in place
/// (`mprotect(PROT_NONE)`). Unlike [`map_fault_fixed`] it creates no new
/// mapping, so it works where that one hits the process's mapping limit;
/// the range keeps its file referenced until it is unmapped.
///
/// # Safety
///
/// As for [`map_file_fixed`]; afterwards any access to the range faults.
pub unsafe fn protect_none(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range.
    unsafe { rustix::mm::mprotect(addr as *mut _, len, rustix::mm::MprotectFlags::empty()) }
}

/// Releases `[addr, addr+len)`.
///
/// # Safety
///
/// The range must be memory this process mapped and owns; nothing may
/// access it afterwards.
pub unsafe fn unmap(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range.
    unsafe { rustix::mm::munmap(addr as *mut _, len) }
}

/// Reads what is there (0 at EOF), retrying on EINTR.
pub fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

/// Writes all of `bytes`, retrying on EINTR and short writes.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::PIPE),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A connected pair of stream sockets (a watch link for tests).
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
}

/// Wakes a thread blocked reading a socket link (it then sees EOF). On a
/// FUSE file this fails with ENOTSOCK: that link ends when the server
/// closes it after `bye`.
pub fn shutdown_read(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::net::shutdown(fd, rustix::net::Shutdown::Both)
}

/// close(2) of a raw fd, for a fork child letting go of inherited
/// descriptors without writing anything. Errors are of no interest there.
pub fn close_raw_no_write(fd: RawFd) {
    // SAFETY: closing a descriptor number; the caller no longer uses it.
    unsafe { libc::close(fd) };
}

/// The permissions (`r--s`, `---p`, ...) that `/proc/self/maps` gives the
/// mapping holding `addr`; `None` where nothing is mapped.
pub fn map_perms(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|l| {
        let (range, rest) = l.split_once(' ')?;
        let (s, e) = range.split_once('-')?;
        let s = usize::from_str_radix(s, 16).ok()?;
        let e = usize::from_str_radix(e, 16).ok()?;
        (s <= addr && addr < e).then(|| rest.get(..4).unwrap_or(rest).to_string())
    })
}

/// Reads the byte at `addr` without risking a signal: the kernel copies it
/// into a pipe, and an address that would fault gives `EFAULT` instead.
/// `Ok(byte)`, or `Err(errno)` (`EFAULT` for memory that faults).
pub fn probe_read(addr: usize) -> Result<u8, i32> {
    let (r, w) = rustix::pipe::pipe().map_err(|e| e.raw_os_error())?;
    // SAFETY: write(2) only reads `[addr, addr+1)` through the kernel, which
    // reports an unreadable address as EFAULT instead of faulting.
    let n = unsafe { libc::write(w.as_raw_fd(), addr as *const libc::c_void, 1) };
    if n != 1 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    let mut b = [0u8; 1];
    match read_some(r.as_fd(), &mut b) {
        Ok(1) => Ok(b[0]),
        Ok(_) => Err(libc::EIO),
        Err(e) => Err(e.raw_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protect_none_makes_a_file_mapping_inaccessible_in_place() {
        let zeros = Zeros::open().unwrap();
        let len = 2 * rustix::param::page_size();
        let addr = map_file(zeros.fd.as_fd(), 0, len).unwrap();
        assert_eq!(map_perms(addr).as_deref(), Some("r--s"));
        // SAFETY: the range is the mapping just made, which nothing else uses.
        unsafe { protect_none(addr, len) }.unwrap();
        // Still the same shared file mapping, now with no access.
        assert_eq!(map_perms(addr).as_deref(), Some("---s"));
        // SAFETY: as above; nothing refers to the range afterwards.
        unsafe { unmap(addr, len) }.unwrap();
        assert_eq!(map_perms(addr), None);
    }
}
