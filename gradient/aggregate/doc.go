// Package aggregate combines the updates of a step's contributors into one
// update, by one of a few rules, identically on every machine.
//
// # Input
//
// A Contribution is one contributor's update, dense ([]float32) or sparse
// (strictly increasing uint32 indices with their values), with the number
// of samples it was computed on as its weight and its peer and content IDs.
// Canonical sorts contributions by (Peer, ID); the protocol aggregates them
// in that order. A Rule writes the aggregate into a destination slice of
// the updates' length and returns a Report of what it did per contributor.
// Parse turns a round's rule spec into a Rule; a Rule's Name is its
// canonical spec.
//
// # Rules
//
//	mean                 Σ w_i·x_i / Σ w_i, weighted by samples.
//	mean:partial=true    per coordinate, the weighted mean over the
//	                     contributions that hold it: every dense one and
//	                     the sparse ones that list it (Σ_{i∋j} w_i·x_ij /
//	                     Σ_{i∋j} w_i; 0 where none does). A coordinate
//	                     that few contributors sent is not diluted by the
//	                     zeros of those that did not. With dense
//	                     contributions only it is the mean, bit for bit.
//	median               coordinate-wise median, unweighted; for an even
//	                     count the mean of the two middle values.
//	trimmed-mean:trim=t  coordinate-wise: drop the ⌊t·n⌋ largest and the
//	                     ⌊t·n⌋ smallest of the n values, average the rest
//	                     (unweighted).
//	norm-clip:max=b      scale each x_i with ‖x_i‖ > b down to norm b, then
//	                     the weighted mean; max=median (or plain norm-clip)
//	                     uses the median of the norms as b; with
//	                     partial=true the clipped mean is partial, as
//	                     for mean; with screen=true (from three
//	                     contributions up) a clipped contribution whose
//	                     inner product with the sum of the others'
//	                     clipped contributions is not positive is left
//	                     out of the mean (Report.Screened): it points
//	                     against what the others agree on, as a
//	                     sign-flipped update does. Where coordinates have
//	                     too few senders for a coordinate-wise majority
//	                     (sparse updates), this screen still sees each
//	                     contributor's direction as a whole.
//	centered-clip:tau=τ,iters=L
//	                     centered clipping (Karimireddy, He & Jaggi 2021),
//	                     unweighted: L times v ← v + (1/n) Σ_i c_i·(x_i − v)
//	                     with c_i = min(1, τ/‖x_i − v‖), starting from the
//	                     coordinate-wise median (CenteredClip.AggregateFrom
//	                     takes another start, such as the previous
//	                     aggregate); tau=median uses, at each iteration, the
//	                     median of the distances ‖x_i − v‖.
//
// The weights of the unweighted rules are validated but otherwise unused.
//
// # Invalid and non-finite input
//
// No contributions, a length that differs from the destination's, a weight
// that is not a positive finite number, a contribution both dense and
// sparse, and a sparse index out of range or not increasing are errors
// (wrapping ErrInvalid), as are out-of-range rule parameters; a rule never
// panics on them and leaves the destination unchanged. A contribution with
// a NaN or infinite value is not an error: every rule leaves it out and
// lists its peer in Report.Excluded, so one bad contributor cannot stop a
// step; if every contribution is left out the rule returns ErrAllExcluded.
//
// # Determinism
//
// For a given input order the result is the same bits on every machine and
// for every GOMAXPROCS:
//
//   - Sums of products (the means, clipping) are accumulated in float64,
//     per coordinate in contribution order starting from +0, with every
//     product rounded to float64 before it is added (float64(a*b) + c, so
//     no compiler may fuse it), and rounded once to float32 at the end.
//   - Norms and distances are float64 sums of squares over the coordinates
//     in a fixed eight-lane order (coordinate j into lane j mod 8, lanes
//     combined pairwise), then math.Sqrt, which is correctly rounded.
//   - Median and trimmed mean sort each coordinate's values by a total
//     order on their bits (numeric order, -0 just below +0), so the sorted
//     sequence is the same bits whatever the order of the contributions,
//     and equal values cannot be told apart by where they came from. The
//     mean of the two middle values (even count) and the sum of the kept
//     values (trimmed mean, in ascending order) are taken in float64 and
//     rounded once. These two rules are therefore invariant under any
//     permutation of the contributions, not only after Canonical. The sort
//     is a Batcher odd-even merge network, pruned to the outputs needed,
//     run branch-free over a block of coordinates at a time; nothing is
//     allocated per coordinate.
//   - Work is split over goroutines by coordinate ranges (and, for norms
//     and distances, by contribution); every coordinate and every norm is
//     computed start to finish by one goroutine, so the split does not
//     matter. No map iteration affects a result.
//
// Except under partial=true, whose very point is to tell a listed entry
// from an unlisted one, a sparse contribution gives the same bits as its
// dense form: the mean and
// norm-clip add only its listed entries (the zeros they skip could not
// change a float64 sum that starts at +0, which never becomes -0), the
// norms skip its zeros in the same lanes, and the median, trimmed mean and
// centered clipping read it coordinate by coordinate (the median and
// trimmed mean give +0 for any zero result, so a -0 in a dense form does not
// matter). The mean and norm-clip cost O(nnz) per sparse contribution and
// O(length) for the destination; the others O(length) per contribution.
//
// No rule writes -0 into the destination.
//
// # Cost
//
// Every rule first reads every contribution once for its norm (which also
// finds non-finite values). The mean and norm-clip then make one more pass;
// centered clipping computes the median and then, per iteration, a
// distance pass and an update pass. Work is spread over GOMAXPROCS
// goroutines when there is enough of it.
package aggregate
