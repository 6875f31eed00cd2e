//go:build amd64 && !purego

package aesgcm

import "golang.org/x/sys/cpu"

// Supported reports whether this CPU runs the package's kernels: 512-bit
// AVX-512 registers with byte masks (F, VL, BW), VAES, VPCLMULQDQ and
// BMI2. Where it is false, New returns crypto/cipher's AES-GCM.
var Supported = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512BW &&
	cpu.X86.HasAVX512VAES && cpu.X86.HasAVX512VPCLMULQDQ && cpu.X86.HasBMI2

// crypt is one pass of AES-256-GCM under rk and ht: it XORs the n bytes
// of src with the CTR keystream from J0+1 into dst, and writes the tag,
// GHASH(ad, c, *lens) xor E(J0), to *tag, where c is dst when sealing
// (dec == 0) and src when opening. dst and src are equal or do not
// overlap; tag overlaps neither, nor ad. Empty inputs may be nil.
//
//go:noescape
func crypt(rk *[rounds + 1][16]byte, ht *[32][16]byte, j0 *[16]byte, dst, src *byte, n int, ad *byte, adLen int, lens, tag *[16]byte, dec int)

// powers fills ht[14]..ht[0] with H^2..H^16 from ht[15] = H.
//
//go:noescape
func powers(ht *[32][16]byte)
