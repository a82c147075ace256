//go:build amd64 && !noasm

package cpu

import "testing"

// TestDetect checks that the features read at start are what the CPU
// reports now.
func TestDetect(t *testing.T) {
	t.Logf("AVX2: %v, FMA: %v, AVX-512F: %v", HasAVX2(), HasFMA(), HasAVX512F())
	if HasAVX2() != detectAVX2() || HasFMA() != (detectAVX2() && detectFMA()) || HasAVX512F() != detectAVX512F() {
		t.Errorf("cached AVX2 %v, FMA %v, AVX-512F %v; detected now %v, %v, %v", HasAVX2(), HasFMA(), HasAVX512F(), detectAVX2(), detectFMA(), detectAVX512F())
	}
}
