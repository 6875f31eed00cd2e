// Package fec is the erasure code of Haven's FEC scheme 1 (docs/PROTOCOL.md
// §5.11): R repair symbols protect a group of K ≤ 64 datagrams, and any e
// lost datagrams of the group are recovered from any e of its repair
// symbols. Arithmetic is in GF(2^8) with the polynomial x^8+x^4+x^3+x^2+1
// (0x11d). With R = 1 the repair symbol is the XOR of the group's
// symbols; with R ≥ 2 the coefficients form a Cauchy matrix, whose every
// square submatrix is invertible, so the code is MDS (a Reed–Solomon
// code in its Cauchy form).
//
// A datagram's symbol is its length (u16, little-endian) followed by its
// bytes, zero-padded to the group's symbol size; the repair symbols have
// that size. Standard library only.
package fec

import "errors"

// Limits of scheme 1 (PROTOCOL.md §5.11).
const (
	MaxGroup   = 64 // K
	MaxRepairs = 16 // R
)

var (
	expTable [510]byte // expTable[i] = α^i, doubled so that a sum of two logs needs no modulo
	logTable [256]byte
)

func init() {
	x := 1
	for i := 0; i < 255; i++ {
		expTable[i], expTable[i+255] = byte(x), byte(x)
		logTable[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11d
		}
	}
}

// mul multiplies in GF(2^8).
func mul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return expTable[int(logTable[a])+int(logTable[b])]
}

// inv returns the multiplicative inverse of a ≠ 0.
func inv(a byte) byte { return expTable[255-int(logTable[a])] }

// Coef returns the coefficient of datagram i (0 ≤ i < MaxGroup) in repair
// symbol r of a group with R repair symbols: 1 when R = 1, else
// 1/(x_r ⊕ y_i) with x_r = 64 + r and y_i = i. It does not depend on K,
// so a sender may close a group early.
func Coef(repairs, r, i int) byte {
	if repairs == 1 {
		return 1
	}
	return inv(byte(MaxGroup+r) ^ byte(i))
}

// mulAdd sets dst[j] ^= c·src[j] for every j < len(src) (len(dst) ≥ len(src)).
func mulAdd(dst, src []byte, c byte) {
	switch c {
	case 0:
		return
	case 1:
		for j, v := range src {
			dst[j] ^= v
		}
		return
	}
	lc := int(logTable[c])
	for j, v := range src {
		if v != 0 {
			dst[j] ^= expTable[lc+int(logTable[v])]
		}
	}
}

// Encoder accumulates the repair symbols of one group as its datagrams are
// added, so that it holds R symbols, never the datagrams.
//
// Ownership: Add only reads data; Repair's slice is the Encoder's until the
// next Reset or Add.
type Encoder struct {
	repairs int
	n       int // datagrams added
	size    int // the group's symbol size so far
	acc     [MaxRepairs][]byte
	lenBuf  [2]byte
}

// Reset starts a new group with R = repairs (1 … MaxRepairs).
func (e *Encoder) Reset(repairs int) {
	for r := 0; r < e.repairs; r++ {
		clear(e.acc[r][:e.size])
	}
	e.repairs, e.n, e.size = repairs, 0, 0
}

// Len returns how many datagrams the group has.
func (e *Encoder) Len() int { return e.n }

// Add adds the group's next datagram (at most MaxGroup per group, each at
// most 65,535 bytes).
func (e *Encoder) Add(data []byte) {
	size := 2 + len(data)
	e.lenBuf = [2]byte{byte(len(data)), byte(len(data) >> 8)}
	for r := 0; r < e.repairs; r++ {
		if cap(e.acc[r]) < size {
			grown := make([]byte, size, max(size, 2*cap(e.acc[r])))
			copy(grown, e.acc[r][:e.size])
			e.acc[r] = grown
		}
		a := e.acc[r][:max(size, e.size)]
		clear(a[e.size:]) // the symbol grows: zero padding so far
		c := Coef(e.repairs, r, e.n)
		mulAdd(a, e.lenBuf[:], c)
		mulAdd(a[2:], data, c)
		e.acc[r] = a
	}
	e.size = max(e.size, size)
	e.n++
}

