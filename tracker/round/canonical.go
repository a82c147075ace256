package round

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// Canonical returns the canonical encoding of the spec: compact JSON (RFC
// 8259) with the keys of every object in sorted order, no insignificant
// whitespace and no HTML escaping, holding every field of the schema with
// its YAML name, defaults included:
//
//   - integers in decimal; other numbers in the shortest form that reads
//     back to the same float64 (encoding/json's), negative zero as 0;
//   - deadline as a Go duration string ("1m30s", time.Duration.String);
//   - codec and aggregation in canonical form (CanonicalCodec,
//     CanonicalRule), tracker peer IDs in base58btc (CanonicalPeerID), CIDs
//     in their default string form (base32 for CIDv1);
//   - init_checkpoint null when there is none; tokenizer, adapter and
//     teacher only when there is one, feedback_decay, late_weight and
//     grace only when not 0, quorum only when below 1
//     (so that the rounds before them keep their IDs), an adapter's
//     targets sorted; name and
//     description trimmed of surrounding white space;
//   - model fields of the other architecture left out (heads for mlp;
//     hidden and window for gpt).
//
// The encoding is also a valid YAML spec: Parse reads it back to the same
// spec. It is meaningful for a valid spec; for an invalid one it is some
// deterministic encoding of what the spec holds.
func (s *Spec) Canonical() []byte {
	m := s.Model
	model := map[string]any{
		"arch":   m.Arch,
		"vocab":  m.Vocab,
		"ctx":    m.Ctx,
		"dim":    m.Dim,
		"layers": m.Layers,
		"seed":   m.Seed,
	}
	if m.Arch != ArchMLP && (m.Arch == ArchGPT || m.Heads != 0) {
		model["heads"] = m.Heads
	}
	if m.Arch != ArchGPT && (m.Arch == ArchMLP || m.Hidden != 0 || m.Window != 0) {
		model["hidden"] = m.Hidden
		model["window"] = m.Window
	}
	trackers := make([]string, len(s.Trackers))
	for i, t := range s.Trackers {
		trackers[i] = canonicalOr(t, CanonicalPeerID)
	}
	var init any
	if s.InitCheckpoint.Defined() {
		init = s.InitCheckpoint.String()
	}
	in := s.Inner
	doc := map[string]any{
		"version":     s.Version,
		"name":        strings.TrimSpace(s.Name),
		"description": strings.TrimSpace(s.Description),
		"model":       model,
		"dataset":     s.Dataset.String(),
		"inner_steps": s.InnerSteps,
		"batch":       s.Batch,
		"inner": map[string]any{
			"lr":           number(in.LR),
			"warmup":       in.Warmup,
			"betas":        []any{number(in.Beta1), number(in.Beta2)},
			"eps":          number(in.Eps),
			"weight_decay": number(in.WeightDecay),
			"clip_norm":    number(in.ClipNorm),
		},
		"outer": map[string]any{
			"lr":       number(s.Outer.LR),
			"momentum": number(s.Outer.Momentum),
		},
		"codec":             canonicalOr(s.Codec, CanonicalCodec),
		"aggregation":       canonicalOr(s.Aggregation, CanonicalRule),
		"target_samples":    s.TargetSamples,
		"deadline":          s.Deadline.String(),
		"verification_rate": number(s.VerificationRate),
		"seed":              s.Seed,
		"trackers":          trackers,
		"init_checkpoint":   init,
		"admission":         string(s.Admission),
	}
	if s.FeedbackDecay != 0 {
		doc["feedback_decay"] = number(s.FeedbackDecay)
	}
	if s.LateWeight != 0 {
		doc["late_weight"] = number(s.LateWeight)
	}
	if s.Quorum > 0 && s.Quorum < 1 {
		doc["quorum"] = number(s.Quorum)
	}
	if s.Grace != 0 {
		doc["grace"] = s.Grace.String()
	}
	if s.Tokenizer.Defined() {
		// Only when given, so that the IDs of byte-level rounds stay
		// what they were.
		doc["tokenizer"] = s.Tokenizer.String()
	}
	if a := s.Adapter; a != nil {
		// Only when given, like the tokenizer.
		var base any
		if a.Base.Defined() {
			base = a.Base.String()
		}
		targets := slices.Clone(a.Targets)
		slices.Sort(targets)
		doc["adapter"] = map[string]any{"base": base, "rank": a.Rank, "alpha": number(a.Alpha), "targets": targets}
	}
	if t := s.Teacher; t != nil {
		var ck any
		if t.Checkpoint.Defined() {
			ck = t.Checkpoint.String()
		}
		doc["teacher"] = map[string]any{"checkpoint": ck, "temperature": number(t.Temperature), "mix": number(t.Mix)}
	}
	if len(s.TrackerAddrs) > 0 {
		// Only a group's spec has them: a single tracker's round ID is
		// what it was before groups existed.
		doc["tracker_addrs"] = s.TrackerAddrs
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		// Every value above is a string, an integer, a finite float64, nil
		// or a slice or map of those, which always encode.
		panic("tracker: canonical encoding: " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// ID returns the round's ID: the CID (CIDv1, raw codec, sha2-256) of the
// canonical encoding.
func (s *Spec) ID() cid.Cid { return content.Sum(s.Canonical()) }

// TrackerID returns the round's (first) tracker's peer ID in canonical
// form, or as written if it is not a valid peer ID.
func (s *Spec) TrackerID() string { return canonicalOr(s.Trackers[0], CanonicalPeerID) }

// canonicalOr returns the canonical form of v, or v itself if it has none.
func canonicalOr(v string, canon func(string) (string, error)) string {
	if c, err := canon(v); err == nil {
		return c
	}
	return v
}

// number returns f for encoding: a finite float64 with negative zero made
// positive, or for NaN and infinities (only in an invalid spec) a string.
func number(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return formatFloat(f)
	}
	if f == 0 {
		return float64(0)
	}
	return f
}
