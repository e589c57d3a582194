//! Big-endian bit reading and writing for codec headers.
//!
//! [`BitReader`] reads MSB-first bit fields and exp-Golomb codes (H.264/H.265 `ue(v)`,
//! `se(v)`); every read is bounds-checked and returns [`Error::Truncated`] past the end.
//! [`unescape_rbsp`] strips emulation-prevention bytes from a NAL unit payload.
//! [`BitWriter`] is the inverse, used to build records and test vectors.

use crate::{Error, Result};

/// Reads bits MSB-first from a byte slice.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
    what: &'static str,
}

impl<'a> BitReader<'a> {
    /// A reader over `data`; `what` names the structure in errors (e.g. `"H.264 SPS"`).
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        BitReader { data, pos: 0, what }
    }

    fn truncated(&self) -> Error {
        Error::Truncated {
            what: self.what,
            offset: self.pos / 8,
        }
    }

    /// Position in bits from the start.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bits left to read.
    pub fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// True when the position is on a byte boundary.
    pub fn is_byte_aligned(&self) -> bool {
        self.pos.is_multiple_of(8)
    }

    /// Skips to the next byte boundary (no-op when aligned).
    pub fn byte_align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
        if self.pos > self.data.len() * 8 {
            self.pos = self.data.len() * 8;
        }
    }

    /// The unread bytes, when byte-aligned.
    pub fn remaining_bytes(&self) -> Option<&'a [u8]> {
        if self.is_byte_aligned() {
            self.data.get(self.pos / 8..)
        } else {
            None
        }
    }

    /// Reads one bit.
    pub fn read_bit(&mut self) -> Result<bool> {
        let byte = *self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| self.truncated())?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads one bit as a flag (alias of [`read_bit`](Self::read_bit)).
    pub fn read_flag(&mut self) -> Result<bool> {
        self.read_bit()
    }

    /// Reads `n` bits (0..=64) as an unsigned big-endian number.
    pub fn read_bits64(&mut self, n: u32) -> Result<u64> {
        if n > 64 {
            return Err(Error::Invalid {
                what: self.what,
                field: "bit count",
                value: u64::from(n),
            });
        }
        if (n as usize) > self.remaining() {
            return Err(self.truncated());
        }
        let mut value: u64 = 0;
        let mut left = n;
        while left > 0 {
            let byte = self.data[self.pos / 8];
            let bit_off = (self.pos % 8) as u32;
            let avail = 8 - bit_off;
            let take = avail.min(left);
            let chunk = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            value = (value << take) | u64::from(chunk);
            self.pos += take as usize;
            left -= take;
        }
        Ok(value)
    }

    /// Reads `n` bits (0..=32) as an unsigned big-endian number.
    pub fn read_bits(&mut self, n: u32) -> Result<u32> {
        if n > 32 {
            return Err(Error::Invalid {
                what: self.what,
                field: "bit count",
                value: u64::from(n),
            });
        }
        // Cannot exceed u32::MAX with n <= 32.
        Ok(self.read_bits64(n)? as u32)
    }

    /// Reads 8 bits.
    pub fn read_u8(&mut self) -> Result<u8> {
        Ok(self.read_bits(8)? as u8)
    }

    /// Skips `n` bits; past the end it is an error and the position stays put.
    pub fn skip(&mut self, n: usize) -> Result<()> {
        if n > self.remaining() {
            return Err(self.truncated());
        }
        self.pos += n;
        Ok(())
    }

    /// Reads an unsigned exp-Golomb code `ue(v)` (up to 32 leading zeros, i.e. values
    /// up to 2^32 - 2).
    pub fn read_ue(&mut self) -> Result<u32> {
        let mut zeros = 0u32;
        while !self.read_bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(Error::Invalid {
                    what: self.what,
                    field: "exp-Golomb prefix length",
                    value: u64::from(zeros),
                });
            }
        }
        let suffix = self.read_bits64(zeros)?;
        let value = (1u64 << zeros) - 1 + suffix;
        u32::try_from(value).map_err(|_| Error::Invalid {
            what: self.what,
            field: "exp-Golomb value",
            value,
        })
    }

    /// Reads a signed exp-Golomb code `se(v)`.
    pub fn read_se(&mut self) -> Result<i32> {
        let k = i64::from(self.read_ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        // |v| <= 2^31 for k < 2^32, and -2^31 fits; +2^31 does not.
        i32::try_from(v).map_err(|_| Error::Invalid {
            what: self.what,
            field: "signed exp-Golomb value",
            value: k as u64,
        })
    }

    /// Reads an AV1 `leb128()` value (at most 8 bytes, result below 2^32 per the spec).
    pub fn read_leb128(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..8 {
            let byte = self.read_bits(8)?;
            value |= u64::from(byte & 0x7f) << (i * 7);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::Invalid {
            what: self.what,
            field: "leb128 length",
            value: 9,
        })
    }

    /// Reads an AV1 `uvlc()` value.
    pub fn read_uvlc(&mut self) -> Result<u32> {
        let mut zeros = 0u32;
        while !self.read_bit()? {
            zeros += 1;
            if zeros >= 32 {
                return Ok(u32::MAX);
            }
        }
        let v = self.read_bits64(zeros)?;
        Ok(u32::try_from(v + (1u64 << zeros) - 1).unwrap_or(u32::MAX))
    }

    /// True if more RBSP data follows before the `rbsp_trailing_bits` (H.264 7.2
    /// `more_rbsp_data()`).
    pub fn more_rbsp_data(&self) -> bool {
        let total = self.data.len() * 8;
        if self.pos >= total {
            return false;
        }
        // Find the last 1 bit in the data: the rbsp_stop_one_bit.
        let Some(last_idx) = self.data.iter().rposition(|&b| b != 0) else {
            return false;
        };
        let last_byte = self.data[last_idx];
        let stop_bit = last_idx * 8 + 7 - last_byte.trailing_zeros() as usize;
        self.pos < stop_bit
    }
}

