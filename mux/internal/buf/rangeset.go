package buf

// RangeSet is a set of uint64 values kept as sorted, disjoint, non-adjacent
// half-open intervals [start, end): adding [1,3) and [3,5) leaves one
// interval [1,5). It holds at most a fixed number of intervals, chosen at
// construction. Its backing array is allocated by the first Add and grows
// by doubling up to that maximum only when more intervals are needed, so a
// set that stays small (the usual one or two intervals) stays small, and a
// set that has reached its size allocates no more.
//
// The engine uses it for received packet numbers (ACK generation: walk
// At(Len()-1) down to At(0) for the descending ranges of §5.1), for the
// received ranges of a stream and for acknowledged and lost ranges of a
// sent stream.
//
// The zero RangeSet has room for no interval: Add of a non-empty interval
// fails. Use [NewRangeSet].
//
// A value x is in the set if start ≤ x < end for one of its intervals, so
// math.MaxUint64 itself can never be a member.
type RangeSet struct {
	r   []span // len(r) intervals in use; cap(r) grows up to max
	max int    // the most intervals the set holds
}

// minRangeCap is the first backing array's size.
const minRangeCap = 4

type span struct{ start, end uint64 }

// NewRangeSet returns an empty set that holds at most maxRanges intervals,
// clamped to [1, MaxRangesLimit].
func NewRangeSet(maxRanges int) *RangeSet {
	s := new(RangeSet)
	s.init(maxRanges)
	return s
}

func (s *RangeSet) init(maxRanges int) {
	s.r, s.max = nil, min(max(maxRanges, 1), MaxRangesLimit)
}

// InlineRanges is room for a set's first two intervals, kept by the set's
// owner next to the set (see [RangeSet.InitInline]).
type InlineRanges [2]span

// InitInline empties s and bounds it to maxRanges intervals, as
// NewRangeSet does, but keeps the first two intervals in first: a set that
// stays that small, as the received packet numbers of an in-order session
// do, never allocates. first belongs to s from then on: the owner keeps it
// alive with s (typically in the same struct) and uses it for nothing
// else, and s must not be copied afterwards (the copy would share first).
func (s *RangeSet) InitInline(maxRanges int, first *InlineRanges) {
	s.init(maxRanges)
	s.r = first[:0]
}

// initLazy is init (every set allocates its array on first use now); the
// stream buffers keep sets that most streams never use.
func (s *RangeSet) initLazy(maxRanges int) { s.init(maxRanges) }

// Grow raises the most intervals the set holds to maxRanges (clamped to
// MaxRangesLimit); it never lowers it.
func (s *RangeSet) Grow(maxRanges int) {
	s.max = max(s.max, min(maxRanges, MaxRangesLimit))
}

// MaxRanges returns the most intervals the set holds.
func (s *RangeSet) MaxRanges() int { return s.max }

// room makes the backing array hold n intervals (n <= s.max), doubling.
func (s *RangeSet) room(n int) {
	if n <= cap(s.r) {
		return
	}
	r := make([]span, len(s.r), min(s.max, max(n, minRangeCap, 2*cap(s.r))))
	copy(r, s.r)
	s.r = r
}

// Len returns the number of intervals.
func (s *RangeSet) Len() int { return len(s.r) }

// At returns the i-th interval in ascending order (0 is the lowest). For i
// out of range it returns (0, 0).
func (s *RangeSet) At(i int) (start, end uint64) {
	if i < 0 || i >= len(s.r) {
		return 0, 0
	}
	return s.r[i].start, s.r[i].end
}

// Min returns the smallest member; ok is false if the set is empty.
func (s *RangeSet) Min() (v uint64, ok bool) {
	if len(s.r) == 0 {
		return 0, false
	}
	return s.r[0].start, true
}

// Max returns the end of the highest interval, which is one more than the
// largest member (for packet numbers, the largest acknowledged is Max()-1);
// ok is false if the set is empty.
func (s *RangeSet) Max() (end uint64, ok bool) {
	if len(s.r) == 0 {
		return 0, false
	}
	return s.r[len(s.r)-1].end, true
}

// Clear empties the set, keeping its backing array.
func (s *RangeSet) Clear() { s.r = s.r[:0] }

