package simulations

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shoal-network/shoal/internal/bytesize"
	"github.com/shoal-network/shoal/simulations/engine"
	"github.com/shoal-network/shoal/tracker/round"
)

// Scenario describes a simulated network: its round, its peers, their
// links, compute, churn and adversaries, and how long to run. It is read
// from YAML (ParseScenario); every field but round has a default.
//
//	name: home-volunteers-1k
//	description: free text
//	seed: 1                  # one seed fixes the whole run
//	peers: 1000              # workers at the start
//	observers: 0             # peers that follow and commit but do not train
//	steps: 20                # outer steps to finalise
//	limit: 48h               # give up after this much virtual time
//	training: cost           # cost: model compute by its duration; real: train the round's model
//	twin: false              # also run the honest, churn-free twin and report both
//	round:                   # a round spec, as `shoal round` reads it (trackers may be left out)
//	  model: {arch: mlp, vocab: 256, ctx: 16, dim: 16, layers: 1, hidden: 64, window: 4}
//	  ...
//	compute:
//	  train: 60s             # one work unit on a machine of speed 1
//	  apply: 2s              # aggregating a step and applying the outer optimizer
//	  verify: 0s             # checking a partner's payload (0: as apply)
//	  speed: {median: 1, sigma: 0.5}   # machine speeds, lognormal
//	  update_bytes: 4MiB     # cost training: the size of an encoded update on the wire
//	  residual_bytes: 16MiB  # cost training: a residual (0: 4 × update_bytes)
//	  checkpoint_bytes: 32MiB  # cost training: a checkpoint (0: 2 × residual_bytes)
//	network:
//	  links: home            # home, mobile, datacenter, planet, or a mix "home:0.7,mobile:0.3"
//	  tracker: datacenter    # the tracker's link class
//	  hops: 0                # gossip hops between peers (0: from the size of the network)
//	  fanout: 1              # copies of its own message a publisher uploads
//	  duplicates: 1          # gossip bytes a peer takes in per byte it needs (gossip amplification)
//	  loss: 0                # probability a message to one recipient is lost
//	  tick: 1s               # nodes' clock period; tracker_tick the tracker's (0: tick)
//	  delivery: auto         # every: each update to each node; batched; auto: batched from 500 peers
//	  lazy_ticks: true       # tick a node only when its clock has work (default: when batched)
//	  partitions:            # cut a share of the peers off for a while
//	    - {at: 30m, for: 10m, fraction: 0.2}
//	  tracker_crashes: [2h]  # kill the tracker then (it restarts a minute later, from its storage; of a group, the leader)
//	  leader_kills: [30m]    # with a tracker group (the round names several trackers): kill its leader then, for good
//	churn:
//	  rate: 0.2/h            # departures per peer-hour (sessions end at this rate)
//	  session: exponential   # session lengths: exponential, lognormal (sigma 1) or weibull (shape 0.5)
//	  offline: 30m           # mean time a departed peer stays away (0: it never comes back)
//	  arrivals: 0/h          # new peers joining per hour
//	  trace: churn.csv       # or: replay a trace of "time,peer,join|leave" lines
//	adversaries:
//	  - {fraction: 0.05, behaviour: sign-flip}
//	min_members: 0           # live workers the tracker waits for to open a step (0: 1)
//	spares: 0                # units dealt beyond a step's target, as a fraction of it, when workers are to spare
//	sybils: {count: 1000, silent: 0.5, voter: 0.3, junk: 0.2, workers: 0.5}  # cheap fake identities (see Sybils)
//	expect:                  # what the run must show, checked at its end (see Expect)
//	  steps_finalised: 80%
type Scenario struct {
	Name        string    `yaml:"name"`
	Description string    `yaml:"description,omitempty"`
	Seed        uint64    `yaml:"seed"`
	Peers       int       `yaml:"peers"`
	Observers   int       `yaml:"observers"`
	Steps       int       `yaml:"steps"`
	Limit       Duration  `yaml:"limit"`
	Training    string    `yaml:"training"`
	Twin        bool      `yaml:"twin"`
	MinMembers  int       `yaml:"min_members"`
	Spares      float64   `yaml:"spares"`
	Newcomers   float64   `yaml:"newcomers"` // tracker.Config.Newcomers
	RoundYAML   yaml.Node `yaml:"round"`
	Compute     Compute   `yaml:"compute"`
	Network     NetSpec   `yaml:"network"`
	Churn       Churn     `yaml:"churn"`
	AdvSpecs    []AdvSpec `yaml:"adversaries"`
	Sybils      Sybils    `yaml:"sybils"`
	Expect      *Expect   `yaml:"expect"`

	// Spec is the round, parsed from RoundYAML.
	Spec *round.Spec `yaml:"-"`
	// Dir resolves relative paths (a churn trace) in the scenario.
	Dir fs.FS `yaml:"-"`
	// Source names where the scenario came from, for messages.
	Source string `yaml:"-"`
	// Changed lists what Overrides changed, for the report.
	Changed []string `yaml:"-"`
}

