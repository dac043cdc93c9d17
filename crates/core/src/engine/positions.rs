//! Sets of plan positions and their text form, `3,7,120-129`: how the status names the
//! services of a batch or of a result group in a few bytes, whatever their names. A run of
//! consecutive positions costs the same as one, so the common cases (a whole batch, every
//! service of a run) stay tiny, and the worst case is bounded by the number of services.

use std::fmt;
use std::ops::RangeInclusive;

/// A set of plan positions, kept as sorted, disjoint, non-adjacent ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PositionSet {
    ranges: Vec<RangeInclusive<u32>>,
}

/// Text that is not a position set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a list of plan positions such as 3,7,120-129: {problem}")]
pub struct PositionsError {
    text: String,
    problem: &'static str,
}

impl PositionSet {
    /// The set of the positions `range` covers.
    pub fn range(range: RangeInclusive<u32>) -> Self {
        let mut set = Self::default();
        set.insert_range(range);
        set
    }

    /// Adds one position.
    pub fn insert(&mut self, position: u32) {
        self.insert_range(position..=position);
    }

    /// Adds every position of `range`, merging with the ranges it touches.
    pub fn insert_range(&mut self, range: RangeInclusive<u32>) {
        if range.is_empty() {
            return;
        }
        let (mut start, mut end) = (*range.start(), *range.end());
        // Ranges ending before start - 1 stay before; those starting after end + 1 stay after.
        let first = self.ranges.partition_point(|known| known.end().saturating_add(1) < start);
        let last = self.ranges.partition_point(|known| *known.start() <= end.saturating_add(1));
        if first < last {
            start = start.min(*self.ranges[first].start());
            end = end.max(*self.ranges[last - 1].end());
        }
        self.ranges.splice(first..last, [start..=end]);
    }

    /// Adds every position of `other`.
    pub fn extend(&mut self, other: &PositionSet) {
        for range in &other.ranges {
            self.insert_range(range.clone());
        }
    }

    pub fn contains(&self, position: u32) -> bool {
        let index = self.ranges.partition_point(|range| *range.end() < position);
        self.ranges.get(index).is_some_and(|range| range.contains(&position))
    }

    /// How many positions the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|range| u64::from(range.end() - range.start()) + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The positions in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|range| range.clone())
    }

    /// The smallest position, if any.
    pub fn first(&self) -> Option<u32> {
        self.ranges.first().map(|range| *range.start())
    }

    /// Reads the text form; an empty text is the empty set.
    pub fn parse(text: &str) -> Result<Self, PositionsError> {
        let error = |problem| PositionsError { text: text.to_owned(), problem };
        let mut set = Self::default();
        let mut last_end: Option<u32> = None;
        for part in text.split(',').filter(|part| !part.is_empty()) {
            let (start, end) = match part.split_once('-') {
                Some((start, end)) => (start, end),
                None => (part, part),
            };
            let start: u32 = start.parse().map_err(|_| error("a position is not a number"))?;
            let end: u32 = end.parse().map_err(|_| error("a position is not a number"))?;
            if end < start {
                return Err(error("a range ends before it starts"));
            }
            if last_end.is_some_and(|last| start <= last) {
                return Err(error("ranges are not in increasing order"));
            }
            last_end = Some(end);
            set.insert_range(start..=end);
        }
        Ok(set)
    }
}

impl fmt::Display for PositionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, range) in self.ranges.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            if range.start() == range.end() {
                write!(f, "{}", range.start())?;
            } else {
                write!(f, "{}-{}", range.start(), range.end())?;
            }
        }
        Ok(())
    }
}

impl FromIterator<u32> for PositionSet {
    fn from_iter<I: IntoIterator<Item = u32>>(positions: I) -> Self {
        let mut set = Self::default();
        for position in positions {
            set.insert(position);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn consecutive_positions_merge_into_ranges() {
        let set: PositionSet = [5, 3, 4, 9, 10, 0].into_iter().collect();
        assert_eq!(set.to_string(), "0,3-5,9-10");
        assert_eq!(set.len(), 6);
        assert!(set.contains(4) && !set.contains(6) && !set.contains(11));
        assert_eq!(set.first(), Some(0));
        let mut bridged = set.clone();
        bridged.insert_range(6..=8);
        assert_eq!(bridged.to_string(), "0,3-10");
        bridged.insert(1);
        bridged.insert(2);
        assert_eq!(bridged.to_string(), "0-10");
    }

    #[test]
    fn text_that_is_no_set_says_why() {
        assert_eq!(PositionSet::parse(""), Ok(PositionSet::default()));
        for (text, problem) in [
            ("1,x", "not a number"),
            ("5-3", "ends before it starts"),
            ("4,2", "not in increasing order"),
            ("1-4,4", "not in increasing order"),
        ] {
            let error = PositionSet::parse(text).expect_err(text);
            assert!(error.to_string().contains(problem), "{text}: {error}");
        }
    }

    #[test]
    fn the_largest_positions_do_not_overflow() {
        let mut set = PositionSet::range(u32::MAX - 1..=u32::MAX);
        set.insert(u32::MAX);
        set.insert(0);
        assert_eq!(set.to_string(), format!("0,{}-{}", u32::MAX - 1, u32::MAX));
        assert_eq!(set.len(), 3);
    }

    proptest! {
        #[test]
        fn the_text_form_reads_back_as_the_same_set(
            positions in proptest::collection::btree_set(0u32..200, 0..60)
        ) {
            let set: PositionSet = positions.iter().copied().collect();
            prop_assert_eq!(set.iter().collect::<Vec<_>>(), positions.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(set.len(), positions.len() as u64);
            prop_assert_eq!(set.is_empty(), positions.is_empty());
            prop_assert_eq!(set.first(), positions.first().copied());
            prop_assert_eq!(PositionSet::parse(&set.to_string()), Ok(set.clone()));
            for position in 0..200 {
                prop_assert_eq!(set.contains(position), positions.contains(&position));
            }
        }
    }
}
