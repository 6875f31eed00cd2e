// Package secure turns Haven's Noise IK core (internal/noise) into secure
// sessions on the wire format of package wire: the handshake packets of
// docs/PROTOCOL.md §7 with their MACs, cookies and timestamps, the
// transport AEAD of §7.5 with its replay window, and the rekey and limits
// of §7.6.
//
// The package is sans-I/O: it opens no sockets, starts no goroutines and
// never reads a clock. Every method that depends on time takes the current
// time as an argument, and randomness comes from an io.Reader the caller
// may inject (crypto/rand by default), so every behaviour can be replayed
// deterministically in tests. Times are compared with time.Time methods,
// so callers should pass time.Now() values (which carry a monotonic
// reading) in production.
//
// # Roles and objects
//
//   - [Identity] is a static key pair plus the two keys derived from its
//     public key for packets addressed to it (mac1 and cookie keys).
//   - [Initiator] runs one handshake attempt towards one responder: a dial,
//     or a rekey of an existing session. [Initiator.Poll] says when to send
//     which initiation; [Initiator.HandleResponse] and
//     [Initiator.HandleCookieReply] consume the answers.
//   - [Responder] is long-lived, one per listening identity, and safe for
//     concurrent use. It keeps no per-handshake state: an initiation is
//     answered in one call, [Responder.HandleInitiation], which returns the
//     packet to send and, for a response, the new session keys. Its only
//     state is per peer (the newest accepted timestamp), per source address
//     (a token bucket) and global (the cookie secret), all in fixed-size
//     tables.
//   - [Established] is the result of a completed handshake on either side:
//     the peer, the peer ids, the parameters in force and the transport
//     keys. It is consumed by [NewTransport] or [Transport.Install].
//   - [Transport] seals and opens the transport packets of one session and
//     manages its key sets across rekeys.
//   - [AntiAmplification] counts the bytes exchanged with an address that
//     has not been validated yet.
//
// # Handshake
//
// The responder checks an initiation cheapest first: its size (216 bytes),
// the header (protocol id, reserved bits, handshake form; the payload
// length field may hold any value, see below), the destination
// authentication tag, the message header, and mac1, before any
// Diffie-Hellman work. A responder that is overloaded (the
// caller says so in [LoadState]) or whose per-source token bucket for the
// sender's IP address is empty then requires a valid mac2: without one it
// answers with a 104-byte COOKIE_REPLY bound to the initiation's mac1 and
// does nothing else. Otherwise it runs the Noise read, checks that the
// initiator's source authentication tag matches the static key inside,
// asks [ResponderConfig.Authorize] (if set) whether that key may have a
// session, checks that the timestamp is strictly newer than the last one
// accepted for that key, decides the alignment and FEC scheme (§7.3) and writes a
// 160-byte HANDSHAKE_RESPONSE. Every failure is a silent drop: the error is
// for logging only, and nothing is sent. Replies are always smaller than
// the initiation that caused them, so the responder never amplifies.
//
// The initiator sends its first initiation at once and retransmits with
// jittered exponential backoff; each retransmission is a fresh initiation
// (new ephemeral key, new timestamp, mac2 from the newest cookie), and only
// the newest one can be completed by a response. After the handshake
// timeout [Initiator.Poll] returns [ErrHandshakeTimeout], a net.Error whose
// Timeout method reports true.
//
// # The header in the cryptography
//
// The 40-byte packet header is an input to four computations: the
// transport AEAD's associated data (Seal, Open), mac1 and mac2 (which
// cover the packet from its first byte up to the MAC), and the Noise
// transcript of the handshake. In all four the header's payload length
// field (offset 10, 2 bytes) is taken as zero, so a packet's cryptography
// is the same on datagram and stream transports (PROTOCOL.md §8): a stream
// transport sets the field after sealing or building a packet, and clears
// or ignores it on receipt, without touching anything else. This package
// accepts any value in the field; dropping a non-zero length on a datagram
// transport is the socket layer's job (§6.1).
//
// The transcript binding: before writing or reading each of the two
// handshake messages, both sides call noise.HandshakeState.MixHash with
// the 40 header bytes of the packet that carries it (length field zeroed),
// so the Noise AEADs authenticate the header, peer ids included. mac1 only
// proves knowledge of the receiver's public key, which an on-path attacker
// may have; with the header in the transcript, a rewritten header fails
// the Noise read (ErrHandshakeAuth) even when mac1 and mac2 were
// recomputed. A response that fails this way leaves the Initiator waiting
// for the genuine one: the failed read undoes the header's MixHash.
//
// # Transport key sets and rekey: the state machine
//
// A Transport holds up to three key sets, each the pair of CipherStates
// from one handshake plus its own replay window, send counter, creation
// time and key phase (the K bit of §3.1):
//
//   - current: used by Seal, and by Open for packets with its phase;
//   - previous: the set current replaced, kept for Open only, for packets
//     still in flight under it;
//   - next: keys from a handshake this side answered, not yet confirmed:
//     kept for Open only, until the peer proves it has them.
//
// The two phases are never ambiguous: previous and next are never held at
// the same time, and each has the phase opposite to current. A new key set
// always gets the phase opposite to the newest current (phase 0 for the
// first keys of a session).
//
// Transitions ("now" is the time passed to the method):
//
//  1. NewTransport(e) for the session initiator: current = e, confirmed
//     at once (the initiator's first packet is the key confirmation).
//  2. NewTransport(e) for the session responder: next = e, no current.
//     Seal fails with [ErrNotConfirmed] until Open has authenticated a
//     packet under e, which promotes next to current (step 5).
//  3. Install(e) where e is from a handshake this side initiated (a rekey):
//     previous is dropped, next (if any) is dropped, previous = current,
//     current = e. Seal uses e at once, with the flipped K bit.
//  4. Install(e) where e is from a handshake this side answered: previous
//     is dropped (its phase would collide), next = e (replacing an older
//     next, which the peer abandoned when it retransmitted). Seal keeps
//     using current.
//  5. Open authenticates a packet under next: previous is dropped,
//     previous = current, current = next, next = none.
//  6. Expiry, checked at every call: a key set older than RejectAfterTime
//     is dropped wherever it is. previous is also dropped KeepPreviousFor
//     after current has opened its first packet (the peer has switched;
//     only reordered stragglers can still arrive under previous).
//  7. Message limits: Seal fails with [ErrKeysExhausted] once current's
//     send counter reaches RejectAfterMessages; Open refuses packet
//     numbers at or above it (the replay window's RejectAfter).
//
// Seal fails with [ErrKeysExhausted] when there is no current and no next
// (the session must close with KEYS_EXHAUSTED), and with [ErrNotConfirmed]
// when there is no current but a next is waiting for confirmation.
//
// [Transport.NeedsRekey] reports when the owner should start a rekey
// handshake (a new [Initiator] with remoteEph set to the session's peer
// ephemeral value): when current has sent RekeyAfterMessages packets, or is
// RekeyAfterTime old if this side initiated current's handshake, or
// RekeyAfterTime + (RejectAfterTime − RekeyAfterTime)/2 old if it answered
// it. The delay for the answering side makes the two sides of a session,
// whose keys were created at the same moment, rarely start rekeys at the
// same time. It reports false while a next is waiting for confirmation.
//
// Simultaneous rekeys. An owner runs at most one rekey Initiator per
// session. If the peer's rekey initiation arrives while the owner's own is
// pending, exactly one of the two handshakes must win, on both sides:
// [YieldsRekey] decides. The side that yields abandons its Initiator and
// sends the Responder's reply (Install step 4); the other side drops the
// peer's initiation without replying and waits for its own response.
//
// # Cost
//
// Seal and Open work in place on the caller's buffer and allocate nothing.
// A full handshake (both sides, through the first transport packet) costs
// ten allocations: the Initiator and the responder's per-initiation work
// object (each holding its Noise handshake state), the two Transports, the
// four transport AEAD objects and the two keyed BLAKE2s states of the
// peer-keyed mac1s. The Noise core's X25519, hashing and handshake AEAD
// allocate nothing (internal/noise, "Cost model"); TestHandshakeAllocs pins
// the count and BenchmarkHandshake measures it.
package secure
