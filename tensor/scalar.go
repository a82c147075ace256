package tensor

import "github.com/shoal-network/shoal/tensor/internal/f32"

// Exp32 returns e^x computed with this package's deterministic float32
// exponential (the same bits on every architecture).
func Exp32(x float32) float32 { return f32.Exp(x) }

// Log32 returns ln x computed with this package's deterministic float32
// logarithm.
func Log32(x float32) float32 { return f32.Log(x) }

// Tanh32 returns tanh x computed with this package's deterministic float32
// hyperbolic tangent.
func Tanh32(x float32) float32 { return f32.Tanh(x) }

// Sqrt32 returns the correctly rounded float32 square root of x.
func Sqrt32(x float32) float32 { return sqrt32(x) }
