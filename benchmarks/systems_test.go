package benchmarks

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/havenproto/haven/benchmarks/internal/lossproxy"
	"github.com/havenproto/haven/internal/udpproxy"
	havennet "github.com/havenproto/haven/net"
	"github.com/quic-go/quic-go"
)

// The three systems. Each benchmark has one sub-benchmark per system that
// the workload applies to, run one after the other in this order.
const (
	sysHaven = "Haven"
	sysQUIC  = "QUIC"
	sysTLS   = "TLS"
)

// Time bounds: no helper blocks longer than these, whatever happens.
const (
	setupTimeout = 20 * time.Second // a handshake, a listener, a stream open
	ioTimeout    = 2 * time.Minute  // one stream's whole life in a benchmark
)

// Stream opcodes: the first byte a client writes on a stream tells the
// server what to do with it.
const (
	opSink = 'S' // read to EOF, then reply with the byte count (8 bytes, big endian)
	opEcho = 'E' // echo everything back until EOF, then end the stream
)

// stream is what every system's stream (or TCP connection) offers.
type stream interface {
	io.ReadWriter
	CloseWrite() error // the peer reads EOF after the data written
	Close() error      // both directions, without waiting
	SetDeadline(time.Time) error
}

// options select what a server and its clients need.
type options struct {
	loss float64 // > 0: clients reach the server through a lossy proxy
	// rate > 0: clients reach the server through a proxy that carries
	// rate bytes per second each way with rateDelay of one-way delay and
	// a queue of one bandwidth-delay product (udpproxy.Config.Rate).
	rate      float64
	datagrams bool // QUIC: EnableDatagrams on both ends
	resume    bool // TLS: clients resume sessions (tickets) on new connections
	// identities is how many distinct Haven client identities connect
	// uses in turn (default 1). Haven keeps one session per peer, so
	// clients that are live at the same time need distinct keys.
	identities int
	// bbr gives Haven's sessions (both ends) the BBR-style controller
	// (Config.Congestion); no effect on the other systems.
	bbr bool
	// basePackets turns Haven's path MTU discovery off (1,452-byte
	// packets, as quic-go sends); no effect on the other systems.
	basePackets bool
	// dialOpen: Haven clients open channels with Dialer.Dial on their live
	// session (what net code calls: it waits for the peer's ACCEPT),
	// instead of Session.OpenStream; no effect on the other systems.
	dialOpen bool
	// tcp: Haven clients dial "haven4+tcp", the stream (TCP) fallback of
	// docs/PROTOCOL.md §8, to the same server; no effect on the others.
	tcp bool
}

// server is one system's listening side, running serve on every stream.
type server interface {
	// connect makes a fresh client (its own socket and handshake) and its
	// first stream.
	connect(ctx context.Context) (client, stream, error)
	// dial makes a fresh session (a full handshake) from the system's one
	// long-lived client socket, and its first stream; closing the client
	// ends the session, not the socket. A client process that connects
	// often keeps its socket (a QUIC Transport, a Haven Dialer).
	dial(ctx context.Context) (client, stream, error)
	close()
}

// client is one established client: a Haven session, a QUIC connection,
// or (TLS) a dialer whose every stream is a new TCP+TLS connection.
type client interface {
	open(ctx context.Context) (stream, error)
	close()
}

// listen starts sys's server. Its goroutines, and those they start, carry
// the pprof label end=server, so that the idle-memory benchmark can tell
// the two ends' goroutines apart.
func listen(sys string, o options) (srv server, err error) {
	pprof.Do(context.Background(), pprof.Labels("end", "server"), func(context.Context) {
		switch sys {
		case sysHaven:
			srv, err = listenHaven(o)
		case sysQUIC:
			srv, err = listenQUIC(o)
		case sysTLS:
			srv, err = listenTLS(o)
		default:
			err = fmt.Errorf("unknown system %q", sys)
		}
	})
	return srv, err
}

// proxyFor puts a lossy proxy in front of target when o asks for one, and
// returns the address clients should use.
func proxyFor(target netip.AddrPort, o options) (io.Closer, netip.AddrPort, error) {
	if o.rate > 0 {
		bdp := int(o.rate * 2 * rateDelay.Seconds())
		px, err := udpproxy.New(netip.AddrPortFrom(target.Addr(), 0), target,
			udpproxy.Config{Rate: o.rate, RateQueue: bdp, Delay: rateDelay})
		if err != nil {
			return nil, netip.AddrPort{}, err
		}
		return px, px.Addr(), nil
	}
	if o.loss == 0 {
		return nil, target, nil
	}
	px, err := lossproxy.New(target, o.loss, 2026)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	return px, px.Addr(), nil
}

