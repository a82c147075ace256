package tensor

// The operations below compute a new tensor on the tape and, when any input
// needs a gradient, record how to carry the output's gradient back to the
// inputs. Each is a thin layer over the kernel of the same name; the
// backward functions are top-level functions of a node, so recording an
// operation allocates nothing.

// MatMul returns a·op(b) where op(b) is b or, when transB, b with its last
// two axes swapped; shapes as for the MatMul kernel with transA false.
func (tp *Tape) MatMul(a, b *Tensor, transB bool) *Tensor {
	if len(a.shape) < 2 || len(b.shape) < 2 || len(a.shape) > 8 {
		panic("tensor: MatMul needs matrices")
	}
	n := b.shape[len(b.shape)-1]
	if transB {
		n = b.shape[len(b.shape)-2]
	}
	var sh [8]int
	shape := append(append(sh[:0], a.shape[:len(a.shape)-1]...), n)
	out := tp.tensor(shape, a.needsGrad || b.needsGrad, false)
	MatMul(out, a, b, false, transB, false)
	if out.needsGrad {
		nd := tp.record(backMatMul, out)
		nd.a, nd.b, nd.flag = a, b, transB
	}
	return out
}

func backMatMul(nd *node) { matMulGrad(nd.a, nd.b, nd.out, nd.flag) }

// matMulGrad accumulates the gradients of out = a·op(b) into a and b.
func matMulGrad(a, b, out *Tensor, transB bool) {
	if a.needsGrad {
		// dA += dC·op(b)ᵀ
		MatMulData(a.Grad, a.shape, out.Grad, out.shape, b.Data, b.shape, false, !transB, true)
	}
	if b.needsGrad {
		var s1, s2 [2]int
		as, os := a.shape, out.shape
		if len(b.shape) == 2 {
			// A shared matrix: fold the batch into the rows.
			s1 = [2]int{numel(as[:len(as)-1]), as[len(as)-1]}
			s2 = [2]int{numel(os[:len(os)-1]), os[len(os)-1]}
			as, os = s1[:], s2[:]
		}
		if !transB {
			// dB += Aᵀ·dC
			MatMulData(b.Grad, b.shape, a.Data, as, out.Grad, os, true, false, true)
		} else {
			// dB += dCᵀ·A
			MatMulData(b.Grad, b.shape, out.Grad, os, a.Data, as, true, false, true)
		}
	}
}

// Linear returns x·w + bias for x [N, K], w [K, M] and bias [M], with the
// same bits, forward and backward, as Add(MatMul(x, w, false), bias), but
// without keeping the product apart from the sum.
func (tp *Tape) Linear(x, w, bias *Tensor) *Tensor {
	if len(x.shape) != 2 || len(w.shape) != 2 || len(bias.shape) != 1 || bias.shape[0] != w.shape[1] {
		panic("tensor: Linear shape mismatch")
	}
	out := tp.tensor([]int{x.shape[0], w.shape[1]}, x.needsGrad || w.needsGrad || bias.needsGrad, false)
	MatMul(out, x, w, false, false, false)
	Add(out, out, bias)
	if out.needsGrad {
		nd := tp.record(backLinear, out)
		nd.a, nd.b, nd.c = x, w, bias
		nd.reads = readA | readB
	}
	return out
}

func backLinear(nd *node) {
	x, w, bias, g := nd.a, nd.b, nd.c, nd.out.Grad
	AddGrad(nil, gradOf(bias), nd.out.shape, bias.shape, g)
	if !x.needsGrad && !w.needsGrad {
		return
	}
	// The separate product's gradient would be g accumulated into zeros,
	// 0 + g: g, but with -0 turned into +0.
	for i, v := range g {
		if v == 0 {
			g[i] = 0
		}
	}
	matMulGrad(x, w, nd.out, false)
}

