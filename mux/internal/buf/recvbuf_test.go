package buf

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"testing"
)

func insert(t *testing.T, b *RecvBuffer, off uint64, n int, fin bool) {
	t.Helper()
	if err := b.Insert(off, patBytes(off, n), fin); err != nil {
		t.Fatalf("Insert(%d, %d, %v): %v", off, n, fin, err)
	}
}

// readAll reads everything readable and checks it against the stream.
func readAll(t *testing.T, b *RecvBuffer) int {
	t.Helper()
	total := 0
	p := make([]byte, 777)
	for {
		off := b.ReadOffset()
		n, err := b.Read(p)
		if err == io.EOF {
			return total
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if n == 0 {
			return total
		}
		checkPat(t, "Read", off, p[:n])
		total += n
	}
}

func TestRecvBufferInOrder(t *testing.T) {
	b := NewRecvBuffer(10000, 0)
	var off uint64
	for i := 0; i < 1000; i++ {
		insert(t, b, off, 1400, false)
		off += 1400
		if b.Readable() != 1400 || b.Contiguous() != off || b.HighestReceived() != off {
			t.Fatalf("Readable %d Contiguous %d Highest %d", b.Readable(), b.Contiguous(), b.HighestReceived())
		}
		if n := readAll(t, b); n != 1400 {
			t.Fatalf("read %d", n)
		}
		b.ShouldUpdateWindow()
	}
	if b.ReadOffset() != off || len(b.ring.b) > 10000 {
		t.Fatalf("ReadOffset %d ring %d", b.ReadOffset(), len(b.ring.b))
	}
}

func TestRecvBufferOutOfOrderAndDuplicates(t *testing.T) {
	b := NewRecvBuffer(1<<16, 0)
	insert(t, b, 3000, 1000, false)
	insert(t, b, 1000, 1000, false)
	if b.Readable() != 0 || b.Contiguous() != 0 || b.HighestReceived() != 4000 {
		t.Fatalf("Readable %d with a gap at 0", b.Readable())
	}
	if n, err := b.Read(make([]byte, 10)); n != 0 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	insert(t, b, 0, 1500, false) // overlaps [1000,1500) identically
	insert(t, b, 1000, 1000, false)
	if b.Readable() != 2000 {
		t.Fatalf("Readable %d, want 2000", b.Readable())
	}
	if n := readAll(t, b); n != 2000 {
		t.Fatalf("read %d", n)
	}
	insert(t, b, 0, 2500, false) // mostly below the read offset
	insert(t, b, 500, 100, false)
	if n := readAll(t, b); n != 500 {
		t.Fatalf("read %d, want 500", n)
	}
	insert(t, b, 2500, 500, false)
	if n := readAll(t, b); n != 1500 || b.ReadOffset() != 4000 {
		t.Fatalf("read %d, offset %d", n, b.ReadOffset())
	}
}

func TestRecvBufferMismatch(t *testing.T) {
	b := NewRecvBuffer(1<<16, 0)
	insert(t, b, 100, 100, false)
	insert(t, b, 300, 100, false)
	bad := patBytes(50, 400)
	bad[320] ^= 1 // offset 370, inside [300,400)
	if err := b.Insert(50, bad, false); !errors.Is(err, ErrDataMismatch) {
		t.Fatalf("Insert = %v, want ErrDataMismatch", err)
	}
	if b.Contiguous() != 0 || b.got.Len() != 2 || b.HighestReceived() != 400 {
		t.Fatal("failed Insert changed state")
	}
	// Inside the contiguous prefix, before it is read.
	c := NewRecvBuffer(1000, 0)
	insert(t, c, 0, 100, false)
	if err := c.Insert(50, make([]byte, 10), false); !errors.Is(err, ErrDataMismatch) {
		t.Fatalf("Insert = %v, want ErrDataMismatch", err)
	}
	// Differing bytes below the read offset cannot be checked and are ignored.
	insert(t, b, 0, 100, false)
	readAll(t, b)
	if err := b.Insert(0, make([]byte, 150), false); err != nil {
		t.Fatalf("Insert below read offset: %v", err)
	}
	if err := b.Insert(300, []byte{pat(300) ^ 1}, false); !errors.Is(err, ErrDataMismatch) {
		t.Fatalf("Insert = %v, want ErrDataMismatch", err)
	}
}

func TestRecvBufferFlowControl(t *testing.T) {
	b := NewRecvBuffer(4000, 0)
	if b.Limit() != 4000 {
		t.Fatalf("Limit %d", b.Limit())
	}
	insert(t, b, 3000, 1000, false)
	if err := b.Insert(3001, patBytes(3001, 1000), false); !errors.Is(err, ErrFlowControl) {
		t.Fatalf("Insert beyond window = %v", err)
	}
	if err := b.Insert(math.MaxUint64-5, make([]byte, 10), false); !errors.Is(err, ErrFlowControl) {
		t.Fatalf("overflowing Insert = %v", err)
	}
	insert(t, b, 0, 1000, false)
	readAll(t, b)
	// Reading does not raise the limit until it is announced.
	if err := b.Insert(4000, []byte{pat(4000)}, false); !errors.Is(err, ErrFlowControl) {
		t.Fatalf("Insert beyond unannounced limit = %v", err)
	}
	if l := b.AnnounceLimit(); l != 5000 {
		t.Fatalf("AnnounceLimit %d", l)
	}
	insert(t, b, 4000, 1000, false)
	if err := b.Insert(5000, []byte{0}, false); !errors.Is(err, ErrFlowControl) {
		t.Fatalf("Insert = %v", err)
	}
}

func TestRecvBufferWindowUpdate(t *testing.T) {
	b := NewRecvBuffer(1000, 0)
	insert(t, b, 0, 1000, false)
	p := make([]byte, 499)
	b.Read(p)
	if _, ok := b.ShouldUpdateWindow(); ok {
		t.Fatal("update before half the window was consumed")
	}
	b.Read(p[:1])
	l, ok := b.ShouldUpdateWindow()
	if !ok || l != 1500 || b.Limit() != 1500 {
		t.Fatalf("ShouldUpdateWindow = %d, %v", l, ok)
	}
	if _, ok := b.ShouldUpdateWindow(); ok {
		t.Fatal("second update without progress")
	}
	insert(t, b, 1000, 500, false) // allowed by the new limit
	b.SetWindow(4000)
	if b.Window() != 4000 {
		t.Fatalf("Window %d", b.Window())
	}
	if l, ok := b.ShouldUpdateWindow(); !ok || l != 4500 {
		t.Fatalf("after SetWindow: %d, %v", l, ok)
	}
	b.SetWindow(10) // shrinking is ignored
	b.SetWindow(math.MaxInt)
	if b.Window() != MaxWindow {
		t.Fatalf("Window %d, want cap %d", b.Window(), MaxWindow)
	}
	if l, ok := b.ShouldUpdateWindow(); !ok || l != 500+MaxWindow || l-b.ReadOffset() > MaxWindow {
		t.Fatalf("after SetWindow(max): %d, %v", l, ok)
	}
	insert(t, b, 1500, 1, true)
	readAll(t, b)
	if _, ok := b.ShouldUpdateWindow(); ok {
		t.Fatal("update after the final size is known")
	}
	if NewRecvBuffer(-1, 0).Window() != 0 || NewRecvBuffer(math.MaxInt, 0).Window() != MaxWindow {
		t.Fatal("window not clamped")
	}
	z := NewRecvBuffer(0, 0)
	if _, ok := z.ShouldUpdateWindow(); ok {
		t.Fatal("zero window asks for an update")
	}
	if err := z.Insert(0, []byte{1}, false); !errors.Is(err, ErrFlowControl) {
		t.Fatalf("Insert into zero window: %v", err)
	}
}

func TestRecvBufferFinalSize(t *testing.T) {
	tests := []struct {
		name string
		do   func(b *RecvBuffer) error
		want error
	}{
		{"different final size", func(b *RecvBuffer) error {
			b.Insert(0, patBytes(0, 100), true)
			return b.Insert(0, patBytes(0, 50), true)
		}, ErrFinalSize},
		{"same final size twice", func(b *RecvBuffer) error {
			b.Insert(50, patBytes(50, 50), true)
			return b.Insert(0, patBytes(0, 100), true)
		}, nil},
		{"data beyond final size", func(b *RecvBuffer) error {
			b.Insert(0, patBytes(0, 100), true)
			return b.Insert(90, patBytes(90, 20), false)
		}, ErrFinalSize},
		{"final size below received data", func(b *RecvBuffer) error {
			b.Insert(200, patBytes(200, 100), false)
			return b.Insert(0, patBytes(0, 100), true)
		}, ErrFinalSize},
		{"empty FIN", func(b *RecvBuffer) error {
			b.Insert(0, patBytes(0, 100), false)
			return b.Insert(100, nil, true)
		}, nil},
		{"empty data without FIN ignored", func(b *RecvBuffer) error {
			return b.Insert(1<<40, nil, false)
		}, nil},
		{"FIN beyond limit", func(b *RecvBuffer) error {
			return b.Insert(1001, nil, true)
		}, ErrFlowControl},
		{"reset below received", func(b *RecvBuffer) error {
			b.Insert(0, patBytes(0, 100), false)
			return b.Reset(50)
		}, ErrFinalSize},
		{"reset differs from FIN", func(b *RecvBuffer) error {
			b.Insert(0, patBytes(0, 100), true)
			return b.Reset(101)
		}, ErrFinalSize},
		{"reset beyond limit", func(b *RecvBuffer) error { return b.Reset(1001) }, ErrFlowControl},
		{"reset agrees", func(b *RecvBuffer) error {
			b.Insert(0, patBytes(0, 100), true)
			return b.Reset(100)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(NewRecvBuffer(1000, 0)); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRecvBufferEOF(t *testing.T) {
	b := NewRecvBuffer(1000, 0)
	insert(t, b, 500, 500, true)
	if fs, ok := b.FinalSize(); fs != 1000 || !ok {
		t.Fatalf("FinalSize %d %v", fs, ok)
	}
	p := make([]byte, 2000)
	if n, err := b.Read(p); n != 0 || err != nil {
		t.Fatalf("Read with a gap = %d, %v", n, err)
	}
	insert(t, b, 0, 500, false)
	n, err := b.Read(p[:999])
	if n != 999 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if b.Done() {
		t.Fatal("Done with a byte unread")
	}
	// The last bytes come without EOF; EOF follows bare.
	if n, err := b.Read(p); n != 1 || err != nil {
		t.Fatalf("Read = %d, %v, want 1, nil", n, err)
	}
	if !b.Done() || b.ring.b != nil {
		t.Fatal("not Done, or ring kept")
	}
	for i := 0; i < 3; i++ {
		if n, err := b.Read(p); n != 0 || err != io.EOF {
			t.Fatalf("Read at end = %d, %v, want 0, io.EOF", n, err)
		}
	}
	insert(t, b, 0, 1000, true) // a late duplicate is harmless
	if n, err := b.Read(p); n != 0 || err != io.EOF {
		t.Fatalf("Read = %d, %v", n, err)
	}
}

func TestRecvBufferCloseAndReset(t *testing.T) {
	b := NewRecvBuffer(1000, 0)
	insert(t, b, 0, 300, false)
	b.Close()
	if b.ring.b != nil || b.Readable() != 0 || b.Done() {
		t.Fatal("state after Close")
	}
	if _, err := b.Read(make([]byte, 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	insert(t, b, 500, 100, false) // still counted for flow control
	if b.HighestReceived() != 600 || b.ring.b != nil {
		t.Fatalf("Highest %d", b.HighestReceived())
	}
	if err := b.Insert(900, make([]byte, 200), false); !errors.Is(err, ErrFlowControl) {
		t.Fatalf("Insert beyond limit after Close: %v", err)
	}
	if err := b.Reset(700); err != nil {
		t.Fatal(err)
	}
	if !b.Done() || b.HighestReceived() != 700 {
		t.Fatalf("Done %v Highest %d", b.Done(), b.HighestReceived())
	}
	if err := b.Reset(700); err != nil {
		t.Fatalf("repeated RESET: %v", err)
	}
	if _, err := b.Read(nil); !errors.Is(err, ErrReset) {
		t.Fatalf("Read after Reset: %v", err)
	}
	if err := b.Insert(650, make([]byte, 100), false); !errors.Is(err, ErrFinalSize) {
		t.Fatalf("Insert beyond final size after Reset: %v", err)
	}
}

func TestRecvBufferTooFragmented(t *testing.T) {
	b := NewRecvBuffer(1<<16, 4)
	for i := uint64(1); i <= 4; i++ {
		insert(t, b, i*1000, 100, false)
	}
	if err := b.Insert(6000, patBytes(6000, 100), false); !errors.Is(err, ErrTooFragmented) {
		t.Fatalf("Insert = %v, want ErrTooFragmented", err)
	}
	if b.HighestReceived() != 4100 {
		t.Fatal("refused Insert changed state")
	}
	insert(t, b, 4100, 100, false) // extends an interval: accepted
	insert(t, b, 0, 500, false)    // the first gap is always accepted
	if err := b.Insert(600, patBytes(600, 10), false); !errors.Is(err, ErrTooFragmented) {
		t.Fatalf("Insert = %v", err)
	}
	insert(t, b, 500, 500, false) // reaches [1000,1100): frees an interval
	if b.Contiguous() != 1100 || b.got.Len() != 3 {
		t.Fatalf("Contiguous %d, %d intervals", b.Contiguous(), b.got.Len())
	}
	insert(t, b, 1200, 10, false)
	if readAll(t, b) != 1100 {
		t.Fatal("read")
	}
}

// TestStreamProperty sends a stream through a SendBuffer, a channel that
// chunks, loses, duplicates and reorders messages, and a RecvBuffer, with
// acknowledgements and loss reports flowing back, and checks the bytes.
func TestStreamProperty(t *testing.T) {
	for seed := uint64(0); seed < 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		total := 20000 + rng.IntN(200000)
		window := 2000 + rng.IntN(60000)
		sb := NewSendBuffer(1000+rng.IntN(50000), 1+rng.IntN(16))
		rb := NewRecvBuffer(window, 2+rng.IntN(30))
		var written uint64
		type msg struct {
			s    sent
			data []byte
		}
		var net []msg
		var inflight []sent
		var eof bool
		rp := make([]byte, 3000)
		limit := rb.Limit()
		for step := 0; !eof; step++ {
			if step > 200000 {
				t.Fatalf("seed %d: no progress: sent %d acked %d read %d", seed, sb.SentMax(), sb.Acked(), rb.ReadOffset())
			}
			if written < uint64(total) {
				n := sb.Write(patBytes(written, min(rng.IntN(5000), total-int(written))))
				written += uint64(n)
				if written == uint64(total) {
					sb.Close()
				}
			}
			for k := rng.IntN(4); k > 0; k-- {
				max := 1 + rng.IntN(1500)
				pkt, off, n, fin := sb.AppendLost(nil, max)
				if n == 0 && !fin {
					pkt, off, n, fin = sb.AppendNew(nil, max, limit)
				}
				if n == 0 && !fin {
					break
				}
				inflight = append(inflight, sent{off, n, fin})
				net = append(net, msg{sent{off, n, fin}, pkt})
				if rng.IntN(5) == 0 {
					net = append(net, msg{sent{off, n, fin}, pkt})
				}
			}
			rng.Shuffle(len(net), func(i, j int) { net[i], net[j] = net[j], net[i] })
			for len(net) > 0 && rng.IntN(3) != 0 {
				m := net[0]
				net = net[1:]
				if rng.IntN(6) == 0 {
					continue // lost
				}
				switch err := rb.Insert(m.s.off, m.data, m.s.fin); {
				case err == nil:
					if rng.IntN(4) != 0 {
						sb.Ack(m.s.off, m.s.n, m.s.fin)
					}
				case errors.Is(err, ErrTooFragmented):
				default:
					t.Fatalf("seed %d: Insert(%d,%d,%v): %v", seed, m.s.off, m.s.n, m.s.fin, err)
				}
			}
			// Loss detection: everything in flight may be declared lost.
			if rng.IntN(4) == 0 {
				for _, s := range inflight {
					sb.MarkLost(s.off, s.n, s.fin)
				}
				inflight = inflight[:0]
			}
			for rng.IntN(3) != 0 {
				off := rb.ReadOffset()
				n, err := rb.Read(rp[:1+rng.IntN(len(rp)-1)])
				if err == io.EOF {
					eof = true
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				checkPat(t, "stream", off, rp[:n])
				if n == 0 {
					break
				}
			}
			if l, ok := rb.ShouldUpdateWindow(); ok {
				limit = l
			}
			if rb.Limit()-rb.ReadOffset() > uint64(window) {
				t.Fatalf("limit %d beyond window", rb.Limit())
			}
		}
		if rb.ReadOffset() != uint64(total) || !rb.Done() {
			t.Fatalf("seed %d: read %d of %d", seed, rb.ReadOffset(), total)
		}
	}
}

func TestRecvBufferAllocs(t *testing.T) {
	b := NewRecvBuffer(64<<10, 0)
	chunk := make([]byte, 1400)
	p := make([]byte, 1400)
	var off uint64
	cycle := func() {
		b.Insert(off+1400, chunk, false) // out of order first
		b.Insert(off, chunk, false)
		b.Insert(off, chunk, false) // duplicate
		b.Read(p)
		b.Read(p)
		off += 2800
		if l, ok := b.ShouldUpdateWindow(); ok && l < off {
			t.Fatal("limit")
		}
	}
	for i := 0; i < 100; i++ {
		cycle()
	}
	if allocs := testing.AllocsPerRun(1000, cycle); allocs != 0 {
		t.Fatalf("RecvBuffer insert/read: %v allocations per run, want 0", allocs)
	}
	if b.ReadOffset() != off {
		t.Fatalf("ReadOffset %d, want %d", b.ReadOffset(), off)
	}
}
