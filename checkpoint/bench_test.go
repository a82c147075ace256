package checkpoint

import (
	"fmt"
	"testing"
)

// benchCheckpoint returns the checkpoint of a GPT-2 with about n
// parameters (within 5%), and a momentum buffer for each.
func benchCheckpoint(n int) *Checkpoint {
	d := 256
	if n < 4_000_000 {
		d = 128
	}
	layers := max(1, (n-256*d-64*d+6*d*d)/(12*d*d))
	return testCheckpoint(1, 256, 64, d, layers)
}

func reportGBs(b *testing.B, bytes int64) {
	b.SetBytes(bytes)
	b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}

// BenchmarkCID measures computing a checkpoint's ID: encoding, chunking
// and hashing every chunk and the manifest, for models of 1M and 10M
// parameters with their momentum buffers (8 and 80 MB), by ID and by Build.
func BenchmarkCID(b *testing.B) {
	for _, params := range []int{1_000_000, 10_000_000} {
		c := benchCheckpoint(params)
		size := int64(len(marshal(b, c)))
		b.Run(fmt.Sprintf("params=%dM", params/1_000_000), func(b *testing.B) {
			for b.Loop() {
				if _, err := ID(c); err != nil {
					b.Fatal(err)
				}
			}
			reportGBs(b, size)
		})
		// Build also keeps the whole encoding, as storing it needs.
		b.Run(fmt.Sprintf("build/params=%dM", params/1_000_000), func(b *testing.B) {
			for b.Loop() {
				if _, err := Build(c); err != nil {
					b.Fatal(err)
				}
			}
			reportGBs(b, size)
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	c := benchCheckpoint(10_000_000)
	size := int64(len(marshal(b, c)))
	for b.Loop() {
		if _, err := c.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
	reportGBs(b, size)
}

func BenchmarkDecode(b *testing.B) {
	enc := marshal(b, benchCheckpoint(10_000_000))
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
	reportGBs(b, int64(len(enc)))
}

// BenchmarkStore measures writing the checkpoint of a 10M-parameter model
// to a store (each chunk fsynced) and reading it back (each chunk hashed).
func BenchmarkStore(b *testing.B) {
	c := benchCheckpoint(10_000_000)
	ch, err := Build(c)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			s := openStore(b, b.TempDir())
			b.StartTimer()
			if err := s.PutChunked(ch); err != nil {
				b.Fatal(err)
			}
		}
		reportGBs(b, ch.Manifest.Size)
	})
	b.Run("read", func(b *testing.B) {
		s := openStore(b, b.TempDir())
		if err := s.PutChunked(ch); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := s.Get(ch.ID); err != nil {
				b.Fatal(err)
			}
		}
		reportGBs(b, ch.Manifest.Size)
	})
}

func TestBenchCheckpointSize(t *testing.T) {
	for _, n := range []int{1_000_000, 10_000_000} {
		got := len(benchCheckpoint(n).Params())
		var params int
		for _, p := range benchCheckpoint(n).Params() {
			params += len(p.Data)
		}
		if params < n*95/100 || params > n*105/100 {
			t.Errorf("benchCheckpoint(%d) has %d parameters in %d tensors", n, params, got)
		}
	}
}