// GELULinear returns GELU(u)·w + bias for u [N, K], w [K, M] and bias
// [M], with the same bits, forward and backward, as
// Linear(GELU(u), w, bias), but without keeping GELU(u): the backward step
// computes it again from u (the same kernel, so the same bits) in scratch
// the tape keeps.
func (tp *Tape) GELULinear(u, w, bias *Tensor) *Tensor {
	if len(u.shape) != 2 || len(w.shape) != 2 || len(bias.shape) != 1 || u.shape[1] != w.shape[0] || bias.shape[0] != w.shape[1] {
		panic("tensor: GELULinear shape mismatch")
	}
	out := tp.tensor([]int{u.shape[0], w.shape[1]}, u.needsGrad || w.needsGrad || bias.needsGrad, false)
	g, th := tp.scratch(scratchGELUOut, len(u.Data)), tp.scratch(scratchGELU, len(u.Data))
	GELUTanh(g, th, u.Data)
	MatMulData(out.Data, out.shape, g, u.shape, w.Data, w.shape, false, false, false)
	Add(out, out, bias)
	if out.needsGrad {
		nd := tp.record(backGELULinear, out)
		nd.a, nd.b, nd.c = u, w, bias
		nd.reads = readA | readB
	}
	return out
}

func backGELULinear(nd *node) {
	u, w, bias, gout := nd.a, nd.b, nd.c, nd.out.Grad
	AddGrad(nil, gradOf(bias), nd.out.shape, bias.shape, gout)
	if !u.needsGrad && !w.needsGrad {
		return
	}
	for i, v := range gout {
		if v == 0 {
			gout[i] = 0 // as in backLinear: 0 + g
		}
	}
	g, th := nd.tp.scratch(scratchGELUOut, len(u.Data)), nd.tp.scratch(scratchGELU, len(u.Data))
	GELUTanh(g, th, u.Data)
	if w.needsGrad {
		// dW += GELU(u)ᵀ·dOut
		MatMulData(w.Grad, w.shape, g, u.shape, gout, nd.out.shape, true, false, true)
	}
	if u.needsGrad {
		// d GELU(u) = 0 + dOut·wᵀ, accumulated into zeros as the separate
		// value's gradient would be; then du += gelu'(u)·d GELU(u).
		dg := g
		clear(dg)
		MatMulData(dg, u.shape, gout, nd.out.shape, w.Data, w.shape, false, true, true)
		GELUGradTanh(u.Grad, u.Data, th, dg)
	}
}

// LayerNormLinear returns LayerNorm(x, gain, lnBias, eps)·w + bias for x
// [N, K], gain and lnBias [K], w [K, M] and bias [M], with the same bits,
// forward and backward, as Linear(LayerNorm(x, gain, lnBias, eps), w,
// bias), but without keeping the normalised values: the backward step
// computes them again from x (the same kernel, so the same bits) in
// scratch the tape keeps.
func (tp *Tape) LayerNormLinear(x, gain, lnBias *Tensor, eps float32, w, bias *Tensor) *Tensor {
	if len(x.shape) != 2 || len(w.shape) != 2 || len(bias.shape) != 1 || x.shape[1] != w.shape[0] || bias.shape[0] != w.shape[1] {
		panic("tensor: LayerNormLinear shape mismatch")
	}
	rows, d := x.shape[0], x.shape[1]
	out := tp.tensor([]int{rows, w.shape[1]}, x.needsGrad || gain.needsGrad || lnBias.needsGrad || w.needsGrad || bias.needsGrad, false)
	y := tp.scratch(scratchLN, len(x.Data))
	mean, rstd := tp.buf(rows, false), tp.buf(rows, false)
	LayerNorm(y, mean, rstd, x.Data, gain.Data, lnBias.Data, d, eps)
	MatMulData(out.Data, out.shape, y, x.shape, w.Data, w.shape, false, false, false)
	Add(out, out, bias)
	if out.needsGrad {
		nd := tp.record(backLayerNormLinear, out)
		nd.a, nd.b, nd.c, nd.d, nd.e, nd.f = x, gain, lnBias, w, bias, eps
		nd.buf = [3][]float32{mean, rstd, tp.buf(2*d, false)}
		nd.reads = readA | readB | readC | readD
	}
	return out
}

