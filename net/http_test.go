package net

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// prngBytes returns n deterministic pseudo-random bytes for seed.
func prngBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	p := make([]byte, (n+7)&^7)
	for i := 0; i < len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], r.Uint64())
	}
	return p[:n]
}

// seedOfBytes derives a payload seed from the bytes a peer received, so
// that a reply generated from it is wrong whenever the request was.
func seedOfBytes(b []byte) uint64 {
	sum := sha256.Sum256(b)
	return binary.LittleEndian.Uint64(sum[:8])
}

// httpSizes gives request i of a load test its request and response body
// sizes: mostly up to 64 KiB, every 16th up to 3 MiB, a few empty.
func httpSizes(i int) (req, resp int) {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	size := func() int {
		switch {
		case r.IntN(37) == 0:
			return 0
		case i%16 == 0:
			return 1<<20 + r.IntN(2<<20)
		}
		return r.IntN(64 << 10)
	}
	return size(), size()
}

// awaitGoroutines waits for the goroutine count to come back to base, and
// fails the test with every goroutine's stack if it does not. It waits
// drainTimeout and 10 s more: a closed listener keeps its socket until its
// sessions have ended or drainTimeout passed, and a session whose peer's
// CLOSE was lost (a single datagram, dropped when a loaded machine's
// socket buffer overflows) ends only then.
func awaitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(drainTimeout + 10*time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("%d goroutines left, %d before the test:\n%s", runtime.NumGoroutine(), base, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpLoadHandler reads the request body, checks it against the id and
// size in the query, and answers with a body of the requested size seeded
// from the hash of what it received. It also checks that RemoteAddr is the
// client's Haven address.
func httpLoadHandler(client PublicKey, protoMajor int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != protoMajor {
			http.Error(w, "protocol "+r.Proto, http.StatusBadRequest)
			return
		}
		ra, err := ResolveAddr("haven", r.RemoteAddr)
		if err != nil || ra.Key != client || !ra.Addr.Addr().IsLoopback() {
			http.Error(w, fmt.Sprintf("RemoteAddr %q: %v", r.RemoteAddr, err), http.StatusBadRequest)
			return
		}
		q := r.URL.Query()
		id, err1 := strconv.Atoi(q.Get("id"))
		reqSize, err2 := strconv.Atoi(q.Get("req"))
		respSize, err3 := strconv.Atoi(q.Get("resp"))
		if err := errors.Join(err1, err2, err3); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if !bytes.Equal(body, prngBytes(uint64(id), reqSize)) {
			http.Error(w, fmt.Sprintf("request %d: body of %d bytes differs (want %d)", id, len(body), reqSize),
				http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(respSize))
		w.Write(prngBytes(seedOfBytes(body), respSize))
	})
}

// runHTTPLoad sends workers×perWorker concurrent POSTs through client and
// checks every response byte for byte.
func runHTTPLoad(t *testing.T, client *http.Client, protoMajor, workers, perWorker int) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perWorker {
				if err := httpRequest(ctx, client, protoMajor, w*perWorker+k); err != nil {
					t.Error(err)
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
}

func httpRequest(ctx context.Context, client *http.Client, protoMajor, id int) error {
	reqSize, respSize := httpSizes(id)
	body := prngBytes(uint64(id), reqSize)
	url := fmt.Sprintf("http://haven.invalid/load?id=%d&req=%d&resp=%d", id, reqSize, respSize)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("request %d: %w", id, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("request %d: reading response: %w", id, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("request %d: %s: %s", id, resp.Status, got)
	}
	if resp.ProtoMajor != protoMajor {
		return fmt.Errorf("request %d: response over %s, want HTTP/%d", id, resp.Proto, protoMajor)
	}
	if want := prngBytes(seedOfBytes(body), respSize); !bytes.Equal(got, want) {
		return fmt.Errorf("request %d: response body of %d bytes differs (want %d)", id, len(got), len(want))
	}
	return nil
}

// httpOverHaven serves handler on a Haven listener with the given server
// protocols, and returns a client that dials it through a Haven Dialer
// with the given client protocols, a count of the channels it dialled,
// and a function that shuts it all down.
func httpOverHaven(t *testing.T, clientKey PrivateKey, handler http.Handler, protos *http.Protocols) (*http.Client, *atomic.Int64, func()) {
	t.Helper()
	ln, err := Listen("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &Dialer{Config: Config{PrivateKey: clientKey}, Timeout: 10 * time.Second}
	srv := &http.Server{Handler: handler, Protocols: protos, ReadHeaderTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	dials := new(atomic.Int64)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, "haven4", addr)
		},
		Protocols:       protos,
		MaxIdleConns:    100,
		IdleConnTimeout: time.Minute,
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			tr.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			select {
			case err := <-served:
				if !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("Serve returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Serve did not return after Shutdown")
			}
			d.Close()
			ln.Close()
		})
	}
	t.Cleanup(stop) // if the test stops early
	return &http.Client{Transport: tr}, dials, stop
}

