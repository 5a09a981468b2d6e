//! Extension numbers for new synced users (SPEC §3: from `start_extension` upward, bounded by
//! `end_extension`, the first free number, never one an extension holds) without knowing every
//! taken number: the allocator knows a window of the range and asks for the next part of it only
//! when it runs short, so a round that creates three users reads a few index entries, not the
//! extension table.
//!
//! Where the window starts comes from an allocation mark kept by the users kind (every number
//! below it is taken) lowered to the lowest number deleted since (the store remembers deleted
//! numbers until they are taken again): a number below the mark can only become free by a
//! deletion.

use pbx365_domain::numbering::NumberRange;
use std::collections::BTreeSet;

/// Numbers read per request at first (the window then doubles while it finds no free number).
const FIRST_CHUNK: u64 = 64;
/// The largest window read at once.
const MAX_CHUNK: u64 = 1 << 16;

/// Hands out the lowest free numbers of a range, lowest first, from a partly known window.
#[derive(Debug, Clone)]
pub struct Numbers {
    /// The lowest number handed out (the range start, raised to the shortest allowed number).
    floor: u64,
    /// The highest number handed out.
    last: u64,
    /// The lowest number neither handed out nor known to be taken; `None` until positioned.
    next: Option<u64>,
    /// Numbers in `[next, known_end)` are known: the taken ones (and those handed out) are in
    /// `taken`.
    known_end: u64,
    taken: BTreeSet<u64>,
    chunk: u64,
}

/// What the allocator needs to know next: the taken numbers from `low` to `high` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unknown {
    /// First number of the part to read.
    pub low: u64,
    /// Last number of the part to read.
    pub high: u64,
}

impl Numbers {
    /// An allocator over `range` for numbers of at least `min_len` digits that knows nothing yet:
    /// [`Numbers::position`] it, then feed it what [`Numbers::unknown`] asks for.
    pub fn new(range: NumberRange, min_len: usize) -> Self {
        let by_len = 10u64
            .saturating_pow(range.max_len.min(19) as u32)
            .saturating_sub(1);
        let last = range.end.map_or(by_len, |e| e.min(by_len));
        let shortest = if min_len <= 1 {
            0
        } else {
            10u64.saturating_pow(min_len as u32 - 1)
        };
        Numbers {
            floor: range.start.max(shortest),
            last,
            next: None,
            known_end: 0,
            taken: BTreeSet::new(),
            chunk: FIRST_CHUNK,
        }
    }

    /// An allocator that knows every taken number (a complete snapshot).
    pub fn complete(
        range: NumberRange,
        min_len: usize,
        taken: impl IntoIterator<Item = u64>,
    ) -> Self {
        let mut n = Numbers::new(range, min_len);
        let floor = n.floor;
        n.next = Some(floor);
        n.taken = taken.into_iter().filter(|v| *v >= floor).collect();
        n.known_end = n.last.saturating_add(1).max(floor);
        n
    }

    /// The lowest number ever handed out.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// True once the allocator knows where to start.
    pub fn is_positioned(&self) -> bool {
        self.next.is_some()
    }

    /// Starts at `from` (raised to the floor): every number below it is taken.
    pub fn position(&mut self, from: u64) {
        let from = from.max(self.floor);
        self.next = Some(from);
        self.known_end = from;
        // Numbers taken by a replayed plan ([`Numbers::take`]) stay taken.
        self.taken = self.taken.split_off(&from);
    }

    /// Counts `number` as taken although the store may not hold it yet (a stored plan this run
    /// applies but did not make).
    pub fn take(&mut self, number: u64) {
        if self.next.is_none_or(|next| number >= next) {
            self.taken.insert(number);
        }
    }

    /// Every number from the floor up to (not including) this mark is taken or handed out; `None`
    /// before positioning.
    pub fn mark(&self) -> Option<u64> {
        self.next
    }

    /// Free numbers known (up to `want`).
    fn known_free(&self, next: u64) -> u64 {
        let end = self.known_end.min(self.last.saturating_add(1));
        if end <= next {
            return 0;
        }
        end - next - self.taken.range(next..end).count() as u64
    }

    /// The part of the range to read before `want` more numbers can be handed out, or `None` when
    /// enough are known (or the range is known to be full). Panics if not positioned.
    pub fn unknown(&mut self, want: usize) -> Option<Unknown> {
        let next = self.next.expect("the allocator is positioned before use");
        if want == 0 || next > self.last || self.known_end > self.last {
            return None;
        }
        let free = self.known_free(next);
        if free >= want as u64 {
            return None;
        }
        let low = self.known_end.max(next);
        let size = self.chunk.max(2 * (want as u64 - free));
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
        Some(Unknown {
            low,
            high: low.saturating_add(size - 1).min(self.last),
        })
    }

