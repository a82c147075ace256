package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/ipfs/go-cid"
)

// GCResult says what GC removed.
type GCResult struct {
	Removed []cid.Cid // checkpoints (manifests) removed
	Chunks  int       // chunk files removed
	Bytes   int64     // bytes freed
}

// GC removes every checkpoint but the keep newest complete ones (in
// arrival order), the pinned ones, and downloads in progress (incomplete
// checkpoints that arrived after the newest complete one), then every
// chunk that no remaining manifest lists. A complete checkpoint here is
// one whose manifest is intact and whose chunk files are all present with
// the right sizes; damaged chunks are left for Verify to report. Labels of
// removed checkpoints are removed.
func (s *Store) GC(keep int) (*GCResult, error) {
	if keep < 0 {
		return nil, fmt.Errorf("gc: keep %d is negative", keep)
	}
	unlock, err := s.exclusive()
	if err != nil {
		return nil, err
	}
	defer unlock()
	ix, err := s.loadIndex()
	if err != nil {
		return nil, err
	}
	ids, err := s.ids("manifests")
	if err != nil {
		return nil, err
	}
	order := ix.arrange(ids)
	manifests := map[cid.Cid]*Manifest{}
	complete := map[cid.Cid]bool{}
	for _, id := range order {
		m, err := s.manifest(id)
		if err != nil {
			continue // damaged: removed below
		}
		manifests[id] = m
		complete[id] = true
		for i, c := range m.Chunks {
			if st, err := os.Stat(s.chunkPath(c)); err != nil || st.Size() != int64(m.ChunkLen(i)) {
				complete[id] = false
				break
			}
		}
	}
	kept := map[cid.Cid]bool{}
	n := 0
	for i := len(order) - 1; i >= 0; i-- {
		id := order[i]
		switch {
		case ix.pins[id]:
			kept[id] = true
		case complete[id] && n < keep:
			kept[id] = true
		case manifests[id] != nil && !complete[id] && n == 0:
			kept[id] = true // a download in progress
		}
		if complete[id] {
			n++
		}
	}
	res := &GCResult{}
	for _, id := range order {
		if kept[id] {
			continue
		}
		if st, err := os.Stat(s.manifestPath(id)); err == nil {
			res.Bytes += st.Size()
		}
		if err := s.remove(s.manifestPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("gc: %w", err)
		}
		res.Removed = append(res.Removed, id)
	}
	listed := map[cid.Cid]bool{}
	for id := range kept {
		if m := manifests[id]; m != nil {
			for _, c := range m.Chunks {
				listed[c] = true
			}
		}
	}
	for _, d := range []string{"chunks", "manifests"} {
		ents, err := os.ReadDir(s.sub(d))
		if err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
		for _, e := range ents {
			// Temporary files go too: no writer is active, the lock is ours.
			c, err := parseID(e.Name())
			chunk := d == "chunks" && err == nil && !listed[c]
			if !chunk && !isTemp(e.Name()) {
				continue
			}
			var size int64
			if info, err := e.Info(); err == nil {
				size = info.Size()
			}
			if err := s.remove(filepath.Join(s.sub(d), e.Name())); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return res, fmt.Errorf("gc: %w", err)
			}
			if chunk {
				res.Chunks++
			}
			res.Bytes += size
		}
	}
	syncDirectory(s.sub("chunks"))
	syncDirectory(s.sub("manifests"))
	ix.order = slices.DeleteFunc(ix.order, func(c cid.Cid) bool { return !kept[c] })
	for _, id := range order {
		if kept[id] {
			ix.add(id)
		}
	}
	for l, c := range ix.labels {
		if !kept[c] {
			delete(ix.labels, l)
		}
	}
	return res, s.saveIndex(ix)
}
