package tensor

import (
	"github.com/shoal-network/shoal/tensor/internal/gemm"
	"github.com/shoal-network/shoal/tensor/internal/vec"
)

// CausalSelfAttention computes multi-head causal self-attention from packed
// projections, without materialising per-head copies.
//
// qkv is [batch*T, 3*D] with D = heads*hd: row b*T+t holds the query, key
// and value of position t of sequence b, each D wide, head h in columns
// h*hd .. (h+1)*hd-1 of its third. The result is [batch*T, D], head h's
// output in the same columns:
//
//	S      = (Q_h·K_hᵀ) * (1/sqrt(hd))        per sequence and head, T×T
//	P[t,:] = softmax(S[t,:] with S[t,s] = -Inf for s > t)
//	Y_h    = P·V_h
//
// The forward pass gives the same bits as the composition MatMul, Scale,
// MaskCausal, Softmax and MatMul over permuted copies. Each (sequence, head)
// pair is computed by one goroutine.
//
// The attention weights P (batch·heads·T² values, the largest activation
// of a long context) are not kept: the backward pass computes them again
// from qkv, by the same operations, so they have the same bits, in
// per-goroutine scratch of T² values.
func (tp *Tape) CausalSelfAttention(qkv *Tensor, batch, heads int) *Tensor {
	if len(qkv.shape) != 2 || batch <= 0 || heads <= 0 || qkv.shape[0]%batch != 0 || qkv.shape[1]%(3*heads) != 0 {
		panic("tensor: CausalSelfAttention shape mismatch")
	}
	t := qkv.shape[0] / batch
	d := qkv.shape[1] / 3
	hd := d / heads
	out := tp.tensor([]int{batch * t, d}, qkv.needsGrad, false)
	w := workers(batch*heads, 1)
	attentionForward(out.Data, tp.scratch(scratchProbs, w*t*t), qkv.Data, batch, t, heads, hd, w)
	if out.needsGrad {
		nd := tp.record(backAttention, out)
		nd.a = qkv
		nd.i[0], nd.i[1], nd.i[2] = batch, heads, hd
	}
	return out
}

// attentionForward computes y from qkv with w workers, each using its
// T×T part of probs.
func attentionForward(y, probs, qkv []float32, batch, t, heads, hd, w int) {
	d := heads * hd
	scale := 1 / sqrt32(float32(hd))
	parallelWorkers(batch*heads, w, func(wk, lo, hi int) {
		p := probs[wk*t*t : (wk+1)*t*t]
		for bh := lo; bh < hi; bh++ {
			b, h := bh/heads, bh%heads
			base := b*t*3*d + h*hd
			attentionProbs(p, qkv[base:], qkv[base+d:], t, hd, d, scale)
			gemm.Sgemm(false, false, t, hd, t, p, t, qkv[base+2*d:], 3*d, y[b*t*d+h*hd:], d, false)
		}
	})
}

// attentionProbs writes into p (T×T) the causal attention weights of one
// sequence and head: softmax of the masked, scaled Q·Kᵀ, for q and k of hd
// columns in rows 3·d apart.
func attentionProbs(p, q, k []float32, t, hd, d int, scale float32) {
	gemm.Sgemm(false, true, t, t, hd, q, 3*d, k, 3*d, p, t, false)
	for i := 0; i < t; i++ {
		causalSoftmaxRow(p[i*t:(i+1)*t], i, scale)
	}
}

// causalSoftmaxRow turns row i of raw scores into attention weights in
// place: scaled, masked beyond column i, and normalised, with the same
// bits as Scale, MaskCausal and Softmax applied in turn (the masked
// entries contribute exact zeros to the lane-ordered sum).
func causalSoftmaxRow(r []float32, i int, scale float32) {
	live := r[:i+1]
	vec.Scale(live, live, scale)
	vec.ExpSub(live, live, Max(live))
	clear(r[i+1:])
	// The sum runs over the whole row, zeros included: its lane layout is
	// that of the row, as in Softmax.
	vec.DivScalar(live, live, Sum(r))
}

func backAttention(nd *node) {
	qkv, out := nd.a, nd.out
	batch, heads, hd := nd.i[0], nd.i[1], nd.i[2]
	d := heads * hd
	t := out.shape[0] / batch
	scale := 1 / sqrt32(float32(hd))
	w := workers(batch*heads, 1)
	probs, scratch := nd.tp.scratch(scratchProbs, w*t*t), nd.tp.scratch(scratchDProbs, w*t*t)
	parallelWorkers(batch*heads, w, func(wk, lo, hi int) {
		p, dp := probs[wk*t*t:(wk+1)*t*t], scratch[wk*t*t:(wk+1)*t*t]
		for bh := lo; bh < hi; bh++ {
			b, h := bh/heads, bh%heads
			base := b*t*3*d + h*hd
			q, k, v := qkv.Data[base:], qkv.Data[base+d:], qkv.Data[base+2*d:]
			attentionProbs(p, q, k, t, hd, d, scale)
			dq, dk, dv := qkv.Grad[base:], qkv.Grad[base+d:], qkv.Grad[base+2*d:]
			dy := out.Grad[b*t*d+h*hd:]
			// dP = dY·Vᵀ;  dV += Pᵀ·dY
			gemm.Sgemm(false, true, t, t, hd, dy, d, v, 3*d, dp, t, false)
			gemm.Sgemm(true, false, t, hd, t, p, t, dy, d, dv, 3*d, true)
			// dS = P ⊙ (dP - rowsum(dP ⊙ P)), scaled; zero above the diagonal.
			for i := 0; i < t; i++ {
				pr, dr := p[i*t:(i+1)*t], dp[i*t:(i+1)*t]
				s := Dot(dr, pr)
				for j := 0; j <= i; j++ {
					dr[j] = float32(scale * float32(pr[j]*(dr[j]-s)))
				}
				clear(dr[i+1:])
			}
			// dQ += dS·K;  dK += dSᵀ·Q
			gemm.Sgemm(false, false, t, hd, t, dp, t, k, 3*d, dq, 3*d, true)
			gemm.Sgemm(true, false, t, hd, t, dp, t, q, 3*d, dk, 3*d, true)
		}
	})
}
