package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/shoal-network/shoal/tracker"
)

// BoltStorage is a Storage in a bbolt database file. The file holds one
// bucket, "tracker", with the keys "format", the version of this layout
// in decimal, and "state", the State without its Finals as JSON, and a
// bucket "finals" in it with each finalised step's Final as JSON under
// its step number (8 bytes, big endian). A Save writes only the Finals
// added since the last, so its cost does not grow with the round's
// length. Format 1 (the whole State under "state") is read too, and
// rewritten in format 2 by the next Save.
//
// Every Save is one bbolt transaction, written and synced to disk before
// Save returns, so a crash at any moment leaves either the state before
// the Save or the state after it. The file is locked while it is open: a
// second OpenBolt of the same file, from this process or another, fails.
type BoltStorage struct {
	db   *bolt.DB
	path string
}

var _ tracker.Storage = (*BoltStorage)(nil)

var (
	boltBucket       = []byte("tracker")
	boltFormatKey    = []byte("format")
	boltStateKey     = []byte("state")
	boltFinalsBucket = []byte("finals")
	boltFormatText   = []byte(strconv.Itoa(boltFormat))
)

// boltFormat is the version of the database layout BoltStorage writes; it
// reads boltFormat and 1.
const boltFormat = 2

// boltLockTimeout is how long OpenBolt waits for a file that another
// tracker holds before it gives up.
const boltLockTimeout = time.Second

// OpenBolt opens the tracker database at path, creating it with mode 0600
// if it does not exist. It fails after about a second if another process
// (or another BoltStorage) holds the file, and at once if the file is not
// a tracker database of a format it reads.
func OpenBolt(path string) (*BoltStorage, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: boltLockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("tracker database %s: locked by another process (is a tracker already running on it?); gave up after %v", path, boltLockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("tracker database %s: %w", path, err)
	}
	s := &BoltStorage{db: db, path: path}
	if err := db.Update(initBolt); err != nil {
		db.Close()
		return nil, fmt.Errorf("tracker database %s: %w", path, err)
	}
	return s, nil
}

// initBolt gives a new database its bucket and format, and checks those of
// an existing one.
func initBolt(tx *bolt.Tx) error {
	if b := tx.Bucket(boltBucket); b != nil {
		return checkboltFormat(b)
	}
	if k, _ := tx.Cursor().First(); k != nil {
		return fmt.Errorf("not a tracker database: it holds a bucket %q and no %q", k, boltBucket)
	}
	b, err := tx.CreateBucket(boltBucket)
	if err != nil {
		return err
	}
	return b.Put(boltFormatKey, boltFormatText)
}

func checkboltFormat(b *bolt.Bucket) error {
	switch v := b.Get(boltFormatKey); {
	case v == nil:
		return fmt.Errorf("no format version under %q", boltFormatKey)
	case !bytes.Equal(v, boltFormatText) && !bytes.Equal(v, []byte("1")):
		return fmt.Errorf("format version %q, but this build reads versions 1 and %d", keyText(v), boltFormat)
	}
	return nil
}

// Load returns the state last saved, or nil if none was. A state that
// DecodeState refuses is an error naming the file: a damaged database is
// never taken for an empty one.
func (s *BoltStorage) Load() (*tracker.State, error) {
	var data []byte
	var finals [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		if b == nil {
			return fmt.Errorf("not a tracker database: no %q bucket", boltBucket)
		}
		if err := checkboltFormat(b); err != nil {
			return err
		}
		// Values are valid only inside the transaction.
		if v := b.Get(boltStateKey); v != nil {
			data = bytes.Clone(v)
			if data == nil {
				data = []byte{}
			}
		}
		if fb := b.Bucket(boltFinalsBucket); fb != nil {
			c := fb.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if len(k) != 8 || binary.BigEndian.Uint64(k) != uint64(len(finals)) {
					return fmt.Errorf("damaged: finalised step %d stored under key %x", len(finals), keyText(k))
				}
				finals = append(finals, bytes.Clone(v))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tracker database %s: %w", s.path, err)
	}
	if data == nil {
		return nil, nil
	}
	st, err := tracker.DecodeStateParts(data, finals)
	if err != nil {
		return nil, fmt.Errorf("tracker database %s: damaged: %w", s.path, err)
	}
	return st, nil
}

// Save replaces the stored state with st in one transaction, durable when
// Save returns.
func (s *BoltStorage) Save(st *tracker.State) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		if b == nil {
			return fmt.Errorf("not a tracker database: no %q bucket", boltBucket)
		}
		fb, err := b.CreateBucketIfNotExists(boltFinalsBucket)
		if err != nil {
			return err
		}
		stored := 0
		if k, _ := fb.Cursor().Last(); k != nil {
			if len(k) != 8 {
				return fmt.Errorf("damaged: a finalised step stored under key %x", keyText(k))
			}
			stored = int(binary.BigEndian.Uint64(k)) + 1
		}
		data, finals, err := tracker.EncodeStateParts(st, stored)
		if err != nil {
			return err
		}
		for i, f := range finals {
			if err := fb.Put(binary.BigEndian.AppendUint64(nil, uint64(stored+i)), f); err != nil {
				return err
			}
		}
		if err := b.Put(boltFormatKey, boltFormatText); err != nil {
			return err
		}
		return b.Put(boltStateKey, data)
	})
	if err != nil {
		return fmt.Errorf("tracker database %s: %w", s.path, err)
	}
	return nil
}

// Close closes the database and releases the file's lock.
func (s *BoltStorage) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("tracker database %s: %w", s.path, err)
	}
	return nil
}

// keyText is a stored key or value for an error message, cut to 60 bytes.
func keyText(k []byte) []byte { return k[:min(len(k), 60)] }
