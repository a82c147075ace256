package round

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ipfs/go-cid"
	"gopkg.in/yaml.v3"
)

// MaxSpecSize is the largest spec file Parse reads.
const MaxSpecSize = 1 << 20

// Parse reads a round spec from YAML, fills in the defaults and validates
// it. filename is used only in error messages.
//
// Parsing is strict: unknown and duplicate fields, values of the wrong type,
// missing required fields, aliases and more than one YAML document are
// errors. A field whose value is null (`field:` or `field: ~`) counts as
// absent. Every problem found is reported, each as a FieldError with the
// file, line and field, joined with errors.Join in line order (problems
// without a line, such as a missing top-level field, last); Problems lists
// them. On error the returned spec is nil.
func Parse(data []byte, filename string) (*Spec, error) {
	d := &decoder{file: filename, lines: map[string]int{}, bad: map[string]bool{}}
	if len(data) > MaxSpecSize {
		d.errorf(0, "", "spec is larger than the limit of %d bytes", MaxSpecSize)
		return nil, d.result()
	}
	root, err := parseYAML(data)
	if err != nil {
		d.errs = append(d.errs, yamlProblem(err, data))
		return nil, d.result()
	}
	if root == nil || root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		d.errorf(0, "", "empty spec")
		return nil, d.result()
	}
	if root.Kind != yaml.MappingNode {
		d.errorf(root.Line, "", "want a mapping of fields at the top level, got %s", describe(root))
		return nil, d.result()
	}
	s := Defaults()
	d.spec(root, s)
	s.file, s.lines = filename, d.lines
	s.Name, s.Description = strings.TrimSpace(s.Name), strings.TrimSpace(s.Description)
	for _, p := range s.problems(d.bad) {
		p.Line = s.lineOf(p.Field)
		d.errs = append(d.errs, p)
	}
	if len(d.errs) > 0 {
		return nil, d.result()
	}
	// Keep the canonical forms.
	s.Codec, _ = CanonicalCodec(s.Codec)
	s.Aggregation, _ = CanonicalRule(s.Aggregation)
	for i, t := range s.Trackers {
		s.Trackers[i], _ = CanonicalPeerID(t)
	}
	return s, nil
}

// parseYAML parses the single YAML document in data and returns its root
// node, or nil for an empty document.
func parseYAML(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// The YAML parser is third-party code fed untrusted input; a
		// panic in it is a malformed spec, not a crash.
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("yaml: parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err == io.EOF {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		return nil, err
	default:
		return nil, &FieldError{Line: next.Line, Msg: "more than one YAML document (a spec is one document)"}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0], nil
	}
	return nil, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the problems the YAML parser (as opposed to its
// scanner) reports. gopkg.in/yaml.v3 numbers their lines from 0 and the
// scanner's from 1, and leaves the line out for the first line.
var parserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// scannerProblem reports whether msg is a problem of the YAML scanner.
var scannerProblem = regexp.MustCompile(`^(found |could not find |did not find |mapping |block sequence |exceeded max depth)`)

// yamlProblem turns an error of the YAML parser into a FieldError with the
// line it names, counted from 1.
func yamlProblem(err error, data []byte) *FieldError {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if slices.Contains(parserProblems, msg) {
		line++
	} else if line == 0 && scannerProblem.MatchString(msg) {
		line = 1
	}
	if strings.HasPrefix(msg, "found a tab character") {
		// The scanner names the line where the token it was reading
		// began; point at the tab itself.
		line = tabLine(data, line)
	}
	return &FieldError{Line: line, Msg: "invalid YAML: " + msg}
}

// tabLine returns the first line from line on whose indentation holds a
// tab, or line if there is none.
func tabLine(data []byte, line int) int {
	for i, l := range bytes.Split(data, []byte("\n")) {
		if i+1 < line {
			continue
		}
		indent := l[:len(l)-len(bytes.TrimLeft(l, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 {
			return i + 1
		}
	}
	return line
}

// decoder walks the YAML tree of a spec.
type decoder struct {
	file  string
	errs  []*FieldError
	lines map[string]int  // field path → line
	bad   map[string]bool // fields with a problem found while decoding
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
	if path != "" {
		d.bad[path] = true
	}
}

// result returns the problems found, with the file name, in line order.
func (d *decoder) result() error {
	for _, e := range d.errs {
		e.File = d.file
	}
	return joinProblems(d.errs)
}

// field is one field of a mapping: its name and how to decode its value.
type field struct {
	name   string
	decode func(path string, v *yaml.Node)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// mapping decodes the fields of the mapping n at path (written on line
// line), reporting unknown and duplicate fields, and returns the names of
// the fields present with a non-null value.
func (d *decoder) mapping(path string, line int, n *yaml.Node, fields []field) map[string]bool {
	present := map[string]bool{}
	if n.Kind == yaml.AliasNode {
		d.errorf(n.Line, path, "aliases are not supported in a round spec")
		return present
	}
	if n.Kind != yaml.MappingNode {
		if path == "" {
			d.errorf(n.Line, path, "want a mapping of fields at the top level, got %s", describe(n))
		} else {
			d.errorf(line, path, "want a mapping of fields, got %s", describe(n))
		}
		return present
	}
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "field names must be plain strings, got %s", describe(k))
			continue
		}
		name := k.Value
		p := join(path, displayName(name))
		if l, dup := first[name]; dup {
			// Not marked bad: the first value is still checked.
			d.errs = append(d.errs, &FieldError{Line: k.Line, Field: p, Msg: fmt.Sprintf("duplicate field (first at line %d)", l)})
			continue
		}
		first[name] = k.Line
		var f *field
		for j := range fields {
			if fields[j].name == name {
				f = &fields[j]
			}
		}
		if f == nil {
			d.unknown(k, path, fields)
			continue
		}
		d.lines[p] = k.Line
		if v.Kind == yaml.AliasNode {
			d.errorf(k.Line, p, "aliases are not supported in a round spec")
			continue
		}
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			continue
		}
		present[name] = true
		f.decode(p, v)
	}
	return present
}

// unknown reports an unknown field, suggesting a known one close to it.
func (d *decoder) unknown(k *yaml.Node, path string, fields []field) {
	if k.ShortTag() == "!!merge" {
		d.errorf(k.Line, join(path, displayName(k.Value)), "merge keys are not supported in a round spec")
		return
	}
	names := make([]string, len(fields))
	best, bestDist := "", 3
	for i, f := range fields {
		names[i] = f.name
		if dist := editDistance(k.Value, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	msg := "unknown field"
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	} else {
		msg += " (known: " + strings.Join(names, ", ") + ")"
	}
	d.errorf(k.Line, join(path, displayName(k.Value)), "%s", msg)
}

// displayName returns a field name as it appears in a path: as written if
// it is printable, quoted otherwise.
func displayName(name string) string {
	if name != "" && !strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) || r == '"' }) {
		return clip(name)
	}
	return strconv.Quote(clip(name))
}

