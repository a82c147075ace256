package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// LogStore keeps a replica's raft log, its HardState and its last
// snapshot in a bbolt file (or in memory alone, see NewMemLogStore), and serves them to raft from memory
// (raft.MemoryStorage, loaded from the file when it opens). The file has
// a bucket "raft" with the keys "hardstate" and "snapshot" (protobuf), and
// a bucket "entries" with each entry (protobuf) under its index (8 bytes,
// big endian). Each write is one bbolt transaction, synced before it
// returns, so that what raft is told is durable is.
type LogStore struct {
	db  *bolt.DB
	mem *raft.MemoryStorage
}

var (
	bucketRaft    = []byte("raft")
	bucketEntries = []byte("entries")
	keyHardState  = []byte("hardstate")
	keySnapshot   = []byte("snapshot")
)

// OpenLogStore opens the raft log at path, creating it with mode 0600 if
// it does not exist, and loads it. It fails after about a second if
// another process holds the file.
func OpenLogStore(path string) (*LogStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("raft log %s: locked by another process (is a tracker already running on it?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("raft log %s: %w", path, err)
	}
	s := &LogStore{db: db, mem: raft.NewMemoryStorage()}
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("raft log %s: %w", path, err)
	}
	return s, nil
}

// NewMemLogStore returns an empty log held in memory alone: for a
// simulated member, whose "disk" is the simulation's memory (a member
// killed and restarted resumes from it as from a file).
func NewMemLogStore() *LogStore { return &LogStore{mem: raft.NewMemoryStorage()} }

func (s *LogStore) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		rb, err := tx.CreateBucketIfNotExists(bucketRaft)
		if err != nil {
			return err
		}
		eb, err := tx.CreateBucketIfNotExists(bucketEntries)
		if err != nil {
			return err
		}
		if b := rb.Get(keySnapshot); b != nil {
			var snap raftpb.Snapshot
			if err := proto.Unmarshal(b, &snap); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			if err := s.mem.ApplySnapshot(&snap); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
		}
		if b := rb.Get(keyHardState); b != nil {
			var hs raftpb.HardState
			if err := proto.Unmarshal(b, &hs); err != nil {
				return fmt.Errorf("hard state: %w", err)
			}
			if err := s.mem.SetHardState(&hs); err != nil {
				return err
			}
		}
		first, _ := s.mem.FirstIndex()
		var ents []*raftpb.Entry
		c := eb.Cursor()
		for k, v := c.Seek(indexKey(first)); k != nil; k, v = c.Next() {
			var e raftpb.Entry
			if err := proto.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if len(ents) > 0 && e.GetIndex() != ents[len(ents)-1].GetIndex()+1 {
				return fmt.Errorf("entry %d follows entry %d", e.GetIndex(), ents[len(ents)-1].GetIndex())
			}
			ents = append(ents, &e)
		}
		if len(ents) > 0 {
			if ents[0].GetIndex() != first {
				return fmt.Errorf("the log starts at entry %d, the snapshot ends at %d", ents[0].GetIndex(), first-1)
			}
			return s.mem.Append(ents)
		}
		return nil
	})
}

func indexKey(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

// Storage returns the log as raft reads it.
func (s *LogStore) Storage() raft.Storage { return s.mem }

// Empty reports whether the log holds nothing: a replica never started.
func (s *LogStore) Empty() bool {
	last, _ := s.mem.LastIndex()
	hs, _, _ := s.mem.InitialState()
	snap, _ := s.mem.Snapshot()
	return last == 0 && raft.IsEmptyHardState(hs) && raft.IsEmptySnap(snap)
}

// Snapshot returns the last snapshot (empty if none).
func (s *LogStore) Snapshot() *raftpb.Snapshot {
	snap, _ := s.mem.Snapshot()
	return snap
}

// Save makes a Ready's snapshot, entries and hard state durable, in one
// transaction, then gives them to raft: entries from a new entry's index
// on replace those of the log, a snapshot replaces the log it covers.
func (s *LogStore) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	hasSnap := snap != nil && !raft.IsEmptySnap(snap)
	if raft.IsEmptyHardState(hs) && len(ents) == 0 && !hasSnap {
		return nil
	}
	err := s.update(func(tx *bolt.Tx) error {
		rb, eb := tx.Bucket(bucketRaft), tx.Bucket(bucketEntries)
		if hasSnap {
			b, err := proto.Marshal(snap)
			if err != nil {
				return err
			}
			if err := rb.Put(keySnapshot, b); err != nil {
				return err
			}
			if err := deleteFrom(eb, 0, snap.GetMetadata().GetIndex()); err != nil {
				return err
			}
		}
		if len(ents) > 0 {
			if err := deleteFrom(eb, ents[0].GetIndex(), ^uint64(0)); err != nil {
				return err
			}
			for _, e := range ents {
				b, err := proto.Marshal(e)
				if err != nil {
					return err
				}
				if err := eb.Put(indexKey(e.GetIndex()), b); err != nil {
					return err
				}
			}
		}
		if !raft.IsEmptyHardState(hs) {
			b, err := proto.Marshal(hs)
			if err != nil {
				return err
			}
			if err := rb.Put(keyHardState, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("raft log: %w", err)
	}
	if hasSnap {
		if err := s.mem.ApplySnapshot(snap); err != nil {
			return fmt.Errorf("raft log: %w", err)
		}
	}
	if len(ents) > 0 {
		if err := s.mem.Append(ents); err != nil {
			return fmt.Errorf("raft log: %w", err)
		}
	}
	if !raft.IsEmptyHardState(hs) {
		if err := s.mem.SetHardState(hs); err != nil {
			return fmt.Errorf("raft log: %w", err)
		}
	}
	return nil
}

// update runs f in a transaction of the file, if the log has one.
func (s *LogStore) update(f func(tx *bolt.Tx) error) error {
	if s.db == nil {
		return nil
	}
	return s.db.Update(f)
}

// deleteFrom deletes the entries from index lo to hi, both included.
func deleteFrom(eb *bolt.Bucket, lo, hi uint64) error {
	c := eb.Cursor()
	for k, _ := c.Seek(indexKey(lo)); k != nil && binary.BigEndian.Uint64(k) <= hi; k, _ = c.Seek(indexKey(lo)) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Compact takes a snapshot of the applied state at index (data, with the
// configuration cs) and drops the entries up to keep entries behind it
// (kept for followers a little behind, which then need no snapshot).
func (s *LogStore) Compact(index uint64, cs *raftpb.ConfState, data []byte, keep uint64) error {
	snap, err := s.mem.CreateSnapshot(index, cs, data)
	if err != nil {
		return fmt.Errorf("raft log: snapshot at %d: %w", index, err)
	}
	cut := uint64(0)
	if index > keep {
		cut = index - keep
	}
	first, _ := s.mem.FirstIndex()
	b, err := proto.Marshal(snap)
	if err != nil {
		return err
	}
	err = s.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketRaft).Put(keySnapshot, b); err != nil {
			return err
		}
		if cut >= first {
			return deleteFrom(tx.Bucket(bucketEntries), 0, cut)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("raft log: %w", err)
	}
	if cut >= first {
		if err := s.mem.Compact(cut); err != nil {
			return fmt.Errorf("raft log: compact to %d: %w", cut, err)
		}
	}
	return nil
}

// Len returns how many entries the log holds (for tests and status).
func (s *LogStore) Len() uint64 {
	first, _ := s.mem.FirstIndex()
	last, _ := s.mem.LastIndex()
	if last < first {
		return 0
	}
	return last - first + 1
}

// Close closes the file.
func (s *LogStore) Close() error {
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}
