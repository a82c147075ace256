package boltstore

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shoal-network/shoal/tracker"
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
