package simulations

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoal-network/shoal/internal/bytesize"
	"github.com/shoal-network/shoal/simulations/engine"
)

// Report is what a simulation found. It holds virtual quantities only
// (nothing of the machine that ran it), so the same scenario and seed
// give the same report, byte for byte.
type Report struct {
	Scenario    string   `json:"scenario"`
	Description string   `json:"description,omitempty"`
	Seed        uint64   `json:"seed"`
	Round       string   `json:"round"`
	Training    string   `json:"training"`
	Delivery    string   `json:"delivery"` // every (each update to each node) or batched
	Peers       int      `json:"peers"`
	Observers   int      `json:"observers"`
	Joined      int      `json:"joined"` // peers that arrived after the start
	Departures  int      `json:"departures"`
	Byzantine   float64  `json:"byzantine"`
	Changed     []string `json:"changed,omitempty"` // what flags changed in the scenario
	Config      string   `json:"config"`            // the scenario with every default, as YAML

	StepsWanted    int       `json:"steps_wanted"`
	StepsDone      int       `json:"steps_done"`
	Stopped        string    `json:"stopped,omitempty"`
	VirtualSeconds float64   `json:"virtual_seconds"`
	Events         int64     `json:"events"`
	Steps          []StepRow `json:"steps"`

	Summary     Summary        `json:"summary"`
	Network     NetworkRow     `json:"network"`
	Adversaries []AdversaryRow `json:"adversaries,omitempty"`
	Invariants  InvariantRow   `json:"invariants"`
	V1          ScalingRow     `json:"v1_scaling"`
	Findings    []string       `json:"findings,omitempty"` // what the run shows of the protocol's behaviour
	Twin        *TwinRow       `json:"twin,omitempty"`
	Sybils      *SybilRow      `json:"sybils,omitempty"`
	Group       *GroupRow      `json:"tracker_group,omitempty"`
	// Expectations are the scenario's expect block and how the run met
	// each (see Expect).
	Expectations []ExpectRow `json:"expectations,omitempty"`
}

// GroupRow is what the round's tracker group did: who led from when,
// the leaders killed, and how long the group went without a leader
// after each kill.
type GroupRow struct {
	Members   int         `json:"members"`
	Leaders   []LeaderRow `json:"leaders"`
	Kills     []KillRow   `json:"kills"`
	Campaigns int         `json:"campaigns"` // elections members stood in
}

// KillRow is the death of a group's leader.
type KillRow struct {
	At       float64 `json:"at_s"`
	Leader   string  `json:"leader"`
	ForGood  bool    `json:"for_good"`   // never restarted (else: a crash it restarts from)
	Takeover float64 `json:"takeover_s"` // until a live member led (-1: none did)
}

// LeaderRow is a member's leadership from a time on.
type LeaderRow struct {
	At     float64 `json:"at_s"`
	Leader string  `json:"leader"`
	Term   uint64  `json:"term"`
}

// shortPeer is the end of a peer ID, enough to tell a group's members
// apart in a line of text.
func shortPeer(id string) string {
	if len(id) <= 8 {
		return id
	}
	return "…" + id[len(id)-6:]
}

func groupRow(r *runResult) *GroupRow {
	g := r.group
	if g == nil {
		return nil
	}
	row := &GroupRow{Members: len(g.Members), Campaigns: g.Campaigns}
	for _, l := range g.Leaders {
		row.Leaders = append(row.Leaders, LeaderRow{At: secs(l.At), Leader: l.Leader, Term: l.Term})
	}
	for _, k := range g.Kills {
		t := -1.0
		if k.Takeover >= 0 {
			t = secs(k.Takeover)
		}
		row.Kills = append(row.Kills, KillRow{At: secs(k.At), Leader: k.Leader, ForGood: k.ForGood, Takeover: t})
	}
	return row
}

// SybilRow is how the Sybil identities fared.
type SybilRow struct {
	Count    int            `json:"count"`
	ByKind   map[string]int `json:"by_kind"`
	Excluded int            `json:"excluded"`
	Units    int            `json:"units_included"`
	Messages int            `json:"messages_sent"`
}

