package aggregate

// comparator orders positions lo < hi of a sequence: afterwards position
// lo holds the smaller value and hi the larger.
type comparator struct{ lo, hi int }

// sortingNetwork returns Batcher's odd-even merge sorting network for n
// values, keeping only the comparators that the outputs want[p] (or every
// output if want is nil) depend on. The network is built for the next
// power of two; comparators reaching past n are dropped, which is the same
// as padding the input with values larger than any real one.
func sortingNetwork(n int, want []bool) []comparator {
	size := 1
	for size < n {
		size <<= 1
	}
	var net []comparator
	for p := 1; p < size; p <<= 1 {
		for k := p; k >= 1; k >>= 1 {
			for j := k % p; j+k < size; j += 2 * k {
				for i := 0; i < k && i+j+k < size; i++ {
					a, b := i+j, i+j+k
					if a/(2*p) == b/(2*p) && b < n {
						net = append(net, comparator{a, b})
					}
				}
			}
		}
	}
	if want == nil {
		return net
	}
	// Walk backwards from the wanted outputs, keeping each comparator that
	// writes a position some kept comparator or output reads.
	need := make([]bool, n)
	copy(need, want)
	kept := make([]bool, len(net))
	count := 0
	for c := len(net) - 1; c >= 0; c-- {
		if need[net[c].lo] || need[net[c].hi] {
			need[net[c].lo], need[net[c].hi] = true, true
			kept[c] = true
			count++
		}
	}
	pruned := make([]comparator, 0, count)
	for c, ok := range kept {
		if ok {
			pruned = append(pruned, net[c])
		}
	}
	return pruned
}

// applyNetwork runs net over w sequences at once: sequence j holds
// keys[p*stride+j] at position p.
func applyNetwork(keys []int32, stride, w int, net []comparator) {
	for _, c := range net {
		x := keys[c.lo*stride : c.lo*stride+w]
		y := keys[c.hi*stride : c.hi*stride+w]
		y = y[:len(x)]
		for j, a := range x {
			b := y[j]
			x[j] = min(a, b)
			y[j] = max(a, b)
		}
	}
}
