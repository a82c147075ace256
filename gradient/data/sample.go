package data

import (
	"fmt"
	"math/bits"
)

// golden is 2^64 divided by the golden ratio, the splitmix64 increment.
const golden = 0x9e3779b97f4a7c15

// mix64 is the splitmix64 finaliser: a bijection on uint64 with good
// avalanche behaviour.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// absorb folds x into the hash state h. For a fixed h it is a bijection in
// x, and for a fixed x a bijection in h, so inputs that differ in a single
// position always hash differently.
func absorb(h, x uint64) uint64 {
	return mix64(h^x) + golden
}

// Domain constants keep the hashes of different uses apart.
const (
	domainSample  = 0x73686f616c2d7331 // "shoal-s1"
	domainLexicon = 0x73686f616c2d6c31 // "shoal-l1"
	domainText    = 0x73686f616c2d7431 // "shoal-t1"
)

// windowHash is the hash that places window index of a batch.
func windowHash(seed, stream, step, index uint64) uint64 {
	h := absorb(domainSample, seed)
	h = absorb(h, stream)
	h = absorb(h, step)
	return mix64(h ^ index)
}

// below maps a uniformly distributed h to [0, n) by the high word of h*n.
func below(h, n uint64) uint64 {
	hi, _ := bits.Mul64(h, n)
	return hi
}

// Tokens is what Sample and EvalBatches draw windows from: text, one
// token per byte, or the token IDs a tokenizer made of it.
type Tokens interface{ ~byte | ~int32 }

// CheckSize reports whether data is long enough to hold one window of
// ctx+1 tokens, as Sample and EvalBatches require.
func CheckSize[T Tokens](data []T, ctx int) error {
	if ctx < 1 {
		return fmt.Errorf("data: context length must be at least 1, got %d", ctx)
	}
	if len(data) < ctx+1 {
		unit := "tokens"
		var zero T
		if _, ok := any(zero).(byte); ok {
			unit = "bytes"
		}
		return fmt.Errorf("data: %d %s of text is too small for context %d (need at least %d %s)", len(data), unit, ctx, ctx+1, unit)
	}
	return nil
}

func checkShape[T Tokens](fn string, data []T, batch, ctx int) {
	if batch < 1 || ctx < 1 {
		panic(fmt.Sprintf("data: %s: batch %d and context %d must be positive", fn, batch, ctx))
	}
	if len(data) < ctx+1 {
		unit := "tokens"
		var zero T
		if _, ok := any(zero).(byte); ok {
			unit = "bytes"
		}
		panic(fmt.Sprintf("data: %s: %d %s of data is shorter than a window of %d tokens (check with CheckSize)", fn, len(data), unit, ctx+1))
	}
}

// Sample fills dst with batch windows of ctx+1 consecutive tokens of data,
// window b occupying dst[b*(ctx+1) : (b+1)*(ctx+1)]. The window starts at
// an offset in [0, len(data)-ctx) that is a pure function of (seed, stream,
// step, b), computed with a counter-based integer hash; stream lets callers
// separate e.g. shards or workers that share a seed. Sample panics if
// len(dst) != batch*(ctx+1), if batch or ctx is not positive, or if data
// is shorter than ctx+1 tokens (see CheckSize).
func Sample[T Tokens](dst []int32, data []T, seed, stream, step uint64, batch, ctx int) {
	checkShape("Sample", data, batch, ctx)
	w := ctx + 1
	if len(dst) != batch*w {
		panic(fmt.Sprintf("data: Sample: len(dst) = %d, want batch*(ctx+1) = %d", len(dst), batch*w))
	}
	for b := range batch {
		off := sampleOffset(seed, stream, step, b, len(data)-ctx)
		fillWindow(dst[b*w:(b+1)*w], data[off:off+w])
	}
}

// sampleOffset is the start of window b in Sample, in [0, starts).
func sampleOffset(seed, stream, step uint64, b, starts int) int {
	return int(below(windowHash(seed, stream, step, uint64(b)), uint64(starts)))
}

func fillWindow[T Tokens](dst []int32, src []T) {
	for j, c := range src {
		dst[j] = int32(c)
	}
}

// EvalBatches returns a fixed set of evaluation batches of data, each laid
// out as for Sample (batch windows of ctx+1 tokens). There are
// (len(data)-1)/ctx/batch batches, clamped to [1, maxBatches]: as many
// whole batches as data holds windows that overlap only in the token where
// one window's targets end and the next one's inputs begin. The T windows
// are spread evenly over data, window k starting at
// floor(k*(len(data)-ctx)/T), batch i holding windows i*batch to
// (i+1)*batch-1. The result depends only on the arguments, so evaluation
// losses are comparable between runs. EvalBatches returns nil if
// maxBatches < 1 and panics like Sample on a bad shape or short data.
func EvalBatches[T Tokens](data []T, batch, ctx, maxBatches int) [][]int32 {
	checkShape("EvalBatches", data, batch, ctx)
	if maxBatches < 1 {
		return nil
	}
	nb := min(max((len(data)-1)/ctx/batch, 1), maxBatches)
	total := uint64(nb * batch)
	starts := uint64(len(data) - ctx)
	w := ctx + 1
	out := make([][]int32, nb)
	for i := range out {
		out[i] = make([]int32, batch*w)
		for b := range batch {
			k := uint64(i*batch + b)
			hi, lo := bits.Mul64(k, starts)
			off, _ := bits.Div64(hi, lo, total) // hi < total because k < total
			fillWindow(out[i][b*w:(b+1)*w], data[off:int(off)+w])
		}
	}
	return out
}
