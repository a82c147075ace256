package gradient

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkTrainStep measures one optimizer step (forward, backward, AdamW)
// of the zoo's small models at batch 16, in training tokens per second,
// with one thread and with two. allocs/op is the allocation count of a
// whole step.
func BenchmarkTrainStep(b *testing.B) {
	for _, name := range []string{"gpt-tiny", "mlp"} {
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
