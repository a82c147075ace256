// Package tensor provides dense float32 tensors, the kernels a transformer
// needs, and a tape-based reverse-mode autograd over them.
//
// Contract:
//
//   - Determinism. Every kernel has a fixed evaluation order: the same inputs
//     give bit-identical outputs whatever GOMAXPROCS is, however work is split
//     across goroutines, and on every architecture. Products that feed an
//     addition are rounded explicitly (float32(a*b) + c) so no compiler may
//     fuse them; exp, log and tanh come from this module's own float32
//     implementations rather than the standard library's, whose assembly
//     differs between architectures. Reductions use the lane order of Sum.
//   - Kernels write into a destination and never modify their inputs. Shape
//     mismatches are programmer errors and panic with a constant message.
//   - A Tape records the backward closure of every operation it performs and
//     allocates its intermediate tensors from an arena that Reset rewinds, so
//     a training step that repeats the same program allocates nothing after
//     its first run. Tensors returned by a Tape are valid until its Reset.
//
// The package imports only the standard library.
package tensor
