package endpoint

// streamTable maps a session's channel ids to their Streams. Most
// sessions have a handful of streams open at once, often one, so the
// first few live in an inline array and only the rest in a map made when
// needed: opening a session's first streams allocates no map (issue #7,
// a fresh session costs a few dozen allocations in all).
type streamTable struct {
	ids   [streamTableInline]uint32 // 0: free slot (channel 0 is the session)
	sts   [streamTableInline]*Stream
	more  map[uint32]*Stream
	count int
}

const streamTableInline = 4

func (t *streamTable) get(id uint32) *Stream {
	for i, v := range t.ids {
		if v == id && id != 0 {
			return t.sts[i]
		}
	}
	return t.more[id]
}

func (t *streamTable) put(id uint32, st *Stream) {
	for i, v := range t.ids {
		if v == id {
			t.sts[i] = st
			return
		}
	}
	t.count++
	for i, v := range t.ids {
		if v == 0 {
			t.ids[i], t.sts[i] = id, st
			return
		}
	}
	if t.more == nil {
		t.more = make(map[uint32]*Stream)
	}
	t.more[id] = st
}

func (t *streamTable) delete(id uint32) {
	for i, v := range t.ids {
		if v == id {
			t.ids[i], t.sts[i] = 0, nil
			t.count--
			return
		}
	}
	if _, ok := t.more[id]; ok {
		delete(t.more, id)
		t.count--
	}
}

func (t *streamTable) len() int { return t.count }

// each calls f for every stream.
func (t *streamTable) each(f func(*Stream)) {
	for i, v := range t.ids {
		if v != 0 {
			f(t.sts[i])
		}
	}
	for _, st := range t.more {
		f(st)
	}
}
