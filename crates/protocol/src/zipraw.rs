//! Raw zip structure checks where the `zip` crate's view differs from Go's `archive/zip`.
//!
//! - The crate keys entries by name, so two entries with one name silently become one;
//!   Go sees both (and `CheckZip` refuses them). We count the central directory records.
//! - The crate replaces an entry's name with an Info-ZIP Unicode Path extra field
//!   (0x7075); Go ignores that field and uses the raw name. We refuse such entries so
//!   that the name we check and hash is the name the go command sees.

use std::io::{self, Read, Seek, SeekFrom};

/// Central directory file header signature (`PK\1\2`).
const CENTRAL_HEADER_SIGNATURE: u32 = 0x0201_4b50;
/// Fixed part of a central directory file header.
const CENTRAL_HEADER_LEN: usize = 46;
/// Offsets of the name, extra field and comment lengths in that header.
const NAME_LEN_AT: usize = 28;
const EXTRA_LEN_AT: usize = 30;
const COMMENT_LEN_AT: usize = 32;
/// Info-ZIP Unicode Path extra field id.
const UNICODE_PATH_FIELD: u16 = 0x7075;
/// Header of one extra field: id and data length, both u16.
const EXTRA_HEADER_LEN: usize = 4;

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    match bytes.get(at..at + 2) {
        Some(&[lo, hi]) => u16::from_le_bytes([lo, hi]),
        _ => 0,
    }
}

/// True when the central directory at `start` holds more than `records` entries, i.e.
/// some entries share a name and the `zip` crate merged them.
pub(crate) fn more_central_records<R: Read + Seek>(
    reader: &mut R,
    start: u64,
    records: usize,
) -> io::Result<bool> {
    reader.seek(SeekFrom::Start(start))?;
    let mut header = [0u8; CENTRAL_HEADER_LEN];
    for _ in 0..records {
        reader.read_exact(&mut header)?;
        let skip = u64::from(u16_at(&header, NAME_LEN_AT))
            + u64::from(u16_at(&header, EXTRA_LEN_AT))
            + u64::from(u16_at(&header, COMMENT_LEN_AT));
        reader.seek(SeekFrom::Current(skip as i64))?;
    }
    let mut signature = [0u8; 4];
    match reader.read_exact(&mut signature) {
        Ok(()) => Ok(u32::from_le_bytes(signature) == CENTRAL_HEADER_SIGNATURE),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// True when an entry's extra data carries a Unicode Path field (or is malformed).
pub(crate) fn has_unicode_path(extra: &[u8]) -> bool {
    let mut rest = extra;
    while rest.len() >= EXTRA_HEADER_LEN {
        if u16_at(rest, 0) == UNICODE_PATH_FIELD {
            return true;
        }
        let len = EXTRA_HEADER_LEN + usize::from(u16_at(rest, 2));
        match rest.get(len..) {
            Some(next) => rest = next,
            None => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unicode_path_fields() {
        assert!(!has_unicode_path(&[]));
        // A 0x000a (NTFS) field of 2 bytes, then 0x7075.
        assert!(has_unicode_path(&[0x0a, 0, 2, 0, 1, 2, 0x75, 0x70, 0, 0]));
        assert!(!has_unicode_path(&[0x0a, 0, 2, 0, 1, 2]));
        assert!(has_unicode_path(&[0x0a, 0, 9, 0, 1]), "truncated field");
    }
}