// require reports the fields of names missing from present; line is that
// of the mapping's key (0 at the top level).
func (d *decoder) require(path string, line int, present map[string]bool, why string, names ...string) {
	for _, name := range names {
		if !present[name] {
			d.errorf(line, join(path, name), "missing (required%s)", why)
		}
	}
}

// describe names the kind of a node for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", clip(n.Value))
		case "!!int":
			return "the integer " + clip(n.Value)
		case "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return "the boolean " + clip(n.Value)
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%q", clip(n.Value))
	}
	return "a YAML document"
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	const n = 60
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && s[i]&0xc0 == 0x80 { // do not cut a UTF-8 sequence
		i--
	}
	return s[:i] + "…"
}

// scalar checks that v is a scalar and returns it; it reports want
// otherwise.
func (d *decoder) scalar(path string, v *yaml.Node, want string) (*yaml.Node, bool) {
	if v.Kind != yaml.ScalarNode {
		d.errorf(v.Line, path, "want %s, got %s", want, describe(v))
		return nil, false
	}
	return v, true
}

func (d *decoder) str(dst *string) func(string, *yaml.Node) {
	return func(path string, v *yaml.Node) {
		if n, ok := d.scalar(path, v, "a string"); ok {
			switch n.ShortTag() {
			case "!!null":
				d.errorf(v.Line, path, "want a string, got null")
				return
			case "!!binary":
				d.errorf(v.Line, path, "want a string, got binary data")
				return
			}
			*dst = n.Value
		}
	}
}

func (d *decoder) integer(dst *int) func(string, *yaml.Node) {
	return func(path string, v *yaml.Node) {
		n, ok := d.scalar(path, v, "an integer")
		if !ok {
			return
		}
		var x int64
		if n.ShortTag() != "!!int" || n.Decode(&x) != nil || x < math.MinInt || x > math.MaxInt {
			d.errorf(v.Line, path, "want an integer, got %s", describe(n))
			return
		}
		*dst = int(x)
	}
}

func (d *decoder) uint64(dst *uint64) func(string, *yaml.Node) {
	return func(path string, v *yaml.Node) {
		n, ok := d.scalar(path, v, "an integer")
		if !ok {
			return
		}
		var x uint64
		if n.ShortTag() != "!!int" || n.Decode(&x) != nil {
			d.errorf(v.Line, path, "want an integer in [0, 2^64), got %s", describe(n))
			return
		}
		*dst = x
	}
}