// Compute is the compute model.
type Compute struct {
	Train           Duration  `yaml:"train"`
	Apply           Duration  `yaml:"apply"`
	Verify          Duration  `yaml:"verify"`
	Speed           LogNormal `yaml:"speed"`
	UpdateBytes     Size      `yaml:"update_bytes"`
	ResidualBytes   Size      `yaml:"residual_bytes"`
	CheckpointBytes Size      `yaml:"checkpoint_bytes"`
}

// LogNormal is a lognormal distribution by its median and the sigma of
// its logarithm.
type LogNormal struct {
	Median float64 `yaml:"median"`
	Sigma  float64 `yaml:"sigma"`
}

// NetSpec is the network model of a scenario.
type NetSpec struct {
	Links          string          `yaml:"links"`
	Tracker        string          `yaml:"tracker"`
	Hops           int             `yaml:"hops"`
	Fanout         float64         `yaml:"fanout"`
	Duplicates     float64         `yaml:"duplicates"`
	Loss           float64         `yaml:"loss"`
	Tick           Duration        `yaml:"tick"`
	TrackerTick    Duration        `yaml:"tracker_tick"`
	Delivery       string          `yaml:"delivery"`
	LazyTicks      *bool           `yaml:"lazy_ticks"`
	Partitions     []PartitionSpec `yaml:"partitions"`
	TrackerCrashes []Duration      `yaml:"tracker_crashes"`
	LeaderKills    []Duration      `yaml:"leader_kills,omitempty"`
}

// PartitionSpec cuts a share of the peers off from the rest (and the
// tracker) for a while.
type PartitionSpec struct {
	At       Duration `yaml:"at"`
	For      Duration `yaml:"for"`
	Fraction float64  `yaml:"fraction"`
}

// Churn is how peers come and go.
type Churn struct {
	Rate     Rate     `yaml:"rate"`
	Session  string   `yaml:"session"`
	Offline  Duration `yaml:"offline"`
	Arrivals Rate     `yaml:"arrivals"`
	Trace    string   `yaml:"trace"`
}

// AdvSpec is a share of the peers that misbehave one way.
type AdvSpec struct {
	Fraction  float64 `yaml:"fraction"`
	Behaviour string  `yaml:"behaviour"`
}

// Duration is a time.Duration written as "90s", "30m", "2h".
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 30s, 5m or 2h", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Size is a byte count written as 4096, "64KiB", "4MiB", "1GB".
type Size int64

func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := bytesize.Parse(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*s = Size(v)
	return nil
}

func (s Size) MarshalYAML() (any, error) { return int64(s), nil }

// Rate is events per hour, written as "0.2/h", "5/min", "0.01/s".
type Rate float64

func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseRate(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*r = Rate(v)
	return nil
}

func (r Rate) MarshalYAML() (any, error) { return fmt.Sprintf("%g/h", float64(r)), nil }

// ParseRate reads a rate and returns it per hour.
func ParseRate(s string) (float64, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a rate such as 0.2/h or 5/min", s)
	}
	if !ok {
		return v, nil
	}
	switch strings.TrimSpace(unit) {
	case "h", "hour":
		return v, nil
	case "min", "m":
		return v * 60, nil
	case "s":
		return v * 3600, nil
	case "d", "day":
		return v / 24, nil
	}
	return 0, fmt.Errorf("%q: unknown time unit %q (want s, min, h or d)", s, unit)
}

//go:embed scenarios/*.yaml
var builtin embed.FS

// Builtin lists the names of the built-in scenarios.
func Builtin() []string {
	entries, _ := fs.ReadDir(builtin, "scenarios")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(out)
	return out
}

