//! Extension numbering for synced users: a range, never a number a local extension holds.

use std::collections::BTreeSet;

/// The range synced users get numbers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberRange {
    /// First number handed out.
    pub start: u64,
    /// Last number handed out; unbounded when `None` (up to the longest allowed number).
    pub end: Option<u64>,
    /// Digits of the longest allowed number (bounds an open range).
    pub max_len: usize,
}

/// Hands out free numbers from a range, lowest first, skipping every taken number.
#[derive(Debug, Clone)]
pub struct NumberAllocator {
    range: NumberRange,
    taken: BTreeSet<u64>,
    next: u64,
}

impl NumberAllocator {
    /// An allocator over `range` that never returns a number in `taken`
    /// (all existing extensions, local and synced, including disabled ones).
    pub fn new(range: NumberRange, taken: impl IntoIterator<Item = u64>) -> Self {
        NumberAllocator {
            range,
            taken: taken.into_iter().collect(),
            next: range.start,
        }
    }

    fn last(&self) -> u64 {
        let by_len = 10u64
            .saturating_pow(self.range.max_len.min(19) as u32)
            .saturating_sub(1);
        self.range.end.map_or(by_len, |e| e.min(by_len))
    }

    /// Marks `n` as taken (a number a stored, not yet applied plan hands out).
    pub fn take(&mut self, n: u64) {
        self.taken.insert(n);
    }

    /// The next free number, or `None` when the range is full.
    pub fn allocate(&mut self) -> Option<u64> {
        let last = self.last();
        while self.next <= last {
            let candidate = self.next;
            self.next += 1;
            if self.taken.insert(candidate) {
                return Some(candidate);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_taken_numbers_and_stops_at_the_end() {
        let range = NumberRange {
            start: 100,
            end: Some(104),
            max_len: 8,
        };
        let mut a = NumberAllocator::new(range, [101, 103, 50]);
        assert_eq!(a.allocate(), Some(100));
        assert_eq!(a.allocate(), Some(102));
        assert_eq!(a.allocate(), Some(104));
        assert_eq!(a.allocate(), None);
    }

    #[test]
    fn open_range_is_bounded_by_the_number_length() {
        let range = NumberRange {
            start: 98,
            end: None,
            max_len: 2,
        };
        let mut a = NumberAllocator::new(range, []);
        assert_eq!(a.allocate(), Some(98));
        assert_eq!(a.allocate(), Some(99));
        assert_eq!(a.allocate(), None);
    }
}