func (d *decoder) number(dst *float64) func(string, *yaml.Node) {
	return func(path string, v *yaml.Node) {
		n, ok := d.scalar(path, v, "a number")
		if !ok {
			return
		}
		var x float64
		if t := n.ShortTag(); t != "!!int" && t != "!!float" || n.Decode(&x) != nil {
			d.errorf(v.Line, path, "want a number, got %s", describe(n))
			return
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			d.errorf(v.Line, path, "must be a finite number, got %s", n.Value)
			return
		}
		*dst = x
	}
}

func (d *decoder) duration(dst *time.Duration) func(string, *yaml.Node) {
	return func(path string, v *yaml.Node) {
		n, ok := d.scalar(path, v, "a duration such as 90s or 5m")
		if !ok {
			return
		}
		if t := n.ShortTag(); t == "!!int" || t == "!!float" {
			d.errorf(v.Line, path, "want a duration with a unit, such as 90s or 5m, got %s", describe(n))
			return
		}
		x, err := time.ParseDuration(n.Value)
		if err != nil {
			d.errorf(v.Line, path, "want a duration such as 90s or 5m, got %q", clip(n.Value))
			return
		}
		*dst = x
	}
}

func (d *decoder) spec(root *yaml.Node, s *Spec) {
	var modelSeedSet bool
	present := d.mapping("", 0, root, []field{
		{"version", d.integer(&s.Version)},
		{"name", d.str(&s.Name)},
		{"description", d.str(&s.Description)},
		{"model", func(path string, v *yaml.Node) {
			modelSeedSet = d.model(path, v, &s.Model)
		}},
		{"dataset", func(path string, v *yaml.Node) {
			n, ok := d.scalar(path, v, "builtin or a dataset manifest CID")
			if !ok {
				return
			}
			if n.Value == "builtin" {
				s.Dataset = Dataset{Builtin: true}
				return
			}
			c, err := parseContentID(n.Value)
			if err != nil {
				d.errorf(v.Line, path, "want builtin or a dataset manifest CID: %v", err)
				return
			}
			s.Dataset = Dataset{Manifest: c}
		}},
		{"inner_steps", d.integer(&s.InnerSteps)},
		{"batch", d.integer(&s.Batch)},
		{"inner", func(path string, v *yaml.Node) {
			line := d.lines[path]
			p := d.mapping(path, line, v, []field{
				{"lr", d.number(&s.Inner.LR)},
				{"warmup", d.integer(&s.Inner.Warmup)},
				{"betas", func(path string, v *yaml.Node) {
					if v.Kind != yaml.SequenceNode || len(v.Content) != 2 {
						d.errorf(v.Line, path, "want a list of two numbers [beta1, beta2], got %s", describeList(v))
						return
					}
					d.number(&s.Inner.Beta1)(path, v.Content[0])
					d.number(&s.Inner.Beta2)(path, v.Content[1])
				}},
				{"eps", d.number(&s.Inner.Eps)},
				{"weight_decay", d.number(&s.Inner.WeightDecay)},
				{"clip_norm", d.number(&s.Inner.ClipNorm)},
			})
			d.require(path, line, p, "", "lr")
		}},
		{"outer", func(path string, v *yaml.Node) {
			d.mapping(path, d.lines[path], v, []field{
				{"lr", d.number(&s.Outer.LR)},
				{"momentum", d.number(&s.Outer.Momentum)},
			})
		}},
		{"codec", d.str(&s.Codec)},
		{"aggregation", d.str(&s.Aggregation)},
		{"feedback_decay", d.number(&s.FeedbackDecay)},
		{"late_weight", d.number(&s.LateWeight)},
		{"target_samples", d.integer(&s.TargetSamples)},
		{"deadline", d.duration(&s.Deadline)},
		{"quorum", d.number(&s.Quorum)},
		{"grace", d.duration(&s.Grace)},
		{"verification_rate", d.number(&s.VerificationRate)},
		{"seed", d.uint64(&s.Seed)},
		{"trackers", d.strList(&s.Trackers, "a list of peer IDs")},
		{"tracker_addrs", d.strList(&s.TrackerAddrs, "a list of multiaddrs")},
		{"init_checkpoint", d.cidField(&s.InitCheckpoint, "a checkpoint CID")},
		{"tokenizer", func(path string, v *yaml.Node) {
			n, ok := d.scalar(path, v, "a tokenizer CID")
			if !ok {
				return
			}
			c, err := parseContentID(n.Value)
			if err != nil {
				d.errorf(v.Line, path, "want a tokenizer CID (shoal tokenize --vocab ... prints it): %v", err)
				return
			}
			s.Tokenizer = c
		}},
		{"admission", func(path string, v *yaml.Node) {
			var a string
			d.str(&a)(path, v)
			s.Admission = Admission(a)
		}},
		{"adapter", func(path string, v *yaml.Node) { s.Adapter = d.adapter(path, v) }},
		{"teacher", func(path string, v *yaml.Node) { s.Teacher = d.teacher(path, v) }},
	})
	d.require("", 0, present, "", "model", "dataset", "inner_steps", "inner", "target_samples", "deadline", "trackers")
	if !modelSeedSet {
		s.Model.Seed = s.Seed
	}
}

