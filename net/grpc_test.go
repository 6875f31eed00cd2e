package net

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// grpcBytesCodec is a gRPC codec whose messages are raw bytes, so that the
// test needs no generated protobuf code.
type grpcBytesCodec struct{}

func (grpcBytesCodec) Name() string { return "haven-bytes" }

func (grpcBytesCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *[]byte:
		return *m, nil
	case []byte:
		return m, nil
	}
	return nil, fmt.Errorf("haven-bytes: cannot marshal %T", v)
}

func (grpcBytesCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("haven-bytes: cannot unmarshal into %T", v)
	}
	*m = append((*m)[:0], data...)
	return nil
}

// grpcEchoServer is the service, written as protoc-gen-go-grpc would.
type grpcEchoServer interface {
	// Echo answers with the transform of the request.
	Echo(context.Context, *[]byte) (*[]byte, error)
	// Chat answers each message with its transform.
	Chat(grpc.BidiStreamingServer[[]byte, []byte]) error
}

const (
	grpcEchoMethod = "/haven.test.EchoService/Echo"
	grpcChatMethod = "/haven.test.EchoService/Chat"
)

func grpcEchoHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new([]byte)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(grpcEchoServer).Echo(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: grpcEchoMethod}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(grpcEchoServer).Echo(ctx, req.(*[]byte))
	}
	return interceptor(ctx, in, info, handler)
}

func grpcChatHandler(srv any, stream grpc.ServerStream) error {
	return srv.(grpcEchoServer).Chat(&grpc.GenericServerStream[[]byte, []byte]{ServerStream: stream})
}

var grpcEchoDesc = grpc.ServiceDesc{
	ServiceName: "haven.test.EchoService",
	HandlerType: (*grpcEchoServer)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Echo", Handler: grpcEchoHandler}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Chat",
		Handler:       grpcChatHandler,
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "haven_test.proto",
}

// grpcTransform is the server's answer to p: p reversed, every byte flipped,
// so that an answer cannot be mistaken for an echo of the request.
func grpcTransform(p []byte) []byte {
	out := make([]byte, len(p))
	for i, b := range p {
		out[len(p)-1-i] = b ^ 0xa5
	}
	return out
}

// grpcEcho checks that each call comes from the expected Haven peer.
type grpcEcho struct{ client PublicKey }

func (e *grpcEcho) checkPeer(ctx context.Context) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Internal, "no peer")
	}
	if a, ok := p.Addr.(*Addr); !ok || a.Key != e.client {
		return status.Errorf(codes.PermissionDenied, "peer %T %v, want key %v", p.Addr, p.Addr, e.client)
	}
	return nil
}

func (e *grpcEcho) Echo(ctx context.Context, in *[]byte) (*[]byte, error) {
	if err := e.checkPeer(ctx); err != nil {
		return nil, err
	}
	out := grpcTransform(*in)
	return &out, nil
}

func (e *grpcEcho) Chat(stream grpc.BidiStreamingServer[[]byte, []byte]) error {
	if err := e.checkPeer(stream.Context()); err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		out := grpcTransform(*m)
		if err := stream.Send(&out); err != nil {
			return err
		}
	}
}

// grpcUnarySize gives call i a payload size: mostly up to 32 KiB, every 8th up
// to 1 MiB, a few empty.
func grpcUnarySize(i int) int {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	switch {
	case r.IntN(29) == 0:
		return 0
	case i%8 == 0:
		return r.IntN(1<<20 + 1)
	}
	return r.IntN(32 << 10)
}

// TestGRPCOverHaven runs a gRPC server and client unchanged over Haven,
// on UDP and on the TCP fallback: 256 concurrent unary calls with payloads
// up to 1 MiB and four bidirectional streams of 100 messages each, all
// checked byte for byte.
func TestGRPCOverHaven(t *testing.T) {
	t.Run("udp", func(t *testing.T) { testGRPC(t, "haven4") })
	t.Run("tcp", func(t *testing.T) { testGRPC(t, "haven4+tcp") }) // the fallback transport
}

