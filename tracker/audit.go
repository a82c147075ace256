package tracker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"slices"

	"github.com/shoal-network/shoal/tracker/wire"
)

// AuditSteps is how many steps after its own an audit waits for a
// checker: an audit of step s is asked in the Opens of steps s+1 to
// s+AuditSteps and then dropped, unsettled. A node keeps the updates of
// its last node.Retention−1 steps, so a checker asked later could not
// have the author's update to judge; and audits that cannot be asked
// (more than wire.MaxChecks per Open, or no eligible checker) do not
// pile up. Every audit dropped is a lie that may go uncaught: the
// escape probability (1−r)^k assumes each audit is settled.
const AuditSteps = 3

// audit records the audits of the closed step as it is finalised: the
// updates of its Close that wire.Audits picks, but for those whose unit
// a replica confirmed (a verified pair). Each becomes a Dispute of one
// author, settled like any other by a third computation: the author is
// excluded if the checker's raw pseudo-gradient differs from its own,
// or if its payload does not follow from its residual (or the residual
// is not served).
func (t *Tracker) audit() {
	st := t.st
	picked := wire.Audits(t.spec, st.Close)
	if len(picked) == 0 {
		return
	}
	verified := make(map[uint32]bool, len(st.Verified))
	for _, p := range st.Verified {
		verified[p.Unit] = true
	}
	for _, in := range picked {
		var u *wire.Update
		d := &Dispute{Step: st.Step, Attempt: st.Attempt, Unit: in.Unit, Base: st.Base, Peers: [2]string{in.Peer, ""}, Audit: true}
		// A late update of the step before (see late.go) is audited as
		// an update of its own step; no replica confirmed it.
		for _, m := range st.Merged {
			if m.Peer == in.Peer && m.Update.Unit == in.Unit && m.Update.Payload.Equals(in.Payload) {
				u, d.Step, d.Attempt, d.Base = m.Update, m.Step, m.Attempt, m.Base
			}
		}
		if u == nil && verified[in.Unit] {
			continue
		}
		for r := range uint8(2) {
			k := unitCopy{in.Unit, r}
			if up := t.updates[k]; u == nil && up != nil && t.assigned[k] == in.Peer && up.Payload.Equals(in.Payload) {
				u = up
			}
		}
		if u == nil {
			continue // not an update of this step's deal (a state damaged outside the tracker)
		}
		d.Raws = [2]string{u.Raw.String(), ""}
		st.Disputes = append(st.Disputes, d)
		t.event(wire.EventAudit, st.Step, in.Peer, "unit %d: audit of the update of %s", in.Unit, in.Peer)
	}
}

// dropStaleAudits drops the audits older than AuditSteps steps.
func (t *Tracker) dropStaleAudits() {
	st := t.st
	st.Disputes = slices.DeleteFunc(st.Disputes, func(d *Dispute) bool { return d.Audit && d.Step+AuditSteps < st.Step })
}

// auditKey returns the Close's AuditKey for a step and attempt: an HMAC
// of the round, step and attempt under Config.AuditSecret, so that a
// restarted tracker reveals the same key for the same Close; nil without
// a secret.
func (t *Tracker) auditKey(step uint64, attempt uint32) []byte {
	if len(t.cfg.AuditSecret) == 0 {
		return nil
	}
	mac := hmac.New(sha256.New, t.cfg.AuditSecret)
	mac.Write([]byte("shoal audit key\x00"))
	mac.Write(t.round.Bytes())
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:], step)
	binary.LittleEndian.PutUint32(b[8:], attempt)
	mac.Write(b[:])
	return mac.Sum(nil)
}