// LoadScenario reads a scenario: the name of a built-in one, or a path to
// a YAML file.
func LoadScenario(nameOrPath string) (*Scenario, error) {
	if b, err := builtin.ReadFile("scenarios/" + nameOrPath + ".yaml"); err == nil {
		sub, _ := fs.Sub(builtin, "scenarios")
		return ParseScenario(b, nameOrPath+".yaml", sub)
	}
	b, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(nameOrPath, "/.") {
			return nil, fmt.Errorf("no built-in scenario %q (built in: %s) and no such file", nameOrPath, strings.Join(Builtin(), ", "))
		}
		return nil, err
	}
	return ParseScenario(b, nameOrPath, os.DirFS(filepath.Dir(nameOrPath)))
}

// MaxPeers bounds the peers of a scenario.
const MaxPeers = 100_000

// ParseScenario reads a scenario from YAML, fills in the defaults and
// checks it. file names it in errors; dir resolves the paths it names.
func ParseScenario(data []byte, file string, dir fs.FS) (*Scenario, error) {
	s := &Scenario{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	s.Dir, s.Source = dir, file
	if err := s.complete(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// scenarioTracker is the peer ID scenarios give their tracker when the round
// names none (any valid peer ID does: nothing dials it).
const scenarioTracker = "12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"

func (s *Scenario) complete() error {
	s.setDefaults()
	return s.check()
}

// setDefaults fills in what the scenario leaves out.
func (s *Scenario) setDefaults() {
	if s.Name == "" {
		s.Name = strings.TrimSuffix(path.Base(filepath.ToSlash(s.Source)), ".yaml")
	}
	if s.Steps == 0 {
		s.Steps = 10
	}
	if s.Limit == 0 {
		s.Limit = Duration(30 * 24 * time.Hour)
	}
	if s.Training == "" {
		s.Training = "cost"
	}
	c := &s.Compute
	if c.Train == 0 {
		c.Train = Duration(time.Minute)
	}
	if c.Apply == 0 {
		c.Apply = Duration(2 * time.Second)
	}
	if c.Verify == 0 {
		c.Verify = c.Apply
	}
	if c.Speed.Median == 0 {
		c.Speed.Median = 1
	}
	if c.UpdateBytes == 0 && s.Training == "cost" {
		c.UpdateBytes = 1 << 20
	}
	if c.ResidualBytes == 0 {
		c.ResidualBytes = 4 * c.UpdateBytes
	}
	if c.CheckpointBytes == 0 {
		c.CheckpointBytes = 2 * c.ResidualBytes
	}
	n := &s.Network
	if n.Links == "" {
		n.Links = "home"
	}
	if n.Tracker == "" {
		n.Tracker = "datacenter"
	}
	if n.Tick == 0 {
		n.Tick = Duration(time.Second)
	}
	if n.Delivery == "" {
		n.Delivery = "auto"
	}
	if s.Churn.Session == "" {
		s.Churn.Session = "exponential"
	}
	if s.Churn.Offline == 0 && s.Churn.Rate > 0 {
		s.Churn.Offline = Duration(30 * time.Minute)
	}
}

// check reports everything wrong with a scenario, and parses its round
// and the adversaries' behaviours.
func (s *Scenario) check() error {
	c, n := &s.Compute, &s.Network
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Peers < 1 || s.Peers > MaxPeers {
		bad("peers: need 1 to %d, got %d", MaxPeers, s.Peers)
	}
	if s.Observers < 0 || s.Observers > MaxPeers {
		bad("observers: need 0 to %d, got %d", MaxPeers, s.Observers)
	}
	if s.Steps < 1 || s.Steps > 100_000 {
		bad("steps: need 1 to 100000, got %d", s.Steps)
	}
	if s.Training != "cost" && s.Training != "real" {
		bad("training: want cost or real, got %q", s.Training)
	}
	if s.MinMembers < 0 {
		bad("min_members: must not be negative")
	}
	if !(s.Newcomers >= 0 && s.Newcomers <= 100) {
		bad("newcomers: need a fraction of the established workers from 0 to 100, got %v", s.Newcomers)
	}
	if !(s.Spares >= 0 && s.Spares <= 1) {
		bad("spares: need a fraction from 0 to 1, got %v", s.Spares)
	}
	if !(c.Speed.Median > 0) || !(c.Speed.Sigma >= 0) || c.Speed.Sigma > 3 {
		bad("compute.speed: median must be positive and sigma in [0, 3]")
	}
	if _, err := engine.ParseLinkMix(n.Links); err != nil {
		bad("network.links: %v", err)
	}
	if _, ok := engine.LinkClasses[n.Tracker]; !ok {
		bad("network.tracker: unknown link class %q (want home, mobile or datacenter)", n.Tracker)
	}
	if n.Hops < 0 || n.Hops > 32 {
		bad("network.hops: need 0 to 32, got %d", n.Hops)
	}
	if n.Fanout < 0 || n.Fanout > 64 {
		bad("network.fanout: need 0 to 64, got %g", n.Fanout)
	}
	if !(n.Duplicates == 0 || (n.Duplicates >= 1 && n.Duplicates <= 64)) {
		bad("network.duplicates: need 1 to 64 (0: 1), got %g", n.Duplicates)
	}
	if !(n.Loss >= 0 && n.Loss < 1) {
		bad("network.loss: need [0, 1), got %g", n.Loss)
	}
	switch n.Delivery {
	case "auto", "every", "batched":
	default:
		bad("network.delivery: want auto, every or batched, got %q", n.Delivery)
	}
	for i, p := range n.Partitions {
		if !(p.Fraction > 0 && p.Fraction < 1) || p.For <= 0 {
			bad("network.partitions[%d]: need a fraction in (0, 1) and a positive for", i)
		}
	}
	switch s.Churn.Session {
	case "exponential", "lognormal", "weibull":
	default:
		bad("churn.session: want exponential, lognormal or weibull, got %q", s.Churn.Session)
	}
	if s.Churn.Trace != "" && (s.Churn.Rate > 0 || s.Churn.Arrivals > 0) {
		bad("churn: a trace replaces rate and arrivals; give one or the other")
	}
	var byz float64
	for i, a := range s.AdvSpecs {
		b, err := ParseBehaviour(a.Behaviour)
		if err != nil {
			bad("adversaries[%d]: %v", i, err)
		}
		if !(a.Fraction > 0 && a.Fraction <= 1) {
			bad("adversaries[%d]: fraction must be in (0, 1], got %g", i, a.Fraction)
		}
		byz += a.Fraction
		s.AdvSpecs[i].Behaviour = string(b)
	}
	if byz >= 0.5 {
		bad("adversaries: %g of the peers is not a minority", byz)
	}
	if err := s.parseRound(); err != nil {
		errs = append(errs, err)
	}
	if group := s.Spec != nil && len(s.Spec.Trackers) > 1; group && s.Batched() {
		bad("round.trackers: a tracker group is simulated with delivery: every (each member takes every peer's message); this run would batch")
	} else if !group && len(n.LeaderKills) > 0 {
		bad("network.leader_kills: needs a tracker group (a round naming several trackers); use tracker_crashes for one tracker")
	}
	if err := s.Sybils.check(); err != nil {
		errs = append(errs, err)
	}
	if s.Expect != nil && s.Spec != nil {
		if err := s.Expect.check(s); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Spec != nil && s.Training == "real" {
		m := s.Spec.Model
		params := 2*m.Vocab*m.Dim + m.Layers*max(12*m.Dim*m.Dim, m.Window*m.Dim*m.Hidden+m.Hidden*m.Hidden)
		if params > 2_000_000 {
			bad("training real: the round's model has about %d parameters; simulating many peers training it on one machine takes too long (at most 2M; use training: cost)", params)
		}
		if !s.Spec.Dataset.Builtin {
			bad("training real: only the built-in dataset can be simulated")
		}
	}
	return errors.Join(errs...)
}

// parseRound reads the round spec with round.Parse, filling in a tracker.
func (s *Scenario) parseRound() error {
	if s.RoundYAML.Kind == 0 {
		return errors.New("round: missing (a round spec, as `shoal round` reads it)")
	}
	root := s.RoundYAML
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("round: line %d: want a mapping", root.Line)
	}
	hasTrackers := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "trackers" {
			hasTrackers = true
		}
	}
	if !hasTrackers {
		cp := root
		cp.Content = append(slices.Clone(root.Content),
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "trackers"},
			&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: scenarioTracker}}})
		root = cp
	}
	b, err := yaml.Marshal(&root)
	if err != nil {
		return fmt.Errorf("round: %v", err)
	}
	spec, err := round.Parse(b, s.Source+" round")
	if err != nil {
		return err
	}
	s.Spec = spec
	return nil
}

