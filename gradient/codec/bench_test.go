package codec

import (
	"math/rand/v2"
	"sync"
	"testing"
)

// benchSpecs are the typical configurations.
var benchSpecs = []string{
	"fp32",
	"fp16",
	"bf16",
	"int8:block=256",
	"sign:chunk=256",
	"topk:chunk=4096,k=64,values=fp16",
	"topk:chunk=4096,k=64,values=int8",
	"topk:chunk=4096,k=64,values=2bit",
	"dct-topk:chunk=64,k=8,values=fp16",
	"dct-topk:chunk=64,k=8,values=int8",
	"dct-topk:chunk=64,k=8,values=2bit",
}

var (
	benchOnce   sync.Once
	benchUpdate []Tensor
)

// update10M is a 10,000,000-parameter update of four tensors.
func update10M() []Tensor {
	benchOnce.Do(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, s := range []struct {
			name  string
			shape []int
		}{
			{"a.weight", []int{2048, 2048}},
			{"b.weight", []int{4096, 1024}},
			{"c.weight", []int{1536, 1024}},
			{"d.weight", []int{301, 128}},
		} {
			t := Tensor{Name: s.name, Shape: s.shape, Data: make([]float32, numel(s.shape))}
			for j := range t.Data {
				t.Data[j] = float32(rng.NormFloat64() * 1e-3)
			}
			benchUpdate = append(benchUpdate, t)
		}
	})
	return benchUpdate
}

func newResidual(ts []Tensor) [][]float32 {
	r := make([][]float32, len(ts))
	for i, t := range ts {
		r[i] = make([]float32, len(t.Data))
	}
	return r
}

// BenchmarkEncode encodes a 10M-parameter update with error feedback;
// MB/s is of float32 input (40 MB), x_ratio the compression ratio.
func BenchmarkEncode(b *testing.B) {
	ts := update10M()
	for _, spec := range benchSpecs {
		b.Run(spec, func(b *testing.B) {
			c := mustParse(b, spec)
			res := newResidual(ts)
			var n int
			b.SetBytes(40e6)
			for b.Loop() {
				enc, err := c.Encode(ts, res)
				if err != nil {
					b.Fatal(err)
				}
				n = len(enc)
			}
			b.ReportMetric(40e6/float64(n), "x_ratio")
		})
	}
}

// BenchmarkDecode decodes the same update; MB/s is of float32 output.
func BenchmarkDecode(b *testing.B) {
	ts := update10M()
	for _, spec := range benchSpecs {
		b.Run(spec, func(b *testing.B) {
			c := mustParse(b, spec)
			enc, err := c.Encode(ts, newResidual(ts))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(40e6)
			for b.Loop() {
				if _, err := c.Decode(enc, Limits{MaxElements: 10e6}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(40e6/float64(len(enc)), "x_ratio")
		})
	}
}
