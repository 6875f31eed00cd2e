//go:build linux

package udp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is the kernel's struct mmsghdr: a msghdr and the byte count the
// call reports for it. Go pads the struct to the msghdr's alignment, as C
// does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

const (
	// recvOOB is the control-message space per read: one UDP_GRO int
	// needs CmsgSpace(4); the rest is slack so an unexpected message does
	// not truncate it.
	recvOOB = 64
	// cmsgAlign is the kernel's CMSG_ALIGN unit, sizeof(long).
	cmsgAlign = int(unsafe.Sizeof(uintptr(0)))
)

// sendOOB is the control-message space of one GSO send: a UDP_SEGMENT
// message whose payload is a uint16 (the kernel insists on exactly
// CMSG_LEN(2)).
var sendOOB = unix.CmsgSpace(2)

// recvState is the read side's state, guarded by Conn.rmu. Its scratch
// (msghdrs, iovecs, sockaddrs, control-message space) is borrowed from
// scratchPool only while a read is under way, and given back before the
// reader waits for data, so a socket with nobody reading it, or a reader
// blocked on an empty socket, holds none.
type recvState struct {
	sc *recvScratch // nil between reads and while waiting
	// the system call's arguments and results, shared with fn
	vlen int
	n    int
	err  syscall.Errno
	fn   func(fd uintptr) bool // s.recv, bound once so calls do not allocate
	// The call's messages, and its lender (nil for ReadBatch), shared with
	// fn for one call; nil otherwise, so no reference to the caller's
	// messages outlives it.
	msgs   []Message
	lender Lender
	zone   zoneCache
}

// recvScratch is the kernel-facing part of a read of up to len(hdrs)
// messages. The msghdrs point into iovs, names and oob once and for all;
// each read only points the iovecs at the caller's buffers (aim), and
// clears them again afterwards (unaim).
type recvScratch struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for sockaddr_in as well
	oob   []byte                  // recvOOB bytes per message
}

// scratchPool holds the read scratch of every Conn in the process: a
// bounded LIFO free list, so what it keeps is about one scratch per
// reader running at once, however many sockets there are.
var scratchPool struct {
	// mu guards free.
	mu   sync.Mutex
	free []*recvScratch // at most maxFreeScratch
}

var maxFreeScratch = 2 * max(1, runtime.GOMAXPROCS(0))

// minScratch is the smallest scratch made, so one serves most reads.
const minScratch = 16

// getScratch returns a scratch for n messages; the caller owns it until
// putScratch.
func getScratch(n int) *recvScratch {
	p := &scratchPool
	p.mu.Lock()
	if k := len(p.free); k > 0 && len(p.free[k-1].hdrs) >= n {
		sc := p.free[k-1]
		p.free[k-1] = nil
		p.free = p.free[:k-1]
		p.mu.Unlock()
		return sc
	}
	p.mu.Unlock()
	return newScratch(max(n, minScratch))
}

// putScratch gives sc back (dropped for the GC beyond the bound).
func putScratch(sc *recvScratch) {
	p := &scratchPool
	p.mu.Lock()
	if len(p.free) < maxFreeScratch {
		p.free = append(p.free, sc)
	}
	p.mu.Unlock()
}

func newScratch(n int) *recvScratch {
	sc := &recvScratch{
		hdrs:  make([]mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		oob:   make([]byte, n*recvOOB),
	}
	for i := range sc.hdrs {
		h := &sc.hdrs[i].hdr
		h.Iov = &sc.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&sc.names[i]))
		h.Control = &sc.oob[i*recvOOB]
	}
	return sc
}

// sendState is the write-side scratch, guarded by Conn.wmu. Each entry is
// one datagram, or one GSO train, of a caller's Message. Like recvState it
// grows on demand up to the batch size: a socket that writes one packet at
// a time keeps scratch for one.
type sendState struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte  // sendOOB bytes per entry, headers written at init
	ents  []entry // where each packed entry starts in the caller's messages
	vlen  int
	n     int
	err   syscall.Errno
	fn    func(fd uintptr) bool // s.send, bound once
	zone  zoneCache
}

// entry locates a packed datagram or train: message msg, from byte off.
type entry struct {
	msg, off int
	gso      bool
}

