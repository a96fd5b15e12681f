//! Reading a page a backend compressed although it was asked not to (`Accept-Encoding: identity`
//! is only a wish): the reload script can only go into the page itself.

use std::io::Read;

/// The body with the `Content-Encoding` `encodings` undone (gzip, deflate, br, zstd, in any
/// order), or `None` for an encoding we do not know, a body that does not decode, or one that
/// decodes to more than `limit` bytes.
pub fn decode(encodings: &str, body: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut data = body.to_vec();
    // Codings are listed in the order they were applied: undo the last first.
    for coding in encodings
        .rsplit(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        data = decode_one(&coding.to_ascii_lowercase(), &data, limit)?;
    }
    Some(data)
}

fn decode_one(coding: &str, data: &[u8], limit: usize) -> Option<Vec<u8>> {
    match coding {
        "identity" => Some(data.to_vec()),
        "gzip" | "x-gzip" => read_all(flate2::read::MultiGzDecoder::new(data), limit),
        // RFC 9110 says zlib-wrapped; some servers send raw deflate anyway.
        "deflate" => read_all(flate2::read::ZlibDecoder::new(data), limit)
            .or_else(|| read_all(flate2::read::DeflateDecoder::new(data), limit)),
        "br" => read_all(brotli_decompressor::Decompressor::new(data, 4096), limit),
        "zstd" => read_all(ruzstd::decoding::StreamingDecoder::new(data).ok()?, limit),
        _ => None,
    }
}

fn read_all(reader: impl Read, limit: usize) -> Option<Vec<u8>> {
    let mut decoded = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut decoded)
        .ok()?;
    (decoded.len() <= limit).then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const PAGE: &[u8] = b"<html><body><p>compressed page</p></body></html>";

    #[test]
    fn every_coding_a_backend_may_use_decodes() {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(PAGE).unwrap();
        let gzip = gzip.finish().unwrap();
        assert_eq!(decode("gzip", &gzip, 1024).unwrap(), PAGE);
        assert_eq!(decode("X-Gzip", &gzip, 1024).unwrap(), PAGE);

        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(PAGE).unwrap();
        assert_eq!(
            decode("deflate", &zlib.finish().unwrap(), 1024).unwrap(),
            PAGE
        );
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(PAGE).unwrap();
        assert_eq!(
            decode("deflate", &raw.finish().unwrap(), 1024).unwrap(),
            PAGE
        );

        let mut br = Vec::new();
        {
            let mut writer = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            writer.write_all(PAGE).unwrap();
        }
        assert_eq!(decode("br", &br, 1024).unwrap(), PAGE);

        let zstd =
            ruzstd::encoding::compress_to_vec(PAGE, ruzstd::encoding::CompressionLevel::Fastest);
        assert_eq!(decode("zstd", &zstd, 1024).unwrap(), PAGE);

        // Applied gzip, then br: undone br, then gzip.
        let mut both = Vec::new();
        {
            let mut writer = brotli::CompressorWriter::new(&mut both, 4096, 5, 22);
            writer.write_all(&gzip).unwrap();
        }
        assert_eq!(decode("gzip, br", &both, 1024).unwrap(), PAGE);
    }

    #[test]
    fn unknown_broken_and_oversized_bodies_are_refused() {
        assert!(decode("compress", PAGE, 1024).is_none());
        assert!(decode("gzip", PAGE, 1024).is_none());
        assert!(decode("br", b"\xff\xff\xff", 1024).is_none());
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&[b'a'; 10_000]).unwrap();
        assert!(decode("gzip", &gzip.finish().unwrap(), 1_000).is_none());
    }
}
