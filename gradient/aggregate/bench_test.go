package aggregate

import "testing"

// benchRule aggregates k dense contributions of n coordinates per
// iteration and reports coordinates/s (of the aggregate) alongside MB/s of
// input read.
func benchRule(b *testing.B, r Rule, k, n int) {
	cs := randomContribs(newRand(1), k, n)
	dst := make([]float32, n)
	b.SetBytes(int64(k * n * 4))
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Aggregate(dst, cs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "coord/s")
}

const benchN = 1 << 20

func BenchmarkMean(b *testing.B)        { benchRule(b, Mean{}, 8, benchN) }
func BenchmarkMedian(b *testing.B)      { benchRule(b, Median{}, 8, benchN) }
func BenchmarkTrimmedMean(b *testing.B) { benchRule(b, TrimmedMean{Trim: 0.2}, 8, benchN) }
func BenchmarkNormClip(b *testing.B)    { benchRule(b, NormClip{}, 8, benchN) }
func BenchmarkCenteredClip(b *testing.B) {
	benchRule(b, CenteredClip{Iters: 3}, 8, benchN)
}

// Many contributors: the median's sort leaves the insertion-sort range.
func BenchmarkMedian32(b *testing.B)   { benchRule(b, Median{}, 32, benchN/4) }
func BenchmarkMedian100(b *testing.B)  { benchRule(b, Median{}, 100, benchN/8) }
func BenchmarkTrimmed100(b *testing.B) { benchRule(b, TrimmedMean{Trim: 0.2}, 100, benchN/8) }

// BenchmarkMeanSparse averages 8 sparse contributions of 1% density; MB/s
// counts the index and value bytes read.
func BenchmarkMeanSparse(b *testing.B) {
	r := newRand(2)
	cs := randomContribs(r, 8, benchN)
	nnz := 0
	for i := range cs {
		cs[i].Sparse = toSparse(r, sparsify(r, cs[i].Dense, 0.01), 0)
		cs[i].Dense = nil
		nnz += len(cs[i].Sparse.Index)
	}
	dst := make([]float32, benchN)
	b.SetBytes(int64(nnz * 8))
	b.ResetTimer()
	for b.Loop() {
		if _, err := (Mean{}).Aggregate(dst, cs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchN)*float64(b.N)/b.Elapsed().Seconds(), "coord/s")
}