// rateDelay is the one-way delay of the rate-limited proxy (options.rate):
// a 20 ms round trip, a short wide-area path.
const rateDelay = 10 * time.Millisecond

// bufPool holds the servers' 64 KiB copy buffers, so that a stream served
// costs the same few allocations on every system.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// serve runs one server-side stream: the opcode, then sink or echo.
func serve(s stream) {
	defer s.Close()
	s.SetDeadline(time.Now().Add(ioTimeout))
	var op [1]byte
	if _, err := io.ReadFull(s, op[:]); err != nil {
		return
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	switch op[0] {
	case opSink:
		var total uint64
		for {
			n, err := s.Read(buf)
			total += uint64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
		}
		binary.BigEndian.PutUint64(buf[:8], total)
		if _, err := s.Write(buf[:8]); err == nil {
			s.CloseWrite()
		}
	case opEcho:
		for {
			n, err := s.Read(buf)
			if n > 0 {
				if _, werr := s.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err == io.EOF {
				s.CloseWrite()
				return
			}
			if err != nil {
				return
			}
		}
	}
}

// sinkResult ends a sink stream: CloseWrite, then the server's count.
func sinkResult(s stream) (uint64, error) {
	if err := s.CloseWrite(); err != nil {
		return 0, err
	}
	var n [8]byte
	if _, err := io.ReadFull(s, n[:]); err != nil {
		return 0, fmt.Errorf("reading the sink's count: %w", err)
	}
	return binary.BigEndian.Uint64(n[:]), nil
}

// ---- Haven ----

type havenServer struct {
	// sharedMu guards shared, the Dialer of dial, made on first use.
	sharedMu sync.Mutex
	shared   *havennet.Dialer

	host     *havennet.Host
	ln       net.Listener
	px       io.Closer
	addr     string // what clients dial: the server's key at the (proxy's) address
	keys     []havennet.PrivateKey
	next     atomic.Int64
	loss     bool
	base     bool   // options.basePackets
	bbr      bool   // options.bbr
	dialOpen bool   // options.dialOpen
	network  string // "haven4", or "haven4+tcp" (options.tcp)
}

func listenHaven(o options) (server, error) {
	var lc havennet.ListenConfig
	if o.bbr {
		lc.Config.Congestion = havennet.CongestionBBR
	}
	h, err := lc.ListenHost(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ln, err := h.Listen("")
	if err != nil {
		h.Close()
		return nil, err
	}
	ha := h.Addr().(*havennet.Addr)
	px, at, err := proxyFor(ha.Addr, o)
	if err != nil {
		h.Close()
		return nil, err
	}
	keys := make([]havennet.PrivateKey, max(o.identities, 1))
	for i := range keys {
		if keys[i], err = havennet.GeneratePrivateKey(); err != nil {
			h.Close()
			return nil, err
		}
	}
	s := &havenServer{host: h, ln: ln, px: px, keys: keys, loss: o.loss > 0, base: o.basePackets, bbr: o.bbr, dialOpen: o.dialOpen,
		addr: (&havennet.Addr{Key: ha.Key, Addr: at}).String(), network: "haven4"}
	if o.tcp {
		s.network = "haven4+tcp"
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c.(*havennet.Conn))
		}
	}()
	return s, nil
}

type havenClient struct {
	d       *havennet.Dialer
	sess    *havennet.Session
	addr    string // set: open with d.Dial (options.dialOpen)
	network string // "haven4", or "haven4+tcp" (options.tcp)
}

// connect makes a new Dialer (its own socket) with a client identity made
// in advance (the next one of options.identities), so that key generation
// is not part of the handshake, as QUIC and TLS reuse their certificate.
func (s *havenServer) connect(ctx context.Context) (client, stream, error) {
	i := int(s.next.Add(1) - 1)
	d := &havennet.Dialer{Timeout: setupTimeout, Config: havennet.Config{PrivateKey: s.keys[i%len(s.keys)]},
		LocalAddr: clientSource(i)}
	if s.base {
		d.Config.MaxPacketSize = 1452 // the smaller of both sides' limits rules
	}
	if s.bbr {
		d.Config.Congestion = havennet.CongestionBBR
	}
	c, err := d.DialContext(ctx, s.network, s.addr)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	hc := c.(*havennet.Conn)
	hcl := &havenClient{d: d, sess: hc.Session(), network: s.network}
	if s.dialOpen {
		hcl.addr = s.addr
	}
	return hcl, hc, nil
}

// clientSource is the local address of Haven's i-th fresh client: each
// comes from its own loopback address (127.1.0.0/16), as clients on
// distinct hosts would. Haven's responder rate-limits handshakes per source
// IP (a burst of 5, then 20 per second, as DoS protection; the public API
// cannot change it): from one address, every fifth handshake after the
// burst gets a cookie reply and waits for the initiator's retransmission
// timer (about 1 s), which is not what these benchmarks measure.
func clientSource(i int) netip.AddrPort {
	n := i%65024 + 256 // 127.1.1.0 to 127.1.254.255
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(n >> 8), byte(n)}), 0)
}