func backLayerNormLinear(nd *node) {
	x, gain, lnBias, w, bias, g := nd.a, nd.b, nd.c, nd.d, nd.e, nd.out.Grad
	AddGrad(nil, gradOf(bias), nd.out.shape, bias.shape, g)
	normGrad := x.needsGrad || gain.needsGrad || lnBias.needsGrad
	if !normGrad && !w.needsGrad {
		return
	}
	for i, v := range g {
		if v == 0 {
			g[i] = 0 // as in backLinear: 0 + g
		}
	}
	d := x.shape[1]
	mean, rstd := nd.buf[0], nd.buf[1]
	y := nd.tp.scratch(scratchLN, len(x.Data))
	// The same mean and rstd come out again; y is the forward's.
	LayerNorm(y, mean, rstd, x.Data, gain.Data, lnBias.Data, d, nd.f)
	if w.needsGrad {
		// dW += yᵀ·dOut
		MatMulData(w.Grad, w.shape, y, x.shape, g, nd.out.shape, true, false, true)
	}
	if normGrad {
		// dy = 0 + dOut·wᵀ, accumulated into zeros as the separate value's
		// gradient would be; then LayerNorm's backward step.
		dy := y
		clear(dy)
		MatMulData(dy, x.shape, g, nd.out.shape, w.Data, w.shape, false, true, true)
		LayerNormGrad(gradOf(x), gradOf(gain), gradOf(lnBias), x.Data, gain.Data, mean, rstd, dy, nd.buf[2], d)
	}
}

// Add returns a + b with broadcasting.
func (tp *Tape) Add(a, b *Tensor) *Tensor {
	var sh [8]int
	shape, ok := broadcastShape(sh[:0], a.shape, b.shape)
	if !ok {
		panic("tensor: Add shapes do not broadcast")
	}
	out := tp.tensor(shape, a.needsGrad || b.needsGrad, false)
	Add(out, a, b)
	if out.needsGrad {
		nd := tp.record(backAdd, out)
		nd.a, nd.b = a, b
		nd.reads = 0
	}
	return out
}

func backAdd(nd *node) { AddGrad(gradOf(nd.a), gradOf(nd.b), nd.a.shape, nd.b.shape, nd.out.Grad) }

// Mul returns a * b (element-wise) with broadcasting.
func (tp *Tape) Mul(a, b *Tensor) *Tensor {
	var sh [8]int
	shape, ok := broadcastShape(sh[:0], a.shape, b.shape)
	if !ok {
		panic("tensor: Mul shapes do not broadcast")
	}
	out := tp.tensor(shape, a.needsGrad || b.needsGrad, false)
	Mul(out, a, b)
	if out.needsGrad {
		nd := tp.record(backMul, out)
		nd.a, nd.b = a, b
	}
	return out
}

func backMul(nd *node) { MulGrad(gradOf(nd.a), gradOf(nd.b), nd.a, nd.b, nd.out.Grad) }

func gradOf(t *Tensor) []float32 {
	if t.needsGrad {
		return t.Grad
	}
	return nil
}

// Scale returns s*a.
func (tp *Tape) Scale(a *Tensor, s float32) *Tensor {
	out := tp.tensor(a.shape, a.needsGrad, false)
	Scale(out.Data, a.Data, s)
	if out.needsGrad {
		nd := tp.record(backScale, out)
		nd.a, nd.f = a, s
	}
	return out
}

func backScale(nd *node) { AddScaled(nd.a.Grad, nd.out.Grad, nd.f) }

// unary applies an element-wise kernel and records back.
func (tp *Tape) unary(a *Tensor, f func(dst, x []float32), back func(*node)) *Tensor {
	out := tp.tensor(a.shape, a.needsGrad, false)
	f(out.Data, a.Data)
	if out.needsGrad {
		tp.record(back, out).a = a
	}
	return out
}

// GELU returns the tanh-approximated GELU of a. Its backward step needs
// the tanh term of every element, which it computes again (the same
// bits) rather than keeping it from the forward pass.
func (tp *Tape) GELU(a *Tensor) *Tensor {
	out := tp.tensor(a.shape, a.needsGrad, false)
	if !out.needsGrad {
		GELU(out.Data, a.Data)
		return out
	}
	GELUTanh(out.Data, tp.scratch(scratchGELU, len(a.Data)), a.Data)
	tp.record(backGELU, out).a = a
	return out
}

func backGELU(nd *node) {
	th := nd.tp.scratch(scratchGELU, len(nd.a.Data))
	// out's value is read by nobody any more (its readers' backward steps
	// have run): GELUTanh may write the same values into it again.
	GELUTanh(nd.out.Data, th, nd.a.Data)
	GELUGradTanh(nd.a.Grad, nd.a.Data, th, nd.out.Grad)
}

// ReLU returns max(a, 0).
func (tp *Tape) ReLU(a *Tensor) *Tensor { return tp.unary(a, ReLU, backReLU) }

func backReLU(nd *node) { ReLUGrad(nd.a.Grad, nd.a.Data, nd.out.Grad) }