// Batched reports whether the scenario delivers updates in bulk.
func (s *Scenario) Batched() bool {
	switch s.Network.Delivery {
	case "every":
		return false
	case "batched":
		return true
	}
	return s.Peers+s.Observers >= 500
}

// Lazy reports whether nodes tick only when their clock has work.
func (s *Scenario) Lazy() bool {
	if s.Network.LazyTicks != nil {
		return *s.Network.LazyTicks
	}
	return s.Batched()
}

// Byzantine returns the total share of adversaries.
func (s *Scenario) Byzantine() float64 {
	var f float64
	for _, a := range s.AdvSpecs {
		f += a.Fraction
	}
	return f
}

// TwinOf returns the honest, churn-free twin of the scenario: the same
// round, peers, links and seed, without churn, adversaries, partitions or
// tracker crashes.
func (s *Scenario) TwinOf() *Scenario {
	t := *s
	t.Name = s.Name + " (honest twin)"
	t.Twin = false
	t.Churn = Churn{Session: "exponential"}
	t.AdvSpecs = nil
	t.Sybils = Sybils{}
	t.Expect = nil
	t.Network.Partitions = nil
	t.Network.TrackerCrashes = nil
	t.Network.LeaderKills = nil
	return &t
}

// Overrides are the quick changes `shoal sim` makes to a scenario from
// its flags; zero values change nothing.
type Overrides struct {
	Peers     int
	Steps     int
	Seed      *uint64
	Churn     string // "0.2/h"
	Byzantine *float64
	Behaviour string
	Links     string
	Training  string
	Delivery  string
}