// StepRow is one finalised step. Times are virtual seconds since the
// start; bytes and utilisation are per live peer over the step.
type StepRow struct {
	Step         uint64          `json:"step"`
	Opened       float64         `json:"opened"`
	Closed       float64         `json:"closed"`
	Finalised    float64         `json:"finalised"`
	Seconds      float64         `json:"seconds"` // since the previous step was finalised
	Reopens      int             `json:"reopens"`
	Members      int             `json:"members"`
	Units        int             `json:"units"`
	Included     int             `json:"included"`
	Late         int             `json:"late,omitempty"` // of those, late updates of the step before
	Contributors int             `json:"contributors"`
	Disputes     int             `json:"disputes"`
	Excluded     int             `json:"excluded"`
	Republished  int             `json:"republished"` // tracker messages published again
	Resent       int             `json:"resent"`      // updates workers sent again
	CatchUps     int             `json:"catch_ups"`   // nodes that fetched the step's base instead of applying
	Missing      *engine.Missing `json:"missing_at_deadline,omitempty"`
	Live         int             `json:"live"`
	Download     engine.Dist     `json:"download_bytes"`
	Upload       engine.Dist     `json:"upload_bytes"`
	Utilisation  engine.Dist     `json:"utilisation"`
	Loss         *float64        `json:"loss,omitempty"` // held-out loss of the step's result (real training)
}

// Summary aggregates the run.
type Summary struct {
	StepSeconds    engine.Dist    `json:"step_seconds"`
	Contributors   engine.Dist    `json:"contributors"`
	Download       engine.Dist    `json:"download_bytes_per_step"` // of the steps' medians
	Upload         engine.Dist    `json:"upload_bytes_per_step"`
	Utilisation    engine.Dist    `json:"utilisation"` // per peer over the run: time on jobs / time alive
	LossStart      *float64       `json:"loss_start,omitempty"`
	LossEnd        *float64       `json:"loss_end,omitempty"`
	HonestExcluded int            `json:"honest_excluded"`
	DeadlineSteps  int            `json:"deadline_steps"` // steps closed by their deadline
	Missing        engine.Missing `json:"missing_at_deadlines"`
	Republished    int            `json:"republished"`
	Resent         int            `json:"resent"`
	CatchUps       int            `json:"catch_ups"`
	Late           int            `json:"late,omitempty"` // late updates the steps' Closes included
}

// NetworkRow describes the links.
type NetworkRow struct {
	Classes          []ClassRow `json:"classes"`
	MeanUplinkMbit   float64    `json:"mean_uplink_mbit"`
	TrackerDownload  int64      `json:"tracker_download_bytes"`
	TrackerUpload    int64      `json:"tracker_upload_bytes"`
	Delivered        int        `json:"messages_delivered"`
	Dropped          int        `json:"messages_dropped"`
	UpdatesPublished int        `json:"updates_published"`
	MeanUpdateBytes  float64    `json:"mean_update_bytes"`
}

// ClassRow is one link class of the run.
type ClassRow struct {
	Class     string  `json:"class"`
	Peers     int     `json:"peers"`
	Download  float64 `json:"download_bytes_total_median"`
	Upload    float64 `json:"upload_bytes_total_median"`
	Intake    float64 `json:"gossip_intake_mbit_median"` // the rate at which it takes in gossip
	Utilised  float64 `json:"utilisation_median"`
	UpSeconds float64 `json:"alive_seconds_median"`
}

// AdversaryRow is how one kind of adversary fared.
type AdversaryRow struct {
	Behaviour         string  `json:"behaviour"`
	Peers             int     `json:"peers"`
	Excluded          int     `json:"excluded"`
	MeanExcludedAt    float64 `json:"mean_excluded_at_step,omitempty"`
	UnitsIncluded     int     `json:"units_included"`
	UnitsIncludedMean float64 `json:"units_included_per_peer"`
}

// InvariantRow says whether the invariants were checked, after how many
// events.
type InvariantRow struct {
	Checked bool  `json:"checked"`
	Events  int64 `json:"events"`
	Held    bool  `json:"held"`
}

// ScalingRow is what the run says of the v1 protocol's limit: every peer
// downloads every included update of every step (and, here, whatever was
// sent again).
type ScalingRow struct {
	IncludedPerStep  float64 `json:"included_per_step"`
	UpdateBytes      float64 `json:"update_bytes"`
	IncludedBytes    float64 `json:"included_bytes_per_step"`          // included × update size: v1's floor
	Duplicates       float64 `json:"gossip_duplicates"`                // bytes taken in per byte needed (network.duplicates)
	DownloadPerStep  float64 `json:"download_bytes_per_peer_per_step"` // what the median peer took in
	MedianIntakeMbit float64 `json:"median_intake_mbit"`
	IncludedSeconds  float64 `json:"included_seconds_at_median"` // the floor, at the median intake
	DownloadSeconds  float64 `json:"download_seconds_at_median"`
	TrainSeconds     float64 `json:"train_seconds_median"`
	StepSeconds      float64 `json:"step_seconds_median"`
	BreakEven        float64 `json:"break_even_contributors"` // contributors at which the floor takes as long as training
	Verdict          string  `json:"verdict"`
}

