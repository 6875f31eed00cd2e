package mux

import (
	"errors"
	"time"

	"github.com/havenproto/haven/mux/internal/fec"
	"github.com/havenproto/haven/wire"
)

// Forward error correction on datagram channels (PROTOCOL.md §5.11, FEC
// scheme 1, chosen at the handshake: Config.FEC). A sender protects a
// channel's datagrams with SetDatagramFEC: consecutive whole datagrams form
// groups of up to K, and each group's R repair symbols follow it
// (DATAGRAM_REPAIR, appendRepairs). A receiver in an FEC session keeps the
// last fecWindow datagrams of each datagram channel and recovers lost ones
// once a group's repairs make up for them; a sequence number is delivered
// at most once.

// fecFlush is how long a group stays open for more datagrams after the
// last one left: a stream of datagrams fills its groups, and one that
// pauses gets the repairs of what it sent within it (local policy,
// PROTOCOL.md §5.11). Closing a group earlier would cut a paced stream's
// groups short, and shorter groups with proportionally fewer repairs
// recover less.
const fecFlush = 10 * time.Millisecond

// ErrFECOff is returned by SetDatagramFEC when the session's FEC scheme is
// 0 (one side did not propose or accept it at the handshake).
var ErrFECOff = errors.New("mux: the session has no FEC (Config.FEC at the handshake)")

// fecSession is a session's FEC state beyond its channels'.
type fecSession struct {
	senders []*channel // the channels with SetDatagramFEC
	stats   FECStats
}

// FECStats counts what FEC did on a session (FECStats).
type FECStats struct {
	RepairsSent, RepairsReceived uint64 // repair symbols
	DatagramsRecovered           uint64 // datagrams recovered from them (also in Stats.DatagramsReceived)
}

// FECStats returns the session's FEC counters.
func (s *Session) FECStats() FECStats {
	if s.fecs == nil {
		return FECStats{}
	}
	return s.fecs.stats
}

// fecState returns the session's FEC state, made on first use.
func (s *Session) fecState() *fecSession {
	if s.fecs == nil {
		s.fecs = new(fecSession)
	}
	return s.fecs
}

// fecSender is a datagram channel's sending side of FEC.
type fecSender struct {
	k, r  int
	enc   fec.Encoder
	first uint64    // sequence number of the open group's first datagram
	last  time.Time // when its latest datagram was sent
	// The closed group whose repair symbols wait to be sent: copies of its
	// symbols, its first sequence number and size, the next to send.
	out      [wire.MaxRepairSymbols][]byte
	outR     int // its R
	outN     int // repair symbols to send: R, or fewer for a group closed early
	next     int
	outFirst uint64
	outK     int
}

// pending reports whether repair symbols of a closed group wait.
func (f *fecSender) pending() bool { return f.next < f.outN }

// add puts datagram seq (sent now) into the open group, closing it when
// full; the caller has checked that no closed group's repairs wait.
func (f *fecSender) add(seq uint64, data []byte, now time.Time) {
	if f.enc.Len() == 0 {
		f.first = seq
	}
	f.last = now
	f.enc.Add(data)
	if f.enc.Len() == f.k {
		f.close()
	}
}

// close ends the open group, if it has datagrams, and queues its repairs.
func (f *fecSender) close() {
	if f.enc.Len() == 0 || f.pending() {
		return
	}
	// A group closed before it held K datagrams gets repairs in
	// proportion (rounded up), so the overhead stays R/K whatever the
	// sender's pace; its symbols still say R, the coefficients' R
	// (PROTOCOL.md §5.11).
	k := f.enc.Len()
	n := max(1, (f.r*k+f.k-1)/f.k)
	for r := 0; r < n; r++ {
		f.out[r] = append(f.out[r][:0], f.enc.Repair(r)...)
	}
	f.outR, f.outN, f.next, f.outFirst, f.outK = f.r, n, 0, f.first, k
	f.enc.Reset(f.r)
}

// SetDatagramFEC protects the datagrams this side sends on datagram
// channel id from then on with repairs repair symbols per group of up to
// group datagrams (1 ≤ group ≤ 64, 1 ≤ repairs ≤ 16; PROTOCOL.md §5.11):
// up to repairs lost datagrams of a group are recovered by the peer. The
// repair symbols count against congestion control: they cost about
// repairs/group of the channel's bytes. repairs 0 turns it off.
func (s *Session) SetDatagramFEC(id uint32, group, repairs int) error {
	c, err := s.channel(id)
	if err != nil {
		return err
	}
	if c.isStream() {
		return ErrWrongType
	}
	if !s.fec {
		return ErrFECOff
	}
	if repairs == 0 {
		if c.fecOut != nil {
			c.fecOut.close()
			c.fecOut.k = 0 // no new group; the closed one's repairs still go
		}
		return nil
	}
	if group < 1 || group > wire.MaxRepairGroup || repairs < 1 || repairs > wire.MaxRepairSymbols {
		return ErrConfig
	}
	if c.fecOut == nil {
		c.fecOut = new(fecSender)
		fs := s.fecState()
		fs.senders = append(fs.senders, c)
	}
	f := c.fecOut
	f.close() // a group never mixes parameters
	f.k, f.r = group, repairs
	f.enc.Reset(repairs)
	return nil
}

