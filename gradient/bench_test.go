package gradient

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
)

// BenchmarkTrainStep measures one optimizer step (forward, backward, AdamW)
// of the zoo's small models at batch 16, in training tokens per second,
// with one thread and with two. allocs/op is the allocation count of a
// whole step.
func BenchmarkTrainStep(b *testing.B) {
	for _, name := range []string{"gpt-tiny", "gpt-small", "mlp"} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("model=%s/threads=%d", name, threads), func(b *testing.B) {
				cfg, _ := Preset(name)
				m, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				const batch = 16
				tr := NewTrainer(m, DefaultAdamW(), Schedule{Peak: 1e-3, Warmup: 10, Total: 1000, MinFrac: 0.1})
				tok := randomTokens(rand.New(rand.NewPCG(1, 1)), batch, cfg.Ctx, cfg.Vocab)
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
				tr.Step(tok, batch) // warm the arena
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					tr.Step(tok, batch)
				}
				tokens := float64(batch*cfg.Ctx) * float64(b.N)
				b.ReportMetric(tokens/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}

// BenchmarkTrainStepGPT100m measures a step of gpt-100m at batch 1 and 2
// (context 1024) in tokens per second, and the heap the training state
// holds after a step (parameters, gradients, AdamW moments and the tape's
// buffers) in bytes per parameter. It needs about 3 GB, so it runs only
// when SHOAL_BENCH_LARGE is set.
func BenchmarkTrainStepGPT100m(b *testing.B) {
	if os.Getenv("SHOAL_BENCH_LARGE") == "" {
		b.Skip("set SHOAL_BENCH_LARGE=1 to benchmark gpt-100m")
	}
	for _, batch := range []int{1, 2} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			cfg, _ := Preset("gpt-100m")
			m, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			tr := NewTrainer(m, DefaultAdamW(), Schedule{Peak: 1e-4, Warmup: 10, Total: 1000, MinFrac: 0.1})
			tok := randomTokens(rand.New(rand.NewPCG(1, 1)), batch, cfg.Ctx, cfg.Vocab)
			tr.Step(tok, batch) // warm the tape
			b.ResetTimer()
			for b.Loop() {
				tr.Step(tok, batch)
			}
			b.ReportMetric(float64(batch*cfg.Ctx)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.StopTimer()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/float64(NumParams(m)), "heap-B/param")
			runtime.KeepAlive(tr)
		})
	}
}
