package alignment

import (
	"fmt"
	"sync"
	"unsafe"
)

// BufferAlign is the alignment of the first byte of every pooled buffer: a
// cache line on current amd64 and arm64 parts, and a multiple of every wire
// alignment, so a message placed at a wire-aligned offset inside a buffer
// is aligned in memory too.
const BufferAlign = 64

// slabTarget is the most memory one slab of small buffers takes. 32 KiB is
// the largest size the Go allocator serves from size classes, so a slab of
// that size is one allocation and in practice already 64-byte aligned.
const slabTarget = 32 << 10

// maxClassSize bounds class sizes so that slab arithmetic cannot overflow.
const maxClassSize = 1 << 30

// Class describes one size class of a [Pool].
type Class struct {
	// Size is the length of every buffer in the class. It must be a
	// positive multiple of BufferAlign.
	Size int
	// MaxFree is the most buffers the class keeps for reuse. Buffers Put
	// while MaxFree are already free are dropped for the garbage collector.
	// Zero means nothing is kept and every Get allocates.
	MaxFree int
}

// DefaultClasses returns the classes of the [Default] pool, a fresh slice
// each call:
//
//   - 2 KiB, up to 512 free (1 MiB): one packet on any common MTU.
//   - 72 KiB, up to 16 free (1.1 MiB): a maximal UDP datagram (65,535
//     bytes) or a GSO/GRO batch, with headroom. The Go allocator rounds
//     allocations above 32 KiB up to whole 8 KiB pages, so anything between
//     64 KiB and 72 KiB would cost 72 KiB anyway.
func DefaultClasses() []Class {
	return []Class{
		{Size: 2 << 10, MaxFree: 512},
		{Size: 72 << 10, MaxFree: 16},
	}
}

var defaultPool = mustPool(DefaultClasses()...)

// Default returns the package's shared pool, built from [DefaultClasses].
func Default() *Pool { return defaultPool }

// Pool is a bounded, size-classed pool of 64-byte-aligned byte buffers for
// the packet path. It is safe for concurrent use.
//
// Ownership: a [Buffer] returned by Get belongs to the caller alone until
// the caller passes it to Put. After Put the caller must not read or write
// its bytes or Put it again: the pool may already have handed it to another
// goroutine. Buffers are not zeroed on Get or Put; a buffer may hold a
// previous user's data, so callers that keep secrets in one clear it
// themselves before Put. A caller may also simply drop a buffer instead of
// returning it; the garbage collector reclaims it.
//
// Memory: a class never keeps more than its MaxFree free buffers. Buffers
// are carved from slabs of up to 32 KiB, and a slab is reclaimed only when
// none of its buffers is reachable, so in the worst case a class pins
// MaxFree slabs rather than MaxFree buffers (at most 16 times as much for
// 2 KiB buffers). Large classes use one buffer per slab.
type Pool struct {
	classes []sizeClass
}

// sizeClass is one size class. mu guards free, every counter, and the gen
// field of every slot of this class: Get and Put change the free list and
// a slot's generation together, and the lock makes that one step, so a
// second Put of the same handle always sees the generation the first one
// left. A mutex rather than sync.Pool because sync.Pool cannot enforce a
// bound and may drop buffers at any GC.
type sizeClass struct {
	mu      sync.Mutex
	free    []*slot // LIFO; cap(free) == MaxFree and it never grows
	size    int     // immutable
	maxFree int     // cap(free), immutable: read without the lock by Classes
	perSlab int     // buffers per new slab, in [1, MaxFree+1]; immutable

	gets, puts, allocs, slabs, drops uint64

	// Keep the hot fields of neighbouring classes on separate cache lines.
	_ [BufferAlign]byte
}

// slot is the pool's record of one buffer. data, pool and class never
// change; gen is guarded by the class mutex and advances on every Put.
type slot struct {
	data  []byte // len == cap == class size; first byte BufferAlign-aligned
	pool  *Pool
	class int
	gen   uint64
}

// Buffer is a handle to one pooled buffer, returned by [Pool.Get]. It is a
// small value: copy it freely, but Put it once. The zero Buffer holds
// nothing; Get returns it when no class is large enough.
type Buffer struct {
	s   *slot
	gen uint64 // the slot's generation when Get handed it out
}