// TwinRow is the honest, churn-free twin's outcome beside the run's.
type TwinRow struct {
	StepsDone      int         `json:"steps_done"`
	VirtualSeconds float64     `json:"virtual_seconds"`
	LossEnd        *float64    `json:"loss_end,omitempty"`
	LossRatio      *float64    `json:"loss_ratio,omitempty"` // the run's final loss over the twin's, at the same step
	Loss           []float64   `json:"loss,omitempty"`
	Finalised      []float64   `json:"finalised,omitempty"`
	StepSeconds    engine.Dist `json:"step_seconds"`
}

func secs(d time.Duration) float64 { return round3(d.Seconds()) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func roundDist(d engine.Dist) engine.Dist {
	return engine.Dist{Mean: round3(d.Mean), P50: round3(d.P50), P95: round3(d.P95), Max: round3(d.Max)}
}

func ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	r := math.Round(v*1e6) / 1e6
	return &r
}

func median(xs []float64) float64 { return engine.Summarise(slices.Clone(xs)).P50 }

func buildReport(s *Scenario, r *runResult, twin *runResult) *Report {
	rep := &Report{Scenario: s.Name, Description: strings.TrimSpace(s.Description), Seed: s.Seed, Round: s.Spec.ID().String(),
		Training: s.Training, Delivery: "every", Peers: s.Peers, Observers: s.Observers, Joined: r.joined, Departures: r.departed,
		Byzantine: round3(s.Byzantine()), Changed: s.Changed, Config: s.Canonical(), StepsWanted: s.Steps, StepsDone: len(r.steps), Stopped: r.stopped,
		VirtualSeconds: secs(r.virtual), Events: r.processed}
	if s.Batched() {
		rep.Delivery = "batched"
	}
	reportSteps(rep, s, r)
	reportLinks(rep, r)
	reportAdversaries(rep, r)
	rep.Invariants = InvariantRow{Checked: r.checked, Events: r.processed, Held: r.checked}
	reportV1(rep, s, r)
	rep.Findings = findings(rep)
	if twin != nil {
		rep.Twin = twinRow(r, twin)
	}
	if r.broken != "" {
		rep.Invariants.Held = false
	}
	rep.Sybils = sybilRow(s, r)
	rep.Group = groupRow(r)
	rep.Expectations = evaluate(s, rep, r)
	return rep
}

// reportSteps fills in the steps and the summary of the run.
func reportSteps(rep *Report, s *Scenario, r *runResult) {
	var durations, contributors, downs, ups []float64
	prev := time.Duration(0)
	for i, st := range r.steps {
		if i == 0 {
			prev = st.Opened
		}
		row := StepRow{Step: st.Step, Opened: secs(st.Opened), Closed: secs(st.Closed), Finalised: secs(st.Finalised),
			Seconds: secs(st.Finalised - prev), Reopens: st.Reopens, Members: st.Members, Units: st.Units, Included: st.Included, Late: st.Late,
			Contributors: st.Contributors, Disputes: st.Disputes, Excluded: st.Excluded, Live: st.Live,
			Republished: st.Republished, Resent: st.Resent, CatchUps: st.CatchUps,
			Download: roundDist(st.BytesIn), Upload: roundDist(st.BytesOut), Utilisation: roundDist(st.Busy)}
		if i < len(r.loss) {
			row.Loss = ptr(r.loss[i])
		}
		prev = st.Finalised
		rep.Steps = append(rep.Steps, row)
		durations = append(durations, row.Seconds)
		contributors = append(contributors, float64(st.Contributors))
		downs = append(downs, st.BytesIn.P50)
		ups = append(ups, st.BytesOut.P50)
		if st.Closed-st.Opened >= s.Spec.Deadline {
			rep.Summary.DeadlineSteps++
			m := st.Missing
			rep.Steps[len(rep.Steps)-1].Missing = &m
			rep.Summary.Missing.Left += m.Left
			rep.Summary.Missing.Computing += m.Computing
			rep.Summary.Missing.Waiting += m.Waiting
		}
		rep.Summary.Republished += st.Republished
		rep.Summary.Late += st.Late
		rep.Summary.Resent += st.Resent
		rep.Summary.CatchUps += st.CatchUps
	}
	rep.Summary.StepSeconds = roundDist(engine.Summarise(slices.Clone(durations)))
	rep.Summary.Contributors = roundDist(engine.Summarise(contributors))
	rep.Summary.Download = roundDist(engine.Summarise(downs))
	rep.Summary.Upload = roundDist(engine.Summarise(ups))
	var util []float64
	for _, p := range r.totals {
		if p.Up > 0 {
			util = append(util, float64(p.Busy)/float64(p.Up))
		}
	}
	rep.Summary.Utilisation = roundDist(engine.Summarise(util))
	if s.Training == "real" {
		rep.Summary.LossStart = ptr(r.loss0)
		if n := len(r.loss); n > 0 {
			rep.Summary.LossEnd = ptr(r.loss[n-1])
		}
	}
}

