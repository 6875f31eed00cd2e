package wireshark

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

// A capture without privileges: the session under test talks through a
// relay on loopback (udpRelay, tcpRelay), which records every datagram, or
// every chunk of a TCP byte stream, it passes on; writePcap then writes the
// records as a classic pcap file of raw IPv4 packets with IPv4 and UDP or
// TCP headers built here, which tshark reads like a real capture.

// record is one datagram, or one chunk of a TCP stream, in one direction.
type record struct {
	at       time.Time
	src, dst netip.AddrPort
	tcp      bool
	conn     int // for TCP: which connection
	payload  []byte
}

// recorder collects records from several goroutines.
type recorder struct {
	mu   sync.Mutex
	recs []record
}

func (r *recorder) add(rec record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec.at = time.Now()
	r.recs = append(r.recs, rec)
}

func (r *recorder) records() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.recs...)
}

// udpRelay forwards datagrams between clients and a server: each client
// address gets a socket of its own towards the server. Records show the
// client talking to the relay's address, as if it were the server.
type udpRelay struct {
	front  *net.UDPConn
	server netip.AddrPort
	rec    *recorder
	mu     sync.Mutex
	ups    map[netip.AddrPort]*net.UDPConn
	wg     sync.WaitGroup
}

func newUDPRelay(t *testing.T, server netip.AddrPort, rec *recorder) *udpRelay {
	t.Helper()
	front, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	r := &udpRelay{front: front, server: server, rec: rec, ups: map[netip.AddrPort]*net.UDPConn{}}
	r.wg.Add(1)
	go r.readFront()
	t.Cleanup(r.close)
	return r
}

func (r *udpRelay) addr() netip.AddrPort { return r.front.LocalAddr().(*net.UDPAddr).AddrPort() }

// readFront runs until the front socket is closed.
func (r *udpRelay) readFront() {
	defer r.wg.Done()
	buf := make([]byte, 1<<16)
	for i := 0; i < 1<<22; i++ { // until the socket is closed
		n, from, err := r.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		up, err := r.upstream(from)
		if err != nil {
			return
		}
		pkt := append([]byte(nil), buf[:n]...)
		r.rec.add(record{src: from, dst: r.addr(), payload: pkt})
		up.Write(pkt)
	}
}

// upstream returns the socket towards the server for client from.
func (r *udpRelay) upstream(from netip.AddrPort) (*net.UDPConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if up := r.ups[from]; up != nil {
		return up, nil
	}
	up, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(r.server))
	if err != nil {
		return nil, err
	}
	r.ups[from] = up
	r.wg.Add(1)
	go func() { // until up is closed
		defer r.wg.Done()
		buf := make([]byte, 1<<16)
		for i := 0; i < 1<<22; i++ { // until up is closed
			n, err := up.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // an ICMP error after the server closed
			}
			pkt := append([]byte(nil), buf[:n]...)
			r.rec.add(record{src: r.addr(), dst: from, payload: pkt})
			r.front.WriteToUDPAddrPort(pkt, from)
		}
	}()
	return up, nil
}

