package engine

import (
	"testing"

	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/internal/testround"
	"github.com/shoal-network/shoal/node/engine/enginetest"
	"github.com/shoal-network/shoal/tracker/round"
)

// BenchmarkTraceCost is what tracing adds to training gpt-tiny: an
// inner step, and the hash of the state after it that a trace holds
// (reported as a percentage of the step).
func BenchmarkTraceCost(b *testing.B) {
	s := testround.Spec(3)
	cfg, _ := gradient.Preset("gpt-tiny")
	s.Model = round.Model{Arch: cfg.Arch, Vocab: cfg.Vocab, Ctx: cfg.Ctx, Dim: cfg.Dim, Layers: cfg.Layers, Heads: cfg.Heads, Seed: 7}
	train, _ := data.Builtin().Corpus(1<<18, 16<<10)
	e, err := NewModelEngine(s, train, enginetest.NewMemStore())
	if err != nil {
		b.Fatal(err)
	}
	base, err := e.Genesis()
	if err != nil {
		b.Fatal(err)
	}
	r, err := e.startUnit(base, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	var step float64
	b.Run("inner-step", func(b *testing.B) {
		for b.Loop() {
			r.done = 0 // the same batch every time
			if _, err := e.innerStep(r); err != nil {
				b.Fatal(err)
			}
		}
		step = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("hash", func(b *testing.B) {
		st := e.state(r)
		b.SetBytes(int64(st.Size()))
		for b.Loop() {
			e.hasher.Leaf(st)
		}
		if step > 0 {
			b.ReportMetric(100*float64(b.Elapsed().Nanoseconds())/float64(b.N)/step, "%-of-inner-step")
		}
	})
}
