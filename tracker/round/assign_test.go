package round

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
)

func peers(n int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("peer-%03d", i)
	}
	return ps
}

// checkAssignment checks the invariants Assign promises.
func checkAssignment(t *testing.T, as []Assignment, members []string, units int, replicate float64) {
	t.Helper()
	set := map[string]bool{}
	for _, m := range members {
		set[m] = true
	}
	n := len(set)
	wantR := 0
	if n > 1 {
		wantR = int(math.Round(replicate * float64(units)))
	}
	if len(as) != units+wantR {
		t.Fatalf("%d members, %d units, rate %g: %d copies, want %d", n, units, replicate, len(as), units+wantR)
	}
	load := map[string]int{}
	copies := make([][]string, units)
	for i, a := range as {
		if i > 0 && (a.Unit < as[i-1].Unit || a.Unit == as[i-1].Unit && a.Replica <= as[i-1].Replica) {
			t.Fatalf("not sorted by unit and replica at %d: %+v", i, as[i-1:i+1])
		}
		if !set[a.Peer] {
			t.Fatalf("unit %d given to non-member %q", a.Unit, a.Peer)
		}
		if a.Replica != len(copies[a.Unit]) {
			t.Fatalf("unit %d: copy %d has replica %d", a.Unit, len(copies[a.Unit]), a.Replica)
		}
		copies[a.Unit] = append(copies[a.Unit], a.Peer)
		load[a.Peer]++
	}
	r := 0
	for u, c := range copies {
		switch len(c) {
		case 1:
		case 2:
			r++
			if c[0] == c[1] {
				t.Fatalf("unit %d replicated on one peer %s", u, c[0])
			}
		default:
			t.Fatalf("unit %d has %d copies", u, len(c))
		}
	}
	if r != wantR {
		t.Fatalf("%d units replicated, want %d", r, wantR)
	}
	lo, hi := len(as)/n, (len(as)+n-1)/n
	for m := range set {
		if load[m] < lo || load[m] > hi {
			t.Fatalf("member %s has %d copies, want %d or %d", m, load[m], lo, hi)
		}
	}
}

func TestAssignInvariants(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 50} {
		for _, units := range []int{1, 2, 5, 16, 101} {
			for _, rate := range []float64{0, 0.05, 0.1, 1.0 / 3, 0.5, 0.99, 1} {
				for step := range uint64(3) {
					as := Assign(42, step, peers(n), units, rate)
					checkAssignment(t, as, peers(n), units, rate)
				}
			}
		}
	}
}

func TestAssignDeterministic(t *testing.T) {
	ms := peers(9)
	a := Assign(7, 3, ms, 40, 0.2)
	// Members are a set: order and repeats do not matter.
	shuffled := slices.Clone(ms)
	slices.Reverse(shuffled)
	shuffled = append(shuffled, ms[2], ms[5])
	if b := Assign(7, 3, shuffled, 40, 0.2); !reflect.DeepEqual(a, b) {
		t.Errorf("member order or repeats changed the assignment")
	}
	if !slices.Equal(ms, peers(9)) {
		t.Errorf("Assign modified its members")
	}
	for _, c := range []struct {
		name       string
		seed, step uint64
	}{{"step", 7, 4}, {"seed", 8, 3}} {
		if b := Assign(c.seed, c.step, ms, 40, 0.2); reflect.DeepEqual(a, b) {
			t.Errorf("another %s gave the same assignment", c.name)
		}
	}
	if Assign(1, 1, nil, 10, 0.5) != nil || Assign(1, 1, ms, 0, 0.5) != nil {
		t.Errorf("no members or no units: want nil")
	}
}

// TestAssignGolden pins one assignment: every node must compute the same
// one, whatever its version.
func TestAssignGolden(t *testing.T) {
	got := Assign(1, 0, []string{"a", "b", "c"}, 5, 0.4)
	want := []Assignment{
		{0, "c", 0}, {1, "a", 0}, {2, "b", 0}, {2, "c", 1}, {3, "a", 0}, {3, "b", 1}, {4, "c", 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Assign(1, 0, [a b c], 5, 0.4) =\n%v\nwant\n%v", got, want)
	}
}

// TestAssignFair checks, over many steps, that every member computes about
// as many first copies as the others and that every unit is replicated
// about as often as the rate says.
func TestAssignFair(t *testing.T) {
	const (
		steps = 2000
		units = 10
		n     = 4
		rate  = 0.3
	)
	first := map[string]int{}
	replicated := make([]int, units)
	for step := range uint64(steps) {
		for _, a := range Assign(99, step, peers(n), units, rate) {
			if a.Replica == 0 {
				first[a.Peer]++
			} else {
				replicated[a.Unit]++
			}
		}
	}
	for p, c := range first {
		if want := steps * units / n; math.Abs(float64(c-want)) > 0.05*float64(want) {
			t.Errorf("member %s computed %d first copies, want about %d", p, c, want)
		}
	}
	for u, c := range replicated {
		if want := rate * steps; math.Abs(float64(c)-want) > 0.15*want {
			t.Errorf("unit %d replicated in %d steps, want about %g", u, c, want)
		}
	}
}

func TestAssignPanics(t *testing.T) {
	for _, c := range []struct {
		units int
		rate  float64
	}{{-1, 0}, {1, -0.1}, {1, 1.1}, {1, math.NaN()}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("units %d rate %g: no panic", c.units, c.rate)
				}
			}()
			Assign(0, 0, peers(2), c.units, c.rate)
		}()
	}
}

func BenchmarkAssign(b *testing.B) {
	ms := peers(1000)
	for b.Loop() {
		Assign(1, 2, ms, 5000, 0.05)
	}
}
