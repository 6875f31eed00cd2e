// Package idtable is a map from channel ids to values that keeps its first
// few entries inline, for the per-session channel tables of mux and
// internal/endpoint: most sessions have a few channels at a time, and a
// table that holds them inline costs those sessions no map (issue #7: a
// fresh session has a budget of 50 allocations at both ends).
package idtable

import "iter"

// Table maps channel ids to values. Its first inline entries live in the
// table itself and a map is made only for more at once, so a session with
// a few channels at a time, or a few finished ones whose last events wait,
// allocates nothing for them. Once made, the map is kept, as a map's
// buckets always were. The zero Table is empty and ready to use.
type Table[V any] struct {
	ids  [inline]uint32 // 0 marks a free slot (channel 0 is the session)
	vals [inline]V
	more map[uint32]V // entries beyond the first, and id 0 if ever used
	n    int
}

const inline = 4

// slot returns the inline slot holding id, or -1.
func (t *Table[V]) slot(id uint32) int {
	if id != 0 {
		for i, x := range t.ids {
			if x == id {
				return i
			}
		}
	}
	return -1
}

// Get returns id's value and whether id is present.
func (t *Table[V]) Get(id uint32) (V, bool) {
	if i := t.slot(id); i >= 0 {
		return t.vals[i], true
	}
	v, ok := t.more[id]
	return v, ok
}

// Lookup returns id's value, or the zero V.
func (t *Table[V]) Lookup(id uint32) V {
	v, _ := t.Get(id)
	return v
}

// Put sets id's value.
func (t *Table[V]) Put(id uint32, v V) {
	if i := t.slot(id); i >= 0 {
		t.vals[i] = v
		return
	}
	if _, ok := t.more[id]; ok {
		t.more[id] = v
		return
	}
	t.n++
	if id != 0 {
		for i, x := range t.ids {
			if x == 0 {
				t.ids[i], t.vals[i] = id, v
				return
			}
		}
	}
	if t.more == nil {
		t.more = make(map[uint32]V)
	}
	t.more[id] = v
}

// Remove deletes id.
func (t *Table[V]) Remove(id uint32) {
	if i := t.slot(id); i >= 0 {
		var zero V
		t.ids[i], t.vals[i] = 0, zero // the slot must not keep a channel alive
		t.n--
		return
	}
	if _, ok := t.more[id]; ok {
		delete(t.more, id)
		t.n--
	}
}

// Len returns the number of entries.
func (t *Table[V]) Len() int { return t.n }

// All yields every value, in no particular order. The table must not
// change during the iteration.
func (t *Table[V]) All() iter.Seq[V] {
	return func(yield func(V) bool) {
		for i, x := range t.ids {
			if x != 0 && !yield(t.vals[i]) {
				return
			}
		}
		for _, v := range t.more {
			if !yield(v) {
				return
			}
		}
	}
}
