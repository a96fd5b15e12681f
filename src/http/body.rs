//! The response body: bytes already in memory, a file streamed from disk in chunks, or a stream
//! passed through from elsewhere (a proxied response).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, StreamBody};
use tokio::task::JoinHandle;

/// How much of a file one read takes: large enough that a 1 MiB file is a handful of reads, small
/// enough that many concurrent downloads stay cheap in memory.
pub const CHUNK_SIZE: usize = 256 * 1024;

pub struct Body {
    kind: Kind,
}

enum Kind {
    Bytes(Option<Bytes>),
    File(FileStream),
    Stream(UnsyncBoxBody<Bytes, io::Error>),
}

/// What [`Body::collect_up_to`] found.
pub enum Collected {
    /// The whole body.
    Complete(Bytes),
    /// The body is longer than the limit: all of it, what was read followed by the rest.
    TooLong(Body),
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

    /// Passes another body through as it arrives, chunk by chunk.
    pub fn stream<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        Body {
            kind: Kind::Stream(body.map_err(io::Error::other).boxed_unsync()),
        }
    }

    /// The exact length, when it is known before sending.
    pub fn exact_len(&self) -> Option<u64> {
        http_body::Body::size_hint(self).exact()
    }

    /// Just the bytes in `range`, for bodies that can be cut without reading them (in memory, or
    /// a file); `None` for a stream. `range` must lie within the body.
    pub fn slice(self, range: Range<u64>) -> Result<Body, Body> {
        match self.kind {
            Kind::Bytes(bytes) => {
                let bytes = bytes.unwrap_or_default();
                Ok(Body::from(
                    bytes.slice(range.start as usize..range.end as usize),
                ))
            }
            Kind::File(FileStream {
                state: State::Idle(Some(mut file)),
                ..
            }) => match file.seek(SeekFrom::Current(range.start as i64)) {
                Ok(_) => Ok(Body::file(file, range.end - range.start)),
                Err(error) => Err(Body::from_error(error)),
            },
            kind => Err(Body { kind }),
        }
    }

    /// Reads the whole body into memory if it is at most `limit` bytes long.
    pub async fn collect_up_to(self, limit: usize) -> io::Result<Collected> {
        let mut stream = match self.kind {
            Kind::Bytes(bytes) => return Ok(Collected::Complete(bytes.unwrap_or_default())),
            kind => Body { kind },
        };
        let mut collected = BytesMut::new();
        while let Some(frame) = stream.frame().await {
            let Ok(data) = frame?.into_data() else {
                continue; // trailers: nothing a page needs
            };
            collected.extend_from_slice(&data);
            if collected.len() > limit {
                return Ok(Collected::TooLong(Body::prepend(
                    collected.freeze(),
                    stream,
                )));
            }
        }
        Ok(Collected::Complete(collected.freeze()))
    }

    /// `read` (the start of a body), then the rest of it.
    fn prepend(read: Bytes, rest: Body) -> Body {
        let first = futures_util::stream::once(async move { Ok(Frame::data(read)) });
        Body::from_frames(first.chain(BodyStream::new(rest)))
    }

    /// A body that fails at once: the connection is cut rather than sending wrong bytes.
    pub fn from_error(error: io::Error) -> Body {
        Body::from_frames(futures_util::stream::once(async move { Err(error) }))
    }

    fn from_frames<S>(frames: S) -> Body
    where
        S: Stream<Item = io::Result<Frame<Bytes>>> + Send + 'static,
    {
        Body {
            kind: Kind::Stream(StreamBody::new(frames).boxed_unsync()),
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
fn read_chunk(file: &mut File, limit: usize) -> io::Result<Bytes> {
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
            Kind::Stream(stream) => Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Bytes(bytes) => bytes.is_none(),
            Kind::File(stream) => stream.remaining == 0,
            Kind::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Bytes(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::File(stream) => SizeHint::with_exact(stream.remaining),
            Kind::Stream(stream) => stream.size_hint(),
        }
    }
}