// Bytes returns the whole buffer: len and cap both equal the class size,
// which is at least the size passed to Get, and the first byte is
// BufferAlign-aligned. The capacity is clipped, so appending past the end
// reallocates rather than writing into a neighbouring buffer. Bytes of the
// zero Buffer is nil. Bytes does not check that b is still owned; using the
// slice after Put is a bug the pool cannot see.
func (b Buffer) Bytes() []byte {
	if b.s == nil {
		return nil
	}
	return b.s.data
}

// IsZero reports whether b is the zero Buffer.
func (b Buffer) IsZero() bool { return b.s == nil }

// Stats are a pool's counters, for tests and metrics. They satisfy
// Allocs == Free + Drops + (Gets - Puts): every buffer ever made is free,
// dropped, or out with a caller (or lost by one).
type Stats struct {
	Gets   uint64 // successful Get calls
	Puts   uint64 // successful Put calls
	Allocs uint64 // buffers created
	Slabs  uint64 // slab allocations; each Get that found no free buffer makes one
	Drops  uint64 // buffers left to the GC because the free list was full
	Free   uint64 // buffers on the free lists now
}

func (s *Stats) add(o Stats) {
	s.Gets += o.Gets
	s.Puts += o.Puts
	s.Allocs += o.Allocs
	s.Slabs += o.Slabs
	s.Drops += o.Drops
	s.Free += o.Free
}

// NewPool returns a pool with the given classes. Sizes must be positive
// multiples of BufferAlign, at most 1 GiB, strictly increasing; MaxFree
// must be >= 0. At least one class is required. The free lists are
// allocated here, so later Get and Put calls never grow them.
func NewPool(classes ...Class) (*Pool, error) {
	if len(classes) == 0 {
		return nil, fmt.Errorf("alignment: a pool needs at least one class")
	}
	p := &Pool{classes: make([]sizeClass, len(classes))}
	for i, c := range classes {
		switch {
		case c.Size <= 0 || c.Size > maxClassSize:
			return nil, fmt.Errorf("alignment: class %d size %d is not in [1, %d]", i, c.Size, maxClassSize)
		case c.Size%BufferAlign != 0:
			return nil, fmt.Errorf("alignment: class %d size %d is not a multiple of %d", i, c.Size, BufferAlign)
		case i > 0 && c.Size <= classes[i-1].Size:
			return nil, fmt.Errorf("alignment: class %d size %d is not larger than class %d size %d", i, c.Size, i-1, classes[i-1].Size)
		case c.MaxFree < 0:
			return nil, fmt.Errorf("alignment: class %d MaxFree %d is negative", i, c.MaxFree)
		}
		// Fill whole slabs, but never make more buffers at once than the
		// one being handed out plus what the free list may keep.
		per := max(1, slabTarget/c.Size)
		per = min(per, c.MaxFree+1)
		p.classes[i] = sizeClass{
			free:    make([]*slot, 0, c.MaxFree),
			size:    c.Size,
			maxFree: c.MaxFree,
			perSlab: per,
		}
	}
	return p, nil
}

func mustPool(classes ...Class) *Pool {
	p, err := NewPool(classes...)
	if err != nil {
		panic(err)
	}
	return p
}

// Classes returns the pool's classes, smallest first, as a fresh slice.
func (p *Pool) Classes() []Class {
	out := make([]Class, len(p.classes))
	for i := range p.classes {
		out[i] = Class{Size: p.classes[i].size, MaxFree: p.classes[i].maxFree}
	}
	return out
}

// MaxSize returns the largest size Get can serve.
func (p *Pool) MaxSize() int { return p.classes[len(p.classes)-1].size }

// classFor returns the index of the smallest class holding size bytes, or
// -1 if size is negative or larger than every class.
func (p *Pool) classFor(size int) int {
	if size < 0 {
		return -1
	}
	for i := range p.classes {
		if p.classes[i].size >= size {
			return i
		}
	}
	return -1
}

// Get returns a buffer of the smallest class whose size is >= size; the
// caller owns it until Put. ok is false, and b the zero Buffer, if size is
// negative or larger than [Pool.MaxSize]: packet sizes are bounded by
// configuration, so this signals a caller bug or a hostile length that
// must be rejected, never a reason to allocate something bigger.
//
// Get reuses a free buffer when one exists and otherwise allocates a new
// slab; it does not allocate while the class has free buffers.
func (p *Pool) Get(size int) (b Buffer, ok bool) {
	ci := p.classFor(size)
	if ci < 0 {
		return Buffer{}, false
	}
	c := &p.classes[ci]
	c.mu.Lock()
	c.gets++
	if n := len(c.free); n > 0 {
		s := c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
		gen := s.gen
		c.mu.Unlock()
		return Buffer{s: s, gen: gen}, true
	}
	c.mu.Unlock()
	return p.grow(ci), true
}