func testGRPC(t *testing.T, network string) {
	base := runtime.NumGoroutine()
	key, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &Dialer{Config: Config{PrivateKey: key}, Timeout: 10 * time.Second}
	codec := grpcBytesCodec{}
	srv := grpc.NewServer(grpc.ForceServerCodec(codec))
	srv.RegisterService(&grpcEchoDesc, &grpcEcho{client: key.PublicKey()})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); ln.Close(); d.Close() }) // if the test stops early

	addr := ln.Addr().String()
	conn, err := grpc.NewClient("passthrough:///haven",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(codec)),
	)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	const workers, perWorker = 32, 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perWorker {
				id := w*perWorker + k
				in := prngBytes(uint64(id), grpcUnarySize(id))
				var out []byte
				if err := conn.Invoke(ctx, grpcEchoMethod, &in, &out); err != nil {
					t.Errorf("Echo %d: %v", id, err)
					cancel()
					return
				}
				if !bytes.Equal(out, grpcTransform(in)) {
					t.Errorf("Echo %d: %d bytes back for %d, not the transform", id, len(out), len(in))
					cancel()
					return
				}
			}
		}()
	}
	const streams, messages = 4, 100
	for s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := grpcChat(ctx, conn, s, messages); err != nil {
				t.Errorf("Chat %d: %v", s, err)
				cancel()
			}
		}()
	}
	wg.Wait()

	srv.GracefulStop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Serve did not return after GracefulStop")
	}
	if err := conn.Close(); err != nil {
		t.Errorf("conn Close: %v", err)
	}
	ln.Close()
	d.Close()
	awaitGoroutines(t, base)
}

// grpcChat sends messages on a Chat stream from one goroutine and checks
// the answers, in order, from another.
func grpcChat(ctx context.Context, conn *grpc.ClientConn, s, messages int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := conn.NewStream(ctx, &grpcEchoDesc.Streams[0], grpcChatMethod)
	if err != nil {
		return err
	}
	stream := &grpc.GenericClientStream[[]byte, []byte]{ClientStream: cs}
	msg := func(i int) []byte {
		return prngBytes(uint64(s)<<32|uint64(i), (i*7919+s*131)%(16<<10))
	}
	sent := make(chan error, 1)
	go func() {
		for i := range messages {
			m := msg(i)
			if err := stream.Send(&m); err != nil {
				sent <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		sent <- stream.CloseSend()
	}()
	for i := range messages {
		m, err := stream.Recv()
		if err != nil {
			cancel()
			return errors.Join(fmt.Errorf("recv %d: %w", i, err), <-sent)
		}
		if want := grpcTransform(msg(i)); !bytes.Equal(*m, want) {
			cancel()
			return errors.Join(fmt.Errorf("message %d: %d bytes, not the transform of %d", i, len(*m), len(want)), <-sent)
		}
	}
	if err := <-sent; err != nil {
		return err
	}
	if m, err := stream.Recv(); err != io.EOF {
		return fmt.Errorf("after %d answers: %v, %v (want io.EOF)", messages, m, err)
	}
	return nil
}

// TestGRPCGracefulStopFinishesInFlight: GracefulStop stops accepting but
// lets a stream already open finish, as it does over TCP. That needs the
// Listener's Close to leave accepted channels alone.
func TestGRPCGracefulStopFinishesInFlight(t *testing.T) {
	base := runtime.NumGoroutine()
	ln, err := Listen("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	key, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	d := &Dialer{Config: Config{PrivateKey: key}, Timeout: 10 * time.Second}
	defer d.Close()
	srv := grpc.NewServer(grpc.ForceServerCodec(grpcBytesCodec{}))
	srv.RegisterService(&grpcEchoDesc, &grpcEcho{client: key.PublicKey()})
	served := make(chan error, 1)
	watched := &closeWatcher{Listener: ln, closed: make(chan struct{})}
	go func() { served <- srv.Serve(watched) }()
	addr := ln.Addr().String()
	conn, err := grpc.NewClient("passthrough:///haven",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "haven4", addr)
		}),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(grpcBytesCodec{})),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := conn.NewStream(ctx, &grpcEchoDesc.Streams[0], grpcChatMethod)
	if err != nil {
		t.Fatal(err)
	}
	stream := &grpc.GenericClientStream[[]byte, []byte]{ClientStream: cs}
	exchange := func(i int) error {
		m := prngBytes(uint64(i), 1000+i)
		if err := stream.Send(&m); err != nil {
			return fmt.Errorf("send %d: %w", i, err)
		}
		got, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("recv %d: %w", i, err)
		}
		if !bytes.Equal(*got, grpcTransform(m)) {
			return fmt.Errorf("answer %d is not the transform", i)
		}
		return nil
	}
	if err := exchange(0); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	// GracefulStop closes the listener at once (Serve itself returns only
	// when the stop completes, by grpc-go's design).
	select {
	case <-watched.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("GracefulStop did not close the listener")
	}
	for i := 1; i <= 3; i++ {
		if err := exchange(i); err != nil {
			t.Errorf("open stream across GracefulStop: %v", err)
			break
		}
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Errorf("end of the stream: %v (want io.EOF)", err)
	}
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		srv.Stop()
		t.Error("GracefulStop did not return once the stream ended")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v", err)
	}
	conn.Close()
	d.Close()
	ln.Close()
	awaitGoroutines(t, base)
}

// closeWatcher is a net.Listener that reports when it is closed.
type closeWatcher struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (w *closeWatcher) Close() error {
	w.once.Do(func() { close(w.closed) })
	return w.Listener.Close()
}