// TestHTTP1OverHaven runs net/http's HTTP/1.1 server and client unchanged
// over Haven: 512 concurrent requests with bodies up to 3 MiB each way.
func TestHTTP1OverHaven(t *testing.T) {
	base := runtime.NumGoroutine()
	key, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	client, dials, stop := httpOverHaven(t, key, httpLoadHandler(key.PublicKey(), 1), protos)
	runHTTPLoad(t, client, 1, 64, 8)
	stop()
	t.Logf("%d channels dialled", dials.Load())
	awaitGoroutines(t, base)
}

// TestHTTP2CleartextOverHaven does the same over unencrypted HTTP/2 (h2c
// with prior knowledge), which multiplexes the requests on few channels.
func TestHTTP2CleartextOverHaven(t *testing.T) {
	base := runtime.NumGoroutine()
	key, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	client, dials, stop := httpOverHaven(t, key, httpLoadHandler(key.PublicKey(), 2), protos)
	// One request first, so that the load finds an HTTP/2 connection (and
	// its peer's stream limit) to multiplex on rather than racing to dial.
	if err := httpRequest(context.Background(), client, 2, 1); err != nil {
		t.Fatal(err)
	}
	runHTTPLoad(t, client, 2, 64, 8)
	stop()
	if n := dials.Load(); n != 1 {
		t.Errorf("%d channels dialled for 513 requests, want 1 HTTP/2 connection", n)
	}
	awaitGoroutines(t, base)
}

// TestHTTPShutdownFinishesInFlight: http.Server.Shutdown stops accepting
// but lets a request already being handled finish, as it does over TCP.
// That needs the Listener's Close to leave accepted channels alone.
func TestHTTPShutdownFinishesInFlight(t *testing.T) {
	base := runtime.NumGoroutine()
	entered, release := make(chan struct{}), make(chan struct{})
	body := prngBytes(7, 200<<10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.Write(body)
	})
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	ln, err := Listen("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := &Dialer{Timeout: 10 * time.Second}
	defer d.Close()
	srv := &http.Server{Handler: h, Protocols: protos}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	tr := &http.Transport{Protocols: protos, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "haven4", addr)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := client.Get("http://haven.invalid/slow")
		if err != nil {
			got <- result{nil, err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{b, err}
	}()
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the request never reached the handler")
	}
	shut := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { shut <- srv.Shutdown(ctx) }()
	// Shutdown closes the listener first: wait until Serve has returned.
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	close(release)
	r := <-got
	if r.err != nil || !bytes.Equal(r.b, body) {
		t.Errorf("in-flight request across Shutdown: %d bytes, %v (want %d bytes)", len(r.b), r.err, len(body))
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	tr.CloseIdleConnections()
	d.Close()
	ln.Close()
	awaitGoroutines(t, base)
}
