package data

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestDetMath(t *testing.T) {
	for _, x := range []float64{1e-300, 1e-9, 0.1, 0.5, 0.70710678, 0.9999999, 1, 1.0000001, 1.5, 2, 3, 10, 65, 1234.5, 1e6, 1e300} {
		if got, want := detLog(x), math.Log(x); math.Abs(got-want) > 1e-15*math.Max(1, math.Abs(want)) {
			t.Errorf("detLog(%v) = %v, want %v", x, got, want)
		}
	}
	for _, x := range []float64{-700, -50, -1, -0.3465, -1e-9, 0, 1e-9, 0.3466, 0.5, 1, 7.5, 50, 700} {
		if got, want := detExp(x), math.Exp(x); math.Abs(got-want) > 1e-15*math.Max(1, math.Abs(x))*want {
			t.Errorf("detExp(%v) = %v, want %v", x, got, want)
		}
	}
	// Golden bits: these feed the word probabilities of every task, so a
	// change here changes every lexicon's sampling tables.
	golden := []struct {
		b, s float64
		bits uint64
	}{
		{2.5, -1.1, 0x3fd75bca3ae52e40},
		{65, -1, 0x3f8f81f81f81f822},
		{3, -0.5, 0x3fe279a74590331c},
		{1e6 + 64, -16, 0x2c0112063ed0c4a6},
		{7, 0, 0x3ff0000000000000},
	}
	for _, g := range golden {
		if got := math.Float64bits(detPow(g.b, g.s)); got != g.bits {
			t.Errorf("detPow(%v, %v) bits = %#x, want %#x", g.b, g.s, got, g.bits)
		}
	}
}

func TestNewTaskValidation(t *testing.T) {
	ok := BuiltinConfig()
	tests := []struct {
		name string
		edit func(*TaskConfig)
		want string
	}{
		{"no words", func(c *TaskConfig) { c.Words = 0 }, "words must be in [1, 4096], got 0"},
		{"too many words", func(c *TaskConfig) { c.Words = 5000 }, "words must be in [1, 4096], got 5000"},
		{"letters", func(c *TaskConfig) { c.Letters = 27 }, "letters must be in [1, 26], got 27"},
		{"lengths", func(c *TaskConfig) { c.MinLen, c.MaxLen = 5, 4 }, "1 <= min <= max <= 32, got 5-4"},
		{"zero length", func(c *TaskConfig) { c.MinLen = 0 }, "got 0-7"},
		{"long", func(c *TaskConfig) { c.MaxLen = 33 }, "got 2-33"},
		{"zipf", func(c *TaskConfig) { c.Zipf = -1 }, "zipf exponent must be in [0, 16], got -1"},
		{"zipf nan", func(c *TaskConfig) { c.Zipf = math.NaN() }, "got NaN"},
		{"offset", func(c *TaskConfig) { c.Offset = -1 }, "rank offset must be in (-1, 1e6], got -1"},
		{"sentence", func(c *TaskConfig) { c.SentenceEnd = 1.5 }, "sentence-end probability must be in [0, 1], got 1.5"},
		{"newline", func(c *TaskConfig) { c.Newline = math.Inf(1) }, "newline probability must be in [0, 1], got +Inf"},
		{"lexicon", func(c *TaskConfig) { c.Words, c.Letters, c.MinLen, c.MaxLen = 10, 2, 1, 2 }, "only 6 distinct words of length 1-2 over 2 letters, need at least 20 for 10 words"},
	}
	for _, tt := range tests {
		cfg := ok
		tt.edit(&cfg)
		task, err := NewTask(cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) || task != nil {
			t.Errorf("%s: NewTask(%+v) error %v, want one containing %q", tt.name, cfg, err, tt.want)
		}
	}
	// All problems are reported at once.
	_, err := NewTask(TaskConfig{Letters: 3, MinLen: 1, MaxLen: 2, SentenceEnd: 2})
	if err == nil || !strings.Contains(err.Error(), "words must") || !strings.Contains(err.Error(), "sentence-end") {
		t.Errorf("NewTask with two problems: %v", err)
	}
}

// figureConfigs are tasks whose figures are checked against long samples.
var figureConfigs = []TaskConfig{
	BuiltinConfig(),
	{Words: 200, Letters: 4, MinLen: 1, MaxLen: 6, Zipf: 1.3, Offset: 0, SentenceEnd: 0.3, Newline: 0.5, Seed: 7},
	{Words: 30, Letters: 26, MinLen: 2, MaxLen: 9, Zipf: 0, Offset: 0, SentenceEnd: 1, Newline: 1, Seed: 8},
	{Words: 500, Letters: 20, MinLen: 3, MaxLen: 3, Zipf: 0.7, Offset: 5.5, SentenceEnd: 0.05, Newline: 0, Seed: 9},
}