// dial runs a fresh handshake on the server's one shared client Dialer
// (first identity, one socket); the client's close ends the session, so
// the next dial to the same peer starts a new one.
func (s *havenServer) dial(ctx context.Context) (client, stream, error) {
	s.sharedMu.Lock()
	if s.shared == nil {
		s.shared = &havennet.Dialer{Timeout: setupTimeout, Config: havennet.Config{PrivateKey: s.keys[0]}}
	}
	d := s.shared
	s.sharedMu.Unlock()
	c, err := d.DialContext(ctx, s.network, s.addr)
	if err != nil {
		return nil, nil, err
	}
	hc := c.(*havennet.Conn)
	return &havenSession{sess: hc.Session()}, hc, nil
}

// havenSession is one session of the shared Dialer.
type havenSession struct{ sess *havennet.Session }

func (c *havenSession) open(context.Context) (stream, error) { return c.sess.OpenStream("", 3) }
func (c *havenSession) close()                               { c.sess.Close(0, "") }

func (s *havenServer) close() {
	s.sharedMu.Lock()
	if s.shared != nil {
		s.shared.Close()
	}
	s.sharedMu.Unlock()
	s.host.Close()
	if s.px != nil {
		s.px.Close()
	}
}

// open opens a channel on the established session: with Session.OpenStream,
// which does not wait for the server's ACCEPT (data may follow at once),
// or, with options.dialOpen, with Dialer.Dial, which finds the session and
// waits for the ACCEPT, as net code does.
func (c *havenClient) open(ctx context.Context) (stream, error) {
	if c.addr != "" {
		conn, err := c.d.DialContext(ctx, c.network, c.addr)
		if err != nil {
			return nil, err
		}
		return conn.(*havennet.Conn), nil
	}
	return c.sess.OpenStream("", 3)
}

func (c *havenClient) close() { c.d.Close() }

// ---- QUIC ----

type quicServer struct {
	// sharedMu guards shared, the client Transport of dial, made on first
	// use.
	sharedMu sync.Mutex
	shared   *quic.Transport

	ln   *quic.Listener
	px   io.Closer
	addr string
	tls  *tls.Config
	conf *quic.Config
}

// quicConfig is quic-go's default configuration, plus datagrams when the
// workload needs them. GSO is on by default.
func quicConfig(o options) *quic.Config {
	return &quic.Config{EnableDatagrams: o.datagrams}
}

func listenQUIC(o options) (server, error) {
	ln, err := quic.ListenAddr("127.0.0.1:0", serverTLS(), quicConfig(o))
	if err != nil {
		return nil, err
	}
	px, at, err := proxyFor(ln.Addr().(*net.UDPAddr).AddrPort(), o)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &quicServer{ln: ln, px: px, addr: at.String(), tls: clientTLS(nil), conf: quicConfig(o)}
	go func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			// quic-go needs a goroutine per connection to accept its
			// streams: it is counted as the server's, as in any server.
			go func() {
				for {
					st, err := conn.AcceptStream(context.Background())
					if err != nil {
						return
					}
					go serve(quicStream{st})
				}
			}()
		}
	}()
	return s, nil
}

func (s *quicServer) connect(ctx context.Context) (client, stream, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	conn, err := quic.DialAddr(ctx, s.addr, s.tls, s.conf)
	if err != nil {
		return nil, nil, err
	}
	return withFirstStream(ctx, conn)
}

// withFirstStream makes a new connection a client and opens its first
// stream, closing the connection if that fails.
func withFirstStream(ctx context.Context, conn *quic.Conn) (client, stream, error) {
	c := &quicClient{conn: conn}
	st, err := c.open(ctx)
	if err != nil {
		c.close()
		return nil, nil, err
	}
	return c, st, nil
}

// dial connects on the server's one shared client Transport (one socket).
func (s *quicServer) dial(ctx context.Context) (client, stream, error) {
	s.sharedMu.Lock()
	if s.shared == nil {
		uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			s.sharedMu.Unlock()
			return nil, nil, err
		}
		s.shared = &quic.Transport{Conn: uc}
	}
	tr := s.shared
	s.sharedMu.Unlock()
	addr, err := net.ResolveUDPAddr("udp4", s.addr)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	conn, err := tr.Dial(ctx, addr, s.tls, s.conf)
	if err != nil {
		return nil, nil, err
	}
	return withFirstStream(ctx, conn)
}

