//! Answers for immutable artifacts: strong ETags, conditional requests, byte ranges,
//! and bodies streamed from disk so memory does not grow with file size.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use goproxy_protocol::index::IndexEntry;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::error::ApiError;

/// `Cache-Control` of artifacts that never change once served.
pub const IMMUTABLE: &str = "public, max-age=604800, immutable";
/// Read size when streaming a blob.
const STREAM_CHUNK: usize = 64 * 1024;

/// The byte range to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive.
    pub end: u64,
}

/// Parses a single-range `Range: bytes=…` header against `size`.
/// `Ok(None)` means "send everything" (no header, or a form we may ignore per RFC 9110).
pub fn parse_range(value: &str, size: u64) -> Result<Option<ByteRange>, ApiError> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let unsatisfiable = ApiError::RangeNotSatisfiable { size };
    let range = if first.is_empty() {
        let Ok(suffix) = last.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 || size == 0 {
            return Err(unsatisfiable);
        }
        ByteRange {
            start: size.saturating_sub(suffix),
            end: size - 1,
        }
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return Ok(None);
        };
        let end = match last {
            "" => size.saturating_sub(1),
            text => match text.parse::<u64>() {
                Ok(end) => end.min(size.saturating_sub(1)),
                Err(_) => return Ok(None),
            },
        };
        if start >= size || end < start {
            return Err(unsatisfiable);
        }
        ByteRange { start, end }
    };
    Ok(Some(range))
}

/// The strong ETag of an entry: its sha256.
pub fn etag(entry: &IndexEntry) -> String {
    format!("\"{}\"", entry.blob.sha256)
}

/// The headers of an entry's whole answer (200, no range), as [`blob_response`] sends them.
pub fn whole_headers(entry: &IndexEntry) -> Result<HeaderMap, ApiError> {
    let tag = HeaderValue::try_from(etag(entry))
        .map_err(|e| ApiError::internal(format!("the ETag of {}: {e}", entry.key)))?;
    let mut headers = HeaderMap::with_capacity(5);
    headers.insert(header::ETAG, tag);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(entry.key.kind.content_type()),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(entry.blob.size));
    Ok(headers)
}

fn if_none_match_hits(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// Whether a `Range` may be honoured: no `If-Range`, or one naming the current ETag.
fn if_range_allows(headers: &HeaderMap, etag: &str) -> bool {
    match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(tag) => tag.trim() == etag,
    }
}

/// Where an artifact's bytes come from.
pub enum BlobSource {
    /// Streamed from the blob file.
    File(tokio::fs::File),
    /// Already in memory (small artifacts).
    Memory(bytes::Bytes),
}

/// Builds the answer for a committed artifact.
pub async fn blob_response(
    entry: &IndexEntry,
    source: BlobSource,
    headers: &HeaderMap,
    head: bool,
) -> Result<(Response, u64), ApiError> {
    let tag = etag(entry);
    let size = entry.blob.size;
    let mut builder = Response::builder()
        .header(header::ETAG, &tag)
        .header(header::CACHE_CONTROL, IMMUTABLE)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, entry.key.kind.content_type());
    if if_none_match_hits(headers, &tag) {
        let response = builder.status(StatusCode::NOT_MODIFIED).body(Body::empty());
        return Ok((response.map_err(internal)?, 0));
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) if if_range_allows(headers, &tag) => parse_range(value, size)?,
        _ => None,
    };
    let (status, start, len) = match range {
        Some(r) => {
            let content_range = format!("bytes {}-{}/{size}", r.start, r.end);
            builder = builder.header(header::CONTENT_RANGE, content_range);
            (StatusCode::PARTIAL_CONTENT, r.start, r.end - r.start + 1)
        }
        None => (StatusCode::OK, 0, size),
    };
    builder = builder
        .status(status)
        .header(header::CONTENT_LENGTH, HeaderValue::from(len));
    if head {
        return Ok((builder.body(Body::empty()).map_err(internal)?, 0));
    }
    let body = match source {
        BlobSource::Memory(bytes) => {
            let end = usize::try_from(start + len)
                .unwrap_or(bytes.len())
                .min(bytes.len());
            let begin = usize::try_from(start).unwrap_or(end).min(end);
            Body::from(bytes.slice(begin..end))
        }
        BlobSource::File(mut file) => {
            if start > 0 {
                file.seek(std::io::SeekFrom::Start(start))
                    .await
                    .map_err(|e| ApiError::internal(format!("seeking blob: {e}")))?;
            }
            Body::from_stream(ReaderStream::with_capacity(file.take(len), STREAM_CHUNK))
        }
    };
    Ok((builder.body(body).map_err(internal)?, len))
}

fn internal(e: axum::http::Error) -> ApiError {
    ApiError::internal(format!("building response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let r = |s| parse_range(s, 100);
        assert_eq!(
            r("bytes=0-9").unwrap(),
            Some(ByteRange { start: 0, end: 9 })
        );
        assert_eq!(
            r("bytes=90-").unwrap(),
            Some(ByteRange { start: 90, end: 99 })
        );
        assert_eq!(
            r("bytes=-10").unwrap(),
            Some(ByteRange { start: 90, end: 99 })
        );
        assert_eq!(
            r("bytes=-1000").unwrap(),
            Some(ByteRange { start: 0, end: 99 })
        );
        assert_eq!(
            r("bytes=50-1000").unwrap(),
            Some(ByteRange { start: 50, end: 99 })
        );
        assert_eq!(r("bytes=0-1,5-6").unwrap(), None);
        assert_eq!(r("items=0-1").unwrap(), None);
        assert_eq!(r("bytes=x-1").unwrap(), None);
        assert!(r("bytes=100-").is_err());
        assert!(r("bytes=9-3").is_err());
        assert!(r("bytes=-0").is_err());
    }
}