// fecProtect accounts for datagram seq, just put whole into a packet
// (data is its bytes in the packet), in c's FEC groups, and reports
// whether it joined a group: it does if its repair symbol fits a packet
// as the datagram did; if not, the group closes before it.
func (s *Session) fecProtect(c *channel, seq uint64, data []byte, fresh int) bool {
	f := c.fecOut
	if f.k == 0 {
		return false
	}
	// A repair is 4 bytes of header and 2 of length longer than the
	// datagram; groups hold datagrams whose repairs fit a base-size packet.
	if len(data)+6 > fresh || len(data) > wire.MaxProtectedDatagram {
		f.close()
		return false
	}
	f.add(seq, data, s.now)
	return true
}

// appendRepair adds c's next waiting repair symbol, if it fits: one per
// packet, as protected datagrams go (PROTOCOL.md §5.11).
func (s *Session) appendRepair(c *channel, p []byte, room int) []byte {
	f := c.fecOut
	m := wire.DatagramRepair{First: uint32(f.outFirst), Group: uint8(f.outK), Repairs: uint8(f.outR),
		Index: uint8(f.next), Symbol: f.out[f.next]}
	if !s.fits(p, room, m.Len()) {
		return p
	}
	f.next++
	s.fecs.stats.RepairsSent++
	return m.Append(wire.AppendAlign(p, s.align))
}

// fecTimers closes the groups that got nothing for fecFlush with nothing
// more queued to join them, so that their repairs go, and forgets the
// channels that are done. (A channel with datagrams waiting fills its
// group as the congestion window lets them go.)
func (s *Session) fecTimers(now time.Time) {
	fs := s.fecs
	k := 0
	for _, c := range fs.senders {
		if c.state == chDone {
			continue
		}
		fs.senders[k] = c
		k++
		if f := c.fecOut; f.enc.Len() > 0 && !f.pending() && c.dgOut.len() == 0 && !now.Before(f.last.Add(fecFlush)) {
			f.close()
			s.sched.wake(c)
		}
	}
	clear(fs.senders[k:])
	fs.senders = fs.senders[:k]
}

// fecDeadline is when an open group's flush falls due (zero: none).
func (s *Session) fecDeadline() time.Time {
	var next time.Time
	for _, c := range s.fecs.senders {
		if f := c.fecOut; c.state != chDone && f.enc.Len() > 0 && !f.pending() && c.dgOut.len() == 0 {
			if due := f.last.Add(fecFlush); next.IsZero() || due.Before(next) {
				next = due
			}
		}
	}
	return next
}

// fecWindow is how many recent datagrams of a channel a receiver keeps
// for recovery: two groups of the largest size.
const fecWindow = 2 * wire.MaxRepairGroup

// fecGroups is how many groups' repair symbols a receiver keeps at once.
const fecGroups = 4

// fecReceiver is a datagram channel's receiving side of FEC.
type fecReceiver struct {
	slots  [fecWindow]fecSlot // by sequence number modulo fecWindow
	groups [fecGroups]fecGroup
	data   [wire.MaxRepairGroup][]byte // Recover's scratch
	rep    [wire.MaxRepairSymbols][]byte
}

// fecSlot is a datagram received or recovered (have), by sequence number.
type fecSlot struct {
	seq  uint64
	data []byte
	have bool
}

// fecGroup holds the repair symbols received for one group.
type fecGroup struct {
	first   uint64
	k, r, n int
	used    bool
	syms    [wire.MaxRepairSymbols][]byte
	got     [wire.MaxRepairSymbols]bool
}

// seen reports whether datagram seq was already delivered (an original
// after its recovery, or a duplicate).
func (f *fecReceiver) seen(seq uint64) bool {
	sl := &f.slots[seq%fecWindow]
	return sl.have && sl.seq == seq
}

// keep remembers datagram seq for the recovery of its group.
func (f *fecReceiver) keep(seq uint64, data []byte) {
	sl := &f.slots[seq%fecWindow]
	sl.seq, sl.have = seq, true
	sl.data = append(sl.data[:0], data...)
}

