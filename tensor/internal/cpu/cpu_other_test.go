//go:build !amd64 || noasm

package cpu

import "testing"

// TestNoFeatures checks that a build without assembly claims no feature.
func TestNoFeatures(t *testing.T) {
	if HasAVX2() || HasAVX512F() {
		t.Errorf("AVX2 %v, AVX-512F %v in a build without assembly", HasAVX2(), HasAVX512F())
	}
}
