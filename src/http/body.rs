//! The response body: parts in memory and ranges of open files (a static file, or a page with
//! the reload script spliced in between two ranges of it), or a stream passed through from
//! elsewhere (a proxied response).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, StreamBody};
use tokio::task::JoinHandle;

use crate::http::file_reads::{self, CHUNK_SIZE, Now};

pub struct Body {
    kind: Kind,
}

enum Kind {
    Parts(Parts),
    Stream(UnsyncBoxBody<Bytes, io::Error>),
}

/// A piece of a body whose length is known before it is sent.
#[derive(Clone)]
pub enum Part {
    Memory(Bytes),
    /// `len` bytes of `file` from `offset`, read when they are sent.
    File {
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::Memory(bytes) => bytes.len() as u64,
            Part::File { len, .. } => *len,
        }
    }

    /// The bytes of this part in `range` (relative to the part, within it).
    fn cut(&self, range: Range<u64>) -> Part {
        match self {
            Part::Memory(bytes) => {
                Part::Memory(bytes.slice(range.start as usize..range.end as usize))
            }
            Part::File { file, offset, .. } => Part::File {
                file: file.clone(),
                offset: offset + range.start,
                len: range.end - range.start,
            },
        }
    }
}

/// Parts still to send, and the read of the first one when it is a file.
struct Parts {
    queue: VecDeque<Part>,
    /// A read on the blocking pool, for bytes the kernel does not have in memory.
    reading: Option<JoinHandle<io::Result<Bytes>>>,
    remaining: u64,
    /// Whether to try reading from the page cache on this thread first (see
    /// [`file_reads::chunk_now`]); off once the filesystem turns out not to offer that.
    reads_inline: bool,
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