// onRepair applies a DATAGRAM_REPAIR.
func (s *Session) onRepair(c *channel, m *wire.DatagramRepair) error {
	if !s.fec || c.isStream() {
		return violation("DATAGRAM_REPAIR without FEC")
	}
	if c.state == chDone {
		return nil
	}
	f := s.fecIn(c)
	first := wire.FullDatagramSeq(c.dgNext, m.First)
	if first+uint64(m.Group) > c.recvLimit {
		return &protocolError{code: wire.CloseFlowControl, reason: "repair for datagrams beyond the channel's limit"}
	}
	s.fecState().stats.RepairsReceived++
	if len(m.Symbol) > wire.MaxProtectedDatagram+2 {
		return nil // larger than groups hold (PROTOCOL.md §5.11): ignored
	}
	g := f.group(first, int(m.Group), int(m.Repairs), len(m.Symbol))
	if g == nil || g.got[m.Index] {
		return nil // inconsistent with the group's other repairs, or a duplicate
	}
	g.syms[m.Index] = append(g.syms[m.Index][:0], m.Symbol...)
	g.got[m.Index] = true
	g.n++
	s.fecTry(c, f, g)
	return nil
}

// fecIn returns c's receiving FEC state, made on first use.
func (s *Session) fecIn(c *channel) *fecReceiver {
	if c.fecIn == nil {
		c.fecIn = new(fecReceiver)
	}
	return c.fecIn
}

// group finds the group starting at first, or takes a free slot (or the
// oldest group's) for it; nil when its K, R or symbol size disagree with
// what the group's earlier repairs said.
func (f *fecReceiver) group(first uint64, k, r, size int) *fecGroup {
	var victim *fecGroup
	for i := range f.groups {
		g := &f.groups[i]
		switch {
		case g.used && g.first == first:
			if g.k != k || g.r != r || len(g.syms[firstGot(g)]) != size {
				return nil
			}
			return g
		case !g.used:
			if victim == nil || victim.used {
				victim = g
			}
		case victim == nil || victim.used && g.first < victim.first:
			victim = g
		}
	}
	g := victim
	g.used, g.first, g.k, g.r, g.n = true, first, k, r, 0
	g.got = [wire.MaxRepairSymbols]bool{}
	return g
}

// firstGot returns the index of a repair symbol the group holds (it holds
// one once created by a repair).
func firstGot(g *fecGroup) int {
	for i, ok := range g.got[:g.r] {
		if ok {
			return i
		}
	}
	return 0
}

// fecTry recovers what group g lacks once its repairs suffice, and
// delivers it; the group is then forgotten.
func (s *Session) fecTry(c *channel, f *fecReceiver, g *fecGroup) {
	missing := 0
	for i := 0; i < g.k; i++ {
		seq := g.first + uint64(i)
		sl := &f.slots[seq%fecWindow]
		switch {
		case sl.have && sl.seq == seq:
			f.data[i] = sl.data
		case sl.have && sl.seq > seq:
			g.used = false // the window moved past the group: too late
			return
		default:
			f.data[i] = nil
			missing++
		}
	}
	if missing == 0 {
		g.used = false
		return
	}
	if missing > g.n {
		return
	}
	for r := 0; r < g.r; r++ {
		f.rep[r] = nil
		if g.got[r] {
			f.rep[r] = g.syms[r]
		}
	}
	data := f.data[:g.k]
	_, err := fec.Recover(data, f.rep[:g.r])
	g.used = false
	if err != nil {
		return // inconsistent: the group's repairs are discarded
	}
	for i, d := range data {
		seq := g.first + uint64(i)
		if f.seen(seq) {
			continue
		}
		f.keep(seq, d)
		s.fecs.stats.DatagramsRecovered++
		s.deliverDatagram(c, f.slots[seq%fecWindow].data)
	}
	clear(f.data[:])
	clear(f.rep[:])
}

// fecReceived notes whole datagram seq on c, in a session with FEC: it
// reports false for a sequence number already delivered (recovered
// before the original arrived, or a duplicate), and otherwise keeps the
// datagram for its group's recovery.
func (s *Session) fecReceived(c *channel, seq uint64, data []byte) bool {
	f := s.fecIn(c)
	if f.seen(seq) {
		return false
	}
	if len(data) <= wire.MaxProtectedDatagram {
		f.keep(seq, data)
	} else {
		f.forget(seq) // in no group: nothing to keep, and no longer dedupable
	}
	return true
}

// forget clears the slot of datagram seq (one too large for a group).
func (f *fecReceiver) forget(seq uint64) {
	sl := &f.slots[seq%fecWindow]
	sl.seq, sl.have = seq, false
}

// fecTryFor tries to recover the group datagram seq of c belongs to, if
// its repairs arrived first.
func (s *Session) fecTryFor(c *channel, seq uint64) {
	f := c.fecIn
	for i := range f.groups {
		if g := &f.groups[i]; g.used && seq >= g.first && seq < g.first+uint64(g.k) {
			s.fecTry(c, f, g)
		}
	}
}