    /// Learns the taken numbers of the part [`Numbers::unknown`] asked for.
    pub fn learn(&mut self, part: Unknown, taken: impl IntoIterator<Item = u64>) {
        debug_assert_eq!(part.low, self.known_end.max(self.next.unwrap_or(0)));
        let next = self.next.unwrap_or(self.floor);
        // What lies below `next` is never asked about again.
        self.taken = self.taken.split_off(&next);
        self.taken.extend(
            taken
                .into_iter()
                .filter(|v| (part.low..=part.high).contains(v)),
        );
        self.known_end = part.high.saturating_add(1);
    }

    /// The next free number, or `None` when the range is full. Only numbers in the known window
    /// are handed out: ask [`Numbers::unknown`] first.
    pub fn allocate(&mut self) -> Option<u64> {
        let mut next = self.next?;
        let mut found = None;
        while next <= self.last && next < self.known_end {
            let candidate = next;
            next += 1;
            if self.taken.insert(candidate) {
                found = Some(candidate);
                break;
            }
        }
        debug_assert!(
            found.is_some() || next > self.last,
            "a number was asked for beyond the known window"
        );
        self.next = Some(next);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u64, end: Option<u64>) -> NumberRange {
        NumberRange {
            start,
            end,
            max_len: 8,
        }
    }

    /// Runs the allocator against a set of taken numbers the way the users kind does.
    fn allocate_with(n: &mut Numbers, taken: &BTreeSet<u64>, count: usize) -> Vec<Option<u64>> {
        let mut reads = 0;
        while let Some(part) = n.unknown(count) {
            reads += 1;
            assert!(reads < 100, "the window grows");
            n.learn(part, taken.range(part.low..=part.high).copied());
        }
        (0..count).map(|_| n.allocate()).collect()
    }

    #[test]
    fn the_lowest_free_numbers_come_first_and_taken_ones_are_skipped() {
        let taken: BTreeSet<u64> = [100, 101, 103, 50].into();
        let mut n = Numbers::new(range(100, None), 2);
        n.position(100);
        assert_eq!(
            allocate_with(&mut n, &taken, 3),
            vec![Some(102), Some(104), Some(105)]
        );
        assert_eq!(n.mark(), Some(106));
    }

    #[test]
    fn a_dense_stretch_is_read_in_growing_windows() {
        let taken: BTreeSet<u64> = (100..5_000).collect();
        let mut n = Numbers::new(range(100, None), 2);
        n.position(100);
        assert_eq!(
            allocate_with(&mut n, &taken, 2),
            vec![Some(5_000), Some(5_001)]
        );
    }

    #[test]
    fn a_full_range_is_reported_once_known() {
        let taken: BTreeSet<u64> = [101].into();
        let mut n = Numbers::new(range(100, Some(102)), 2);
        n.position(100);
        assert_eq!(
            allocate_with(&mut n, &taken, 3),
            vec![Some(100), Some(102), None]
        );
    }

    #[test]
    fn numbers_shorter_than_allowed_are_never_handed_out() {
        let mut n = Numbers::new(range(1, None), 3);
        n.position(0);
        assert_eq!(allocate_with(&mut n, &BTreeSet::new(), 1), vec![Some(100)]);
    }

    #[test]
    fn a_complete_snapshot_needs_no_reads() {
        let mut n = Numbers::complete(range(100, Some(104)), 2, [101, 103, 50]);
        assert_eq!(n.unknown(3), None);
        assert_eq!(n.allocate(), Some(100));
        assert_eq!(n.allocate(), Some(102));
        assert_eq!(n.allocate(), Some(104));
        assert_eq!(n.allocate(), None);
    }

    #[test]
    fn allocations_of_earlier_pages_stay_taken() {
        let taken: BTreeSet<u64> = BTreeSet::new();
        let mut n = Numbers::new(range(100, None), 2);
        n.position(100);
        assert_eq!(allocate_with(&mut n, &taken, 2), vec![Some(100), Some(101)]);
        // Nothing was written: the next page still gets the numbers after them.
        assert_eq!(allocate_with(&mut n, &taken, 1), vec![Some(102)]);
    }
}
