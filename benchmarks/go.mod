module github.com/havenproto/haven/benchmarks

go 1.26.0

require (
	github.com/havenproto/haven v0.0.0
	github.com/quic-go/quic-go v0.66.0
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/net v0.56.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace github.com/havenproto/haven => ../