// grow makes room for n entries (n at most the batch size), as
// recvState.grow does.
func (w *sendState) grow(n int, s *sysConn) {
	if len(w.hdrs) >= n {
		return
	}
	n = min(s.size, max(n, 2*len(w.hdrs)))
	w.hdrs = make([]mmsghdr, n)
	w.iovs = make([]unix.Iovec, n)
	w.names = make([]unix.RawSockaddrInet6, n)
	w.oob = make([]byte, n*sendOOB)
	w.ents = make([]entry, n)
	for i := range w.hdrs {
		h := &w.hdrs[i].hdr
		h.Iov = &w.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&w.names[i]))
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&w.oob[i*sendOOB]))
		cm.Level, cm.Type = unix.SOL_UDP, unix.UDP_SEGMENT
		cm.SetLen(unix.CmsgLen(2))
	}
}

// recv runs inside RawConn.Read: it borrows the scratch (and, for
// ReadBatchLent, the buffers), tries to read without blocking, and when
// nothing is there gives them back before returning false, which asks the
// poller to wait for data: the goroutine then waits holding nothing.
func (s *sysConn) recv(fd uintptr) bool {
	r := &s.r
	if r.sc == nil {
		r.sc = getScratch(r.vlen)
	}
	if r.lender != nil {
		r.lender.Lend(r.msgs)
	}
	r.aim(s.gro)
	if s.syscallRecv(fd) {
		return true
	}
	r.unaim()
	putScratch(r.sc)
	r.sc = nil
	if r.lender != nil {
		r.lender.Return(r.msgs)
	}
	return false
}

// The batch system calls are made with RawSyscall, not Syscall: the
// socket is non-blocking (the poller waits, not the kernel), so a call
// never sleeps, and Syscall's entersyscall/exitsyscall only cost here. On
// the 2-core test host they cost a lot: each entersyscall that finds the
// runtime's monitor thread (sysmon) asleep wakes it, and sysmon then
// polls every 20 µs for a millisecond or more, so a process that goes
// idle and busy thousands of times a second (haven forward beside
// iperf3) kept it waking ~5,400 times a second, 8 % of a core; a call
// that outlasted a sysmon tick also had its P handed to another thread.
// With these calls and the forward path's TCP reads and writes raw
// (cmd/haven's rawTCP), sysmon sleeps, context switches per MB halve and
// iperf3 through haven forward gains 8–24 % (PERFORMANCE.md).

// syscallRecv makes the read system call: false means EAGAIN.
func (s *sysConn) syscallRecv(fd uintptr) bool {
	r := &s.r
	for {
		var n uintptr
		var e syscall.Errno
		if s.batch {
			n, _, e = unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.sc.hdrs[0])), uintptr(r.vlen), 0, 0, 0)
		} else {
			n, _, e = unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.sc.hdrs[0].hdr)), 0)
			r.sc.hdrs[0].n = uint32(n)
			n = 1
		}
		switch e {
		case 0:
			r.n, r.err = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.n, r.err = 0, e
			return true
		}
	}
}

// send runs inside RawConn.Write: false asks the poller to wait for room.
func (s *sysConn) send(fd uintptr) bool {
	w := &s.w
	for {
		var n uintptr
		var e syscall.Errno
		if s.batch {
			n, _, e = unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[0])), uintptr(w.vlen), 0, 0, 0)
		} else {
			_, _, e = unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[0].hdr)), 0)
			n = 1
		}
		switch e {
		case 0:
			w.n, w.err = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			w.n, w.err = 0, e
			return true
		}
	}
}

// aim points the first vlen iovecs at the messages' buffers and resets
// the per-call header fields.
func (r *recvState) aim(gro bool) {
	sc := r.sc
	for i := 0; i < r.vlen; i++ {
		b := r.msgs[i].Buf
		sc.iovs[i].Base = unsafe.SliceData(b)
		sc.iovs[i].SetLen(len(b))
		h := &sc.hdrs[i]
		h.hdr.Namelen = unix.SizeofSockaddrInet6
		h.hdr.Flags = 0
		h.n = 0
		if gro {
			h.hdr.SetControllen(recvOOB)
		} else {
			h.hdr.SetControllen(0)
		}
	}
}

// unaim clears the iovecs: the scratch keeps no reference to a caller's
// buffers once a call returns.
func (r *recvState) unaim() {
	for i := 0; i < r.vlen; i++ {
		r.sc.iovs[i].Base = nil
	}
}

