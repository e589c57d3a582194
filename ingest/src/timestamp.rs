//! Extends wrapping 32-bit wire clocks to 64 bits.

/// Unwraps a 32-bit millisecond clock (RTMP message timestamps wrap at 2^32 ms, about
/// 49.7 days) into a monotonic-where-the-input-is 64-bit value.
///
/// Each value is placed at the 64-bit position nearest to the previous one: a step of
/// less than 2^31 forward or backward is taken as such, so a stream that starts just
/// before the wrap point and crosses it keeps counting up. The first value is taken as
/// is (0 to 2^32 - 1); callers rebase to start near zero.
#[derive(Clone, Debug, Default)]
pub(crate) struct Unwrapper {
    last: Option<i64>,
}

impl Unwrapper {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn unwrap(&mut self, ts: u32) -> i64 {
        let value = match self.last {
            None => i64::from(ts),
            Some(last) => {
                // Truncating `last` to its low 32 bits is the point: the wrapping
                // difference of the low words is the signed step.
                let step = ts.wrapping_sub(last as u32) as i32;
                last + i64::from(step)
            }
        };
        self.last = Some(value);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crosses_the_wrap_point_monotonically() {
        let mut u = Unwrapper::new();
        let start = u32::MAX - 100;
        let mut prev = u.unwrap(start);
        assert_eq!(prev, i64::from(start));
        let mut ts = start;
        for _ in 0..20 {
            ts = ts.wrapping_add(33);
            let v = u.unwrap(ts);
            assert_eq!(v - prev, 33, "step at wire value {ts}");
            prev = v;
        }
        assert!(prev > i64::from(u32::MAX));
        // 20 * 33 = 660 ms after start, which is 559 ms after the wrap.
        assert_eq!(prev, i64::from(u32::MAX) + 1 + 559);
        assert_eq!(ts, 559);
    }

    #[test]
    fn small_backward_steps_and_second_wrap() {
        let mut u = Unwrapper::new();
        assert_eq!(u.unwrap(1000), 1000);
        assert_eq!(u.unwrap(990), 990);
        assert_eq!(u.unwrap(0), 0);
        // Backward across zero goes negative rather than jumping 49 days ahead.
        assert_eq!(u.unwrap(u32::MAX), -1);
        assert_eq!(u.unwrap(5), 5);
        // Walk two full wraps in steps under 2^31.
        let mut wire = 5u32;
        let mut expected = 5i64;
        for _ in 0..8 {
            wire = wire.wrapping_add(1 << 30);
            expected += 1 << 30;
            assert_eq!(u.unwrap(wire), expected);
        }
        assert_eq!(expected, 5 + (2i64 << 32));
    }
}
