module github.com/havenproto/haven/benchmarks

go 1.24.0

require (
	github.com/havenproto/haven v0.0.0
	github.com/quic-go/quic-go v0.59.1
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	golang.org/x/crypto v0.48.0 // indirect
	golang.org/x/net v0.50.0 // indirect
	golang.org/x/sys v0.41.0 // indirect
)

replace github.com/havenproto/haven => ../