// Tanh returns tanh(a).
func (tp *Tape) Tanh(a *Tensor) *Tensor { return tp.unary(a, Tanh, backTanh) }

func backTanh(nd *node) { TanhGrad(nd.a.Grad, nd.out.Data, nd.out.Grad) }

// Exp returns e^a.
func (tp *Tape) Exp(a *Tensor) *Tensor { return tp.unary(a, Exp, backExp) }

func backExp(nd *node) { ExpGrad(nd.a.Grad, nd.out.Data, nd.out.Grad) }

// Log returns ln a.
func (tp *Tape) Log(a *Tensor) *Tensor { return tp.unary(a, Log, backLog) }

func backLog(nd *node) { LogGrad(nd.a.Grad, nd.a.Data, nd.out.Grad) }

// Softmax returns the softmax of a along axis.
func (tp *Tape) Softmax(a *Tensor, axis int) *Tensor {
	o, n, in := axisSplit(a.shape, axis)
	out := tp.tensor(a.shape, a.needsGrad, false)
	Softmax(out.Data, a.Data, o, n, in)
	if out.needsGrad {
		nd := tp.record(backSoftmax, out)
		nd.a, nd.i[0], nd.i[1], nd.i[2] = a, o, n, in
	}
	return out
}

func backSoftmax(nd *node) {
	SoftmaxGrad(nd.a.Grad, nd.out.Data, nd.out.Grad, nd.i[0], nd.i[1], nd.i[2])
}

// LogSoftmax returns the log-softmax of a along axis.
func (tp *Tape) LogSoftmax(a *Tensor, axis int) *Tensor {
	o, n, in := axisSplit(a.shape, axis)
	out := tp.tensor(a.shape, a.needsGrad, false)
	LogSoftmax(out.Data, a.Data, o, n, in)
	if out.needsGrad {
		nd := tp.record(backLogSoftmax, out)
		nd.a, nd.i[0], nd.i[1], nd.i[2] = a, o, n, in
	}
	return out
}

func backLogSoftmax(nd *node) {
	LogSoftmaxGrad(nd.a.Grad, nd.out.Data, nd.out.Grad, nd.i[0], nd.i[1], nd.i[2])
}

// LayerNorm normalises a over its last axis and applies gain and bias
// (vectors of that axis's size).
func (tp *Tape) LayerNorm(a, gain, bias *Tensor, eps float32) *Tensor {
	d := a.shape[len(a.shape)-1]
	rows := len(a.Data) / d
	out := tp.tensor(a.shape, a.needsGrad || gain.needsGrad || bias.needsGrad, false)
	mean, rstd := tp.buf(rows, false), tp.buf(rows, false)
	LayerNorm(out.Data, mean, rstd, a.Data, gain.Data, bias.Data, d, eps)
	if out.needsGrad {
		nd := tp.record(backLayerNorm, out)
		nd.a, nd.b, nd.c = a, gain, bias
		nd.buf = [3][]float32{mean, rstd, tp.buf(2*d, false)}
	}
	return out
}

func backLayerNorm(nd *node) {
	a, gain, bias := nd.a, nd.b, nd.c
	d := a.shape[len(a.shape)-1]
	LayerNormGrad(gradOf(a), gradOf(gain), gradOf(bias), a.Data, gain.Data, nd.buf[0], nd.buf[1], nd.out.Grad, nd.buf[2], d)
}

// Embedding returns the rows of table [V, D] named by ids, as [len(ids), D].
func (tp *Tape) Embedding(table *Tensor, ids []int32) *Tensor {
	if len(table.shape) != 2 {
		panic("tensor: Embedding table must be a matrix")
	}
	d := table.shape[1]
	out := tp.tensor([]int{len(ids), d}, table.needsGrad, false)
	Embedding(out.Data, table.Data, ids, d)
	if out.needsGrad {
		nd := tp.record(backEmbedding, out)
		nd.a, nd.ids = table, ids
	}
	return out
}

func backEmbedding(nd *node) { EmbeddingGrad(nd.a.Grad, nd.out.Grad, nd.ids, nd.a.shape[1]) }

