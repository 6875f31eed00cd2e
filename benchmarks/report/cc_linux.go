package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// tcpCongestion says which TCP congestion control the systems' TCP
// connections run on: TLS's and quic-go's none of its own (the host's
// default), Haven's TCP fallback the one of its Config.Congestion,
// "cubic", where the kernel grants it to this process (docs/PROTOCOL.md
// §8.1). The benchmarks run as this process's user, so they get what it
// gets here.
func tcpCongestion() string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		return ""
	}
	host := strings.TrimSpace(string(b))
	haven := host + " (the kernel refused cubic to this user)"
	if fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0); err == nil {
		if syscall.SetsockoptString(fd, syscall.IPPROTO_TCP, syscall.TCP_CONGESTION, "cubic") == nil {
			haven = "cubic"
		}
		syscall.Close(fd)
	}
	return fmt.Sprintf("TCP congestion control: TLS on the host's default, %s; Haven's TCP fallback on %s.", host, haven)
}
