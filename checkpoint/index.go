package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// index is a store's mutable state: the order in which checkpoints
// arrived, labels and pins. It lives in a small JSON file, rewritten
// atomically on every change:
//
//	{"version":1,"order":[CID...],"labels":{"head":CID},"pins":[CID...]}
//
// order lists manifests oldest first; pins are sorted.
type index struct {
	order  []cid.Cid
	labels map[string]cid.Cid
	pins   map[cid.Cid]bool
}

type indexFile struct {
	Version int               `json:"version"`
	Order   []string          `json:"order"`
	Labels  map[string]string `json:"labels"`
	Pins    []string          `json:"pins"`
}

const (
	indexName    = "index.json"
	maxIndexSize = 16 << 20
	// MaxLabel is the longest label.
	MaxLabel = 128
)

func newIndex() *index {
	return &index{labels: map[string]cid.Cid{}, pins: map[cid.Cid]bool{}}
}

func idxErr(field, format string, args ...any) error {
	return &FormatError{Format: "index", Field: field, Msg: fmt.Sprintf(format, args...)}
}

// parseIndex decodes an index file, checking every CID and label.
func parseIndex(b []byte) (*index, error) {
	var f indexFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, idxErr("file", "invalid JSON: %v", err)
	}
	if d.More() {
		return nil, idxErr("file", "data after the JSON object")
	}
	if f.Version != 1 {
		return nil, idxErr("version", "unsupported version %d", f.Version)
	}
	ix := newIndex()
	seen := map[cid.Cid]bool{}
	for i, s := range f.Order {
		c, err := parseID(s)
		if err != nil {
			return nil, idxErr(fmt.Sprintf("order[%d]", i), "%v", err)
		}
		if seen[c] {
			return nil, idxErr(fmt.Sprintf("order[%d]", i), "%s listed twice", s)
		}
		seen[c] = true
		ix.order = append(ix.order, c)
	}
	for l, s := range f.Labels {
		if err := ValidLabel(l); err != nil {
			return nil, idxErr("labels", "%v", err)
		}
		c, err := parseID(s)
		if err != nil {
			return nil, idxErr("labels."+l, "%v", err)
		}
		ix.labels[l] = c
	}
	for i, s := range f.Pins {
		c, err := parseID(s)
		if err != nil {
			return nil, idxErr(fmt.Sprintf("pins[%d]", i), "%v", err)
		}
		ix.pins[c] = true
	}
	return ix, nil
}

func (ix *index) marshal() []byte {
	f := indexFile{Version: 1, Order: []string{}, Labels: map[string]string{}, Pins: []string{}}
	for _, c := range ix.order {
		f.Order = append(f.Order, c.String())
	}
	for l, c := range ix.labels {
		f.Labels[l] = c.String()
	}
	for c := range ix.pins {
		f.Pins = append(f.Pins, c.String())
	}
	slices.Sort(f.Pins)
	b, _ := json.MarshalIndent(f, "", " ")
	return append(b, '\n')
}

// add appends id to the order if it is not there yet and reports whether
// it did.
func (ix *index) add(id cid.Cid) bool {
	if slices.Contains(ix.order, id) {
		return false
	}
	ix.order = append(ix.order, id)
	return true
}

// arrange returns ids (the manifests present) in index order, those the
// index does not know last, sorted by CID.
func (ix *index) arrange(ids []cid.Cid) []cid.Cid {
	present := map[cid.Cid]bool{}
	for _, c := range ids {
		present[c] = true
	}
	var out []cid.Cid
	for _, c := range ix.order {
		if present[c] {
			out = append(out, c)
			delete(present, c)
		}
	}
	rest := slices.Collect(maps.Keys(present))
	slices.SortFunc(rest, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	return append(out, rest...)
}

// labelsOf returns the sorted labels that name id.
func (ix *index) labelsOf(id cid.Cid) []string {
	var ls []string
	for l, c := range ix.labels {
		if c == id {
			ls = append(ls, l)
		}
	}
	slices.Sort(ls)
	return ls
}

// parseID parses a checkpoint or chunk ID: a CIDv1, raw codec, sha2-256,
// in its canonical string form.
func parseID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%q is not a CID", s)
	}
	if err := content.Check(c); err != nil {
		return cid.Undef, err
	}
	if c.String() != s {
		return cid.Undef, fmt.Errorf("%q is not in canonical form (%s)", s, c)
	}
	return c, nil
}

// ValidLabel checks a label: 1 to MaxLabel letters, digits, '.', '_' or
// '-', starting with a letter or digit, and not itself a CID.
func ValidLabel(l string) error {
	if l == "" || len(l) > MaxLabel {
		return fmt.Errorf("label %q: must have 1 to %d characters", l, MaxLabel)
	}
	for i, r := range l {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '.' || r == '_' || r == '-')
		if !ok {
			return fmt.Errorf("label %q: only letters, digits, '.', '_' and '-' (not first) are allowed", l)
		}
	}
	if _, err := cid.Decode(l); err == nil {
		return fmt.Errorf("label %q: is a CID", l)
	}
	return nil
}