func (r *udpRelay) close() {
	r.front.Close()
	r.mu.Lock()
	for _, up := range r.ups {
		up.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// tcpRelay accepts TCP connections and joins each to a new connection to
// the server, recording what it copies each way.
type tcpRelay struct {
	ln     *net.TCPListener
	server netip.AddrPort
	rec    *recorder
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newTCPRelay(t *testing.T, server netip.AddrPort, rec *recorder) *tcpRelay {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	r := &tcpRelay{ln: ln, server: server, rec: rec}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *tcpRelay) addr() netip.AddrPort { return r.ln.Addr().(*net.TCPAddr).AddrPort() }

func (r *tcpRelay) accept() {
	defer r.wg.Done()
	for id := 0; id < 1<<10; id++ { // until the listener is closed
		c, err := r.ln.AcceptTCP()
		if err != nil {
			return
		}
		s, err := net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(r.server))
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, s)
		r.mu.Unlock()
		client := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		r.wg.Add(2)
		go r.copy(s, c, client, r.addr(), id)
		go r.copy(c, s, r.addr(), client, id)
	}
}

// copy copies from src to dst until either ends, recording each chunk as
// going from the address from to the address to.
func (r *tcpRelay) copy(dst, src net.Conn, from, to netip.AddrPort, id int) {
	defer r.wg.Done()
	buf := make([]byte, 1<<16)
	for i := 0; i < 1<<22; i++ { // until either side ends
		n, err := src.Read(buf)
		if n > 0 {
			r.rec.add(record{src: from, dst: to, tcp: true, conn: id, payload: append([]byte(nil), buf[:n]...)})
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && err == io.EOF {
				tc.CloseWrite()
			}
			return
		}
	}
}

func (r *tcpRelay) close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Pcap: the classic format (a global header, then a header per packet),
// LINKTYPE_RAW: each packet starts with its IPv4 header.
const (
	linktypeRaw = 101
	maxSegment  = 65535 - 20 - 20 // TCP payload that fits one IPv4 packet
)

// writePcap writes recs to a pcap file named name. TCP records become
// segments of connections that open with a three-way handshake, with
// sequence and acknowledgement numbers as a real stack would send them.
func writePcap(t *testing.T, name string, recs []record) int {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 262144)
	binary.LittleEndian.PutUint32(hdr[20:], linktypeRaw)
	if _, err := f.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	frames := 0
	ipID := uint16(1)
	emit := func(at time.Time, ip []byte) {
		var ph [16]byte
		binary.LittleEndian.PutUint32(ph[0:], uint32(at.Unix()))
		binary.LittleEndian.PutUint32(ph[4:], uint32(at.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(ph[8:], uint32(len(ip)))
		binary.LittleEndian.PutUint32(ph[12:], uint32(len(ip)))
		if _, err := f.Write(append(ph[:], ip...)); err != nil {
			t.Fatal(err)
		}
		frames++
	}
	// TCP state per connection and direction (client first).
	type flow struct{ seq, ack uint32 }
	flows := map[int]*[2]flow{}
	clientOf := map[int]netip.AddrPort{}
	for _, r := range recs {
		if !r.tcp {
			emit(r.at, ipv4(ipID, 17, r.src, r.dst, udpHeader(r.src, r.dst, len(r.payload)), r.payload))
			ipID++
			continue
		}
		fl := flows[r.conn]
		if fl == nil { // the first record comes from the client: open the connection
			fl = &[2]flow{{seq: 1000}, {seq: 5000}}
			flows[r.conn] = fl
			clientOf[r.conn] = r.src
			c, s := r.src, r.dst
			emit(r.at, ipv4(ipID, 6, c, s, tcpHeader(c, s, 999, 0, 0x02), nil)) // SYN
			emit(r.at, ipv4(ipID+1, 6, s, c, tcpHeader(s, c, 4999, 1000, 0x12), nil))
			emit(r.at, ipv4(ipID+2, 6, c, s, tcpHeader(c, s, 1000, 5000, 0x10), nil))
			ipID += 3
		}
		d := 0
		if r.src != clientOf[r.conn] {
			d = 1
		}
		for p := r.payload; len(p) > 0; {
			n := min(len(p), maxSegment)
			seg := p[:n]
			p = p[n:]
			emit(r.at, ipv4(ipID, 6, r.src, r.dst, tcpHeader(r.src, r.dst, fl[d].seq, fl[1-d].seq, 0x18), seg))
			ipID++
			fl[d].seq += uint32(n)
		}
	}
	return frames
}

// ipv4 builds an IPv4 packet of protocol proto around the transport
// header th and payload.
func ipv4(id uint16, proto byte, src, dst netip.AddrPort, th, payload []byte) []byte {
	b := make([]byte, 20, 20+len(th)+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(th)+len(payload)))
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], 0x4000) // don't fragment
	b[8], b[9] = 64, proto
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	b = append(b, th...)
	return append(b, payload...)
}

// udpHeader: checksum 0, "none", which IPv4 allows.
func udpHeader(src, dst netip.AddrPort, n int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	binary.BigEndian.PutUint16(b[4:], uint16(8+n))
	return b
}

// tcpHeader: 20 bytes, checksum 0 (Wireshark does not check it by
// default), a full window.
func tcpHeader(src, dst netip.AddrPort, seq, ack uint32, flags byte) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12] = 5 << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], 65535)
	return b
}
