//! NAL unit framing: Annex B byte streams (start codes) and length-prefixed units
//! (the AVCC/HVCC form MP4 stores).
//!
//! [`crate::Frame`] carries video as NAL units with 4-byte big-endian lengths. Ingest
//! converts Annex B (MPEG-TS, raw `.h264`) with [`annexb_to_length_prefixed`] and other
//! length sizes (an avcC with `lengthSizeMinusOne` 0 or 1) with [`relength`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::{Error, Result};

const WHAT_LP: &str = "length-prefixed NAL units";

/// Finds the next `00 00 01` at or after `from`; returns the index of its first byte.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from.checked_add(2)?;
    while i < data.len() {
        let b = data[i];
        if b > 1 {
            // No start code can end at i, i+1 or i+2.
            i += 3;
        } else if b == 1 && data[i - 1] == 0 && data[i - 2] == 0 {
            return Some(i - 2);
        } else {
            i += 1;
        }
    }
    None
}

/// Strips the trailing zero bytes a NAL unit cannot end with (`trailing_zero_8bits`,
/// and the `zero_byte` of a following 4-byte start code).
fn trim_trailing_zeros(nal: &[u8]) -> &[u8] {
    let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &nal[..end]
}

/// Iterator over the NAL units of an Annex B byte stream; see [`split_annexb`].
#[derive(Clone, Debug)]
pub struct AnnexBIter<'a> {
    data: &'a [u8],
    /// Start of the next NAL unit's payload, or `None` when done.
    pos: Option<usize>,
}

impl<'a> Iterator for AnnexBIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let start = self.pos?;
            let (end, next) = match find_start_code(self.data, start) {
                Some(sc) => (sc, Some(sc + 3)),
                None => (self.data.len(), None),
            };
            self.pos = next;
            let nal = trim_trailing_zeros(&self.data[start..end]);
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

impl std::iter::FusedIterator for AnnexBIter<'_> {}

/// Splits an Annex B byte stream into NAL units, without start codes.
///
/// Both 3-byte (`00 00 01`) and 4-byte (`00 00 00 01`) start codes are accepted;
/// trailing zero bytes and empty units are dropped. Bytes before the first start code
/// are returned as a unit when they are not all zero (some senders omit the first start
/// code).
pub fn split_annexb(data: &[u8]) -> AnnexBIter<'_> {
    AnnexBIter { data, pos: Some(0) }
}

/// True when `data` begins with an Annex B start code (after optional zero bytes).
pub fn is_annexb(data: &[u8]) -> bool {
    let zeros = data.iter().take_while(|&&b| b == 0).count();
    zeros >= 2 && data.get(zeros) == Some(&1)
}

/// Converts an Annex B byte stream to NAL units with 4-byte big-endian lengths.
pub fn annexb_to_length_prefixed(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 16);
    for nal in split_annexb(data) {
        // A NAL unit is a slice of `data`; a slice longer than u32::MAX cannot come from
        // a frame, but never truncate silently.
        let Ok(len) = u32::try_from(nal.len()) else {
            continue;
        };
        out.put_u32(len);
        out.extend_from_slice(nal);
    }
    out.freeze()
}

fn check_length_size(length_size: u8) -> Result<()> {
    if (1..=4).contains(&length_size) {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: WHAT_LP,
            field: "length size",
            value: u64::from(length_size),
        })
    }
}

/// Iterator over length-prefixed NAL units; see [`iter_length_prefixed`].
#[derive(Clone, Debug)]
pub struct LengthPrefixedIter<'a> {
    data: &'a [u8],
    pos: usize,
    length_size: u8,
    done: bool,
}

impl<'a> Iterator for LengthPrefixedIter<'a> {
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let Err(e) = check_length_size(self.length_size) {
                self.done = true;
                return Some(Err(e));
            }
            if self.pos == self.data.len() {
                self.done = true;
                return None;
            }
            let ls = usize::from(self.length_size);
            let Some(prefix) = self.data.get(self.pos..self.pos + ls) else {
                self.done = true;
                return Some(Err(Error::Truncated {
                    what: WHAT_LP,
                    offset: self.pos,
                }));
            };
            let len = prefix
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            let start = self.pos + ls;
            let Some(nal) = start
                .checked_add(len)
                .and_then(|end| self.data.get(start..end))
            else {
                self.done = true;
                return Some(Err(Error::Truncated {
                    what: WHAT_LP,
                    offset: self.pos,
                }));
            };
            self.pos = start + len;
            if !nal.is_empty() {
                return Some(Ok(nal));
            }
        }
    }
}

