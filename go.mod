module github.com/havenproto/haven

go 1.24.0

require (
	filippo.io/edwards25519 v1.2.0
	github.com/coreos/go-systemd/v22 v22.6.0
	golang.org/x/crypto v0.48.0
	golang.org/x/net v0.50.0
	golang.org/x/sys v0.41.0
	google.golang.org/grpc v1.80.0
)

require (
	golang.org/x/text v0.34.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260120221211-b8f7ae30c516 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)
