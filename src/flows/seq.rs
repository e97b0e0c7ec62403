//! TCP sequence numbers with wrapping comparison (RFC 9293 §3.4, "modulo 2^32" arithmetic),
//! after smoltcp's `TcpSeqNumber`.

use std::cmp::Ordering;
use std::fmt;

/// A sequence number. Two numbers compare by their signed distance, so `0xffff_fff0 <
/// 0x0000_0010` holds; comparison is meaningful while they are less than 2^31 apart.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// The number `n` bytes further on.
    pub fn plus(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }

    /// Signed distance from `other` to `self`.
    pub fn diff(self, other: SeqNumber) -> i64 {
        self.0.wrapping_sub(other.0) as i32 as i64
    }

    /// The later of two numbers.
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self >= other {
            self
        } else {
            other
        }
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps() {
        let a = SeqNumber(0xffff_fff0);
        let b = a.plus(0x20);
        assert_eq!(b, SeqNumber(0x10));
        assert!(a < b);
        assert_eq!(b.diff(a), 0x20);
        assert_eq!(a.diff(b), -0x20);
        assert_eq!(a.max(b), b);
    }
}