impl std::iter::FusedIterator for LengthPrefixedIter<'_> {}

/// Iterates over NAL units each preceded by a `length_size`-byte (1 to 4) big-endian
/// length. Zero-length units are skipped. A length running past the end yields one
/// [`Error::Truncated`] (with the offset of that length field) and ends the iteration;
/// an invalid `length_size` yields one [`Error::Invalid`].
pub fn iter_length_prefixed(data: &[u8], length_size: u8) -> LengthPrefixedIter<'_> {
    LengthPrefixedIter {
        data,
        pos: 0,
        length_size,
        done: false,
    }
}

/// Converts length-prefixed NAL units to Annex B with 4-byte start codes.
pub fn length_prefixed_to_annexb(data: &[u8], length_size: u8) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for nal in iter_length_prefixed(data, length_size) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal?);
    }
    Ok(out)
}

/// Converts NAL units with `length_size`-byte lengths (1, 2, 3 or 4) to 4-byte lengths,
/// validating the framing. Zero-length units are dropped.
pub fn relength(data: &[u8], length_size: u8) -> Result<Bytes> {
    if length_size == 4 {
        let mut has_empty = false;
        let mut pos = 0usize;
        for nal in iter_length_prefixed(data, 4) {
            let nal = nal?;
            // Units are contiguous unless a zero-length one was skipped.
            let offset = nal.as_ptr() as usize - data.as_ptr() as usize;
            has_empty |= offset != pos + 4;
            pos = offset + nal.len();
        }
        has_empty |= pos != data.len();
        if !has_empty {
            return Ok(Bytes::copy_from_slice(data));
        }
    }
    let mut out = BytesMut::with_capacity(data.len() + 16);
    for nal in iter_length_prefixed(data, length_size) {
        let nal = nal?;
        // Any unit read with a length of at most 4 bytes fits in u32.
        out.put_u32(nal.len() as u32);
        out.extend_from_slice(nal);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn split_mixed_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 0xaa, 0, 0, 1, 0x68, 0xbb, 0, 0, 0, 0, 1, 0x65, 1, 2, 0, 0,
        ];
        let nals: Vec<&[u8]> = split_annexb(&data).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 0xaa][..], &[0x68, 0xbb][..], &[0x65, 1, 2][..]]
        );
        assert!(is_annexb(&data));
        assert!(!is_annexb(&data[4..]));
        let lp = annexb_to_length_prefixed(&data);
        assert_eq!(
            &lp[..],
            &[
                0, 0, 0, 2, 0x67, 0xaa, 0, 0, 0, 2, 0x68, 0xbb, 0, 0, 0, 3, 0x65, 1, 2
            ]
        );
        assert_eq!(
            length_prefixed_to_annexb(&lp, 4).unwrap(),
            vec![
                0, 0, 0, 1, 0x67, 0xaa, 0, 0, 0, 1, 0x68, 0xbb, 0, 0, 0, 1, 0x65, 1, 2
            ]
        );
    }

    #[test]
    fn split_edge_cases() {
        assert_eq!(split_annexb(&[]).count(), 0);
        assert_eq!(split_annexb(&[0, 0, 1]).count(), 0);
        assert_eq!(split_annexb(&[0, 0, 0, 0, 1, 0, 0, 1]).count(), 0);
        // No start code at all: the whole input is one unit.
        assert_eq!(
            split_annexb(&[9, 8, 7]).collect::<Vec<_>>(),
            vec![&[9, 8, 7][..]]
        );
        // Leading bytes before the first start code.
        assert_eq!(
            split_annexb(&[9, 0, 0, 1, 5]).collect::<Vec<_>>(),
            vec![&[9][..], &[5][..]]
        );
        // A start code cut short at the end is payload, minus its trailing zeros.
        assert_eq!(
            split_annexb(&[0, 0, 1, 5, 0, 0]).collect::<Vec<_>>(),
            vec![&[5][..]]
        );
        // Every prefix splits without panicking, each unit is non-empty.
        let data = [0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 0, 0, 3, 1, 0, 0, 1];
        for n in 0..=data.len() {
            for nal in split_annexb(&data[..n]) {
                assert!(!nal.is_empty());
            }
        }
    }

    #[test]
    fn length_prefixed_sizes() {
        let one = [2, 0xa, 0xb, 1, 0xc];
        let two = [0, 2, 0xa, 0xb, 0, 1, 0xc];
        let three = [0, 0, 2, 0xa, 0xb, 0, 0, 1, 0xc];
        let four = [0, 0, 0, 2, 0xa, 0xb, 0, 0, 0, 1, 0xc];
        for (ls, data) in [
            (1u8, &one[..]),
            (2, &two[..]),
            (3, &three[..]),
            (4, &four[..]),
        ] {
            let nals: Vec<&[u8]> = iter_length_prefixed(data, ls)
                .collect::<Result<_>>()
                .unwrap();
            assert_eq!(nals, vec![&[0xa, 0xb][..], &[0xc][..]]);
            assert_eq!(&relength(data, ls).unwrap()[..], &four[..]);
        }
        for ls in [0u8, 5, 255] {
            let mut it = iter_length_prefixed(&four, ls);
            assert!(matches!(it.next(), Some(Err(Error::Invalid { .. }))));
            assert!(it.next().is_none());
            assert!(relength(&four, ls).is_err());
            assert!(length_prefixed_to_annexb(&four, ls).is_err());
        }
        // Zero-length units are skipped and dropped by relength.
        let with_empty = [0, 0, 0, 0, 0, 0, 0, 1, 0xc, 0, 0, 0, 0];
        assert_eq!(&relength(&with_empty, 4).unwrap()[..], &[0, 0, 0, 1, 0xc]);
        assert!(relength(&[], 4).unwrap().is_empty());
    }

    #[test]
    fn truncated_length_prefixed_is_err() {
        let four = [0, 0, 0, 2, 0xa, 0xb, 0, 0, 0, 1, 0xc];
        for n in 0..four.len() {
            let data = &four[..n];
            let complete = n == 0 || n == 6;
            let items: Vec<_> = iter_length_prefixed(data, 4).collect();
            assert_eq!(
                items.iter().any(|r| r.is_err()),
                !complete,
                "prefix {n}: {items:?}"
            );
            assert_eq!(relength(data, 4).is_err(), !complete);
            assert_eq!(length_prefixed_to_annexb(data, 4).is_err(), !complete);
        }
        let mut it = iter_length_prefixed(&four[..9], 4);
        assert_eq!(it.next(), Some(Ok(&[0xa, 0xb][..])));
        assert_eq!(
            it.next(),
            Some(Err(Error::Truncated {
                what: WHAT_LP,
                offset: 6
            }))
        );
        assert_eq!(it.next(), None);
    }

    /// A NAL unit payload: non-empty, not ending in zero, no start-code emulation
    /// (as an encoder's emulation prevention guarantees).
    fn nal_strategy() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 1..200).prop_map(|v| {
            let mut out = crate::bits::escape_rbsp(&v);
            if out.last() == Some(&0) {
                out.push(0x03);
            }
            if out[0] == 0 {
                out[0] = 0x40;
            }
            out
        })
    }

    proptest! {
        #[test]
        fn annexb_round_trip(
            nals in proptest::collection::vec(nal_strategy(), 0..8),
            four_byte in proptest::collection::vec(any::<bool>(), 8),
        ) {
            let mut annexb = Vec::new();
            for (i, nal) in nals.iter().enumerate() {
                if four_byte[i] {
                    annexb.push(0);
                }
                annexb.extend_from_slice(&[0, 0, 1]);
                annexb.extend_from_slice(nal);
            }
            let split: Vec<&[u8]> = split_annexb(&annexb).collect();
            let want: Vec<&[u8]> = nals.iter().map(|n| &n[..]).collect();
            prop_assert_eq!(&split, &want);

            let lp = annexb_to_length_prefixed(&annexb);
            let units: Vec<&[u8]> = iter_length_prefixed(&lp, 4).collect::<Result<_>>().unwrap();
            prop_assert_eq!(&units, &want);
            let back = length_prefixed_to_annexb(&lp, 4).unwrap();
            prop_assert_eq!(annexb_to_length_prefixed(&back), lp.clone());
            prop_assert_eq!(relength(&lp, 4).unwrap(), lp.clone());

            // Two-byte lengths relength to the same 4-byte form.
            let mut two = Vec::new();
            for n in &nals {
                two.extend_from_slice(&(n.len() as u16).to_be_bytes());
                two.extend_from_slice(n);
            }
            prop_assert_eq!(relength(&two, 2).unwrap(), lp);
        }

        #[test]
        fn length_prefixed_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), ls in 0u8..6) {
            let total: usize = iter_length_prefixed(&data, ls).filter_map(|r| r.ok()).map(|n| n.len()).sum();
            prop_assert!(total <= data.len());
            let _ = relength(&data, ls);
            let _ = length_prefixed_to_annexb(&data, ls);
            for nal in split_annexb(&data) {
                prop_assert!(!nal.is_empty());
            }
        }
    }
}