/// Removes emulation-prevention bytes: every `0x03` that follows two zero bytes
/// (`00 00 03` -> `00 00`). Returns the RBSP of a NAL unit (header included if given).
pub fn unescape_rbsp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0usize;
    for &b in data {
        if zeros >= 2 && b == 0x03 {
            zeros = 0;
            continue;
        }
        if b == 0 {
            zeros += 1;
        } else {
            zeros = 0;
        }
        out.push(b);
    }
    out
}

/// Inserts emulation-prevention bytes (the inverse of [`unescape_rbsp`]).
pub fn escape_rbsp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 64);
    let mut zeros = 0usize;
    for &b in data {
        if zeros >= 2 && b <= 3 {
            out.push(0x03);
            zeros = 0;
        }
        if b == 0 {
            zeros += 1;
        } else {
            zeros = 0;
        }
        out.push(b);
    }
    out
}

/// Writes bits MSB-first; the inverse of [`BitReader`].
#[derive(Clone, Debug, Default)]
pub struct BitWriter {
    data: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `value` in `n` bits, most significant first (bits above 64 are zeros).
    pub fn write_bits(&mut self, n: u32, value: u64) {
        for i in (0..n).rev() {
            self.write_bit(i < 64 && (value >> i) & 1 == 1);
        }
    }

    pub fn write_bit(&mut self, bit: bool) {
        if self.bits.is_multiple_of(8) {
            self.data.push(0);
        }
        if bit {
            let idx = self.bits / 8;
            self.data[idx] |= 0x80 >> (self.bits % 8);
        }
        self.bits += 1;
    }

    /// Writes an unsigned exp-Golomb code.
    pub fn write_ue(&mut self, value: u32) {
        let v = u64::from(value) + 1;
        let len = 64 - v.leading_zeros();
        self.write_bits(len - 1, 0);
        self.write_bits(len, v);
    }

    /// Writes a signed exp-Golomb code.
    pub fn write_se(&mut self, value: i32) {
        let v = i64::from(value);
        let k = if v > 0 { 2 * v - 1 } else { -2 * v };
        self.write_ue(k as u32);
    }

    /// Writes `rbsp_trailing_bits`: a 1 then zeros to the byte boundary.
    pub fn write_trailing_bits(&mut self) {
        self.write_bit(true);
        while !self.bits.is_multiple_of(8) {
            self.write_bit(false);
        }
    }

    /// Bits written so far.
    pub fn len_bits(&self) -> usize {
        self.bits
    }