// trueLoss parses text into units and returns the log-loss (nats) of the
// true model on the whole units, the number of characters they span and
// the number of units.
// It fails the test on text the process cannot produce.
func trueLoss(t *testing.T, task *Task, text []byte, seed uint64) (nats float64, chars, units int) {
	t.Helper()
	index := map[string]int{}
	for i, w := range task.Words() {
		index[w] = i
	}
	p, q := task.WordProbs(), task.SeparatorProbs()
	isLetter := func(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }
	capital := true
	word := make([]byte, 0, MaxTaskWordLen)
	for i := 0; ; {
		j := i
		for j < len(text) && isLetter(text[j]) {
			j++
		}
		if j+1 >= len(text) {
			return nats, chars, units // the unit is cut off
		}
		var s, k int
		switch {
		case text[j] == ' ':
			s, k = 0, j+1
		case text[j] == '.' && text[j+1] == ' ':
			s, k = 1, j+2
		case text[j] == '.' && text[j+1] == '\n':
			s, k = 2, j+2
		default:
			t.Fatalf("seed %d: bad separator %q at %d", seed, text[j:j+2], j)
		}
		if j == i {
			t.Fatalf("seed %d: empty word at %d", seed, i)
		}
		if isUpper := text[i] < 'a'; isUpper != capital {
			t.Fatalf("seed %d: word %q at %d: capitalised %v, want %v", seed, text[i:j], i, isUpper, capital)
		}
		word = append(word[:0], text[i:j]...)
		word[0] |= 0x20
		w, ok := index[string(word)]
		if !ok {
			t.Fatalf("seed %d: %q at %d is not in the lexicon", seed, text[i:j], i)
		}
		nats -= math.Log(p[w]) + math.Log(q[s])
		chars += k - i
		units++
		capital = s != 0
		i = k
	}
}

// empiricalEntropies returns the plug-in unigram entropy and conditional
// bigram entropy of text, in nats.
func empiricalEntropies(text []byte) (uni, bi float64) {
	var c1 [256]float64
	c2 := make([]float64, 256*256)
	for i, b := range text {
		c1[b]++
		if i > 0 {
			c2[int(text[i-1])<<8|int(b)]++
		}
	}
	n := float64(len(text))
	for _, c := range c1 {
		uni += plogp(c / n)
	}
	joint := 0.0
	for _, c := range c2 {
		joint += plogp(c / (n - 1))
	}
	return uni, joint - uni
}

func TestTaskFigures(t *testing.T) {
	const n = 4 << 20
	for _, cfg := range figureConfigs {
		task, err := NewTask(cfg)
		if err != nil {
			t.Fatal(err)
		}
		seed := uint64(cfg.Words) // any seed; reported in failures
		text := task.Generate(seed, n)
		uni, bi := empiricalEntropies(text)
		nats, chars, units := trueLoss(t, task, text, seed)
		checks := []struct {
			name        string
			exact, got  float64
			rel, absTol float64
		}{
			{"unigram loss", task.UnigramLoss(), uni, 0.005, 1e-4},
			{"bigram loss", task.BigramLoss(), bi, 0.005, 1e-4},
			{"entropy rate", task.EntropyRate(), nats / float64(chars), 0.01, 1e-4},
			{"mean unit length", task.MeanUnitLength(), float64(chars) / float64(units), 0.01, 0},
		}
		for _, c := range checks {
			t.Logf("words %d, stream seed %d: %s: exact %.5f, empirical %.5f", cfg.Words, seed, c.name, c.exact, c.got)
			if math.Abs(c.got-c.exact) > c.rel*c.exact+c.absTol {
				t.Errorf("%v, stream seed %d: %s: exact %.5f, empirical %.5f", task, seed, c.name, c.exact, c.got)
			}
		}
		if !(task.EntropyRate() <= task.BigramLoss()+1e-12 && task.BigramLoss() <= task.UnigramLoss()+1e-12) {
			t.Errorf("%v: figures out of order", task)
		}
	}
}

func TestTaskFiguresExact(t *testing.T) {
	// Degenerate tasks with figures known in closed form.
	ln4 := math.Log(4)
	tests := []struct {
		cfg               TaskConfig
		rate, uni, bigram float64
	}{
		// One three-letter word and spaces: "Xyz xyz xyz ...", four
		// equiprobable characters, each determining the next.
		{TaskConfig{Words: 1, Letters: 26, MinLen: 3, MaxLen: 3, Seed: 1}, 0, ln4, 0},
		// One two-letter word, every unit "Xy.\n".
		{TaskConfig{Words: 1, Letters: 26, MinLen: 2, MaxLen: 2, SentenceEnd: 1, Newline: 1, Seed: 2}, 0, ln4, 0},
		// Two equiprobable one-letter words and spaces: "a b b a ...".
		// H_u = ln 2 over 2 characters; X is ' ' half the time, else a
		// fair letter; after a letter comes ' ', after ' ' a fair letter.
		{TaskConfig{Words: 2, Letters: 4, MinLen: 1, MaxLen: 1, Seed: 3}, math.Log(2) / 2, 1.5 * math.Log(2), math.Log(2) / 2},
	}
	for _, tt := range tests {
		task, err := NewTask(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if w := task.Words()[0]; len(w) > 1 && strings.ContainsRune(w[1:], rune(w[0])) || len(w) == 3 && w[1] == w[2] {
			t.Fatalf("%v: word %q repeats a letter; pick another seed", task, w)
		}
		got := []float64{task.EntropyRate(), task.UnigramLoss(), task.BigramLoss()}
		want := []float64{tt.rate, tt.uni, tt.bigram}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-9 {
				t.Errorf("%v: figures %v, want %v", task, got, want)
				break
			}
		}
	}
}