// reportLinks fills in the links, by class.
func reportLinks(rep *Report, r *runResult) {
	byClass := map[string][]int{}
	for i, p := range r.totals {
		byClass[p.Class] = append(byClass[p.Class], i)
	}
	for _, class := range sortedIDs(byClass) {
		var in, out, intake, ut, up []float64
		for _, i := range byClass[class] {
			p := r.totals[i]
			in = append(in, float64(p.BytesIn))
			out = append(out, float64(p.BytesOut))
			intake = append(intake, r.rates[i]*8/1e6)
			up = append(up, p.Up.Seconds())
			if p.Up > 0 {
				ut = append(ut, float64(p.Busy)/float64(p.Up))
			}
		}
		rep.Network.Classes = append(rep.Network.Classes, ClassRow{Class: class, Peers: len(byClass[class]), Download: round3(median(in)),
			Upload: round3(median(out)), Intake: round3(median(intake)), Utilised: round3(median(ut)), UpSeconds: round3(median(up))})
	}
	rep.Network.MeanUplinkMbit = round3(r.meanUp * 8 / 1e6)
	rep.Network.TrackerDownload, rep.Network.TrackerUpload = r.trackerIn, r.trkOut
	rep.Network.Delivered, rep.Network.Dropped = r.delivered, r.dropped
	rep.Network.UpdatesPublished = r.updates
	if r.updates > 0 {
		rep.Network.MeanUpdateBytes = round3(r.updBytes / float64(r.updates))
	}
}

// reportAdversaries fills in the adversaries and the honest peers the
// ledger excluded.
func reportAdversaries(rep *Report, r *runResult) {
	kinds := map[Behaviour][]string{}
	for id, b := range r.dishonest {
		kinds[b] = append(kinds[b], id)
	}
	for _, b := range Behaviours {
		ids := kinds[b]
		if len(ids) == 0 {
			continue
		}
		row := AdversaryRow{Behaviour: string(b), Peers: len(ids)}
		var at float64
		for _, id := range ids {
			e := r.ledger[id]
			row.UnitsIncluded += e.Units
			if e.Excluded {
				row.Excluded++
				at += float64(e.ExcludedAt)
			}
		}
		if row.Excluded > 0 {
			row.MeanExcludedAt = round3(at / float64(row.Excluded))
		}
		row.UnitsIncludedMean = round3(float64(row.UnitsIncluded) / float64(len(ids)))
		rep.Adversaries = append(rep.Adversaries, row)
	}
	for _, id := range sortedIDs(r.ledger) {
		if _, bad := r.dishonest[id]; !bad && r.ledger[id].Excluded {
			rep.Summary.HonestExcluded++
		}
	}
}

// sybilRow sums up the Sybils' fate from the ledger.
func sybilRow(s *Scenario, r *runResult) *SybilRow {
	if s.Sybils.Count == 0 {
		return nil
	}
	row := &SybilRow{Count: s.Sybils.Count, ByKind: map[string]int{}, Messages: r.sybilMsgs}
	for id, b := range r.cheaters {
		if _, peer := r.dishonest[id]; peer {
			continue
		}
		row.ByKind[string(b)]++
		e := r.ledger[id]
		row.Units += e.Units
		if e.Excluded {
			row.Excluded++
		}
	}
	return row
}

// reportV1 fills in the v1 limit: what every peer receiving every
// included update costs at this size.
func reportV1(rep *Report, s *Scenario, r *runResult) {
	v := &rep.V1
	v.IncludedPerStep = round3(engine.Summarise(incl(r.steps)).Mean)
	v.UpdateBytes = rep.Network.MeanUpdateBytes
	v.IncludedBytes = round3(v.IncludedPerStep * v.UpdateBytes)
	v.Duplicates = max(1, s.Network.Duplicates)
	v.DownloadPerStep = rep.Summary.Download.P50
	v.MedianIntakeMbit = round3(median(r.rates) * 8 / 1e6)
	v.TrainSeconds = round3(time.Duration(s.Compute.Train).Seconds() / s.Compute.Speed.Median)
	v.StepSeconds = rep.Summary.StepSeconds.P50
	if rate := median(r.rates); rate > 0 {
		v.IncludedSeconds = round3(v.IncludedBytes * v.Duplicates / rate)
		v.DownloadSeconds = round3(v.DownloadPerStep / rate)
		if v.UpdateBytes > 0 {
			v.BreakEven = round3(v.TrainSeconds * rate / (v.UpdateBytes * v.Duplicates))
		}
	}
	v.Verdict = verdict(v, s.Peers+s.Observers)
}

