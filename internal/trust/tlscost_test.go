package trust_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/trust"
)

// BenchmarkTLSCost is where the CPU of a mutual-TLS transfer goes, beside
// plain TCP in the same run: 256 MiB over loopback each way per
// iteration, in 4 MiB writes, both ends in this process, with the node
// configuration (TLS 1.3, pinned Ed25519 keys); and AES-128-GCM alone on
// 16 KiB records, the cipher suite both ends choose on CPUs with AES
// instructions. Run:
//
//	go test -run '^$' -bench TLSCost -benchtime 3x ./internal/trust/
//
// It reports tcp_cpu_s/GB and tls_cpu_s/GB (user + system CPU of the
// process per GB moved), their ratio, and aes_seal_GB/s and aes_open_GB/s
// on one core.
func BenchmarkTLSCost(b *testing.B) {
	const size = 256 << 20
	serverCfg, clientCfg := nodeTLSConfigs(b)
	var tcpCPU, tlsCPU time.Duration
	for b.Loop() {
		tcpCPU += moveOverLoopback(b, size, nil, nil)
		tlsCPU += moveOverLoopback(b, size, serverCfg, clientCfg)
	}
	gb := float64(size) * float64(b.N) / 1e9
	b.ReportMetric(tcpCPU.Seconds()/gb, "tcp_cpu_s/GB")
	b.ReportMetric(tlsCPU.Seconds()/gb, "tls_cpu_s/GB")
	b.ReportMetric(float64(tlsCPU)/float64(tcpCPU), "tls/tcp_cpu")
	seal, open := aesGCMRates(b)
	b.ReportMetric(seal, "aes_seal_GB/s")
	b.ReportMetric(open, "aes_open_GB/s")
	b.ReportMetric(0, "ns/op")
}

// The benchmark's harness moves every byte, over TCP and over the node's
// mutual TLS (a short run, so that go test without -bench keeps it working).
func TestTLSCostHarness(t *testing.T) {
	serverCfg, clientCfg := nodeTLSConfigs(t)
	for _, size := range []int{1, 5<<20 + 3} {
		moveOverLoopback(t, size, nil, nil)
		moveOverLoopback(t, size, serverCfg, clientCfg)
	}
}

// nodeTLSConfigs are the TLS configurations of two nodes with keys of
// their own that trust each other.
func nodeTLSConfigs(tb testing.TB) (server, client *tls.Config) {
	tb.Helper()
	keys := func(trust.PublicKey) (trust.Entry, bool) {
		return trust.Entry{Name: "peer", Role: trust.RoleAdmin}, true
	}
	var cfgs [2]*tls.Config
	for i := range cfgs {
		id, err := trust.Generate()
		if err != nil {
			tb.Fatal(err)
		}
		if cfgs[i], err = trust.TLSConfig(id, keys); err != nil {
			tb.Fatal(err)
		}
	}
	return cfgs[0], cfgs[1]
}

// moveOverLoopback sends size bytes from one end of a loopback TCP
// connection (TLS when the configurations are given) to the other and
// returns the process CPU it took.
func moveOverLoopback(b testing.TB, size int, serverCfg, clientCfg *tls.Config) time.Duration {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer conn.Close()
		if serverCfg != nil {
			conn = tls.Server(conn, serverCfg)
		}
		buf := make([]byte, 4<<20)
		var n int64
		n, err = io.CopyBuffer(io.Discard, io.LimitReader(conn, int64(size)), buf)
		if err == nil && n != int64(size) {
			err = fmt.Errorf("received %d bytes of %d", n, size)
		}
		if err == nil {
			_, err = conn.Write([]byte{1})
		}
		got <- err
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if clientCfg != nil {
		tc := tls.Client(conn, clientCfg)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		conn = tc
	}
	data := make([]byte, 4<<20)
	start := processCPU()
	for sent := 0; sent < size; sent += len(data) {
		if _, err := conn.Write(data[:min(len(data), size-sent)]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	cpu := processCPU() - start
	if err := <-got; err != nil {
		b.Fatal(err)
	}
	return cpu
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// aesGCMRates is AES-128-GCM's seal and open rate, GB/s, on one core.
func aesGCMRates(b *testing.B) (seal, open float64) {
	block, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		b.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	nonce := make([]byte, gcm.NonceSize())
	record := make([]byte, 16<<10)
	sealed := gcm.Seal(nil, nonce, record, nil)
	out := make([]byte, 0, len(sealed))
	const rounds = 16384 // 256 MiB
	t := time.Now()
	for range rounds {
		out = gcm.Seal(out[:0], nonce, record, nil)
	}
	seal = float64(rounds*len(record)) / 1e9 / time.Since(t).Seconds()
	t = time.Now()
	for range rounds {
		if out, err = gcm.Open(out[:0], nonce, sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
	open = float64(rounds*len(record)) / 1e9 / time.Since(t).Seconds()
	return seal, open
}
