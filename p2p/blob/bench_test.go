package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// checkStore is the store a benchmark fetches into. Like MemStore it keeps
// the chunks it is given, at the cost of a map entry each; check, called
// once the fetch has been timed, compares every chunk with the source's
// copy and forgets them, so a loop can fetch the same blob again, and a
// fetch that skipped or corrupted a chunk fails the benchmark.
type checkStore struct {
	src Store

	mu     sync.Mutex
	chunks map[cid.Cid][]byte
}

func (s *checkStore) Has(cid.Cid) bool { return false }
func (s *checkStore) Get(c cid.Cid) ([]byte, error) {
	return nil, fmt.Errorf("get %s: %w", c, ErrNotFound)
}
func (s *checkStore) PutManifest(m *Manifest) (cid.Cid, error) {
	return m.ID()
}

func (s *checkStore) PutVerified(c cid.Cid, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chunks == nil {
		s.chunks = make(map[cid.Cid][]byte)
	}
	s.chunks[c] = data
	return nil
}

// check compares the chunks stored since the last check with m's, in
// the source, and forgets them.
func (s *checkStore) check(m *Manifest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer clear(s.chunks)
	if len(s.chunks) != len(m.Chunks) {
		return fmt.Errorf("stored %d distinct chunks, the manifest has %d", len(s.chunks), len(m.Chunks))
	}
	for i, c := range m.Chunks {
		want, err := s.src.Get(c)
		if err != nil {
			return err
		}
		if !bytes.Equal(s.chunks[c], want) {
			return fmt.Errorf("chunk %d stored with other bytes than the source's", i)
		}
	}
	return nil
}

const benchBlobSize = 64 << 20

// rawProtocol is the benchmark's bare stream protocol: the provider writes
// the blob's bytes and closes.
const rawProtocol protocol.ID = "/shoal/bench/raw"

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