// Apply changes the scenario and checks it again.
func (o Overrides) Apply(s *Scenario) error {
	note := func(format string, args ...any) { s.Changed = append(s.Changed, fmt.Sprintf(format, args...)) }
	defer func() {
		if o.Peers > 0 {
			note("peers %d", o.Peers)
		}
		if o.Steps > 0 {
			note("steps %d", o.Steps)
		}
		if o.Seed != nil {
			note("seed %d", *o.Seed)
		}
		if o.Churn != "" {
			note("churn %s", o.Churn)
		}
		if o.Byzantine != nil {
			note("byzantine %g", *o.Byzantine)
		}
		if o.Behaviour != "" {
			note("behaviour %s", o.Behaviour)
		}
		if o.Links != "" {
			note("links %s", o.Links)
		}
		if o.Training != "" {
			note("training %s", o.Training)
		}
		if o.Delivery != "" {
			note("delivery %s", o.Delivery)
		}
	}()
	if o.Peers > 0 {
		s.Peers = o.Peers
		if s.MinMembers > o.Peers {
			s.MinMembers = 0
		}
	}
	if o.Steps > 0 {
		s.Steps = o.Steps
	}
	if o.Seed != nil {
		s.Seed = *o.Seed
	}
	if o.Churn != "" {
		r, err := ParseRate(o.Churn)
		if err != nil {
			return fmt.Errorf("--churn: %v", err)
		}
		s.Churn.Rate = Rate(r)
		s.Churn.Trace = ""
		if s.Churn.Offline == 0 {
			s.Churn.Offline = Duration(30 * time.Minute)
		}
	}
	if o.Byzantine != nil {
		b := Behaviour(o.Behaviour)
		if b == "" {
			b = SignFlip
			if len(s.AdvSpecs) > 0 {
				b = Behaviour(s.AdvSpecs[0].Behaviour)
			}
		}
		s.AdvSpecs = nil
		if *o.Byzantine > 0 {
			s.AdvSpecs = []AdvSpec{{Fraction: *o.Byzantine, Behaviour: string(b)}}
		}
	} else if o.Behaviour != "" {
		for i := range s.AdvSpecs {
			s.AdvSpecs[i].Behaviour = o.Behaviour
		}
	}
	if o.Links != "" {
		s.Network.Links = o.Links
	}
	if o.Training != "" {
		s.Training = o.Training
	}
	if o.Delivery != "" {
		s.Network.Delivery = o.Delivery
	}
	return s.complete()
}

// Canonical returns the scenario as YAML with every default filled in,
// for the report.
func (s *Scenario) Canonical() string {
	o := *s
	o.RoundYAML = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str"}
	if s.Spec != nil {
		o.RoundYAML.Value = s.Spec.ID().String()
	}
	b, _ := yaml.Marshal(o)
	return string(b)
}
