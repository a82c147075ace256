package wire

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/shoal-network/shoal/tracker/round"
)

// Audits returns the included updates of a Close that the round audits,
// in the Close's order: each independently with probability
// s.VerificationRate, picked by a hash of the round's seed, the Close's
// canonical encoding (with Epoch, which a restarted tracker changes, and
// Term, which a group's new leader changes, set to 0) and the update's
// place in the Close. It is a pure function of the spec and the Close,
// so every peer can recompute it.
//
// The updates were sent before the Close existed, and the Close depends
// on the payload CID of every update it includes and on its AuditKey, a
// secret of the tracker's for the step that it reveals only in the Close:
// a worker that lies on a unit cannot tell, when it sends the update,
// whether the unit will be audited, as it could tell from the Open
// whether the unit is replicated. Without an AuditKey (a tracker given
// no secret) a worker that sends last, having seen every other update,
// could predict the Close and grind its own payload until its update is
// not picked. The tracker audits the picked updates that no replica
// confirmed.
func Audits(s *round.Spec, c *Close) []Included {
	r := s.VerificationRate
	if !(r > 0) || len(c.Included) == 0 {
		return nil
	}
	canon := *c
	canon.Epoch, canon.Term = 0, 0
	b, err := Marshal(&canon)
	if err != nil {
		return nil // not a Close that can be published
	}
	var data [sha256.Size + 4]byte
	digest := sha256.Sum256(b)
	copy(data[:], digest[:])
	var out []Included
	for i, in := range c.Included {
		binary.LittleEndian.PutUint32(data[sha256.Size:], uint32(i))
		h := round.AssignHash(s.Seed, c.Step, 'a', data[:])
		// h>>11 is uniform in [0, 2^53): below r·2^53 with probability r.
		if r >= 1 || float64(h>>11) < r*(1<<53) {
			out = append(out, in)
		}
	}
	return out
}
