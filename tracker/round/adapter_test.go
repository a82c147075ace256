package round

import (
	"slices"
	"strings"
	"testing"
)

// TestAdapterAndTeacher reads the adapter and teacher blocks with their
// defaults, keeps them out of the canonical form of rounds without them,
// and sorts an adapter's targets so that their order does not change the
// round.
func TestAdapterAndTeacher(t *testing.T) {
	plain := mustParse(t, minimal)
	if plain.Adapter != nil || plain.Teacher != nil || strings.Contains(string(plain.Canonical()), "adapter") {
		t.Fatal("a round without an adapter has one")
	}

	s := mustParse(t, minimal+"adapter:\n  base: "+ckptCID+"\n  rank: 4\n")
	a := s.Adapter
	if a == nil || a.Rank != 4 || a.Alpha != 4 || !slices.Equal(a.Targets, DefaultAdapterTargets) || a.Base.String() != ckptCID {
		t.Fatalf("adapter %+v, want rank 4, alpha 4, the default targets and base %s", a, ckptCID)
	}
	if s.ID().Equals(plain.ID()) {
		t.Fatal("the adapter does not change the round ID")
	}
	back := mustParse(t, string(s.Canonical()))
	if !back.ID().Equals(s.ID()) {
		t.Fatalf("the canonical form reads back as another round:\n%s", s.Canonical())
	}

	x := mustParse(t, minimal+"adapter:\n  base: "+ckptCID+"\n  rank: 4\n  alpha: 8\n  targets: [mlp.c_fc, attn.c_attn]\n")
	y := mustParse(t, minimal+"adapter:\n  base: "+ckptCID+"\n  rank: 4\n  alpha: 8.0\n  targets: [attn.c_attn, mlp.c_fc]\n")
	if !x.ID().Equals(y.ID()) {
		t.Fatal("the targets' order changes the round")
	}

	d := mustParse(t, minimal+"teacher:\n  checkpoint: "+ckptCID+"\n")
	if d.Teacher == nil || d.Teacher.Temperature != 2 || d.Teacher.Mix != 0.5 {
		t.Fatalf("teacher %+v, want temperature 2 and mix 0.5", d.Teacher)
	}
	if back := mustParse(t, string(d.Canonical())); !back.ID().Equals(d.ID()) {
		t.Fatal("the teacher's canonical form reads back as another round")
	}
}

func TestAdapterAndTeacherErrors(t *testing.T) {
	for _, tc := range []struct{ add, want string }{
		{"adapter:\n  rank: 4\n", "adapter.base: missing (required)"},
		{"adapter:\n  base: " + ckptCID + "\n", "adapter.rank: missing (required)"},
		{"adapter:\n  base: " + ckptCID + "\n  rank: 0\n", "adapter.rank: must be in [1, 128]"},
		{"adapter:\n  base: " + ckptCID + "\n  rank: 4\n  alpha: -1\n", "adapter.alpha: must be in (0, 10000]"},
		{"adapter:\n  base: " + ckptCID + "\n  rank: 4\n  targets: [attn.q]\n", `unknown matrix "attn.q"`},
		{"adapter:\n  base: " + ckptCID + "\n  rank: 4\n  targets: [mlp.c_fc, mlp.c_fc]\n", "named twice"},
		{"adapter:\n  base: " + ckptCID + "\n  rank: 4\n  targets: []\n", "names no matrix"},
		{"adapter:\n  base: bafyfoo\n  rank: 4\n", "adapter.base: want the base checkpoint's CID"},
		{"adapter:\n  base: " + ckptCID + "\n  rank: 4\n  ranks: 4\n", "ranks"},
		{"adapter:\n  base: " + ckptCID + "\n  rank: 4\ninit_checkpoint: " + ckptCID + "\n", "is the adapter's base"},
		{"teacher:\n  temperature: 2\n", "teacher.checkpoint: missing (required)"},
		{"teacher:\n  checkpoint: " + ckptCID + "\n  temperature: 0\n", "teacher.temperature: must be in (0, 100]"},
		{"teacher:\n  checkpoint: " + ckptCID + "\n  mix: 1.5\n", "teacher.mix: must be in [0, 1]"},
	} {
		_, err := Parse([]byte(minimal+tc.add), "round.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.add, err, tc.want)
		}
	}
}