    /// A body of these parts, in order.
    pub fn parts(parts: impl IntoIterator<Item = Part>) -> Self {
        let queue: VecDeque<Part> = parts.into_iter().filter(|part| part.len() > 0).collect();
        Body {
            kind: Kind::Parts(Parts {
                remaining: queue.iter().map(Part::len).sum(),
                queue,
                reading: None,
                reads_inline: true,
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

    /// The parts of a body not yet started, or the body back for a stream.
    fn into_parts(self) -> Result<Vec<Part>, Body> {
        match self.kind {
            Kind::Parts(Parts {
                queue,
                reading: None,
                ..
            }) => Ok(queue.into()),
            kind => Err(Body { kind }),
        }
    }

    /// Just the bytes in `range`, for a body of parts; the body back for a stream. `range` must
    /// lie within the body.
    pub fn slice(self, range: Range<u64>) -> Result<Body, Body> {
        let parts = self.into_parts()?;
        let mut start = 0;
        let mut kept = Vec::new();
        for part in parts {
            let end = start + part.len();
            let from = range.start.max(start);
            let to = range.end.min(end);
            if from < to {
                kept.push(part.cut(from - start..to - start));
            }
            start = end;
        }
        Ok(Body::parts(kept))
    }

    /// The body with each `(offset, bytes)` inserted at its offset (in the body as it is,
    /// ascending), for a body of parts; the body back for a stream.
    pub fn insert(self, inserts: Vec<(u64, Bytes)>) -> Result<Body, Body> {
        let parts = self.into_parts()?;
        let mut inserts = inserts.into_iter().peekable();
        let mut start = 0;
        let mut spliced = Vec::new();
        for part in parts {
            let end = start + part.len();
            let mut done = start;
            while let Some((at, bytes)) = inserts.next_if(|(at, _)| *at < end) {
                let at = at.max(done);
                spliced.push(part.cut(done - start..at - start));
                spliced.push(Part::Memory(bytes));
                done = at;
            }
            spliced.push(part.cut(done - start..end - start));
            start = end;
        }
        spliced.extend(inserts.map(|(_, bytes)| Part::Memory(bytes)));
        Ok(Body::parts(spliced))
    }

    /// Reads the whole body into memory if it is at most `limit` bytes long.
    pub async fn collect_up_to(self, limit: usize) -> io::Result<Collected> {
        let mut stream = self;
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
        Body::parts([Part::Memory(bytes)])
    }
}

impl Parts {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let chunk = loop {
            if let Some(reading) = &mut self.reading {
                let chunk = ready!(Pin::new(reading).poll(cx)).map_err(io::Error::other);
                self.reading = None;
                break chunk.and_then(|chunk| chunk);
            }
            match self.queue.front() {
                None => return Poll::Ready(None),
                Some(Part::Memory(bytes)) => break Ok(bytes.clone()),
                Some(Part::File { file, offset, len }) => {
                    let (file, offset) = (file.clone(), *offset);
                    let limit = CHUNK_SIZE.min(usize::try_from(*len).unwrap_or(usize::MAX));
                    if self.reads_inline {
                        match file_reads::chunk_now(&file, offset, limit) {
                            Now::Read(chunk) => break chunk,
                            Now::NotThere => {}
                            Now::CannotAsk => self.reads_inline = false,
                        }
                    }
                    self.reading = Some(tokio::task::spawn_blocking(move || {
                        file_reads::chunk(&file, offset, limit)
                    }));
                }
            }
        };
        let chunk = match chunk {
            // The file shrank while it was being sent: the promised length cannot be kept, so
            // the connection has to be cut.
            Ok(chunk) if chunk.is_empty() => Err(io::ErrorKind::UnexpectedEof.into()),
            other => other,
        };
        match chunk {
            Ok(chunk) => {
                self.advance(chunk.len() as u64);
                Poll::Ready(Some(Ok(chunk)))
            }
            Err(error) => {
                self.queue.clear();
                self.remaining = 0;
                Poll::Ready(Some(Err(error)))
            }
        }
    }

    /// Counts `sent` bytes of the first part as sent.
    fn advance(&mut self, sent: u64) {
        self.remaining -= sent;
        let Some(front) = self.queue.front_mut() else {
            return;
        };
        let left = front.len() - sent;
        if left == 0 {
            self.queue.pop_front();
        } else {
            *front = front.cut(sent..sent + left);
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
            Kind::Parts(parts) => parts
                .poll_chunk(cx)
                .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data))),
            Kind::Stream(stream) => Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Parts(parts) => parts.remaining == 0,
            Kind::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Parts(parts) => SizeHint::with_exact(parts.remaining),
            Kind::Stream(stream) => stream.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(text: &'static str) -> Part {
        Part::Memory(Bytes::from_static(text.as_bytes()))
    }

    async fn text(body: Body) -> String {
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn file_part(content: &[u8]) -> Part {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, content).unwrap();
        Part::File {
            file: Arc::new(file),
            offset: 0,
            len: content.len() as u64,
        }
    }

    #[tokio::test]
    async fn inserts_go_at_their_offsets_across_parts() {
        let body = Body::parts([memory("abc"), file_part(b"defgh"), memory("ij")]);
        let inserts = [(0, "<0>"), (3, "<3>"), (5, "<5>"), (8, "<8>"), (10, "<10>")]
            .map(|(at, text)| (at, Bytes::from_static(text.as_bytes())));
        let body = body.insert(inserts.to_vec()).ok().unwrap();
        assert_eq!(body.exact_len(), Some(10 + 3 * 4 + 4));
        assert_eq!(text(body).await, "<0>abc<3>de<5>fgh<8>ij<10>");
    }

    #[tokio::test]
    async fn a_slice_cuts_across_parts() {
        let parts = [memory("abc"), file_part(b"defgh"), memory("ij")];
        for (range, expected) in [
            (0..10, "abcdefghij"),
            (2..4, "cd"),
            (4..9, "efghi"),
            (9..10, "j"),
        ] {
            let body = Body::parts(parts.clone())
                .slice(range.clone())
                .ok()
                .unwrap();
            assert_eq!(body.exact_len(), Some(range.end - range.start));
            assert_eq!(text(body).await, expected);
        }
    }

    #[tokio::test]
    async fn a_file_part_larger_than_a_chunk_is_read_in_chunks() {
        let content: Vec<u8> = (0..CHUNK_SIZE * 2 + 17).map(|i| (i % 251) as u8).collect();
        let mut body = Body::parts([file_part(&content)]);
        let mut chunks = Vec::new();
        while let Some(frame) = body.frame().await {
            chunks.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(
            chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
            [CHUNK_SIZE, CHUNK_SIZE, 17]
        );
        assert_eq!(chunks.concat(), content);
    }

    #[tokio::test]
    async fn a_file_that_shrank_cuts_the_body() {
        let Part::File { file, .. } = file_part(b"abc") else {
            unreachable!()
        };
        let body = Body::parts([Part::File {
            file,
            offset: 0,
            len: 10,
        }]);
        assert!(body.collect().await.is_err());
    }
}