func (s *quicServer) close() {
	s.sharedMu.Lock()
	if s.shared != nil {
		s.shared.Close()
		s.shared.Conn.Close()
	}
	s.sharedMu.Unlock()
	s.ln.Close()
	if s.px != nil {
		s.px.Close()
	}
}

type quicClient struct{ conn *quic.Conn }

func (c *quicClient) open(ctx context.Context) (stream, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	st, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return quicStream{st}, nil
}

func (c *quicClient) close() { c.conn.CloseWithError(0, "") }

// quicStream maps quic-go's stream calls to the stream interface: Close
// ends only the sending side in quic-go, so CloseWrite is Close, and a
// full close also stops the receiving side (STOP_SENDING).
type quicStream struct{ *quic.Stream }

func (s quicStream) CloseWrite() error { return s.Stream.Close() }

func (s quicStream) Close() error {
	s.Stream.CancelRead(0)
	return s.Stream.Close()
}

// ---- TLS 1.3 over TCP ----

type tlsServer struct {
	ln   net.Listener
	addr string
	cfg  *tls.Config
}

func listenTLS(o options) (server, error) {
	if o.loss > 0 || o.rate > 0 || o.datagrams {
		return nil, errors.New("TLS over TCP cannot go through a UDP proxy or carry datagrams")
	}
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", serverTLS())
	if err != nil {
		return nil, err
	}
	var cache tls.ClientSessionCache
	if o.resume {
		cache = tls.NewLRUClientSessionCache(64)
	}
	s := &tlsServer{ln: ln, addr: ln.Addr().String(), cfg: clientTLS(cache)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c.(*tls.Conn))
		}
	}()
	return s, nil
}

func (s *tlsServer) connect(ctx context.Context) (client, stream, error) {
	c := &tlsClient{s: s}
	st, err := c.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c, st, nil
}

// dial is connect: every TLS session is a new TCP connection anyway.
func (s *tlsServer) dial(ctx context.Context) (client, stream, error) { return s.connect(ctx) }

func (s *tlsServer) close() { s.ln.Close() }

// tlsClient opens every stream as a new TCP connection with a full TLS 1.3
// handshake (or a resumption, with options.resume).
type tlsClient struct{ s *tlsServer }

func (c *tlsClient) open(ctx context.Context) (stream, error) {
	d := tls.Dialer{Config: c.s.cfg, NetDialer: &net.Dialer{Timeout: setupTimeout}}
	conn, err := d.DialContext(ctx, "tcp4", c.s.addr)
	if err != nil {
		return nil, err
	}
	return conn.(*tls.Conn), nil
}

func (c *tlsClient) close() {}

// ---- helpers for benchmarks ----

// env is a server with one established client, for the workloads that run
// on an established session.
type env struct {
	srv   server
	cl    client
	first stream
	once  sync.Once
}

// newEnv starts sys's server and connects one client; the client's first
// stream stays open (idle) for the env's life.
func newEnv(tb testing.TB, sys string, o options) *env {
	tb.Helper()
	srv, err := listen(sys, o)
	if err != nil {
		tb.Fatalf("%s: listen: %v", sys, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	cl, first, err := srv.connect(ctx)
	if err != nil {
		srv.close()
		tb.Fatalf("%s: connect: %v", sys, err)
	}
	// A sink stream that never sends: the server holds it open until the
	// client goes away.
	if _, err := first.Write([]byte{opSink}); err != nil {
		cl.close()
		srv.close()
		tb.Fatalf("%s: first stream: %v", sys, err)
	}
	return &env{srv: srv, cl: cl, first: first}
}

// close tears the env down; it may be called more than once.
func (e *env) close() {
	e.once.Do(func() {
		e.first.Close()
		e.cl.close()
		e.srv.close()
	})
}

// openOp opens a stream on the env's client and writes its opcode (TLS:
// this runs the handshake), with the stream's deadline set.
func (e *env) openOp(tb testing.TB, op byte) stream {
	tb.Helper()
	return openWith(tb, op, e.cl.open)
}

// openWith opens a stream with open and writes its opcode, with the
// stream's deadline set.
func openWith(tb testing.TB, op byte, open func(context.Context) (stream, error)) stream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := open(ctx)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	s.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := s.Write([]byte{op}); err != nil {
		tb.Fatalf("opcode: %v", err)
	}
	return s
}

// streamSystems are the systems of the stream workloads; datagram and
// lossy workloads leave TLS out.
var streamSystems = []string{sysHaven, sysQUIC, sysTLS}
var udpSystems = []string{sysHaven, sysQUIC}
