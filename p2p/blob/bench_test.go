package blob

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// discardStore forgets what the exchange stores (after the exchange has
// verified it), so a benchmark loop can fetch the same blob again without
// growing memory.
type discardStore struct{}

func (discardStore) Has(cid.Cid) bool                         { return false }
func (discardStore) Get(c cid.Cid) ([]byte, error)            { return nil, ErrNotFound }
func (discardStore) PutVerified(cid.Cid, []byte) error        { return nil }
func (discardStore) PutManifest(m *Manifest) (cid.Cid, error) { return m.ID() }

const benchBlobSize = 64 << 20

// plainTCPThroughput measures io.Copy of data over one loopback TCP
// connection, rounds times, and returns the median rate in bytes per second.
func plainTCPThroughput(tb testing.TB, data []byte, rounds int) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	size := len(data)
	done := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				done <- nil
				return
			}
			_, err = c.Write(data)
			c.Close()
			if err != nil {
				done <- err
				return
			}
		}
	}()
	rates := make([]float64, 0, rounds)
	for range rounds {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		start := time.Now()
		n, err := io.Copy(io.Discard, c)
		el := time.Since(start)
		c.Close()
		if err != nil || n != int64(size) {
			tb.Fatalf("plain copy: %d bytes, %v", n, err)
		}
		rates = append(rates, float64(size)/el.Seconds())
	}
	ln.Close()
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	slices.Sort(rates)
	return rates[len(rates)/2]
}

// BenchmarkTransfer fetches a 64 MiB blob from one provider over loopback
// TCP and QUIC and compares with a plain TCP io.Copy of the same bytes.
// Metrics: MB/s, and ratio = blob MB/s / plain TCP MB/s (the plain-tcp
// sub-benchmark's mean, or the median of five copies if it did not run). For reference, the raw-stream
// sub-benchmarks copy the same 64 MiB over one libp2p stream (TLS and
// yamux, or QUIC) with no chunking and no verification: the ceiling the
// libp2p stack sets on this machine.
func BenchmarkTransfer(b *testing.B) {
	data := randBytes(10, benchBlobSize)
	src := NewMemStore()
	root, err := Put(src, data, DefaultChunkSize)
	if err != nil {
		b.Fatal(err)
	}
	var plain float64
	b.Run("plain-tcp", func(b *testing.B) {
		b.SetBytes(benchBlobSize)
		var total float64
		n := 0
		for b.Loop() {
			total += float64(benchBlobSize) / plainTCPThroughput(b, data, 1)
			n++
		}
		plain = float64(benchBlobSize) * float64(n) / total
	})
	for _, tr := range []string{"tcp", "quic"} {
		b.Run("raw-stream-"+tr, func(b *testing.B) {
			if plain == 0 {
				plain = plainTCPThroughput(b, data, 5)
			}
			src, dst := newLoopbackHost(b, tr), newLoopbackHost(b, tr)
			src.SetStreamHandler("/bench/raw", func(s network.Stream) {
				_, _ = s.Write(data)
				_ = s.Close()
			})
			connect(b, dst, src)
			b.SetBytes(benchBlobSize)
			var total time.Duration
			n := 0
			for b.Loop() {
				start := time.Now()
				s, err := dst.NewStream(context.Background(), src.ID(), "/bench/raw")
				if err != nil {
					b.Fatal(err)
				}
				if got, err := io.Copy(io.Discard, s); err != nil || got != benchBlobSize {
					b.Fatalf("copied %d bytes: %v", got, err)
				}
				_ = s.Close()
				total += time.Since(start)
				n++
			}
			rate := float64(benchBlobSize) * float64(n) / total.Seconds()
			b.ReportMetric(rate/1e6, "MB/s")
			b.ReportMetric(rate/plain, "ratio")
			b.ReportMetric(plain/1e6, "plain-MB/s")
		})
		b.Run(tr, func(b *testing.B) {
			if plain == 0 {
				plain = plainTCPThroughput(b, data, 5)
			}
			fh, ph := newLoopbackHost(b, tr), newLoopbackHost(b, tr)
			f, err := New(fh, discardStore{}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			p, err := New(ph, src, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			connect(b, fh, ph)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b.SetBytes(benchBlobSize)
			var total time.Duration
			n := 0
			for b.Loop() {
				start := time.Now()
				if _, err := f.Fetch(ctx, root, []peer.ID{ph.ID()}); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				n++
			}
			rate := float64(benchBlobSize) * float64(n) / total.Seconds()
			b.ReportMetric(rate/1e6, "MB/s")
			b.ReportMetric(rate/plain, "ratio")
			b.ReportMetric(plain/1e6, "plain-MB/s")
		})
	}
}
