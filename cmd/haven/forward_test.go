package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestForwardHTTP: haven forward -L in front of haven serve -forward to an
// HTTP server; parallel downloads and an upload through the local port
// are byte-exact, each connection a channel with half-close both ways.
func TestForwardHTTP(t *testing.T) {
	const size = 5 << 20
	body := make([]byte, size)
	rand.NewChaCha8([32]byte{5}).Read(body)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	}))
	defer web.Close()

	srv, addr := serveListening(t, "-forward", strings.TrimPrefix(web.URL, "http://"))
	fwd := start(t, nil, nil, nil, havenBin, "forward", "-L", "127.0.0.1:0", addr)
	line := fwd.waitLine(t, "forwarding tcp ", 10*time.Second)
	local, ok := strings.CutSuffix(strings.TrimPrefix(line, "forwarding tcp "), " to "+addr)
	if !ok || !strings.HasPrefix(local, "127.0.0.1:") {
		t.Fatalf("forward logged %q", line)
	}

	// No keep-alive: every request is a TCP connection of its own, so a
	// channel of its own, ended by half-closes.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	want := sha256.Sum256(body)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get("http://" + local + "/")
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil || n != size || !bytes.Equal(h.Sum(nil), want[:]) {
				errs <- fmt.Errorf("download %d: %d bytes (err %v), want %d byte-exact", i, n, err, size)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := client.Post("http://"+local+"/", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			errs <- err
			return
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if string(got) != fmt.Sprintf("%d %s", size, hex.EncodeToString(want[:])) {
			errs <- fmt.Errorf("upload: server saw %q", got)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.Logf("forward stderr:\n%s\nserve stderr:\n%s", fwd.stderr(), srv.stderr())
	}
	fwd.stop(t)
	srv.stop(t)
}
