//! Reading files: on the async thread when the kernel has the bytes in its page cache (as it has
//! for files just written or read), on the blocking pool when that would wait for a disk.
//! Reading from memory takes microseconds; a trip to the pool costs two thread wake-ups.

use std::fs::File;
use std::io;
use std::sync::Mutex;

use bytes::Bytes;

/// How much of a file one read takes: a 1 MiB file is 16 reads, and fifty downloads at once
/// hold a few MiB.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// What reading without waiting for a disk found.
pub enum Now<T> {
    Read(io::Result<T>),
    /// Some bytes are not in the page cache: reading them would wait for a disk.
    NotThere,
    /// The filesystem (tmpfs, FUSE) or the system cannot be asked.
    CannotAsk,
}

/// Reads up to [`CHUNK_SIZE`] bytes of `file` from `offset` (fewer only at its end). Blocks.
pub fn chunk(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut buffer = ReadBuffer::take();
    let len = len.min(CHUNK_SIZE);
    let mut filled = 0;
    while filled < len {
        match positioned_read(file, &mut buffer.bytes[filled..len], offset + filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    buffer.len = filled;
    Ok(Bytes::from_owner(buffer))
}

/// [`chunk`], if the kernel has the bytes in memory (some of them, at least).
pub fn chunk_now(file: &File, offset: u64, len: usize) -> Now<Bytes> {
    let mut buffer = ReadBuffer::take();
    let len = len.min(CHUNK_SIZE);
    match read_now(file, &mut buffer.bytes[..len], offset) {
        Now::Read(Ok(read)) => {
            buffer.len = read;
            Now::Read(Ok(Bytes::from_owner(buffer)))
        }
        Now::Read(Err(error)) => Now::Read(Err(error)),
        Now::NotThere => Now::NotThere,
        Now::CannotAsk => Now::CannotAsk,
    }
}

/// All of a small file (`expected` bytes by its metadata, at most `limit`), if the kernel has
/// all of it in memory. Reads to the end, not just what the metadata promised: a file that grew
/// in between, or whose size a filesystem reports late, is not cut short.
pub fn whole_now(file: &File, expected: u64, limit: u64) -> Now<Bytes> {
    let mut bytes = vec![0; expected as usize + 1];
    let mut filled = 0;
    loop {
        if filled == bytes.len() {
            if bytes.len() as u64 > limit {
                break;
            }
            bytes.resize((bytes.len() * 2).min(limit as usize + 1), 0);
        }
        match read_now(file, &mut bytes[filled..], filled as u64) {
            Now::Read(Ok(0)) => break,
            Now::Read(Ok(read)) => filled += read,
            Now::Read(Err(error)) => return Now::Read(Err(error)),
            Now::NotThere => return Now::NotThere,
            Now::CannotAsk => return Now::CannotAsk,
        }
    }
    bytes.truncate(filled.min(limit as usize));
    Now::Read(Ok(Bytes::from(bytes)))
}

/// One read at `offset` that never waits for a disk (`preadv2` with `RWF_NOWAIT`); it may read
/// fewer bytes than asked when only some are in memory.
#[cfg(target_os = "linux")]
fn read_now(file: &File, buffer: &mut [u8], offset: u64) -> Now<usize> {
    use std::os::fd::AsRawFd;
    let Ok(offset) = libc::off_t::try_from(offset) else {
        return Now::CannotAsk;
    };
    let target = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // SAFETY: `target` describes `buffer`, which outlives the call, and the descriptor belongs to
    // `file`, open for the whole call.
    let read = unsafe { libc::preadv2(file.as_raw_fd(), &target, 1, offset, libc::RWF_NOWAIT) };
    match usize::try_from(read) {
        Ok(read) => Now::Read(Ok(read)),
        Err(_) => {
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Now::NotThere,
                Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => Now::CannotAsk,
                _ => Now::Read(Err(error)),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn read_now(_: &File, _: &mut [u8], _: u64) -> Now<usize> {
    Now::CannotAsk
}

#[cfg(unix)]
fn positioned_read(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buffer, offset)
}

#[cfg(windows)]
fn positioned_read(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buffer, offset)
}

/// How many read buffers are kept for reuse: about as many as reads run at once.
const KEPT_BUFFERS: usize = 8;

/// Read buffers no longer in use. A fresh buffer is memory the kernel has to map and clear page
/// by page, which costs about as much as reading into it.
static FREE_BUFFERS: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

/// A buffer of [`CHUNK_SIZE`] bytes, the first `len` of them read; back to [`FREE_BUFFERS`] when
/// the last [`Bytes`] made from it is dropped (sent, usually).
struct ReadBuffer {
    bytes: Box<[u8]>,
    len: usize,
}

impl ReadBuffer {
    fn take() -> ReadBuffer {
        let kept = FREE_BUFFERS.lock().ok().and_then(|mut free| free.pop());
        ReadBuffer {
            bytes: kept.unwrap_or_else(|| vec![0; CHUNK_SIZE].into_boxed_slice()),
            len: 0,
        }
    }
}

impl AsRef<[u8]> for ReadBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        if let Ok(mut free) = FREE_BUFFERS.lock()
            && free.len() < KEPT_BUFFERS
        {
            free.push(std::mem::take(&mut self.bytes));
        }
    }
}
