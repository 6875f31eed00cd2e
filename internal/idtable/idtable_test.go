package idtable

import (
	"slices"
	"testing"
)

// channel stands for a session's channel struct.
type channel struct{ id uint32 }

// TestIDTable: ids go to the inline slots first and to the map beyond
// them; every entry is found, replaced and removed wherever it lives, and
// a freed slot keeps no value alive.
func TestIDTable(t *testing.T) {
	var tb Table[*channel]
	chans := map[uint32]*channel{}
	for id := uint32(1); id <= 2*inline+1; id++ {
		c := &channel{id: id}
		chans[id] = c
		tb.Put(id, c)
	}
	if tb.Len() != len(chans) || len(tb.more) != len(chans)-inline {
		t.Fatalf("%d entries, %d in the map; want %d, %d", tb.Len(), len(tb.more), len(chans), len(chans)-inline)
	}
	for id, c := range chans {
		if got, ok := tb.Get(id); !ok || got != c {
			t.Fatalf("get(%d) = %v, %v", id, got, ok)
		}
	}
	if _, ok := tb.Get(100); ok || tb.Lookup(0) != nil {
		t.Fatal("found an id never put")
	}
	var seen []uint32
	for c := range tb.All() {
		seen = append(seen, c.id)
	}
	slices.Sort(seen)
	if len(seen) != len(chans) || seen[0] != 1 || seen[len(seen)-1] != uint32(len(chans)) {
		t.Fatalf("all yielded %v", seen)
	}
	c2 := &channel{id: 2}
	tb.Put(2, c2) // replaces, inline
	last := uint32(len(chans))
	c9 := &channel{id: last}
	tb.Put(last, c9) // replaces, in the map
	if tb.Len() != len(chans) || tb.Lookup(2) != c2 || tb.Lookup(last) != c9 {
		t.Fatal("put of a present id did not replace it")
	}
	tb.Remove(2)
	tb.Remove(last)
	tb.Remove(100)
	if tb.Len() != len(chans)-2 || tb.Lookup(2) != nil || tb.Lookup(last) != nil {
		t.Fatal("remove did not remove")
	}
	for i, id := range tb.ids {
		if id == 0 && tb.vals[i] != nil {
			t.Fatal("a free slot keeps a channel alive")
		}
	}
	tb.Put(200, &channel{id: 200}) // takes the freed inline slot
	if len(tb.more) != len(chans)-inline-1 || tb.Lookup(200) == nil {
		t.Fatalf("a new id did not take the free inline slot (map of %d)", len(tb.more))
	}
}
