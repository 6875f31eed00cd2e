package mux

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// shuttle moves packets between two sessions over a perfect, instant link
// until both are quiet or rounds run out, advancing the clock by step per
// round. bufs are reused so the shuttle itself allocates nothing.
type shuttle struct {
	a, b    *Session
	now     time.Time
	bufA    []byte
	bufB    []byte
	step    time.Duration
	packets int
}

func newShuttle(a, b *Session, now time.Time) *shuttle {
	return &shuttle{a: a, b: b, now: now, bufA: make([]byte, 65536), bufB: make([]byte, 65536), step: time.Millisecond}
}

// round lets each side send what it can now, delivering to the other.
func (sh *shuttle) round() int {
	moved := 0
	for i := 0; i < 10000; i++ {
		n := sh.a.Poll(sh.bufA, sh.now)
		m := sh.b.Poll(sh.bufB, sh.now)
		if n > 0 {
			sh.b.Receive(sh.bufA[:n], sh.now)
		}
		if m > 0 {
			sh.a.Receive(sh.bufB[:m], sh.now)
		}
		if n == 0 && m == 0 {
			break
		}
		moved += btoi(n > 0) + btoi(m > 0)
	}
	sh.packets += moved
	sh.now = sh.now.Add(sh.step)
	return moved
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSteadyStateAllocs: a bulk transfer in steady state allocates nothing
// per packet, on either side (issue #4).
func TestSteadyStateAllocs(t *testing.T) {
	now := time.Unix(1e9, 0)
	cfg := Config{ChannelWindow: 256 << 10, MaxChannelWindow: 256 << 10, SessionWindow: 1 << 20, MaxSessionWindow: 1 << 20}
	a, b := pair(t, cfg, cfg, now)
	id, err := a.OpenStream("bulk", 3)
	if err != nil {
		t.Fatal(err)
	}
	sh := newShuttle(a, b, now)
	data := make([]byte, 32<<10)
	rd := make([]byte, 64<<10)
	var peerID uint32
	pump := func() {
		for {
			n, _ := a.Write(id, data)
			if n < len(data) {
				break
			}
		}
		sh.round()
		for {
			ev, ok := b.PollEvent()
			if !ok {
				break
			}
			if ev.Kind&EventIncoming != 0 {
				peerID = ev.Channel
				b.Accept(ev.Channel)
			}
		}
		for peerID != 0 {
			n, _ := b.Read(peerID, rd)
			if n == 0 {
				break
			}
		}
		for {
			if _, ok := a.PollEvent(); !ok {
				break
			}
		}
	}
	for i := 0; i < 300; i++ { // warm up: windows, rings, maps reach their size
		pump()
	}
	before := sh.packets
	allocs := testing.AllocsPerRun(200, pump)
	packets := sh.packets - before
	if packets < 1000 {
		t.Fatalf("only %d packets moved in steady state", packets)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per round of ~%d packets, want 0", allocs, packets/201)
	}
}

// TestManyChannels opens, uses and closes 2,000 channels on one session,
// 20 at a time, and checks that every channel's state is released and the
// heap returns to its baseline.
func TestManyChannels(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, b := pair(t, Config{MaxChannels: 32}, Config{MaxChannels: 32}, now)
	sh := newShuttle(a, b, now)
	msg := []byte("a small request that is written, echoed and closed")
	rd := make([]byte, 4096)
	opened, finished := 0, 0
	live := map[uint32]bool{}
	var base runtime.MemStats
	for round := 0; finished < 2000 && round < 100000; round++ {
		for len(live) < 20 && opened < 2000 {
			id, err := a.OpenStream("echo", 3)
			if err == ErrChannelLimit {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if n, err := a.Write(id, msg); n != len(msg) || err != nil {
				t.Fatal(n, err)
			}
			a.CloseWrite(id)
			live[id] = true
			opened++
		}
		sh.round()
		for { // B: accept, echo back, close
			ev, ok := b.PollEvent()
			if !ok {
				break
			}
			if ev.Kind&EventIncoming != 0 {
				b.Accept(ev.Channel)
			}
			if ev.Kind&EventReadable != 0 {
				for {
					n, err := b.Read(ev.Channel, rd)
					if n > 0 {
						b.Write(ev.Channel, rd[:n])
					}
					if err == io.EOF {
						b.CloseChannel(ev.Channel, 0)
						break
					}
					if n == 0 || err != nil {
						break
					}
				}
			}
		}
		for { // A: read the echo to EOF
			ev, ok := a.PollEvent()
			if !ok {
				break
			}
			if ev.Kind&EventReadable == 0 || !live[ev.Channel] {
				continue
			}
			for {
				n, err := a.Read(ev.Channel, rd)
				if err == io.EOF {
					a.CloseChannel(ev.Channel, 0)
					delete(live, ev.Channel)
					finished++
					break
				}
				if n == 0 || err != nil {
					break
				}
			}
		}
		if finished == 100 && base.HeapInuse == 0 {
			runtime.GC()
			runtime.ReadMemStats(&base)
		}
	}
	for i := 0; i < 200; i++ { // let the last acknowledgements settle
		sh.round()
		for _, s := range []*Session{a, b} {
			for {
				if _, ok := s.PollEvent(); !ok {
					break
				}
			}
		}
	}
	if finished != 2000 {
		t.Fatalf("finished %d of 2000 channels", finished)
	}
	if a.channels.Len() != 0 || b.channels.Len() != 0 || a.gone.Len() != 0 || b.gone.Len() != 0 {
		t.Fatalf("channel state left: A %d/%d, B %d/%d", a.channels.Len(), a.gone.Len(), b.channels.Len(), b.gone.Len())
	}
	if a.Stats().ChannelsOpened != 2000 || b.Stats().ChannelsOpened != 2000 {
		t.Fatalf("opened A %d B %d", a.Stats().ChannelsOpened, b.Stats().ChannelsOpened)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grow := int64(after.HeapInuse) - int64(base.HeapInuse); grow > 1<<20 {
		t.Fatalf("heap grew by %d bytes over 1,900 channels", grow)
	}
	if a.Err() != nil || b.Err() != nil {
		t.Fatal(a.Err(), b.Err())
	}
	_ = wire.ChannelStream
}