// MaskCausal returns a ([..., T, T]) with every element above the diagonal
// set to -Inf, for causal attention.
func (tp *Tape) MaskCausal(a *Tensor) *Tensor {
	t := a.shape[len(a.shape)-1]
	if len(a.shape) < 2 || a.shape[len(a.shape)-2] != t {
		panic("tensor: MaskCausal needs square matrices")
	}
	out := tp.tensor(a.shape, a.needsGrad, false)
	MaskCausal(out.Data, a.Data, t)
	if out.needsGrad {
		tp.record(backMaskCausal, out).a = a
	}
	return out
}

func backMaskCausal(nd *node) { MaskCausalGrad(nd.a.Grad, nd.out.Grad, nd.a.shape[len(nd.a.shape)-1]) }

// Reshape returns a view of a with another shape of the same size; it
// shares a's values and gradient.
func (tp *Tape) Reshape(a *Tensor, shape ...int) *Tensor {
	if numel(shape) != len(a.Data) {
		panic("tensor: Reshape size mismatch")
	}
	return tp.view(a, 0, shape)
}

// Index returns a view of a[i], the i-th block along the first axis.
func (tp *Tape) Index(a *Tensor, i int) *Tensor {
	if len(a.shape) < 1 || i < 0 || i >= a.shape[0] {
		panic("tensor: Index out of range")
	}
	s := len(a.Data) / a.shape[0]
	return tp.view(a, i*s, a.shape[1:])
}

// Permute returns a with its axes reordered: axis i of the result is axis
// perm[i] of a. Transpose of a matrix is Permute(a, 1, 0). At most eight
// axes.
func (tp *Tape) Permute(a *Tensor, perm ...int) *Tensor {
	if len(perm) != len(a.shape) || len(perm) > 8 {
		panic("tensor: Permute rank mismatch")
	}
	var sh [8]int
	shape := sh[:len(perm)]
	for i, p := range perm {
		if p < 0 || p >= len(perm) {
			panic("tensor: Permute invalid permutation")
		}
		shape[i] = a.shape[p]
	}
	out := tp.tensor(shape, a.needsGrad, false)
	Permute(out, a, perm)
	if out.needsGrad {
		nd := tp.record(backPermute, out)
		nd.a = a
		copy(nd.i[:], perm)
	}
	return out
}

func backPermute(nd *node) {
	PermuteGrad(nd.a.Grad, nd.a.shape, nd.out.Grad, nd.i[:len(nd.a.shape)])
}

// Sum returns the sum of all elements of a (lane order, see Sum).
func (tp *Tape) Sum(a *Tensor) *Tensor {
	out := tp.tensor([]int{1}, a.needsGrad, false)
	out.Data[0] = Sum(a.Data)
	if out.needsGrad {
		nd := tp.record(backSum, out)
		nd.a, nd.f = a, 1
	}
	return out
}

// Mean returns the mean of all elements of a.
func (tp *Tape) Mean(a *Tensor) *Tensor {
	out := tp.tensor([]int{1}, a.needsGrad, false)
	n := float32(len(a.Data))
	out.Data[0] = Sum(a.Data) / n
	if out.needsGrad {
		nd := tp.record(backSum, out)
		nd.a, nd.f = a, n
	}
	return out
}

// backSum spreads the gradient of a sum divided by nd.f.
func backSum(nd *node) {
	g := nd.out.Grad[0] / nd.f
	for i := range nd.a.Grad {
		nd.a.Grad[i] += g
	}
}

// SumAxis returns the sum of a along axis, which is removed from the shape.
func (tp *Tape) SumAxis(a *Tensor, axis int) *Tensor {
	return tp.reduceAxis(a, axis, 1)
}

// MeanAxis returns the mean of a along axis, which is removed from the shape.
func (tp *Tape) MeanAxis(a *Tensor, axis int) *Tensor {
	_, n, _ := axisSplit(a.shape, axis)
	return tp.reduceAxis(a, axis, n)
}

func (tp *Tape) reduceAxis(a *Tensor, axis, div int) *Tensor {
	if axis < 0 {
		axis += len(a.shape)
	}
	o, n, in := axisSplit(a.shape, axis)
	shape := make([]int, 0, len(a.shape)-1)
	shape = append(append(shape, a.shape[:axis]...), a.shape[axis+1:]...)
	out := tp.tensor(shape, a.needsGrad, false)
	SumAxis(out.Data, a.Data, o, n, in)
	if div != 1 {
		Scale(out.Data, out.Data, 1/float32(div))
	}
	if out.needsGrad {
		nd := tp.record(backReduceAxis, out)
		nd.a, nd.i[0], nd.i[1], nd.i[2], nd.f = a, o, n, in, 1/float32(div)
	}
	return out
}

