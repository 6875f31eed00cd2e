package net_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	haven "github.com/havenproto/haven/net"
)

// A Haven listener is a net.Listener, so net/http serves on it unchanged.
// A client reaches it through a Dialer plugged into an http.Transport.
func ExampleListen() {
	ln, err := haven.Listen("haven", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over haven")
	})
	go http.Serve(ln, mux)

	// The URL's host is not used: every connection goes to the listener.
	var d haven.Dialer
	defer d.Close()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "haven", ln.Addr().String())
		},
	}}
	resp, err := client.Get("http://example/hello")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(body))
	// Output: hello over haven
}

// Dial takes the listener's address, "<public key>@<ip>:<port>": the key
// authenticates the server, so no certificate is needed.
func ExampleDial() {
	ln, err := haven.Listen("haven", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // echo until the client's CloseWrite
	}()

	conn, err := haven.Dial("haven", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "ping")
	conn.(*haven.Conn).CloseWrite()
	reply, err := io.ReadAll(conn)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))
	// Output: ping
}

// ListenPacket is a secure UDP: each ReadFrom returns one whole datagram
// and its sender's Haven address.
func ExampleListenPacket() {
	a, err := haven.ListenPacket("haven", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := haven.ListenPacket("haven", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	if _, err := a.WriteTo([]byte("hello, datagram"), b.LocalAddr()); err != nil {
		log.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(10 * time.Second)) // datagrams can be lost
	buf := make([]byte, 1500)
	n, from, err := b.ReadFrom(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(buf[:n]))
	fmt.Println(from.String() == a.LocalAddr().String())
	// Output:
	// hello, datagram
	// true
}