// twinRow compares the run with its honest twin.
func twinRow(r, twin *runResult) *TwinRow {
	t := &TwinRow{StepsDone: len(twin.steps), VirtualSeconds: secs(twin.virtual)}
	var td []float64
	p := time.Duration(0)
	for i, st := range twin.steps {
		if i == 0 {
			p = st.Opened
		}
		td = append(td, secs(st.Finalised-p))
		p = st.Finalised
		t.Finalised = append(t.Finalised, secs(st.Finalised))
	}
	t.StepSeconds = roundDist(engine.Summarise(td))
	for _, l := range twin.loss {
		if q := ptr(l); q != nil {
			t.Loss = append(t.Loss, *q)
		} else {
			t.Loss = append(t.Loss, 0)
		}
	}
	if n := len(twin.loss); n > 0 {
		t.LossEnd = ptr(twin.loss[n-1])
		k := min(len(r.loss), n) - 1
		if k >= 0 && twin.loss[k] > 0 {
			t.LossRatio = ptr(r.loss[k] / twin.loss[k])
		}
	}
	return t
}

func incl(steps []engine.StepStats) []float64 {
	out := make([]float64, len(steps))
	for i, s := range steps {
		out[i] = float64(s.Included)
	}
	return out
}

// JSON returns the report as indented JSON.
func (r *Report) JSON() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		panic(err) // every field is encodable
	}
	return append(b, '\n')
}

