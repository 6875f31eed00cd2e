// Package benchmarks compares Haven with quic-go and with TLS 1.3 over TCP,
// side by side on loopback. It is its own module, so that the root module
// never requires quic-go; the benchmarks are in the _test.go files, one per
// workload, and ./report runs them and writes results.md and results.svg.
//
//	go test -run NONE -bench . -benchmem ./...   # every benchmark, every system
//	go run ./report -count 5                     # medians, ratios, table and chart
//
// See README.md for the workloads and docs/PERFORMANCE.md for the latest
// figures.
package benchmarks
