package aggregate

import (
	"slices"
	"testing"
)

// TestNetworkZeroOne checks the sorting networks by the 0-1 principle: a
// comparator network sorts every input if it sorts every input of zeros
// and ones.
func TestNetworkZeroOne(t *testing.T) {
	for n := 1; n <= 18; n++ {
		net := sortingNetwork(n, nil)
		w := 1 << n
		keys := make([]int32, n*w)
		for x := range w {
			for p := range n {
				keys[p*w+x] = int32(x >> p & 1)
			}
		}
		applyNetwork(keys, w, w, net)
		for x := range w {
			for p := 1; p < n; p++ {
				if keys[(p-1)*w+x] > keys[p*w+x] {
					t.Fatalf("n %d: input %b is not sorted", n, x)
				}
			}
		}
	}
}

// TestNetworkSelect checks full and pruned networks on random inputs with
// many ties, for the outputs they keep.
func TestNetworkSelect(t *testing.T) {
	r := newRand(800)
	for _, n := range []int{1, 2, 3, 5, 8, 17, 24, 30, 33, 64, 100, 129} {
		for _, want := range [][2]int{{0, n}, {n / 2, n/2 + 1}, {(n - 1) / 2, n/2 + 1}, {n / 5, n - n/5}} {
			mask := make([]bool, n)
			for p := want[0]; p < want[1]; p++ {
				mask[p] = true
			}
			net := sortingNetwork(n, mask)
			const w = 37
			keys := make([]int32, n*w)
			for i := range keys {
				keys[i] = int32(r.IntN(2*n)) - int32(n)
			}
			cols := make([][]int32, w)
			for j := range cols {
				for p := range n {
					cols[j] = append(cols[j], keys[p*w+j])
				}
				slices.Sort(cols[j])
			}
			applyNetwork(keys, w, w, net)
			for j := range cols {
				for p := want[0]; p < want[1]; p++ {
					if keys[p*w+j] != cols[j][p] {
						t.Fatalf("n %d outputs %v: position %d of column %d is %d, want %d", n, want, p, j, keys[p*w+j], cols[j][p])
					}
				}
			}
		}
	}
	if full, med := len(sortingNetwork(8, nil)), len(sortingNetwork(9, []bool{4: true})); full != 19 || med >= 25 {
		t.Errorf("comparators: sort 8 %d (want 19), median of 9 %d", full, med)
	}
}