// read is ReadBatch's direct path, and with a lender ReadBatchLent's; the
// caller holds c.rmu.
func (s *sysConn) read(c *Conn, msgs []Message, l Lender) (int, error) {
	r := &s.r
	k := min(len(msgs), s.size)
	r.vlen, r.n, r.err = k, 0, 0
	r.msgs, r.lender = msgs[:k], l
	err := s.rc.Read(r.fn)
	r.msgs, r.lender = nil, nil
	sc := r.sc
	if sc == nil { // Read failed before a system call, or while waiting
		return 0, c.opError("read", err, netip.AddrPort{})
	}
	r.unaim()
	r.sc = nil
	defer putScratch(sc)
	if err != nil {
		return 0, c.opError("read", err, netip.AddrPort{})
	}
	if r.err != 0 {
		return 0, c.opError("read", os.NewSyscallError(s.recvName(), r.err), netip.AddrPort{})
	}
	if r.n <= 0 {
		return 0, c.opError("read", errNoProgress, netip.AddrPort{})
	}
	for i := 0; i < r.n; i++ {
		m, h := &msgs[i], &sc.hdrs[i]
		m.N = int(h.n)
		m.Truncated = h.hdr.Flags&unix.MSG_TRUNC != 0
		m.Addr = r.zone.decode(&sc.names[i])
		m.Segment = 0
		if s.gro {
			oob := sc.oob[i*recvOOB:]
			if seg := groSegment(oob[:min(int(h.hdr.Controllen), recvOOB)]); seg > 0 && seg < m.N {
				m.Segment = seg
			}
		}
	}
	return r.n, nil
}

func (s *sysConn) recvName() string {
	if s.batch {
		return "recvmmsg"
	}
	return "recvmsg"
}

func (s *sysConn) sendName() string {
	if s.batch {
		return "sendmmsg"
	}
	return "sendmsg"
}

// write is WriteBatch's direct path; the caller holds c.wmu. It packs as
// many entries as the scratch holds, starting at the cursor (mi, off),
// sends them, and moves the cursor past what the kernel took.
func (s *sysConn) write(c *Conn, msgs []Message) (int, error) {
	if !s.v6 {
		for i := range msgs {
			if a := msgs[i].Addr.Addr(); a.IsValid() && !a.Unmap().Is4() {
				return 0, c.opError("write", unix.EAFNOSUPPORT, msgs[i].Addr)
			}
		}
	}
	w := &s.w
	w.grow(min(s.size, entriesOf(msgs, c.gso.Load())), s)
	mi, off := 0, 0
	// rejected is the error of a GSO send that switched GSO off, and
	// (rmi, roff) where it happened: if the split resend fails there with
	// the same error, the message was at fault, not GSO.
	var rejected syscall.Errno
	rmi, roff := -1, 0
	for mi < len(msgs) {
		gso := c.gso.Load()
		k, pmi, poff := 0, mi, off
		for k < len(w.hdrs) && pmi < len(msgs) {
			m := &msgs[pmi]
			rest := len(m.Buf) - poff
			l, seg := rest, 0
			if sz := m.Segment; sz > 0 && sz < rest {
				if gso {
					l = min(rest, gsoSegments(sz)*sz)
					if l > sz {
						seg = sz
					}
				} else {
					l = sz
				}
			}
			b := m.Buf[poff : poff+l]
			w.iovs[k].Base = unsafe.SliceData(b)
			w.iovs[k].SetLen(l)
			h := &w.hdrs[k]
			h.hdr.Namelen = w.zone.encode(&w.names[k], m.Addr, s.v6)
			h.hdr.Flags = 0
			if seg > 0 {
				o := k * sendOOB
				binary.NativeEndian.PutUint16(w.oob[o+unix.CmsgLen(0):], uint16(seg))
				h.hdr.Control = &w.oob[o]
				h.hdr.SetControllen(sendOOB)
			} else {
				h.hdr.Control = nil
				h.hdr.SetControllen(0)
			}
			w.ents[k] = entry{msg: pmi, off: poff, gso: seg > 0}
			k++
			if poff += l; poff >= len(m.Buf) {
				pmi, poff = pmi+1, 0
			}
		}
		w.vlen, w.n, w.err = k, 0, 0 // results stay 0 if Write fails before calling fn
		err := s.rc.Write(w.fn)
		for i := 0; i < k; i++ {
			w.iovs[i].Base = nil // keep no reference to the caller's buffers
		}
		sent := w.n
		if err == nil && w.err == 0 && sent >= k {
			mi, off = pmi, poff
			continue
		}
		if sent > k {
			sent = k
		}
		mi, off = w.ents[sent].msg, w.ents[sent].off
		switch {
		case err != nil:
			return mi, c.opError("write", err, msgs[mi].Addr)
		case w.err != 0 && w.ents[sent].gso && isGSORejection(w.err):
			// The kernel will not segment for us: off with GSO for good,
			// and send this entry again as separate datagrams.
			c.gso.Store(false)
			rejected, rmi, roff = w.err, mi, off
		case w.err != 0 && w.err == rejected && mi == rmi && off == roff:
			c.gso.Store(true)
			return mi, c.opError("write", os.NewSyscallError(s.sendName(), w.err), msgs[mi].Addr)
		case w.err != 0:
			return mi, c.opError("write", os.NewSyscallError(s.sendName(), w.err), msgs[mi].Addr)
		case sent == 0:
			return mi, c.opError("write", errNoProgress, msgs[mi].Addr)
		}
		// otherwise sendmmsg stopped early: send the rest
	}
	return len(msgs), nil
}

