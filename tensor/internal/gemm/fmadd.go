package gemm

// fmadd returns x*y + z rounded once to float32, as fma.FMA32 does, except
// that a NaN result may carry any payload (callers make NaNs canonical):
// fmaFast when it is right, fmaSlow otherwise (see fmadd_fused.go and
// fmadd_soft.go for the two builds).
func fmadd(x, y, z float32) float32 {
	if r, ok := fmaFast(x, y, z); ok {
		return r
	}
	return fmaSlow(x, y, z)
}