// model decodes the model mapping; it reports whether the seed was given.
func (d *decoder) model(path string, v *yaml.Node, m *Model) (seedSet bool) {
	line := d.lines[path]
	p := d.mapping(path, line, v, []field{
		{"arch", d.str(&m.Arch)},
		{"vocab", d.integer(&m.Vocab)},
		{"ctx", d.integer(&m.Ctx)},
		{"dim", d.integer(&m.Dim)},
		{"layers", d.integer(&m.Layers)},
		{"heads", d.integer(&m.Heads)},
		{"hidden", d.integer(&m.Hidden)},
		{"window", d.integer(&m.Window)},
		{"seed", d.uint64(&m.Seed)},
	})
	if v.Kind != yaml.MappingNode {
		return true
	}
	d.require(path, line, p, "", "arch", "ctx", "dim", "layers")
	switch m.Arch {
	case ArchGPT:
		d.require(path, line, p, " for arch gpt", "heads")
	case ArchMLP:
		d.require(path, line, p, " for arch mlp", "hidden", "window")
	}
	return p["seed"]
}

// strList decodes a list of strings (what the error says is wanted) into
// dst, noting each item's line.
func (d *decoder) strList(dst *[]string, what string) func(string, *yaml.Node) {
	return func(path string, v *yaml.Node) {
		if v.Kind != yaml.SequenceNode {
			d.errorf(v.Line, path, "want %s, got %s", what, describe(v))
			return
		}
		*dst = make([]string, len(v.Content))
		for i, item := range v.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			if item.Kind == yaml.AliasNode {
				d.errorf(item.Line, p, "aliases are not supported in a round spec")
				continue
			}
			d.str(&(*dst)[i])(p, item)
		}
	}
}

// cidField decodes a content CID into dst.
func (d *decoder) cidField(dst *cid.Cid, what string) func(string, *yaml.Node) {
	return func(path string, v *yaml.Node) {
		n, ok := d.scalar(path, v, what)
		if !ok {
			return
		}
		c, err := parseContentID(n.Value)
		if err != nil {
			d.errorf(v.Line, path, "want %s: %v", what, err)
			return
		}
		*dst = c
	}
}

// adapter decodes the adapter mapping, with its defaults: alpha the rank,
// the attention's matrices as targets. Targets are kept sorted, so that
// their order in the file does not change the round.
func (d *decoder) adapter(path string, v *yaml.Node) *Adapter {
	a := &Adapter{}
	line := d.lines[path]
	p := d.mapping(path, line, v, []field{
		{"base", d.cidField(&a.Base, "the base checkpoint's CID")},
		{"rank", d.integer(&a.Rank)},
		{"alpha", d.number(&a.Alpha)},
		{"targets", func(path string, v *yaml.Node) {
			d.strList(&a.Targets, "a list of matrices such as [attn.c_attn, attn.c_proj]")(path, v)
			slices.Sort(a.Targets)
		}},
	})
	if v.Kind != yaml.MappingNode {
		return a
	}
	d.require(path, line, p, "", "base", "rank")
	if !p["alpha"] {
		a.Alpha = float64(a.Rank)
	}
	if !p["targets"] {
		a.Targets = slices.Clone(DefaultAdapterTargets)
	}
	return a
}

// teacher decodes the teacher mapping, with its defaults.
func (d *decoder) teacher(path string, v *yaml.Node) *Teacher {
	t := &Teacher{Temperature: 2, Mix: 0.5}
	line := d.lines[path]
	p := d.mapping(path, line, v, []field{
		{"checkpoint", d.cidField(&t.Checkpoint, "the teacher's checkpoint CID")},
		{"temperature", d.number(&t.Temperature)},
		{"mix", d.number(&t.Mix)},
	})
	if v.Kind == yaml.MappingNode {
		d.require(path, line, p, "", "checkpoint")
	}
	return t
}

// describeList describes a node expected to be a list of two numbers.
func describeList(v *yaml.Node) string {
	if v.Kind == yaml.SequenceNode {
		return fmt.Sprintf("a list of %d", len(v.Content))
	}
	return describe(v)
}

// editDistance returns the Levenshtein distance between a and b, for
// suggesting a field name.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
