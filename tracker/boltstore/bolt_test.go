package boltstore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

func openBolt(t *testing.T, path string) *BoltStorage {
	t.Helper()
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.db.Close() })
	return s
}

// sampleState returns a state with every part filled in: the tracker
// package's golden state (tracker/testdata/state.json, written by its
// TestSampleState from a tracker driven through a step, a dispute and a
// commit).
func sampleState(tb testing.TB) *tracker.State {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "state.json"))
	if err != nil {
		tb.Fatal(err)
	}
	st, err := tracker.DecodeState(b)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func TestBoltRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracker.db")
	s := openBolt(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, want 0600", fi.Mode().Perm())
	}
	st, err := s.Load()
	if st != nil || err != nil {
		t.Fatalf("Load of a new database: %v, %v; want nothing", st, err)
	}
	want := sampleState(t)
	for range 2 { // the second Save replaces the first
		if err := s.Save(want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("loaded\n%+v\nwant\n%+v", got, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openBolt(t, path)
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded after reopening\n%+v\nwant\n%+v", got, want)
	}
}

// TestBoltDamaged checks that every kind of damage is an error naming the
// file and what is wrong, never an empty state.
func TestBoltDamaged(t *testing.T) {
	good, err := tracker.EncodeState(sampleState(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		damage func(tx *bolt.Tx) error
		want   string // in the error of Load or OpenBolt
	}{
		{"garbage state", func(tx *bolt.Tx) error {
			return tx.Bucket(boltBucket).Put(boltStateKey, []byte("\x00\x01garbage"))
		}, "invalid character"},
		{"empty state", func(tx *bolt.Tx) error { return tx.Bucket(boltBucket).Put(boltStateKey, []byte{}) }, "unexpected end of JSON input"},
		{"truncated state", func(tx *bolt.Tx) error { return tx.Bucket(boltBucket).Put(boltStateKey, good[:len(good)/2]) }, "unexpected end of JSON input"},
		{"inconsistent state", func(tx *bolt.Tx) error {
			bad := strings.Replace(string(good), `"step":1,`, `"step":7,`, 1)
			return tx.Bucket(boltBucket).Put(boltStateKey, []byte(bad))
		}, "finalised steps"},
		{"other format", func(tx *bolt.Tx) error { return tx.Bucket(boltBucket).Put(boltFormatKey, []byte("3")) }, `format version "3"`},
		{"no format", func(tx *bolt.Tx) error { return tx.Bucket(boltBucket).Delete(boltFormatKey) }, "no format version"},
		{"garbage final", func(tx *bolt.Tx) error {
			return tx.Bucket(boltBucket).Bucket(boltFinalsBucket).Put(make([]byte, 8), []byte("{garbage"))
		}, "finalised step 0"},
		{"final out of place", func(tx *bolt.Tx) error {
			fb := tx.Bucket(boltBucket).Bucket(boltFinalsBucket)
			v := bytes.Clone(fb.Get(make([]byte, 8)))
			if err := fb.Delete(make([]byte, 8)); err != nil {
				return err
			}
			return fb.Put([]byte{0, 0, 0, 0, 0, 0, 0, 5}, v)
		}, "finalised step 0 stored under key"},
		{"no bucket", func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket(boltBucket); err != nil {
				return err
			}
			_, err := tx.CreateBucket([]byte("other"))
			return err
		}, "not a tracker database"},
	} {
		path := filepath.Join(t.TempDir(), "tracker.db")
		s := openBolt(t, path)
		if err := s.Save(sampleState(t)); err != nil {
			t.Fatal(err)
		}
		if err := s.db.Update(c.damage); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		st, err := s.Load()
		if err == nil {
			// Damage to the layout is found on opening.
			s.Close()
			_, err = OpenBolt(path)
		}
		if err == nil || st != nil {
			t.Errorf("%s: Load gave %v, %v; want an error", c.name, st, err)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not name %s and %q", c.name, err, path, c.want)
		}
		s.Close()
	}
}

func TestBoltNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracker.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenBolt(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("OpenBolt of a text file: %v", err)
	}
}

func TestBoltLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracker.db")
	openBolt(t, path)
	start := time.Now()
	s, err := OpenBolt(path)
	if err == nil {
		s.Close()
		t.Fatal("a second OpenBolt of a held file succeeded")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("error %q does not say that %s is locked", err, path)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

// TestBoltFinalsApart: Finals are stored once each, apart from the rest
// of the state; a database of format 1 (the whole state in one value) is
// read and rewritten in format 2 by the next Save; and a Save that would
// undo a finalised step is refused, leaving the database as it was.
func TestBoltFinalsApart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracker.db")
	s := openBolt(t, path)
	st := sampleState(t)
	whole, err := tracker.EncodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	// A format-1 database, as an earlier build wrote it.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		if err := b.Put(boltFormatKey, []byte("1")); err != nil {
			return err
		}
		return b.Put(boltStateKey, whole)
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("format 1 read as %+v, %v; want %+v", got, err, st)
	}
	if err := s.Save(got); err != nil {
		t.Fatal(err)
	}
	var format, head []byte
	finals := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		format, head = bytes.Clone(b.Get(boltFormatKey)), bytes.Clone(b.Get(boltStateKey))
		finals = b.Bucket(boltFinalsBucket).Stats().KeyN
		return nil
	})
	if string(format) != "2" || finals != len(st.Finals) || bytes.Contains(head, []byte(`"finals"`)) {
		t.Fatalf("after a Save: format %q, %d finals apart, state %s", format, finals, head)
	}
	if got, err := s.Load(); err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("format 2 read as %+v, %v; want %+v", got, err, st)
	}
	undone := *st
	undone.Finals = nil
	if err := s.Save(&undone); err == nil || !strings.Contains(err.Error(), "never undone") {
		t.Fatalf("a Save without the finalised steps: %v", err)
	}
	if got, err := s.Load(); err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("after a refused Save: %+v, %v; want %+v", got, err, st)
	}
}