// Text returns the report as a summary for people.
func (r *Report) Text() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "shoal simulation: %s (seed %d)\n", r.Scenario, r.Seed)
	if r.Description != "" {
		fmt.Fprintf(&b, "%s\n", r.Description)
	}
	if len(r.Changed) > 0 {
		fmt.Fprintf(&b, "changed from the scenario: %s\n", strings.Join(r.Changed, ", "))
	}
	fmt.Fprintf(&b, "\nround %s, %s training, updates delivered %s\n", r.Round, r.Training, r.Delivery)
	fmt.Fprintf(&b, "%d peers (%d observers), %d joined later, %d departures, %.0f%% byzantine\n",
		r.Peers+r.Observers, r.Observers, r.Joined, r.Departures, 100*r.Byzantine)
	fmt.Fprintf(&b, "%d of %d steps finalised in %s of virtual time (%d events)\n", r.StepsDone, r.StepsWanted,
		time.Duration(r.VirtualSeconds*float64(time.Second)).Round(time.Second), r.Events)
	if r.Stopped != "" {
		fmt.Fprintf(&b, "%s\n", r.Stopped)
	}
	s := r.Summary
	fmt.Fprintf(&b, "\nstep duration     median %.1f s, p95 %.1f s, max %.1f s (%d steps closed at their deadline)\n",
		s.StepSeconds.P50, s.StepSeconds.P95, s.StepSeconds.Max, s.DeadlineSteps)
	fmt.Fprintf(&b, "contributors      median %.0f per step (mean %.1f)\n", s.Contributors.P50, s.Contributors.Mean)
	if s.Late > 0 {
		fmt.Fprintf(&b, "late updates      %d came after their step closed and joined the next one (late_weight)\n", s.Late)
	}
	fmt.Fprintf(&b, "download per peer median %s per step (p95 of steps %s)\n", bytesize.Format(s.Download.P50), bytesize.Format(s.Download.P95))
	fmt.Fprintf(&b, "upload per peer   median %s per step\n", bytesize.Format(s.Upload.P50))
	fmt.Fprintf(&b, "utilisation       median %.0f%% of a peer's time on jobs (p95 %.0f%%)\n", 100*s.Utilisation.P50, 100*s.Utilisation.P95)
	fmt.Fprintf(&b, "republished       %d tracker messages sent again; %d updates re-sent by workers; %d catch-ups\n", s.Republished, s.Resent, s.CatchUps)
	if s.LossStart != nil && s.LossEnd != nil {
		fmt.Fprintf(&b, "held-out loss     %.4f → %.4f\n", *s.LossStart, *s.LossEnd)
	}
	if t := r.Twin; t != nil {
		fmt.Fprintf(&b, "honest twin       %d steps in %s", t.StepsDone, time.Duration(t.VirtualSeconds*float64(time.Second)).Round(time.Second))
		if t.LossEnd != nil {
			fmt.Fprintf(&b, ", loss %.4f", *t.LossEnd)
		}
		if t.LossRatio != nil {
			fmt.Fprintf(&b, "; this run's loss is %+.2f%% of the twin's", 100*(*t.LossRatio-1))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nlinks (mean uplink %.1f Mbit/s; tracker took in %s, sent %s)\n", r.Network.MeanUplinkMbit,
		bytesize.Format(float64(r.Network.TrackerDownload)), bytesize.Format(float64(r.Network.TrackerUpload)))
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  class\tpeers\tintake\tdownloaded\tuploaded\tutilisation")
	for _, c := range r.Network.Classes {
		fmt.Fprintf(tw, "  %s\t%d\t%.1f Mbit/s\t%s\t%s\t%.0f%%\n", c.Class, c.Peers, c.Intake, bytesize.Format(c.Download), bytesize.Format(c.Upload), 100*c.Utilised)
	}
	tw.Flush()
	if len(r.Adversaries) > 0 {
		b.WriteString("\nadversaries\n")
		tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  behaviour\tpeers\texcluded\tat step (mean)\tunits included per peer")
		for _, a := range r.Adversaries {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%.1f\t%.1f\n", a.Behaviour, a.Peers, a.Excluded, a.MeanExcludedAt, a.UnitsIncludedMean)
		}
		tw.Flush()
	}
	fmt.Fprintf(&b, "honest peers excluded: %d\n", s.HonestExcluded)
	if y := r.Sybils; y != nil {
		fmt.Fprintf(&b, "sybils: %d identities (%s), %d messages sent, %d excluded, %d of their updates included\n", y.Count,
			kindsText(y.ByKind), y.Messages, y.Excluded, y.Units)
	}
	if g := r.Group; g != nil {
		fmt.Fprintf(&b, "tracker group: %d members, %d elections stood;", g.Members, g.Campaigns)
		for _, l := range g.Leaders {
			fmt.Fprintf(&b, " %s led from %.1fs (term %d);", shortPeer(l.Leader), l.At, l.Term)
		}
		b.WriteString("\n")
		for _, k := range g.Kills {
			how := "killed for good"
			if !k.ForGood {
				how = "crashed (restarted a minute later)"
			}
			if k.Takeover < 0 {
				fmt.Fprintf(&b, "  leader %s %s at %.1fs: no member led after it\n", shortPeer(k.Leader), how, k.At)
			} else {
				fmt.Fprintf(&b, "  leader %s %s at %.1fs: a member led again %.1fs later\n", shortPeer(k.Leader), how, k.At, k.Takeover)
			}
		}
	}
	if r.Invariants.Checked && !r.Invariants.Held {
		fmt.Fprintf(&b, "invariants checked after each event: BROKEN (%s)\n", r.Stopped)
	} else if r.Invariants.Checked {
		fmt.Fprintf(&b, "invariants checked after each of %d events: they held\n", r.Invariants.Events)
	} else {
		b.WriteString("invariants not checked\n")
	}
	if r.V1.Verdict != "" {
		fmt.Fprintf(&b, "\nv1 scaling: %s\n", r.V1.Verdict)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "\nfinding: %s\n", f)
	}
	if len(r.Expectations) > 0 {
		fmt.Fprintf(&b, "\nexpectations (%d of %d failed)\n", len(r.Failed()), len(r.Expectations))
		tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
		for _, e := range r.Expectations {
			mark := "PASS"
			if !e.Pass {
				mark = "FAIL"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\tgot: %s\n", mark, e.Name, e.Want, e.Got)
		}
		tw.Flush()
	}
	return b.String()
}