func TestBuiltinGolden(t *testing.T) {
	b := Builtin()
	if b != Builtin() {
		t.Error("Builtin returns different tasks")
	}
	if got, want := string(b.Generate(1, 96)), "Jnaoilh bi oc jpknnip jpknnip. Lpe nhplj eaed moo bam bhoeme mnmmka dla jpknnip. Ohnje jpg jogaa"; got != want {
		t.Errorf("Builtin().Generate(1, 96) = %q, want %q", got, want)
	}
	if got, want := strings.Join(b.Words()[:6], " "), "jnaoilh jpg bam nhplj jpknnip mih"; got != want {
		t.Errorf("Builtin lexicon starts %q, want %q", got, want)
	}
	if got, want := CIDOf([]byte(fmt.Sprint(b.counts, b.sep))).String(), "bafkreih4gmgcj6twvaxeswtcdcijxa4sap6gjdazp66sx6k52owlhwylnq"; got != want {
		t.Errorf("Builtin sampling tables CID = %s, want %s (counts %v, separators %v)", got, want, b.counts[:4], b.sep)
	}
	if got, want := CIDOf(b.Generate(TrainStream, 1<<16)).String(), "bafkreihsglkt6plvixn4llbh7id44w2ku4t7jcdcqs3b5774gntcldqp3a"; got != want {
		t.Errorf("CID of the first 64 KiB of builtin training text = %s, want %s", got, want)
	}
	figures := []struct {
		name      string
		got, want float64
	}{
		{"EntropyRate", b.EntropyRate(), 0.680141816811607},
		{"UnigramLoss", b.UnigramLoss(), 2.81198601329944},
		{"BigramLoss", b.BigramLoss(), 2.02693366665302},
	}
	for _, f := range figures {
		if math.Abs(f.got-f.want) > 1e-12 {
			t.Errorf("Builtin %s = %.15g, want %.15g", f.name, f.got, f.want)
		}
	}
	// The task needs context.
	if r := b.EntropyRate() / b.BigramLoss(); r > 0.6 {
		t.Errorf("Builtin EntropyRate/BigramLoss = %.3f, want <= 0.6", r)
	}
	if !strings.Contains(b.String(), "64 words, 16 letters") || !strings.Contains(b.String(), "floor 0.680 nats/char") {
		t.Errorf("Builtin().String() = %q", b.String())
	}
}

func TestGenerate(t *testing.T) {
	task := Builtin()
	long := task.Generate(5, 10000)
	if len(long) != 10000 || cap(long) != 10000 {
		t.Fatalf("Generate(5, 10000): len %d cap %d", len(long), cap(long))
	}
	for _, n := range []int{1, 2, 7, 100, 9999} {
		if got := task.Generate(5, n); !bytes.Equal(got, long[:n]) {
			t.Errorf("seed 5: Generate(%d) is not a prefix of Generate(10000)", n)
		}
	}
	if got := task.Generate(5, 0); got == nil || len(got) != 0 {
		t.Errorf("Generate(5, 0) = %q", got)
	}
	if bytes.Equal(task.Generate(6, 1000), long[:1000]) {
		t.Error("seeds 5 and 6 give the same text")
	}
	other, _ := NewTask(TaskConfig{Words: 64, Letters: 16, MinLen: 2, MaxLen: 7, Zipf: 1, Offset: 1, SentenceEnd: 0.1, Newline: 0.25, Seed: 12345})
	if strings.Join(other.Words(), " ") == strings.Join(task.Words(), " ") {
		t.Error("task seeds 12345 and builtin draw the same lexicon")
	}
	train, eval := task.Corpus(5000, 300)
	if len(train) != 5000 || len(eval) != 300 || bytes.Equal(train[:300], eval) {
		t.Errorf("Corpus(5000, 300): %d and %d bytes", len(train), len(eval))
	}
	if !bytes.Equal(train, task.Generate(TrainStream, 5000)) || !bytes.Equal(eval, task.Generate(EvalStream, 300)) {
		t.Error("Corpus does not use TrainStream and EvalStream")
	}
	// Probabilities are exact fractions of 2^32 that sum to one.
	var sum uint64
	for _, c := range task.counts {
		if c == 0 {
			t.Fatal("a word has probability zero")
		}
		sum += c
	}
	if sum != probOne || task.sep[0]+task.sep[1]+task.sep[2] != probOne {
		t.Errorf("counts sum to %d and %d, want %d", sum, task.sep[0]+task.sep[1]+task.sep[2], uint64(probOne))
	}
}