// entriesOf is how many scratch entries msgs would fill at once: one per
// datagram, or per GSO train of up to MaxSegments datagrams. Only a
// bound for sizing the scratch, so it stops counting at maxBatchSize.
func entriesOf(msgs []Message, gso bool) int {
	n := 0
	for i := range msgs {
		m := &msgs[i]
		switch sz := m.Segment; {
		case sz <= 0 || sz >= len(m.Buf):
			n++
		case gso:
			per := gsoSegments(sz) * sz
			n += (len(m.Buf) + per - 1) / per
		default:
			n += (len(m.Buf) + sz - 1) / sz
		}
		if n >= maxBatchSize {
			return maxBatchSize
		}
	}
	return n
}

// gsoSegments is the most segments of size seg one GSO send may carry.
func gsoSegments(seg int) int {
	return max(1, min(MaxSegments, MaxPayload/seg))
}

// groSegment finds the UDP_GRO control message in oob and returns the
// segment size it carries, or 0.
func groSegment(oob []byte) int {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(cm.Len)
		if l < hdr || l > len(oob) {
			return 0
		}
		if cm.Level == unix.SOL_UDP && cm.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			return int(int32(binary.NativeEndian.Uint32(oob[hdr:])))
		}
		l = (l + cmsgAlign - 1) &^ (cmsgAlign - 1)
		if l >= len(oob) {
			return 0
		}
		oob = oob[l:]
	}
	return 0
}

// zoneCache converts IPv6 scope ids to zone names and back, remembering
// the last one so that link-local traffic does not allocate per packet.
type zoneCache struct {
	idx  uint32
	name string
}

func (z *zoneCache) zoneName(idx uint32) string {
	if idx != z.idx || z.name == "" {
		name := strconv.FormatUint(uint64(idx), 10)
		if ifi, err := net.InterfaceByIndex(int(idx)); err == nil {
			name = ifi.Name
		}
		z.idx, z.name = idx, name
	}
	return z.name
}

func (z *zoneCache) zoneIndex(name string) uint32 {
	if name != z.name || z.idx == 0 {
		var idx uint32
		if n, err := strconv.ParseUint(name, 10, 32); err == nil {
			idx = uint32(n)
		} else if ifi, err := net.InterfaceByName(name); err == nil {
			idx = uint32(ifi.Index)
		}
		z.idx, z.name = idx, name
	}
	return z.idx
}

// port reads or writes a sockaddr port, which is in network byte order.
func port(p *uint16) []byte { return (*[2]byte)(unsafe.Pointer(p))[:] }

// decode converts a received sockaddr to an AddrPort, unmapping
// IPv4-mapped IPv6 addresses.
func (z *zoneCache) decode(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), binary.BigEndian.Uint16(port(&sa4.Port)))
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr)
		if a.Is4In6() {
			a = a.Unmap()
		} else if sa.Scope_id != 0 {
			a = a.WithZone(z.zoneName(sa.Scope_id))
		}
		return netip.AddrPortFrom(a, binary.BigEndian.Uint16(port(&sa.Port)))
	}
	return netip.AddrPort{}
}

// encode writes ap into sa for a socket of the given family and returns
// the sockaddr length: 0 for an invalid ap (no address: a connected
// socket's peer). IPv4 destinations on an IPv6 socket are IPv4-mapped;
// write has already refused IPv6 destinations on an IPv4 socket.
func (z *zoneCache) encode(sa *unix.RawSockaddrInet6, ap netip.AddrPort, v6 bool) uint32 {
	a := ap.Addr()
	if !a.IsValid() {
		return 0
	}
	if !v6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Unmap().As4()}
		binary.BigEndian.PutUint16(port(&sa4.Port), ap.Port())
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
	binary.BigEndian.PutUint16(port(&sa.Port), ap.Port())
	if zone := a.Zone(); zone != "" {
		sa.Scope_id = z.zoneIndex(zone)
	}
	return unix.SizeofSockaddrInet6
}
