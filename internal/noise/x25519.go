package noise

import (
	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// X25519 without allocation.
//
// crypto/ecdh allocates three or four objects per operation (key objects
// and the returned slices) and has no allocation-free API, which made it
// the largest cost of a handshake in heap objects. The functions below
// compute the same function, RFC 7748 §5, on fixed arrays, over the field
// arithmetic of filippo.io/edwards25519/field (the Go standard library's
// field code, with its amd64 assembly). TestX25519 checks them against the
// RFC's vectors and against crypto/ecdh.

// a24 is (A - 2) / 4 for Curve25519's A = 486662 (RFC 7748 §5).
const a24 = 121665

// clampScalar returns the RFC 7748 §5 decodeScalar25519 form of k: the
// three low bits and the top bit cleared, bit 254 set.
func clampScalar(k *[32]byte) [32]byte {
	e := *k
	e[0] &= 248
	e[31] &= 127
	e[31] |= 64
	return e
}

// x25519 sets out = X25519(k, u) (RFC 7748 §5): the u-coordinate of
// clamp(k)·P for the point P with u-coordinate u, by the Montgomery
// ladder. The top bit of u is ignored and a non-canonical u (2^255-19 or
// more) is reduced, as §5 asks. The ladder runs in constant time: the
// scalar's bits only steer constant-time conditional swaps. An all-zero
// out means u was a low-order point; the caller decides (dh refuses it).
func x25519(out, k, u *[32]byte) {
	e := clampScalar(k)

	var x1, x2, z2, x3, z3 field.Element
	var a, aa, b, bb, ee, c, d, da, cb field.Element
	x1.SetBytes(u[:]) // cannot fail: 32 bytes; bit 255 is masked
	x2.One()
	z2.Zero()
	x3.Set(&x1)
	z3.One()

	swap := 0
	for t := 254; t >= 0; t-- {
		kt := int(e[t>>3]>>(t&7)) & 1
		swap ^= kt
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = kt

		a.Add(&x2, &z2)       // A = x_2 + z_2
		aa.Square(&a)         // AA = A^2
		b.Subtract(&x2, &z2)  // B = x_2 - z_2
		bb.Square(&b)         // BB = B^2
		ee.Subtract(&aa, &bb) // E = AA - BB
		c.Add(&x3, &z3)       // C = x_3 + z_3
		d.Subtract(&x3, &z3)  // D = x_3 - z_3
		da.Multiply(&d, &a)   // DA = D * A
		cb.Multiply(&c, &b)   // CB = C * B

		x3.Add(&da, &cb) // x_3 = (DA + CB)^2
		x3.Square(&x3)
		z3.Subtract(&da, &cb) // z_3 = x_1 * (DA - CB)^2
		z3.Square(&z3)
		z3.Multiply(&z3, &x1)
		x2.Multiply(&aa, &bb) // x_2 = AA * BB
		z2.Mult32(&ee, a24)   // z_2 = E * (AA + a24 * E)
		z2.Add(&z2, &aa)
		z2.Multiply(&z2, &ee)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)

	// x_2 * z_2^(p-2): Invert computes the same power (and maps 0 to 0).
	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(out[:], x2.Bytes())
	clear(e[:])
}

// x25519Base sets out = X25519(k, 9), the public key of private key k
// (RFC 7748 §6.1). It multiplies the Edwards base point of the birationally
// equivalent edwards25519 (RFC 7748 §4.1) with the fixed-base tables of
// filippo.io/edwards25519, which is several times faster than a ladder from
// u = 9, and maps the result to its Montgomery u-coordinate, u = (1+y)/(1-y).
// The scalar is clamped as in x25519; reducing it modulo the group order,
// as the Edwards code does, leaves the product unchanged because the base
// point has that order.
func x25519Base(out, k *[32]byte) {
	e := clampScalar(k)
	var s edwards25519.Scalar
	if _, err := s.SetBytesWithClamping(e[:]); err != nil {
		panic("noise: edwards25519 refused a 32-byte scalar: " + err.Error())
	}
	var p edwards25519.Point
	p.ScalarBaseMult(&s)
	copy(out[:], p.BytesMontgomery())
	clear(e[:])
	s = edwards25519.Scalar{}
}