// BenchmarkTransfer compares, over loopback TCP (TLS and yamux) and QUIC,
// the blob exchange's fetch of a 64 MiB blob of 1 MiB chunks with a copy
// of the same 64 MiB over one bare libp2p stream: the ceiling the libp2p
// stack sets on this machine.
//
// All run between the same two hosts over the same connection, each
// warmed by one round, and each iteration times, in this order, a raw
// copy, a hashed copy, two fetches, a hashed copy and a raw copy, so that
// a load on the machine that rises or falls steadily weighs on each
// alike. The fetch is Exchange.FetchInto from one provider: the manifest,
// then every chunk hashed and verified, into a store that keeps the
// chunks and, once the fetch is timed, checks each against the source.
// The hashed copy is the raw copy read as the exchange reads a chunk, a
// MiB at a time into a buffer of its own that is kept, hashing each piece
// as it arrives and checking the chunk's digest: the least work any
// verifying fetch has to do.
//
// Metrics: MB/s of the fetch and raw-MB/s of the stream (total bytes over
// total time); of-raw-stream, the median over iterations of the fetches'
// rate over the raw copies' in the same iteration; hashed-of-raw, the same
// for the hashed copies, so the most of-raw-stream can be here; and
// cpu-of-raw, the process's CPU time for the raw copies over that for the
// fetches (the same bytes), what of-raw-stream tends to when every core is
// busy, as on a shared machine, since the fetch then goes as fast as its
// CPU cost allows. The plain-tcp sub-benchmark is a plain TCP io.Copy of
// the bytes, for reference.
func BenchmarkTransfer(b *testing.B) {
	data := randBytes(10, benchBlobSize)
	src := NewMemStore()
	root, err := Put(src, data, DefaultChunkSize)
	if err != nil {
		b.Fatal(err)
	}
	m, err := LoadManifest(src, root)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("plain-tcp", func(b *testing.B) {
		var total float64
		n := 0
		for b.Loop() {
			total += float64(benchBlobSize) / plainTCPThroughput(b, data, 1)
			n++
		}
		b.ReportMetric(float64(benchBlobSize)*float64(n)/total/1e6, "MB/s")
	})
	for _, tr := range []string{"tcp", "quic"} {
		b.Run(tr, func(b *testing.B) {
			fh, ph := newLoopbackHost(b, tr), newLoopbackHost(b, tr)
			ph.SetStreamHandler(rawProtocol, func(s network.Stream) {
				if _, err := s.Write(data); err != nil {
					_ = s.Reset()
					return
				}
				_ = s.Close()
			})
			f, err := New(fh, NewMemStore(), Options{})
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

			// rawCPU and fetchCPU add up the process's CPU time during
			// each; cpuOK says whether it is measured here.
			var rawCPU, fetchCPU time.Duration
			cpuOK := true
			cpuSince := func(total *time.Duration, c0 time.Duration) {
				c1, ok := processCPU()
				cpuOK = cpuOK && ok
				*total += c1 - c0
			}
			raw := func() time.Duration {
				c0, _ := processCPU()
				defer cpuSince(&rawCPU, c0)
				start := time.Now()
				s, err := fh.NewStream(ctx, ph.ID(), rawProtocol)
				if err != nil {
					b.Fatal(err)
				}
				if got, err := io.Copy(io.Discard, s); err != nil || got != benchBlobSize {
					b.Fatalf("raw stream: copied %d bytes: %v", got, err)
				}
				_ = s.Close()
				return time.Since(start)
			}
			dst := &checkStore{src: src}
			fetch := func() time.Duration {
				c0, _ := processCPU()
				defer cpuSince(&fetchCPU, c0)
				start := time.Now()
				res, err := f.FetchInto(ctx, dst, root, []peer.ID{ph.ID()})
				if err != nil {
					b.Fatal(err)
				}
				el := time.Since(start)
				if err := dst.check(m); err != nil || res.Fetched != res.Chunks {
					b.Fatalf("fetched %d of %d chunks: %v", res.Fetched, res.Chunks, err)
				}
				return el
			}
			var kept [][]byte
			hashed := func() time.Duration {
				start := time.Now()
				s, err := fh.NewStream(ctx, ph.ID(), rawProtocol)
				if err != nil {
					b.Fatal(err)
				}
				kept = kept[:0]
				for i, c := range m.Chunks {
					buf := make([]byte, m.ChunkLen(i))
					h := sha256.New()
					if err := (*bandwidth)(nil).readFull(ctx, s, buf, h); err != nil {
						b.Fatalf("hashed stream: chunk %d: %v", i, err)
					}
					if err := content.VerifyDigest(c, [sha256.Size]byte(h.Sum(nil))); err != nil {
						b.Fatalf("hashed stream: chunk %d: %v", i, err)
					}
					kept = append(kept, buf)
				}
				_ = s.Close()
				el := time.Since(start)
				clear(kept)
				return el
			}
			raw()
			hashed()
			fetch()
			rawCPU, fetchCPU = 0, 0

			var rawTotal, fetchTotal time.Duration
			var fracs, hashedFracs []float64
			for b.Loop() {
				rawT := raw()
				hashedT := hashed()
				fetchT := fetch()
				fetchT += fetch()
				hashedT += hashed()
				rawT += raw()
				rawTotal += rawT
				fetchTotal += fetchT
				fracs = append(fracs, rawT.Seconds()/fetchT.Seconds())
				hashedFracs = append(hashedFracs, rawT.Seconds()/hashedT.Seconds())
			}
			n := 2 * float64(len(fracs))
			slices.Sort(fracs)
			slices.Sort(hashedFracs)
			b.ReportMetric(benchBlobSize*n/fetchTotal.Seconds()/1e6, "MB/s")
			b.ReportMetric(benchBlobSize*n/rawTotal.Seconds()/1e6, "raw-MB/s")
			b.ReportMetric(fracs[len(fracs)/2], "of-raw-stream")
			b.ReportMetric(hashedFracs[len(hashedFracs)/2], "hashed-of-raw")
			if cpuOK && fetchCPU > 0 {
				b.ReportMetric(rawCPU.Seconds()/fetchCPU.Seconds(), "cpu-of-raw")
			}
		})
	}
}
