package alignment

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"unsafe"
)

func newTestPool(t testing.TB, classes ...Class) *Pool {
	t.Helper()
	p, err := NewPool(classes...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkInvariant asserts the bookkeeping identity documented on Stats.
func checkInvariant(t *testing.T, s Stats) {
	t.Helper()
	if s.Allocs != s.Free+s.Drops+(s.Gets-s.Puts) {
		t.Errorf("stats %+v: Allocs != Free + Drops + (Gets - Puts)", s)
	}
}

func checkBuffer(t *testing.T, b Buffer, wantLen int) {
	t.Helper()
	buf := b.Bytes()
	if len(buf) != wantLen || cap(buf) != wantLen {
		t.Fatalf("len %d cap %d, want both %d", len(buf), cap(buf), wantLen)
	}
	if addr := uintptr(unsafe.Pointer(unsafe.SliceData(buf))); addr%BufferAlign != 0 {
		t.Fatalf("buffer at %#x is not %d-byte aligned", addr, BufferAlign)
	}
}

func TestNewPoolValidation(t *testing.T) {
	bad := [][]Class{
		nil,
		{{Size: 0, MaxFree: 1}},
		{{Size: -64, MaxFree: 1}},
		{{Size: 100, MaxFree: 1}},   // not a multiple of 64
		{{Size: 2048, MaxFree: -1}}, // negative bound
		{{Size: 2048, MaxFree: 1}, {Size: 2048, MaxFree: 1}},
		{{Size: 4096, MaxFree: 1}, {Size: 2048, MaxFree: 1}},
		{{Size: 2 << 30, MaxFree: 1}}, // above the 1 GiB cap
	}
	for _, classes := range bad {
		if p, err := NewPool(classes...); err == nil || p != nil {
			t.Errorf("NewPool(%v) = %v, %v; want nil, error", classes, p, err)
		}
	}
	want := []Class{{Size: 64, MaxFree: 0}, {Size: 2048, MaxFree: 3}}
	p := newTestPool(t, want...)
	if got := p.Classes(); !slices.Equal(got, want) {
		t.Errorf("Classes() = %v, want %v", got, want)
	}
	if p.MaxSize() != 2048 {
		t.Errorf("MaxSize() = %d, want 2048", p.MaxSize())
	}
}

func TestDefaultPool(t *testing.T) {
	if Default() != Default() {
		t.Fatal("Default returns different pools")
	}
	if got := Default().Classes(); !slices.Equal(got, DefaultClasses()) {
		t.Errorf("Default().Classes() = %v, want %v", got, DefaultClasses())
	}
	if Default().MaxSize() < 65535 {
		t.Errorf("default pool cannot hold a maximal UDP datagram: %d", Default().MaxSize())
	}
	b, ok := Default().Get(1500)
	if !ok {
		t.Fatal("Default().Get(1500) failed")
	}
	checkBuffer(t, b, 2048)
	Default().Put(b)
}

func TestGetClassSelection(t *testing.T) {
	p := newTestPool(t, DefaultClasses()...)
	small, large := 2048, 72<<10
	tests := []struct {
		size, want int // want 0: not served
	}{
		{-1, 0},
		{0, small},
		{1, small},
		{1452, small},
		{small - 1, small},
		{small, small},
		{small + 1, large},
		{65535, large},
		{large - 1, large},
		{large, large},
		{large + 1, 0},
		{1 << 40, 0},
	}
	for _, tt := range tests {
		b, ok := p.Get(tt.size)
		if tt.want == 0 {
			if ok || !b.IsZero() || b.Bytes() != nil {
				t.Errorf("Get(%d) = %v, %v; want zero Buffer, false", tt.size, b, ok)
			}
			continue
		}
		if !ok || b.IsZero() {
			t.Fatalf("Get(%d) failed", tt.size)
		}
		checkBuffer(t, b, tt.want)
		p.Put(b)
	}
	// Failed Gets are not counted.
	s := p.Stats()
	if s.Gets != 9 || s.Puts != 9 {
		t.Errorf("stats %+v, want 9 gets and 9 puts", s)
	}
	checkInvariant(t, s)
}

// TestAlignmentEverywhere holds many buffers at once, across slab sizes
// and classes, and checks each one's address, length and independence.
func TestAlignmentEverywhere(t *testing.T) {
	for _, maxFree := range []int{0, 1, 2, 7, 40} {
		p := newTestPool(t,
			Class{Size: 64, MaxFree: maxFree},
			Class{Size: 192, MaxFree: maxFree},
			Class{Size: 2048, MaxFree: maxFree},
			Class{Size: 3 * 1024, MaxFree: maxFree},
			Class{Size: 72 << 10, MaxFree: maxFree},
		)
		var held []Buffer
		for round := range 3 {
			for _, c := range p.Classes() {
				for range 50 {
					b, ok := p.Get(c.Size)
					if !ok {
						t.Fatalf("Get(%d) failed", c.Size)
					}
					checkBuffer(t, b, c.Size)
					held = append(held, b)
				}
			}
			// Fill every held buffer with its own index, then check none
			// was overwritten: buffers carved from one slab must not overlap.
			for i, b := range held {
				fill(b.Bytes(), byte(i))
			}
			for i, b := range held {
				if n := bytes.Count(b.Bytes(), []byte{byte(i)}); n != len(b.Bytes()) {
					t.Fatalf("maxFree %d round %d: buffer %d has %d foreign bytes: overlaps another buffer", maxFree, round, i, len(b.Bytes())-n)
				}
			}
			for _, b := range held {
				p.Put(b)
			}
			held = held[:0]
		}
		checkInvariant(t, p.Stats())
	}
}

// fill sets every byte of buf to v, by doubling copies (fast under -race).
func fill(buf []byte, v byte) {
	if len(buf) == 0 {
		return
	}
	buf[0] = v
	for n := 1; n < len(buf); n *= 2 {
		copy(buf[n:], buf[:n])
	}
}

func TestAppendDoesNotClobberNeighbour(t *testing.T) {
	p := newTestPool(t, Class{Size: 64, MaxFree: 8})
	a, _ := p.Get(64)
	b, _ := p.Get(64)
	if p.Stats().Slabs != 1 {
		t.Fatalf("expected both buffers from one slab, stats %+v", p.Stats())
	}
	fill(b.Bytes(), 0xAA)
	_ = append(a.Bytes(), make([]byte, 128)...)
	for i, v := range b.Bytes() {
		if v != 0xAA {
			t.Fatalf("append to one buffer overwrote byte %d of its neighbour", i)
		}
	}
}

func TestAlignWithin(t *testing.T) {
	const n = 256
	base := make([]byte, n+2*BufferAlign)
	for shift := range BufferAlign {
		win := base[shift : shift+n+BufferAlign-1]
		got := alignWithin(win, n)
		if len(got) != n || cap(got) != n {
			t.Fatalf("shift %d: len %d cap %d", shift, len(got), cap(got))
		}
		if addrOffset(got) != 0 {
			t.Fatalf("shift %d: window not aligned", shift)
		}
		start := uintptr(unsafe.Pointer(unsafe.SliceData(win)))
		at := uintptr(unsafe.Pointer(unsafe.SliceData(got)))
		if at < start || at+n > start+uintptr(len(win)) {
			t.Fatalf("shift %d: window outside its slice", shift)
		}
		if at-start >= BufferAlign {
			t.Fatalf("shift %d: skipped %d bytes, want the first aligned window", shift, at-start)
		}
	}
}

func TestBoundRespected(t *testing.T) {
	const maxFree = 4
	p := newTestPool(t, Class{Size: 2048, MaxFree: maxFree})
	var held []Buffer
	for range 10 {
		b, _ := p.Get(100)
		held = append(held, b)
	}
	s := p.Stats()
	// One slab of maxFree+1 buffers, then its free ones are used up, and so on.
	if s.Allocs < 10 || s.Free > maxFree {
		t.Fatalf("after 10 gets: %+v", s)
	}
	checkInvariant(t, s)
	for _, b := range held {
		p.Put(b)
	}
	s = p.Stats()
	if s.Free != maxFree {
		t.Errorf("Free = %d after returning 10 buffers, want the bound %d", s.Free, maxFree)
	}
	if s.Drops != s.Allocs-maxFree {
		t.Errorf("Drops = %d, want Allocs - MaxFree = %d", s.Drops, s.Allocs-maxFree)
	}
	checkInvariant(t, s)

	// The kept buffers are reused without allocating; one more allocates.
	before := s.Allocs
	held = held[:0]
	for range maxFree {
		b, _ := p.Get(2048)
		held = append(held, b)
	}
	if got := p.Stats().Allocs; got != before {
		t.Errorf("Allocs %d -> %d while free buffers were available", before, got)
	}
	if _, ok := p.Get(1); !ok || p.Stats().Allocs == before {
		t.Errorf("Get on an empty free list did not allocate: %+v", p.Stats())
	}
}

func TestZeroMaxFreeKeepsNothing(t *testing.T) {
	p := newTestPool(t, Class{Size: 128, MaxFree: 0})
	for i := range 5 {
		b, _ := p.Get(128)
		checkBuffer(t, b, 128)
		p.Put(b)
		s := p.Stats()
		if s.Free != 0 || s.Slabs != uint64(i+1) || s.Allocs != uint64(i+1) || s.Drops != uint64(i+1) {
			t.Fatalf("iteration %d: %+v", i, s)
		}
	}
}

func TestSlabSize(t *testing.T) {
	tests := []struct {
		class   Class
		perSlab int
	}{
		{Class{Size: 2048, MaxFree: 512}, 16},
		{Class{Size: 2048, MaxFree: 3}, 4},
		{Class{Size: 2048, MaxFree: 0}, 1},
		{Class{Size: 64, MaxFree: 10000}, 512},
		{Class{Size: 72 << 10, MaxFree: 16}, 1},
	}
	for _, tt := range tests {
		p := newTestPool(t, tt.class)
		b, _ := p.Get(1)
		s := p.Stats()
		if s.Slabs != 1 || s.Allocs != uint64(tt.perSlab) || s.Free != uint64(tt.perSlab-1) {
			t.Errorf("%+v: first Get gave %+v, want one slab of %d", tt.class, s, tt.perSlab)
		}
		p.Put(b)
	}
}

func TestMisusePanics(t *testing.T) {
	p := newTestPool(t, Class{Size: 2048, MaxFree: 4})
	other := newTestPool(t, Class{Size: 2048, MaxFree: 4})

	b, _ := p.Get(10) // a slab of 5: b out, 4 free (the bound)
	x, _ := p.Get(10) // 3 free, so b has room to go back
	p.Put(b)
	mustPanic(t, "already returned", func() { p.Put(b) })

	// A stale copy is caught even after the buffer is handed out again,
	// and the failed Put does not disturb the new owner.
	c, _ := p.Get(10)
	if &c.Bytes()[0] != &b.Bytes()[0] {
		t.Fatal("expected the LIFO free list to hand back the same buffer")
	}
	mustPanic(t, "already returned", func() { p.Put(b) })
	p.Put(c) // the legitimate owner can still return it
	p.Put(x)
	mustPanic(t, "already returned", func() { p.Put(c) })

	d, _ := other.Get(10)
	mustPanic(t, "another pool", func() { p.Put(d) })
	other.Put(d) // still fine in its own pool

	// Dropped buffers (free list full) are still guarded.
	var held []Buffer
	for range 6 {
		h, _ := p.Get(10)
		held = append(held, h)
	}
	for _, h := range held {
		p.Put(h)
	}
	if p.Stats().Drops == 0 {
		t.Fatal("expected drops")
	}
	mustPanic(t, "already returned", func() { p.Put(held[5]) })

	p.Put(Buffer{}) // the zero Buffer is ignored
	s := p.Stats()
	checkInvariant(t, s)
	if s.Gets != s.Puts {
		t.Errorf("failed Puts were counted: %+v", s)
	}
}

// TestConcurrent runs Get/Put from several goroutines (run it with -race).
// Each goroutine stamps its buffer, yields, and checks the stamp survived,
// so two goroutines owning one buffer at once would be caught.
func TestConcurrent(t *testing.T) {
	const (
		workers = 4
		iters   = 2000
		maxFree = 8
	)
	p := newTestPool(t,
		Class{Size: 256, MaxFree: maxFree},
		Class{Size: 2048, MaxFree: maxFree},
		Class{Size: 16 << 10, MaxFree: 2},
	)
	sizes := []int{1, 256, 257, 1500, 2048, 9000}
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stamp := byte(w + 1)
			var held []Buffer
			for i := range iters {
				b, ok := p.Get(sizes[(i+w)%len(sizes)])
				if !ok {
					errs <- "Get failed"
					return
				}
				buf := b.Bytes()
				if uintptr(unsafe.Pointer(&buf[0]))%BufferAlign != 0 {
					errs <- "unaligned buffer"
					return
				}
				buf[0], buf[len(buf)-1] = stamp, stamp
				held = append(held, b)
				// Hold up to three buffers so the pool sees varied depths.
				if len(held) > i%4 {
					for _, h := range held {
						hb := h.Bytes()
						if hb[0] != stamp || hb[len(hb)-1] != stamp {
							errs <- "buffer shared between owners"
							return
						}
						p.Put(h)
					}
					held = held[:0]
				}
			}
			for _, h := range held {
				p.Put(h)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	s := p.Stats()
	if s.Gets != workers*iters || s.Puts != workers*iters {
		t.Errorf("stats %+v, want %d gets and puts", s, workers*iters)
	}
	checkInvariant(t, s)
	for i, c := range p.Classes() {
		if cs := p.ClassStats(i); cs.Free > uint64(c.MaxFree) {
			t.Errorf("class %d holds %d free buffers, bound %d", i, cs.Free, c.MaxFree)
		}
	}
}

func TestZeroAllocsSteadyState(t *testing.T) {
	p := newTestPool(t, DefaultClasses()...)
	for _, size := range []int{0, 1452, 2048, 65535, 72 << 10} {
		// Warm up: the first Get of a class allocates its slab.
		b, _ := p.Get(size)
		p.Put(b)
		allocs := testing.AllocsPerRun(1000, func() {
			b, ok := p.Get(size)
			if !ok {
				panic("Get failed")
			}
			b.Bytes()[0] = 1
			p.Put(b)
		})
		if allocs != 0 {
			t.Errorf("Get(%d)/Put: %v allocations per run, want 0", size, allocs)
		}
	}
	// Holding several buffers at once stays allocation-free too once the
	// free list has seen that depth.
	var held [8]Buffer
	cycle := func() {
		for i := range held {
			held[i], _ = p.Get(1500)
		}
		for i := range held {
			p.Put(held[i])
		}
	}
	cycle()
	if allocs := testing.AllocsPerRun(200, cycle); allocs != 0 {
		t.Errorf("8-deep Get/Put: %v allocations per run, want 0", allocs)
	}
}

func BenchmarkGetPutSmall(b *testing.B) {
	p := newTestPool(b, DefaultClasses()...)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ := p.Get(1452)
		p.Put(buf)
	}
}

func BenchmarkGetPutLarge(b *testing.B) {
	p := newTestPool(b, DefaultClasses()...)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ := p.Get(65535)
		p.Put(buf)
	}
}

func BenchmarkGetPutParallel(b *testing.B) {
	p := newTestPool(b, DefaultClasses()...)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			buf, _ := p.Get(1452)
			p.Put(buf)
		}
	})
}
