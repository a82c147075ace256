package round

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
)

// Assignment gives one copy of a work unit to one peer.
type Assignment struct {
	Unit    int    // work unit, 0 to units-1
	Peer    string // the member that computes it
	Replica int    // 0 for the unit's first copy, 1 for its verification copy
}

// Assign deals the work units of one step out to the members of a round,
// as a pure function of its arguments: every tracker and peer that knows
// them computes the same assignment.
//
// Members are a set: their order and repetitions do not matter. Each step
// orders them by a hash of (seed, step, peer ID) and, of the units, chooses
// round(replicate × units) by a hash of (seed, step, unit) to be computed
// twice; no unit is replicated when there is only one member. The copies,
// unit by unit with a unit's second copy right after its first, go to the
// members in that order, round robin. So:
//
//   - every unit has one copy, and a replicated unit two, on distinct peers;
//   - every member gets ⌊c/n⌋ or ⌈c/n⌉ of the c copies (n members);
//   - exactly round(replicate × units) units are replicated.
//
// The result is sorted by unit, then replica. It is nil if there are no
// members or no units. Assign panics if units is negative or replicate is
// not in [0, 1].
//
// Which units are replicated is as public as the seed: a peer that knows
// the seed can tell whether its unit will be checked. A tracker that needs
// the check to be a surprise passes a seed it reveals only when the step
// closes.
func Assign(seed, step uint64, members []string, units int, replicate float64) []Assignment {
	if units < 0 {
		panic("tracker: Assign: negative number of units")
	}
	if !(replicate >= 0 && replicate <= 1) {
		panic("tracker: Assign: replicate out of [0, 1]")
	}
	peers := slices.Clone(members)
	slices.Sort(peers)
	peers = slices.Compact(peers)
	if len(peers) == 0 || units == 0 {
		return nil
	}
	type ranked struct {
		key  uint64
		peer string
	}
	order := make([]ranked, len(peers))
	for i, p := range peers {
		order[i] = ranked{AssignHash(seed, step, 'p', []byte(p)), p}
	}
	slices.SortFunc(order, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.peer, b.peer))
	})

	replicated := make([]bool, units)
	if r := int(math.Round(replicate * float64(units))); r > 0 && len(peers) > 1 {
		byKey := make([]int, units)
		keys := make([]uint64, units)
		var b [8]byte
		for u := range units {
			byKey[u] = u
			binary.LittleEndian.PutUint64(b[:], uint64(u))
			keys[u] = AssignHash(seed, step, 'u', b[:])
		}
		slices.SortFunc(byKey, func(a, b int) int { return cmp.Or(cmp.Compare(keys[a], keys[b]), cmp.Compare(a, b)) })
		for _, u := range byKey[:r] {
			replicated[u] = true
		}
	}

	out := make([]Assignment, 0, units+units/2)
	next := 0
	give := func(u, replica int) {
		out = append(out, Assignment{Unit: u, Peer: order[next%len(order)].peer, Replica: replica})
		next++
	}
	for u := range units {
		give(u, 0)
		if replicated[u] {
			give(u, 1)
		}
	}
	return out
}

// AssignHash hashes (seed, step, kind, data) to 64 bits: the first 8 bytes,
// big endian, of the sha2-256 of "shoal/as", seed and step (little endian),
// kind and data.
func AssignHash(seed, step uint64, kind byte, data []byte) uint64 {
	h := sha256.New()
	var b [8 + 8 + 8 + 1]byte
	copy(b[:8], "shoal/as")
	binary.LittleEndian.PutUint64(b[8:], seed)
	binary.LittleEndian.PutUint64(b[16:], step)
	b[24] = kind
	h.Write(b[:])
	h.Write(data)
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}
