// Package udpproxy is a lossy UDP proxy for Haven's acceptance tests: it
// sits between a client and a server on loopback and impairs the datagrams
// it relays, in user space, because netem is not available on every test
// kernel.
//
// Why. The in-memory simulator (package netsim) shows that the session
// engine is correct under a modelled network; this proxy shows that the
// real stack — sockets, goroutines, timers, address handling — survives
// loss, duplication, reordering, corruption and NAT rebinding on a real
// UDP path.
//
// Model. A client sends to [Proxy.Addr]. For each client address the proxy
// keeps a session with its own upstream socket (a fresh ephemeral port),
// from which it forwards the client's datagrams to the target; datagrams the
// target sends to that upstream socket go back to the client. At most
// [MaxClients] sessions are kept; the one whose client was heard from least
// recently is evicted (its sockets closed) when a new client appears.
//
// Impairments ([Config]) apply to each direction independently, per
// datagram, in this order: loss; duplication (the datagram is sent twice);
// then, for each copy, reordering (the copy is held back by ReorderDelay on
// top of the base Delay while later datagrams pass) and corruption (1 to 3
// distinct bits flipped in that copy; the length never changes, empty
// datagrams are never corrupted). Every decision comes from one seeded PCG
// generator per direction, so for a given seed and configuration the
// sequence of decisions is reproducible. Timing is real, so which datagram
// meets which decision depends only on the order datagrams arrive in.
//
// Port rotation. With RotatePort set, every session periodically replaces
// its upstream socket with a new one, so the target sees the client's
// traffic move to a new source port, exactly as after a NAT rebinding or a
// client migration. The previous socket stays open for [RotateGrace] so
// replies already on their way still reach the client; at most
// eight old sockets are kept per session, so with a very short
// RotatePort the grace period is shorter.
//
// Blackout. [Proxy.Blackout] makes the path go dark in both directions for
// a while, as a failing link or a moving radio would: every datagram read
// meanwhile is dropped (counted as Lost and BlackedOut) without drawing a
// decision, and the path comes back by itself.
//
// Tap. [Config.Tap] is shown every datagram read, before any impairment,
// so a test can count packets of a kind (handshake initiations, say).
//
// Resources are bounded: one goroutine reads the client-facing socket, one
// reads each upstream socket, and one scheduler goroutine sends delayed
// datagrams, rotates ports and closes retired sockets — never a goroutine
// per datagram. Delayed datagrams wait in a heap of at most MaxQueue
// entries, in pooled buffers. [Proxy.Close] closes every socket and waits
// for every goroutine to exit.
package udpproxy