func backReduceAxis(nd *node) {
	o, n, in := nd.i[0], nd.i[1], nd.i[2]
	for i := 0; i < o; i++ {
		for j := 0; j < n; j++ {
			AddScaled(nd.a.Grad[(i*n+j)*in:(i*n+j+1)*in], nd.out.Grad[i*in:(i+1)*in], nd.f)
		}
	}
}

// SumAxis writes into dst (outer*inner elements) the sums of x, viewed as
// [outer, n, inner], over its middle axis, each in the lane order of Sum.
func SumAxis(dst, x []float32, outer, n, inner int) {
	checkRows(len(x), outer, n, inner)
	if len(dst) != outer*inner {
		panic("tensor: SumAxis shape mismatch")
	}
	row := make([]float32, n)
	for o := 0; o < outer; o++ {
		for k := 0; k < inner; k++ {
			for j := 0; j < n; j++ {
				row[j] = x[(o*n+j)*inner+k]
			}
			dst[o*inner+k] = Sum(row)
		}
	}
}

// CrossEntropy returns the mean over rows of logits [N, V] of the
// negative log-likelihood of targets (N class indices), fused with the
// softmax: its gradient is (softmax - onehot)/N.
func (tp *Tape) CrossEntropy(logits *Tensor, targets []int32) *Tensor {
	if len(logits.shape) != 2 || logits.shape[0] != len(targets) {
		panic("tensor: CrossEntropy shape mismatch")
	}
	v := logits.shape[1]
	probs := tp.buf(len(logits.Data), false)
	total := CrossEntropy(probs, logits.Data, targets, v)
	out := tp.tensor([]int{1}, logits.needsGrad, false)
	out.Data[0] = float32(total / float64(len(targets)))
	if out.needsGrad {
		nd := tp.record(backCrossEntropy, out)
		nd.a, nd.ids, nd.buf[0] = logits, targets, probs
	}
	return out
}

func backCrossEntropy(nd *node) {
	n := len(nd.ids)
	CrossEntropyGrad(nd.a.Grad, nd.buf[0], nd.ids, nd.a.shape[1], nd.out.Grad[0]/float32(n))
}

// SoftTargetKL returns the distillation loss of student logits [N, V]
// against a teacher's logits of the same shape, softened by temperature T:
//
//	T² · (1/N) Σ_rows KL(softmax(teacher/T) || softmax(logits/T))
//
// The factor T² (Hinton et al.) keeps the gradient, T·(q - p)/N with q and
// p the softened student and teacher distributions, of the same size as
// T changes, so that the loss can be mixed with a cross-entropy at any
// temperature. The teacher receives no gradient; its values are read only
// here, so it may live on another tape (an inference tape, say) that is
// reset before Backward runs. The kernel is SoftTargetKL, whose total is
// summed in float64 in row order, like CrossEntropy's.
func (tp *Tape) SoftTargetKL(logits, teacher *Tensor, temperature float32) *Tensor {
	if len(logits.shape) != 2 || len(teacher.shape) != 2 || logits.shape[0] != teacher.shape[0] || logits.shape[1] != teacher.shape[1] {
		panic("tensor: SoftTargetKL shape mismatch")
	}
	n, v := logits.shape[0], logits.shape[1]
	diff := tp.buf(len(logits.Data), false)
	total := SoftTargetKL(diff, tp.scratch(scratchKL, 2*v), logits.Data, teacher.Data, v, temperature)
	out := tp.tensor([]int{1}, logits.needsGrad, false)
	out.Data[0] = float32(float64(float32(temperature*temperature)) * total / float64(n))
	if !out.needsGrad {
		tp.release(diff)
		return out
	}
	nd := tp.record(backSoftTargetKL, out)
	nd.a, nd.f, nd.buf[0] = logits, temperature, diff
	// The backward step reads the kept q - p, not the logits' values.
	nd.reads = 0
	return out
}

func backSoftTargetKL(nd *node) {
	// d loss/d logits = T²/N · (q - p)/T.
	scale := float32(nd.out.Grad[0]*nd.f) / float32(nd.a.shape[0])
	SoftTargetKLGrad(nd.a.Grad, nd.buf[0], scale)
}