// endAbove returns the index of the first interval whose end is > x, or
// Len() if none: the first interval that contains x or lies above it.
func (s *RangeSet) endAbove(x uint64) int {
	lo, hi := 0, len(s.r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.r[m].end > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// startAbove returns the index of the first interval whose start is > x,
// or Len() if none.
func (s *RangeSet) startAbove(x uint64) int {
	lo, hi := 0, len(s.r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.r[m].start > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// Contains reports whether x is in the set.
func (s *RangeSet) Contains(x uint64) bool {
	if n := len(s.r); n > 0 && x >= s.r[n-1].end {
		return false // above everything: a new packet number, the common case
	}
	i := s.endAbove(x)
	return i < len(s.r) && s.r[i].start <= x
}

// ContainsRange reports whether every value of [start, end) is in the set.
// An empty interval (start == end) is always contained; an inverted one
// (start > end) never is.
func (s *RangeSet) ContainsRange(start, end uint64) bool {
	if start >= end {
		return start == end
	}
	i := s.endAbove(start)
	return i < len(s.r) && s.r[i].start <= start && s.r[i].end >= end
}

// Add inserts [start, end), merging it with every interval it overlaps or
// touches. It returns false, leaving the set unchanged, if the result would
// need more than MaxRanges intervals or if start > end. Adding an empty
// interval (start == end) changes nothing and returns true.
//
// A set of packet numbers that is full can make room by forgetting its
// oldest interval, RemoveBelow(the start of At(1)), then Add again:
// §5.1 allows an ACK to leave old ranges out.
func (s *RangeSet) Add(start, end uint64) bool {
	if start >= end {
		return start == end
	}
	// The common cases first, without a search: packet numbers and stream
	// data arrive in order and extend the newest interval upwards, and an
	// ACK's packets, walked from the newest down, extend the oldest one
	// downwards (1 % of a bulk transfer's CPU went to the searches).
	if n := len(s.r); n > 0 {
		if last := &s.r[n-1]; start >= last.start && start <= last.end {
			last.end = max(last.end, end)
			return true
		}
		if first := &s.r[0]; end >= first.start && end <= first.end {
			first.start = min(first.start, start)
			return true
		}
	}
	i := s.endAbove(start - 1) // first interval with end ≥ start (touching counts)
	if start == 0 {
		i = 0
	}
	j := s.startAbove(end) // first interval with start > end
	if i >= j {
		if len(s.r) >= s.max {
			return false
		}
		s.room(len(s.r) + 1)
		s.splice(i, i, span{start, end}, span{}, 1)
		return true
	}
	ns, ne := min(start, s.r[i].start), max(end, s.r[j-1].end)
	s.splice(i, j, span{ns, ne}, span{}, 1)
	return true
}

// splice replaces s.r[i:j] with the first k (0, 1 or 2) of a, b. The caller
// guarantees the result fits in cap(s.r) (room).
func (s *RangeSet) splice(i, j int, a, b span, k int) {
	n := len(s.r) - (j - i) + k
	old := len(s.r)
	if n > old {
		s.r = s.r[:n]
	}
	copy(s.r[i+k:], s.r[j:old])
	if k > 0 {
		s.r[i] = a
	}
	if k > 1 {
		s.r[i+1] = b
	}
	s.r = s.r[:n]
}

// Remove deletes [start, end) from the set, splitting an interval if the
// removed part lies strictly inside it. When that split would need more
// than MaxRanges intervals, the set forgets its lowest interval (after the
// split) and reports it as dropped: the lowest values are the oldest
// packet numbers and offsets, the least useful to keep. An empty or
// inverted interval changes nothing.
func (s *RangeSet) Remove(start, end uint64) (droppedStart, droppedEnd uint64, dropped bool) {
	if start >= end {
		return 0, 0, false
	}
	i := s.endAbove(start)
	j := s.startAbove(end - 1) // first interval with start ≥ end
	if i >= j {
		return 0, 0, false
	}
	var keep [2]span
	k := 0
	if s.r[i].start < start {
		keep[k] = span{s.r[i].start, start}
		k++
	}
	if s.r[j-1].end > end {
		keep[k] = span{end, s.r[j-1].end}
		k++
	}
	if len(s.r)-(j-i)+k > s.max { // j == i+1 and k == 2
		if i == 0 {
			droppedStart, droppedEnd, dropped = keep[0].start, keep[0].end, true
			keep[0] = keep[1]
			k = 1
		} else {
			droppedStart, droppedEnd, dropped = s.r[0].start, s.r[0].end, true
			s.splice(0, 1, span{}, span{}, 0)
			i--
			j--
		}
	}
	s.room(len(s.r) - (j - i) + k)
	s.splice(i, j, keep[0], keep[1], k)
	return droppedStart, droppedEnd, dropped
}

// removeKeep removes [start, end) unless that would split an interval of a
// full set; then it changes nothing and returns false.
func (s *RangeSet) removeKeep(start, end uint64) bool {
	if start < end && len(s.r) >= s.max {
		i := s.endAbove(start)
		if i < len(s.r) && s.r[i].start < start && s.r[i].end > end {
			return false
		}
	}
	s.Remove(start, end)
	return true
}

// addCoalesce adds [start, end); if the set is full it widens the interval
// to reach its nearer neighbour, so the set over-approximates but never
// loses values. It does nothing on a set with no room at all.
func (s *RangeSet) addCoalesce(start, end uint64) {
	if s.Add(start, end) || start > end || len(s.r) == 0 {
		return
	}
	i := s.startAbove(end) // the new interval would go at i
	switch {
	case i == 0:
		s.Add(start, s.r[0].end)
	case i == len(s.r):
		s.Add(s.r[i-1].start, end)
	case start-s.r[i-1].end <= s.r[i].start-end:
		s.Add(s.r[i-1].start, end)
	default:
		s.Add(start, s.r[i].end)
	}
}

// RemoveBelow deletes every value below x.
func (s *RangeSet) RemoveBelow(x uint64) {
	i := s.endAbove(x)
	if i > 0 {
		s.splice(0, i, span{}, span{}, 0)
	}
	if len(s.r) > 0 && s.r[0].start < x {
		s.r[0].start = x
	}
}