// TestBoltResume drives a tracker on a bolt file as a driver does (persist
// each Ready's state, then publish) through a step and into the next,
// drops it with its database mid-step, and resumes from the file: the
// same step, the same Finals and updates, in a new epoch.
func TestBoltResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracker.db")
	spec := resumeSpec()
	store := openBolt(t, path)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	genesis := content.Sum([]byte("genesis"))
	tr, err := tracker.New(tracker.Config{Spec: spec, Genesis: genesis}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	var opens []*wire.Open
	var drive func(err error)
	drive = func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		rd := tr.Ready()
		if rd.State != nil {
			if err := store.Save(rd.State); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range rd.Publish {
			if o, ok := m.(*wire.Open); ok {
				opens = append(opens, o)
			}
		}
		for _, f := range rd.Fetch { // the driver holds every payload
			tr.Held(now, f.Payload, true)
			drive(nil)
		}
	}
	drive(nil)
	workers := []string{"w1", "w2"}
	hello := func() {
		for _, w := range workers {
			step, head := tr.Head()
			drive(tr.Receive(now, w, &wire.Hello{Round: spec.ID(), Role: wire.RoleWorker, Step: step, Head: head, Time: uint64(max(now.Unix(), 1))}))
		}
	}
	update := func(o *wire.Open, a round.Assignment) *wire.Update {
		data := fmt.Appendf(nil, "%s/%d/%d", a.Peer, o.Step, a.Unit)
		return &wire.Update{Round: spec.ID(), Step: o.Step, Attempt: o.Attempt, Base: o.Base, Unit: uint32(a.Unit), Replica: uint8(a.Replica),
			Samples: uint32(spec.UnitSamples()), Loss: 2.5, Raw: content.Sum(data), Residual: content.Sum([]byte("residual/" + a.Peer)),
			Payload: content.Sum(data), Size: uint64(len(data)), Data: data}
	}
	deal := func(o *wire.Open) []round.Assignment {
		return round.Assign(spec.Seed, wire.AssignStep(o.Step, o.Attempt), o.Members, int(o.Units), spec.VerificationRate)
	}
	// Step 0, whole: every update, then every commit.
	hello()
	drive(tr.Tick(now))
	o := opens[len(opens)-1]
	for _, a := range deal(o) {
		drive(tr.Receive(now, a.Peer, update(o, a)))
	}
	for _, w := range workers {
		drive(tr.Receive(now, w, &wire.Commit{Round: spec.ID(), Step: 0, Base: genesis, Result: content.Sum([]byte("C1"))}))
	}
	// Step 1, one update of it.
	now = now.Add(time.Second)
	hello()
	drive(tr.Tick(now))
	o = opens[len(opens)-1]
	if o.Step != 1 {
		t.Fatalf("open step %d, want 1", o.Step)
	}
	first := deal(o)[0]
	drive(tr.Receive(now, first.Peer, update(o, first)))
	now = now.Add(time.Second)
	drive(tr.Tick(now)) // updates are persisted at the next tick
	step, phase := tr.Step()
	finals := slices.Clone(tr.Finals())

	// The crash: the tracker and its database handle are dropped.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store = openBolt(t, path)
	st, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	epoch := st.Epoch
	tr, err = tracker.New(tracker.Config{Spec: spec, Genesis: genesis}, st, now)
	if err != nil {
		t.Fatal(err)
	}
	drive(nil)
	if s, p := tr.Step(); s != step || p != phase || s != 1 || p != tracker.PhaseOpen {
		t.Fatalf("resumed at step %d %s, want step %d %s", s, p, step, phase)
	}
	if !reflect.DeepEqual(tr.Finals(), finals) || len(finals) != 1 {
		t.Fatalf("Finals after resuming %v, want %v", tr.Finals(), finals)
	}
	again, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if again.Epoch != epoch+1 || len(again.Updates) != 1 || again.Open == nil || again.Open.Epoch != again.Epoch {
		t.Fatalf("resumed state: epoch %d (was %d), %d updates, open %+v", again.Epoch, epoch, len(again.Updates), again.Open)
	}
	// The rest of step 1 closes it, and its commits finalise it.
	now = now.Add(2 * round.HeartbeatInterval(spec))
	hello()
	drive(tr.Tick(now))
	for _, a := range deal(o)[1:] {
		drive(tr.Receive(now, a.Peer, update(o, a)))
	}
	for _, w := range workers {
		drive(tr.Receive(now, w, &wire.Commit{Round: spec.ID(), Step: 1, Base: o.Base, Result: content.Sum([]byte("C2"))}))
	}
	if n := len(tr.Finals()); n != 2 {
		t.Fatalf("%d Finals, want 2", n)
	}
}

// resumeSpec is a small valid round: four units a step, none replicated.
func resumeSpec() *round.Spec {
	s := round.Defaults()
	s.Model = round.Model{Arch: round.ArchGPT, Vocab: 256, Ctx: 8, Dim: 8, Layers: 1, Heads: 1}
	s.Dataset = round.Dataset{Builtin: true}
	s.InnerSteps, s.Batch = 1, 1
	s.Inner.LR = 0.01
	s.TargetSamples = 4
	s.Deadline = time.Minute
	s.VerificationRate = 0
	s.Trackers = []string{"12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"}
	return s
}
