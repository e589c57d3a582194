//! AMF0, the value encoding of RTMP commands and metadata. No I/O.
//!
//! Decodes and encodes Number, Boolean, String, Object, Null, Undefined, ECMA Array,
//! Strict Array, Date and Long String (Object End closes objects and arrays). Decoding
//! is bounded: nesting deeper than [`MAX_DEPTH`] is refused, every length is checked
//! against the bytes actually present before anything is allocated, and a truncated
//! input is an error, never a panic. Strings that are not valid UTF-8 are decoded
//! lossily (a publisher's odd metadata string must not end its stream).
//!
//! Long strings decode to [`Amf0Value::String`]; encoding picks the String or Long
//! String marker from the length. Reference, typed object, XML and AMF3 (`avmplus`)
//! values are not supported and are decoding errors.
use bytes::{BufMut, BytesMut};

use crate::{Error, Result};

/// Deepest nesting of objects and arrays accepted.
pub const MAX_DEPTH: usize = 32;

mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0A;
    pub const DATE: u8 = 0x0B;
    pub const LONG_STRING: u8 = 0x0C;
}

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    /// String or Long String.
    String(String),
    /// Anonymous object: properties in wire order.
    Object(Vec<(String, Amf0Value)>),
    Null,
    Undefined,
    /// Associative array: properties in wire order (the count prefix is not trusted).
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the epoch, and the (unused, normally 0) time zone.
    Date {
        millis: f64,
        timezone: i16,
    },
}

impl Amf0Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf0Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The properties of an Object or ECMA Array.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    /// The first property named `key` of an Object or ECMA Array.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Builds an Object from `(key, value)` pairs.
    pub fn object<K: Into<String>>(props: impl IntoIterator<Item = (K, Amf0Value)>) -> Self {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Appends the encoding of `self`. Property keys longer than 65535 bytes (which AMF0
    /// cannot express and no decoded value has) are cut at a character boundary.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Amf0Value::Number(n) => {
                out.put_u8(marker::NUMBER);
                out.put_f64(*n);
            }
            Amf0Value::Boolean(b) => {
                out.put_u8(marker::BOOLEAN);
                out.put_u8(u8::from(*b));
            }
            Amf0Value::String(s) => match u16::try_from(s.len()) {
                Ok(len) => {
                    out.put_u8(marker::STRING);
                    out.put_u16(len);
                    out.extend_from_slice(s.as_bytes());
                }
                Err(_) => {
                    out.put_u8(marker::LONG_STRING);
                    out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
                    out.extend_from_slice(s.as_bytes());
                }
            },
            Amf0Value::Object(props) => {
                out.put_u8(marker::OBJECT);
                encode_properties(props, out);
            }
            Amf0Value::Null => out.put_u8(marker::NULL),
            Amf0Value::Undefined => out.put_u8(marker::UNDEFINED),
            Amf0Value::EcmaArray(props) => {
                out.put_u8(marker::ECMA_ARRAY);
                out.put_u32(u32::try_from(props.len()).unwrap_or(u32::MAX));
                encode_properties(props, out);
            }
            Amf0Value::StrictArray(items) => {
                out.put_u8(marker::STRICT_ARRAY);
                out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
                for item in items {
                    item.encode(out);
                }
            }
            Amf0Value::Date { millis, timezone } => {
                out.put_u8(marker::DATE);
                out.put_f64(*millis);
                out.put_i16(*timezone);
            }
        }
    }
}

impl From<&str> for Amf0Value {
    fn from(s: &str) -> Self {
        Amf0Value::String(s.to_owned())
    }
}

impl From<String> for Amf0Value {
    fn from(s: String) -> Self {
        Amf0Value::String(s)
    }
}

impl From<f64> for Amf0Value {
    fn from(n: f64) -> Self {
        Amf0Value::Number(n)
    }
}

impl From<bool> for Amf0Value {
    fn from(b: bool) -> Self {
        Amf0Value::Boolean(b)
    }
}

fn encode_key(key: &str, out: &mut BytesMut) {
    let mut end = key.len().min(usize::from(u16::MAX));
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u16(end as u16);
    out.extend_from_slice(&key.as_bytes()[..end]);
}

fn encode_properties(props: &[(String, Amf0Value)], out: &mut BytesMut) {
    for (key, value) in props {
        encode_key(key, out);
        value.encode(out);
    }
    out.put_u16(0);
    out.put_u8(marker::OBJECT_END);
}

/// Encodes `values` one after the other (a command or data message body).
pub fn encode_all(values: &[Amf0Value]) -> BytesMut {
    let mut out = BytesMut::new();
    for v in values {
        v.encode(&mut out);
    }
    out
}

