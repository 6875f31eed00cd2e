//go:build !amd64 || purego

package aesgcm

// Supported is false: the kernels exist for amd64 only, and New returns
// crypto/cipher's AES-GCM.
var Supported = false

func crypt(rk *[rounds + 1][16]byte, ht *[32][16]byte, j0 *[16]byte, dst, src *byte, n int, ad *byte, adLen int, lens, tag *[16]byte, dec int) {
	panic("aesgcm: no kernels on this platform")
}

func powers(ht *[32][16]byte) { panic("aesgcm: no kernels on this platform") }