// grow allocates a slab for class ci, keeps all but the first of its
// buffers on the free list as far as the bound allows, and returns the
// first. The allocation happens outside the lock so that other goroutines
// can keep getting and putting buffers meanwhile.
func (p *Pool) grow(ci int) Buffer {
	c := &p.classes[ci]
	size, k := c.size, c.perSlab
	mem := alignedBytes(size * k)
	slots := make([]slot, k)
	for i := range slots {
		off := i * size
		slots[i] = slot{data: mem[off : off+size : off+size], pool: p, class: ci}
	}
	c.mu.Lock()
	c.slabs++
	c.allocs += uint64(k)
	for i := 1; i < k; i++ {
		if len(c.free) < cap(c.free) {
			c.free = append(c.free, &slots[i])
		} else {
			// Other goroutines refilled the list while we allocated.
			c.drops++
		}
	}
	c.mu.Unlock()
	// slots[0] was never published, so its gen (0) is ours to read.
	return Buffer{s: &slots[0], gen: 0}
}

// Put returns b to the pool; the caller must not use b or its bytes
// afterwards. If the class already holds MaxFree free buffers, b is dropped
// for the garbage collector instead. Putting the zero Buffer does nothing.
//
// Put panics, as a use-after-free guard, on:
//   - a buffer from another Pool;
//   - a handle that was already Put, including a stale copy of a handle
//     whose buffer has since been handed out again (every Put advances the
//     buffer's generation, and the handle remembers the one it was given).
//
// It cannot detect use of the bytes after Put, nor a Put made through a
// copy of a handle whose owner is still using the buffer (the first Put of
// a generation always wins).
func (p *Pool) Put(b Buffer) {
	s := b.s
	if s == nil {
		return
	}
	if s.pool != p {
		panic("alignment: Put of a buffer from another pool")
	}
	c := &p.classes[s.class]
	c.mu.Lock()
	if s.gen != b.gen {
		c.mu.Unlock()
		panic("alignment: Put of a buffer that was already returned (double Put or stale handle)")
	}
	s.gen++
	c.puts++
	if len(c.free) < cap(c.free) {
		c.free = append(c.free, s)
	} else {
		c.drops++
	}
	c.mu.Unlock()
}

// ClassStats returns the counters of class i (0 is the smallest). It
// panics if i is out of range.
func (p *Pool) ClassStats(i int) Stats {
	c := &p.classes[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{
		Gets:   c.gets,
		Puts:   c.puts,
		Allocs: c.allocs,
		Slabs:  c.slabs,
		Drops:  c.drops,
		Free:   uint64(len(c.free)),
	}
}

// Stats returns the counters summed over all classes. Classes are read one
// at a time, so under concurrent use the sum is not a single snapshot.
func (p *Pool) Stats() Stats {
	var s Stats
	for i := range p.classes {
		s.add(p.ClassStats(i))
	}
	return s
}

// alignedBytes returns a zeroed n-byte slice (len == cap == n) whose first
// byte is BufferAlign-aligned. The Go heap does not move objects, so the
// alignment holds for the slice's lifetime. An allocation whose size is a
// multiple of 64 is usually aligned already; only when it is not do we pay
// for a second, padded allocation and carve the aligned window out of it.
func alignedBytes(n int) []byte {
	b := make([]byte, n)
	if addrOffset(b) == 0 {
		return b[:n:n]
	}
	return alignWithin(make([]byte, n+BufferAlign-1), n)
}

// alignWithin returns the first BufferAlign-aligned n-byte window of b,
// which must have len(b) >= n+BufferAlign-1.
func alignWithin(b []byte, n int) []byte {
	off := Pad(addrOffset(b), BufferAlign)
	return b[off : off+n : off+n]
}

// addrOffset returns the address of b's first byte modulo BufferAlign. The
// address only feeds this arithmetic and is never turned back into a
// pointer.
func addrOffset(b []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (BufferAlign - 1))
}