    /// The bytes written, the last one zero-padded.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_table() {
        // (bit string, value) from H.264 Table 9-2 / 9-3.
        let ue: &[(&str, u32)] = &[
            ("1", 0),
            ("010", 1),
            ("011", 2),
            ("00100", 3),
            ("00101", 4),
            ("00110", 5),
            ("00111", 6),
            ("0001000", 7),
            ("0001001", 8),
            ("0001010", 9),
            ("000011111", 30),
        ];
        for &(bits, want) in ue {
            let bytes = pack(bits);
            let mut r = BitReader::new(&bytes, "test");
            assert_eq!(r.read_ue().unwrap(), want, "{bits}");
            assert_eq!(r.position(), bits.len());
        }
        let se: &[(&str, i32)] = &[
            ("1", 0),
            ("010", 1),
            ("011", -1),
            ("00100", 2),
            ("00101", -2),
            ("00110", 3),
            ("00111", -3),
        ];
        for &(bits, want) in se {
            let bytes = pack(bits);
            let mut r = BitReader::new(&bytes, "test");
            assert_eq!(r.read_se().unwrap(), want, "{bits}");
        }
    }

    /// Packs a string of '0'/'1' into bytes, padding with zeros... then a stop bit is
    /// not needed for reading.
    fn pack(bits: &str) -> Vec<u8> {
        let mut w = BitWriter::new();
        for c in bits.chars() {
            w.write_bit(c == '1');
        }
        w.into_bytes()
    }

    #[test]
    fn ue_max_and_overflow() {
        // 31 zeros, 1, then 31 ones = 2^32 - 2.
        let mut w = BitWriter::new();
        w.write_ue(u32::MAX - 1);
        let bytes = w.into_bytes();
        assert_eq!(BitReader::new(&bytes, "t").read_ue().unwrap(), u32::MAX - 1);
        // 32 zeros is invalid.
        let bytes = [0u8, 0, 0, 0, 0x80, 0, 0, 0, 0];
        assert!(matches!(
            BitReader::new(&bytes, "t").read_ue(),
            Err(Error::Invalid { .. })
        ));
        // se of the max ue cannot be represented as i32 positive 2^31.
        let mut w = BitWriter::new();
        w.write_ue(u32::MAX - 1);
        let bytes = w.into_bytes();
        assert_eq!(BitReader::new(&bytes, "t").read_se().unwrap(), -(i32::MAX));
    }

    #[test]
    fn writer_reader_round_trip() {
        let mut w = BitWriter::new();
        for v in 0..2000u32 {
            w.write_ue(v);
            w.write_se(v as i32 - 1000);
            w.write_bits(v % 33, u64::from(v) & ((1u64 << (v % 33)) - 1));
        }
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes, "t");
        for v in 0..2000u32 {
            assert_eq!(r.read_ue().unwrap(), v);
            assert_eq!(r.read_se().unwrap(), v as i32 - 1000);
            assert_eq!(
                r.read_bits(v % 33).unwrap(),
                v & ((1u64 << (v % 33)) - 1) as u32
            );
        }
    }

    #[test]
    fn read_bits_values() {
        let data = [0b1010_1100, 0xff, 0x01, 0x80, 0x12, 0x34, 0x56, 0x78, 0x9a];
        let mut r = BitReader::new(&data, "t");
        assert_eq!(r.read_bits(3).unwrap(), 0b101);
        assert_eq!(r.read_bits(5).unwrap(), 0b01100);
        assert_eq!(r.read_bits(12).unwrap(), 0xff0);
        assert_eq!(r.read_bits(4).unwrap(), 0x1);
        assert!(r.read_bit().unwrap());
        assert_eq!(r.read_bits(7).unwrap(), 0);
        assert_eq!(r.read_bits64(40).unwrap(), 0x12_3456_789a);
        assert!(r.read_bit().is_err());
        let mut r = BitReader::new(&data, "t");
        r.skip(8).unwrap();
        assert_eq!(r.read_bits(32).unwrap(), 0xff01_8012);
        assert!(r.read_bits(33).is_err());
        let mut r = BitReader::new(&data[..8], "t");
        assert_eq!(r.read_bits64(64).unwrap(), 0xacff_0180_1234_5678);
    }

    #[test]
    fn reading_past_end_is_err() {
        let data = [0xffu8, 0x00];
        let mut r = BitReader::new(&data, "thing");
        assert!(r.skip(10).is_ok());
        assert_eq!(
            r.read_bits(7),
            Err(Error::Truncated {
                what: "thing",
                offset: 1
            })
        );
        // The failed read does not advance.
        assert_eq!(r.read_bits(6).unwrap(), 0);
        assert!(r.read_bit().is_err());
        assert!(r.read_ue().is_err());
        assert!(r.skip(1).is_err());
        // A ue prefix running off the end is Err.
        let zeros = [0u8; 3];
        assert!(BitReader::new(&zeros, "t").read_ue().is_err());
        assert!(BitReader::new(&[], "t").read_se().is_err());
        // Suffix truncated: prefix 00001 then only 3 of 4 suffix bits.
        let b = pack("00001000");
        assert!(BitReader::new(&b, "t").read_ue().is_err());
        assert_eq!(BitReader::new(&pack("000010000"), "t").read_ue(), Ok(15));
    }

    #[test]
    fn leb128_and_more_rbsp_data() {
        let data = [0xe5, 0x8e, 0x26];
        assert_eq!(BitReader::new(&data, "t").read_leb128().unwrap(), 624_485);
        assert!(BitReader::new(&[0x80], "t").read_leb128().is_err());
        assert!(BitReader::new(&[0x80; 9], "t").read_leb128().is_err());
        // 3 data bits "101", stop bit, padding.
        let d = [0b1011_0000];
        let mut r = BitReader::new(&d, "t");
        r.skip(2).unwrap();
        assert!(r.more_rbsp_data());
        r.skip(1).unwrap();
        assert!(!r.more_rbsp_data());
    }

    #[test]
    fn rbsp_escape_round_trip() {
        assert_eq!(
            unescape_rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            vec![0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(unescape_rbsp(&[0, 3, 0, 0, 3, 3]), vec![0, 3, 0, 0, 3]);
        let raw = [0u8, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0];
        let esc = escape_rbsp(&raw);
        assert_eq!(
            esc,
            vec![0, 0, 3, 0, 0, 3, 1, 0, 0, 3, 2, 0, 0, 3, 3, 0, 0, 4, 0]
        );
        assert_eq!(unescape_rbsp(&esc), raw);
    }
}