func kindsText(m map[string]int) string {
	var parts []string
	for _, k := range sortedIDs(m) {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

// Plots returns the report's plots as SVG files by name.
func (r *Report) Plots() map[string][]byte {
	steps := func(f func(StepRow) float64) ([]float64, []float64) {
		var xs, ys []float64
		for _, s := range r.Steps {
			xs, ys = append(xs, float64(s.Step)), append(ys, f(s))
		}
		return xs, ys
	}
	out := map[string][]byte{}
	if r.Training == "real" {
		var xs, ys []float64
		if r.Summary.LossStart != nil {
			xs, ys = append(xs, 0), append(ys, *r.Summary.LossStart/1)
		}
		for _, s := range r.Steps {
			if s.Loss != nil {
				xs, ys = append(xs, s.Finalised/60), append(ys, *s.Loss)
			}
		}
		ch := chart{title: "Held-out loss against virtual time", xlabel: "virtual time (minutes)", ylabel: "loss (nats per token)",
			series: []series{{name: r.Scenario, color: palette[0], xs: xs, ys: ys}}}
		if t := r.Twin; t != nil && len(t.Loss) > 0 {
			var tx, ty []float64
			if r.Summary.LossStart != nil {
				tx, ty = append(tx, 0), append(ty, *r.Summary.LossStart)
			}
			for i, l := range t.Loss {
				tx, ty = append(tx, t.Finalised[i]/60), append(ty, l)
			}
			ch.series = append(ch.series, series{name: "honest, churn-free twin", color: palette[2], xs: tx, ys: ty, dashed: true})
		}
		out["loss.svg"] = ch.svg()
	}
	xs, ys := steps(func(s StepRow) float64 { return s.Seconds })
	out["step-duration.svg"] = chart{title: "Step duration", xlabel: "outer step", ylabel: "virtual seconds", ymin0: true,
		series: []series{{name: "from the previous Final", color: palette[0], xs: xs, ys: ys}}}.svg()
	xs, cs := steps(func(s StepRow) float64 { return float64(s.Contributors) })
	_, ms := steps(func(s StepRow) float64 { return float64(s.Members) })
	out["contributors.svg"] = chart{title: "Contributors per step", xlabel: "outer step", ylabel: "peers", ymin0: true,
		series: []series{{name: "peers included", color: palette[0], xs: xs, ys: cs}, {name: "members dealt units", color: palette[1], xs: xs, ys: ms, dashed: true}}}.svg()
	mb := func(f func(StepRow) float64) func(StepRow) float64 {
		return func(s StepRow) float64 { return f(s) / 1e6 }
	}
	xs, d50 := steps(mb(func(s StepRow) float64 { return s.Download.P50 }))
	_, d95 := steps(mb(func(s StepRow) float64 { return s.Download.P95 }))
	_, u50 := steps(mb(func(s StepRow) float64 { return s.Upload.P50 }))
	out["bytes-per-peer.svg"] = chart{title: "Bytes per peer per step", xlabel: "outer step", ylabel: "MB", ymin0: true,
		series: []series{{name: "download, median", color: palette[0], xs: xs, ys: d50}, {name: "download, p95", color: palette[1], xs: xs, ys: d95, dashed: true},
			{name: "upload, median", color: palette[2], xs: xs, ys: u50}}}.svg()
	pc := func(f func(StepRow) float64) func(StepRow) float64 {
		return func(s StepRow) float64 { return 100 * f(s) }
	}
	xs, m := steps(pc(func(s StepRow) float64 { return s.Utilisation.Mean }))
	_, p50 := steps(pc(func(s StepRow) float64 { return s.Utilisation.P50 }))
	out["utilisation.svg"] = chart{title: "Utilisation: share of a peer's time on jobs", xlabel: "outer step", ylabel: "percent", ymin0: true,
		series: []series{{name: "mean", color: palette[0], xs: xs, ys: m}, {name: "median", color: palette[3], xs: xs, ys: p50, dashed: true}}}.svg()
	return out
}

// WriteDir writes the report into dir (made if need be): report.json,
// summary.txt and the plots.
func (r *Report) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := r.Plots()
	files["report.json"] = r.JSON()
	files["summary.txt"] = []byte(r.Text())
	for _, name := range sortedIDs(files) {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// deadlineFinding explains why steps waited for their deadline, from
// what the peers of the units they lacked were doing then.
func deadlineFinding(r *Report, n int) string {
	s := r.Summary
	m := s.Missing
	text := fmt.Sprintf("%d of %d steps closed only at their deadline, for want of units that had not come", s.DeadlineSteps, n)
	if m.Total() == 0 {
		return text + " (disputed, or from peers excluded meanwhile)."
	}
	var parts []string
	if m.Computing > 0 {
		fix := "dealing more units than the target needs would let it close without them (spares, once there are more volunteers than units)"
		if r.Peers > r.Steps[len(r.Steps)-1].Units {
			fix = "with more volunteers than units, spares (a tracker setting) deal extra units so that it need not"
		}
		parts = append(parts, fmt.Sprintf("%d dealt to peers still computing (slow machines, or ones that started late, after taking in the step before), for which a step waits: %s", m.Computing, fix))
	}
	if m.Left > 0 {
		parts = append(parts, fmt.Sprintf("%d to peers that had left (these hold a step only for the liveness window in which the tracker still counts them)", m.Left))
	}
	if m.Waiting > 0 {
		parts = append(parts, fmt.Sprintf("%d to live, idle peers, waiting for data (the step's base, or the updates of the step before) or holding back", m.Waiting))
	}
	return fmt.Sprintf("%s: of the %d units missing at those deadlines, %s.", text, m.Total(), strings.Join(parts, "; "))
}

// findings explains what the counters of a run point at.
func findings(r *Report) []string {
	var out []string
	s := r.Summary
	n := len(r.Steps)
	if n == 0 {
		return nil
	}
	if s.DeadlineSteps > 0 {
		out = append(out, deadlineFinding(r, n))
	}
	if s.Resent > 0 {
		out = append(out, fmt.Sprintf("workers re-sent %d updates: a restarted tracker republishes the open step in a new epoch (a tracker group's new leader, in a new term), and every worker that sees its step's Open again in a later epoch or term sends its updates again, which every peer downloads again.", s.Resent))
	}
	best := 0.0
	for _, c := range r.Network.Classes {
		best = max(best, c.Utilised)
	}
	for _, c := range r.Network.Classes {
		if best > 0 && c.Utilised < best/4 && c.Peers > 0 {
			out = append(out, fmt.Sprintf("peers on %s links spent %.0f%% of their time on jobs, against %.0f%% for the busiest class: taking in %.0f Mbit/s, they spend the steps downloading and catching up, and rarely train.",
				c.Class, 100*c.Utilised, 100*best, c.Intake))
		}
	}
	if s.HonestExcluded > 0 {
		out = append(out, fmt.Sprintf("%d honest peers were excluded.", s.HonestExcluded))
	}
	return out
}

// verdict says in a sentence where the run stands against v1's limit.
func verdict(v *ScalingRow, peers int) string {
	if v.BreakEven == 0 || v.TrainSeconds == 0 {
		return ""
	}
	dup := " (gossip duplicates not modelled: network.duplicates is 1, while a gossipsub mesh delivers some messages several times over)"
	if v.Duplicates > 1 {
		dup = fmt.Sprintf(", %s with the mesh's %.1f× gossip duplicates", bytesize.Format(v.IncludedBytes*v.Duplicates), v.Duplicates)
	}
	floor := fmt.Sprintf("every peer downloads every included update: %.0f of %s a step, %s%s, %.0f s at the median intake (%.0f Mbit/s), against %.0f s to train a unit",
		v.IncludedPerStep, bytesize.Format(v.UpdateBytes), bytesize.Format(v.IncludedBytes), dup, v.IncludedSeconds, v.MedianIntakeMbit, v.TrainSeconds)
	extra := ""
	if v.DownloadPerStep > 1.5*v.IncludedBytes*v.Duplicates && v.IncludedBytes > 0 {
		extra = fmt.Sprintf("; with what else it fetched (checkpoints to catch up, residuals to check, updates sent again), the median peer took in %s a step, %.1f times that, %.0f s", bytesize.Format(v.DownloadPerStep), v.DownloadPerStep/(v.IncludedBytes*v.Duplicates), v.DownloadSeconds)
	}
	all := ""
	if float64(peers) > v.IncludedPerStep*1.5 {
		all = fmt.Sprintf(" Were all %d peers to contribute a unit a step, the floor alone would be %s, %.0f s.", peers, bytesize.Format(float64(peers)*v.UpdateBytes*v.Duplicates), float64(peers)*v.IncludedSeconds/max(v.IncludedPerStep, 1))
	}
	switch {
	case v.DownloadSeconds >= v.TrainSeconds:
		return fmt.Sprintf("v1 has stopped scaling here: %s%s. Downloads, not training, set the pace; the floor alone reaches the training time at about %.0f contributors a step.%s Aggregation trees (each peer receives partial aggregates, not every update) are the way past this.",
			floor, extra, v.BreakEven, all)
	case v.IncludedPerStep >= 0.5*v.BreakEven || v.DownloadSeconds >= 0.5*v.TrainSeconds:
		return fmt.Sprintf("v1 is near its limit: %s%s; the floor reaches the training time at about %.0f contributors a step.%s", floor, extra, v.BreakEven, all)
	}
	return fmt.Sprintf("v1 holds: %s%s; the floor reaches the training time at about %.0f contributors a step.%s", floor, extra, v.BreakEven, all)
}