/// Decodes every value in `input`.
pub fn decode_all(input: &[u8]) -> Result<Vec<Amf0Value>> {
    let mut decoder = Decoder::new(input);
    let mut values = Vec::new();
    while !decoder.is_empty() {
        values.push(decoder.decode()?);
    }
    Ok(values)
}

/// Decodes values one at a time from a byte slice.
#[derive(Debug)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Decoder { input, pos: 0 }
    }

    /// Whether every byte has been decoded.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Decodes the next value.
    pub fn decode(&mut self) -> Result<Amf0Value> {
        self.value(0)
    }

    fn error(&self, reason: &'static str) -> Error {
        Error::Amf0 {
            reason,
            offset: self.pos,
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let bytes = self
            .input
            .get(self.pos..)
            .and_then(|rest| rest.get(..n))
            .ok_or_else(|| self.error(what))?;
        self.pos += n;
        Ok(bytes)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self, what: &'static str) -> Result<f64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn string(&mut self, len: usize, what: &'static str) -> Result<String> {
        let bytes = self.take(len, what)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value> {
        let at = self.pos;
        let m = self.u8("missing value marker")?;
        Ok(match m {
            marker::NUMBER => Amf0Value::Number(self.f64("truncated number")?),
            marker::BOOLEAN => Amf0Value::Boolean(self.u8("truncated boolean")? != 0),
            marker::STRING => {
                let len = self.u16("truncated string length")?;
                Amf0Value::String(self.string(usize::from(len), "truncated string")?)
            }
            marker::LONG_STRING => {
                let len = self.u32("truncated long string length")?;
                Amf0Value::String(self.string(len as usize, "truncated long string")?)
            }
            marker::OBJECT => Amf0Value::Object(self.properties(depth)?),
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED => Amf0Value::Undefined,
            marker::ECMA_ARRAY => {
                // The count is only a hint (encoders get it wrong); the end marker rules.
                self.u32("truncated ecma array count")?;
                Amf0Value::EcmaArray(self.properties(depth)?)
            }
            marker::STRICT_ARRAY => {
                let count = self.u32("truncated strict array count")? as usize;
                self.enter(depth)?;
                // Every item takes at least one byte: never reserve more than remain.
                let remaining = self.input.len() - self.pos;
                if count > remaining {
                    return Err(self.error("strict array count exceeds the input"));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.f64("truncated date")?;
                let b = self.take(2, "truncated date time zone")?;
                Amf0Value::Date {
                    millis,
                    timezone: i16::from_be_bytes([b[0], b[1]]),
                }
            }
            marker::OBJECT_END => {
                self.pos = at;
                return Err(self.error("object end outside an object"));
            }
            _ => {
                self.pos = at;
                return Err(self.error("unsupported value marker"));
            }
        })
    }

    fn enter(&self, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        Ok(())
    }

    /// Key/value pairs up to the object end marker (an empty key then 0x09).
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>> {
        self.enter(depth)?;
        let mut props = Vec::new();
        loop {
            let len = self.u16("truncated property name")?;
            if len == 0 && self.input.get(self.pos) == Some(&marker::OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let key = self.string(usize::from(len), "truncated property name")?;
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `connect` as ffmpeg 5.1 sends it (abridged), assembled by hand from the spec.
    fn connect_bytes() -> Vec<u8> {
        let mut v = vec![0x02, 0x00, 0x07];
        v.extend_from_slice(b"connect");
        v.push(0x00);
        v.extend_from_slice(&1.0f64.to_be_bytes());
        v.push(0x03);
        v.extend_from_slice(&[0x00, 0x03]);
        v.extend_from_slice(b"app");
        v.extend_from_slice(&[0x02, 0x00, 0x04]);
        v.extend_from_slice(b"live");
        v.extend_from_slice(&[0x00, 0x04]);
        v.extend_from_slice(b"fpad");
        v.extend_from_slice(&[0x01, 0x00]);
        v.extend_from_slice(&[0x00, 0x05]);
        v.extend_from_slice(b"tcUrl");
        v.extend_from_slice(&[0x0C, 0x00, 0x00, 0x00, 0x03]);
        v.extend_from_slice(b"rtm");
        v.extend_from_slice(&[0x00, 0x00, 0x09]);
        v.push(0x05);
        v
    }

    #[test]
    fn decodes_a_connect_command() {
        let values = decode_all(&connect_bytes()).unwrap();
        assert_eq!(values.len(), 4);
        assert_eq!(values[0].as_str(), Some("connect"));
        assert_eq!(values[1].as_f64(), Some(1.0));
        assert_eq!(
            values[2].get("app").and_then(Amf0Value::as_str),
            Some("live")
        );
        assert_eq!(
            values[2].get("fpad").and_then(Amf0Value::as_bool),
            Some(false)
        );
        assert_eq!(
            values[2].get("tcUrl").and_then(Amf0Value::as_str),
            Some("rtm")
        );
        assert_eq!(values[2].get("nope"), None);
        assert_eq!(values[3], Amf0Value::Null);
    }

    #[test]
    fn encodes_known_bytes() {
        let value = Amf0Value::EcmaArray(vec![
            ("w".into(), Amf0Value::Number(2.0)),
            (
                "d".into(),
                Amf0Value::Date {
                    millis: 1.0,
                    timezone: -1,
                },
            ),
            (
                "a".into(),
                Amf0Value::StrictArray(vec![Amf0Value::Undefined]),
            ),
        ]);
        let mut out = BytesMut::new();
        value.encode(&mut out);
        let mut want = vec![0x08, 0, 0, 0, 3, 0, 1, b'w', 0];
        want.extend_from_slice(&2.0f64.to_be_bytes());
        want.extend_from_slice(&[0, 1, b'd', 0x0B]);
        want.extend_from_slice(&1.0f64.to_be_bytes());
        want.extend_from_slice(&[0xFF, 0xFF, 0, 1, b'a', 0x0A, 0, 0, 0, 1, 0x06, 0, 0, 9]);
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn long_strings_round_trip() {
        let s = "x".repeat(70_000);
        let mut out = BytesMut::new();
        Amf0Value::String(s.clone()).encode(&mut out);
        assert_eq!(out[0], marker::LONG_STRING);
        assert_eq!(decode_all(&out).unwrap(), vec![Amf0Value::String(s)]);
    }

    #[test]
    fn truncation_at_every_offset_is_an_error() {
        let bytes = connect_bytes();
        // Each prefix that cuts a value short fails; prefixes ending between values are
        // whole values.
        let boundaries = [0usize, 10, 19, bytes.len() - 1, bytes.len()];
        for cut in 0..bytes.len() {
            let result = decode_all(&bytes[..cut]);
            if boundaries.contains(&cut) {
                assert!(result.is_ok(), "cut {cut}");
            } else {
                assert!(result.is_err(), "cut {cut}: {result:?}");
            }
        }
    }

    #[test]
    fn depth_is_limited() {
        let nested = |depth: usize| {
            let mut v = Amf0Value::Null;
            for _ in 0..depth {
                v = Amf0Value::object([("k", v)]);
            }
            let mut out = BytesMut::new();
            v.encode(&mut out);
            out
        };
        assert!(decode_all(&nested(MAX_DEPTH)).is_ok());
        assert!(matches!(
            decode_all(&nested(MAX_DEPTH + 1)),
            Err(Error::Amf0 {
                reason: "nesting too deep",
                ..
            })
        ));
        // Strict arrays count too, and a huge count is refused before allocating.
        let mut deep = vec![0x0A, 0, 0, 0, 1];
        deep = deep.repeat(MAX_DEPTH + 1);
        deep.push(0x05);
        assert!(decode_all(&deep).is_err());
        assert!(decode_all(&[0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05]).is_err());
    }

    #[test]
    fn bad_markers_are_errors() {
        for m in [0x04u8, 0x07, 0x09, 0x0D, 0x10, 0x11, 0xFF] {
            assert!(
                matches!(
                    decode_all(&[m, 0, 0, 0]),
                    Err(Error::Amf0 { offset: 0, .. })
                ),
                "{m:#x}"
            );
        }
    }

    fn arb_value() -> impl Strategy<Value = Amf0Value> {
        let leaf = prop_oneof![
            any::<f64>()
                .prop_filter("NaN never equals itself", |n| !n.is_nan())
                .prop_map(Amf0Value::Number),
            any::<bool>().prop_map(Amf0Value::Boolean),
            ".{0,20}".prop_map(Amf0Value::String),
            Just(Amf0Value::Null),
            Just(Amf0Value::Undefined),
            (-1e15f64..1e15, any::<i16>())
                .prop_map(|(millis, timezone)| Amf0Value::Date { millis, timezone }),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            let props = proptest::collection::vec((".{0,10}", inner.clone()), 0..6);
            prop_oneof![
                props.clone().prop_map(Amf0Value::Object),
                props.prop_map(Amf0Value::EcmaArray),
                proptest::collection::vec(inner, 0..6).prop_map(Amf0Value::StrictArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(values in proptest::collection::vec(arb_value(), 0..4)) {
            let bytes = encode_all(&values);
            prop_assert_eq!(decode_all(&bytes).unwrap(), values);
        }

        #[test]
        fn every_truncation_errs(value in arb_value()) {
            let mut bytes = BytesMut::new();
            value.encode(&mut bytes);
            for cut in 0..bytes.len() {
                let mut d = Decoder::new(&bytes[..cut]);
                prop_assert!(d.decode().is_err(), "cut {}", cut);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_all(&bytes);
        }
    }
}