// Repair returns repair symbol r of the group so far.
func (e *Encoder) Repair(r int) []byte { return e.acc[r][:e.size] }

// ErrNotEnough is returned by Recover when fewer repair symbols than lost
// datagrams arrived; ErrCorrupt when a recovered length does not fit.
var (
	ErrNotEnough = errors.New("fec: fewer repair symbols than lost datagrams")
	ErrCorrupt   = errors.New("fec: inconsistent group")
)

// Recover recovers the lost datagrams of a group of len(data) datagrams
// with R = len(repair) repair symbols, all of the same size: data[i] is
// datagram i, or nil if lost; repair[r] is repair symbol r, or nil if
// lost. It stores each recovered datagram in data (new slices) and
// returns how many it recovered.
func Recover(data, repair [][]byte) (int, error) {
	var lost [MaxRepairs]int
	e := 0
	for i, d := range data {
		if d == nil {
			if e == len(lost) {
				return 0, ErrNotEnough
			}
			lost[e] = i
			e++
		}
	}
	if e == 0 {
		return 0, nil
	}
	var use [MaxRepairs]int
	n, size := 0, -1
	for r, p := range repair {
		if p == nil || n == e {
			continue
		}
		if size >= 0 && len(p) != size || len(p) < 2 {
			return 0, ErrCorrupt
		}
		size = len(p)
		use[n] = r
		n++
	}
	if n < e {
		return 0, ErrNotEnough
	}
	// rhs_j = p_{use[j]} − Σ over received i of c(use[j], i)·s_i; then
	// solve M·x = rhs with M[j][m] = c(use[j], lost[m]).
	R := len(repair)
	rhs := make([][]byte, e)
	var lenBuf [2]byte
	for j := 0; j < e; j++ {
		rhs[j] = append([]byte(nil), repair[use[j]]...)
		for i, d := range data {
			if d == nil {
				continue
			}
			if 2+len(d) > size {
				return 0, ErrCorrupt
			}
			c := Coef(R, use[j], i)
			lenBuf = [2]byte{byte(len(d)), byte(len(d) >> 8)}
			mulAdd(rhs[j], lenBuf[:], c)
			mulAdd(rhs[j][2:], d, c)
		}
	}
	var m [MaxRepairs][MaxRepairs]byte
	for j := 0; j < e; j++ {
		for k := 0; k < e; k++ {
			m[j][k] = Coef(R, use[j], lost[k])
		}
	}
	// Gauss–Jordan elimination; the Cauchy (or 1×1 XOR) matrix is
	// invertible, so a pivot always exists.
	for col := 0; col < e; col++ {
		p := col
		for p < e && m[p][col] == 0 {
			p++
		}
		if p == e {
			return 0, ErrCorrupt
		}
		m[col], m[p] = m[p], m[col]
		rhs[col], rhs[p] = rhs[p], rhs[col]
		if f := m[col][col]; f != 1 {
			fi := inv(f)
			for k := col; k < e; k++ {
				m[col][k] = mul(m[col][k], fi)
			}
			scale(rhs[col], fi)
		}
		for j := 0; j < e; j++ {
			if f := m[j][col]; j != col && f != 0 {
				for k := col; k < e; k++ {
					m[j][k] ^= mul(f, m[col][k])
				}
				mulAdd(rhs[j], rhs[col], f)
			}
		}
	}
	for k := 0; k < e; k++ {
		s := rhs[k]
		l := int(s[0]) | int(s[1])<<8
		if 2+l > len(s) {
			return 0, ErrCorrupt
		}
		data[lost[k]] = s[2 : 2+l]
	}
	return e, nil
}

// scale sets b[j] = c·b[j].
func scale(b []byte, c byte) {
	lc := int(logTable[c])
	for j, v := range b {
		if v != 0 {
			b[j] = expTable[lc+int(logTable[v])]
		}
	}
}
