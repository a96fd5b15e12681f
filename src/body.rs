//! The response body: bytes already in memory, or a file streamed from disk in chunks.

use std::fs::File;
use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::task::JoinHandle;

/// How much of a file one read takes: large enough that a 1 MiB file is a handful of reads, small
/// enough that many concurrent downloads stay cheap in memory.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// A response body with an exact length known up front, so `Content-Length` always matches.
pub struct Body {
    kind: Kind,
}

enum Kind {
    Bytes(Option<Bytes>),
    File(FileStream),
}

impl Body {
    pub fn empty() -> Self {
        Body::from(Bytes::new())
    }

    /// Streams `len` bytes of `file` from its current position.
    pub fn file(file: File, len: u64) -> Self {
        Body {
            kind: Kind::File(FileStream {
                state: State::Idle(Some(file)),
                remaining: len,
            }),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body {
            kind: Kind::Bytes(Some(bytes).filter(|bytes| !bytes.is_empty())),
        }
    }
}

/// Reads up to `limit` bytes from `file`; fewer only at end of file.
pub fn read_chunk(file: &mut File, limit: usize) -> io::Result<Bytes> {
    let mut chunk = Vec::with_capacity(limit);
    file.take(limit as u64).read_to_end(&mut chunk)?;
    Ok(Bytes::from(chunk))
}

struct FileStream {
    state: State,
    remaining: u64,
}

/// File reads block, so each one runs on tokio's blocking pool; the file travels with the read.
enum State {
    Idle(Option<File>),
    Reading(JoinHandle<(File, io::Result<Bytes>)>),
}

impl FileStream {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        loop {
            match &mut self.state {
                State::Idle(file) => {
                    let Some(mut file) = file.take() else {
                        return Poll::Ready(None);
                    };
                    let limit = CHUNK_SIZE.min(self.remaining.try_into().unwrap_or(usize::MAX));
                    self.state = State::Reading(tokio::task::spawn_blocking(move || {
                        let chunk = read_chunk(&mut file, limit);
                        (file, chunk)
                    }));
                }
                State::Reading(read) => {
                    let (file, chunk) =
                        ready!(Pin::new(read).poll(cx)).map_err(io::Error::other)?;
                    self.state = State::Idle(Some(file));
                    let chunk = chunk?;
                    if chunk.is_empty() {
                        // The file shrank while it was being sent: the promised length cannot be
                        // kept, so the connection has to be cut.
                        self.state = State::Idle(None);
                        return Poll::Ready(Some(Err(io::ErrorKind::UnexpectedEof.into())));
                    }
                    self.remaining -= chunk.len() as u64;
                    return Poll::Ready(Some(Ok(chunk)));
                }
            }
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Bytes(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            Kind::File(stream) => stream
                .poll_chunk(cx)
                .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Bytes(bytes) => bytes.is_none(),
            Kind::File(stream) => stream.remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Bytes(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::File(stream) => SizeHint::with_exact(stream.remaining),
        }
    }
}
