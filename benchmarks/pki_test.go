package benchmarks

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"time"
)

// The certificate chain of the QUIC and TLS benchmarks: a root CA and two
// leaves (server and client), all Ed25519, made once per test binary.
// Both sides verify the other's leaf against the root, so both are
// authenticated, as Haven's Noise IK handshake authenticates both peers.
// Key exchange is X25519 only (no hybrid post-quantum share), the same
// Diffie-Hellman as Haven's.
var (
	pkiOnce  sync.Once
	pkiRoots *x509.CertPool
	pkiSrv   tls.Certificate
	pkiCli   tls.Certificate
)

// alpn is required by QUIC; TLS over TCP uses it too, for symmetry.
const alpn = "haven-bench"

func makePKI() {
	now := time.Now()
	rootPub, rootKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "haven-bench root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootPub, rootKey)
	if err != nil {
		panic(err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		panic(err)
	}
	pkiRoots = x509.NewCertPool()
	pkiRoots.AddCert(root)

	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) tls.Certificate {
		pub, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, root, pub, rootKey)
		if err != nil {
			panic(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	pkiSrv = leaf(2, "haven-bench server", x509.ExtKeyUsageServerAuth)
	pkiCli = leaf(3, "haven-bench client", x509.ExtKeyUsageClientAuth)
}

// serverTLS requires and verifies a client certificate.
func serverTLS() *tls.Config {
	pkiOnce.Do(makePKI)
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519},
		Certificates:     []tls.Certificate{pkiSrv},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        pkiRoots,
		NextProtos:       []string{alpn},
	}
}

// clientTLS verifies the server against the root and presents the client
// certificate; a non-nil cache enables session resumption.
func clientTLS(cache tls.ClientSessionCache) *tls.Config {
	pkiOnce.Do(makePKI)
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		CurvePreferences:   []tls.CurveID{tls.X25519},
		Certificates:       []tls.Certificate{pkiCli},
		RootCAs:            pkiRoots,
		ServerName:         "localhost",
		NextProtos:         []string{alpn},
		ClientSessionCache: cache,
	}
}
