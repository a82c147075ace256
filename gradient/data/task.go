package data

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
)

// TaskConfig configures a synthetic task. See Task for the process.
type TaskConfig struct {
	// Words is the lexicon size W, 1 to 4096.
	Words int
	// Letters is the alphabet size A: words use the first A lowercase
	// letters, 1 to 26.
	Letters int
	// MinLen and MaxLen bound word lengths (1 <= MinLen <= MaxLen <= 32).
	// There must be at least 2*Words distinct strings in that range.
	MinLen, MaxLen int
	// Zipf is the exponent s of the word distribution, 0 to 16.
	Zipf float64
	// Offset is the rank offset q: the word of rank k = 1, 2, ... has
	// weight 1/(k+q)^s. It must exceed -1 and be at most 1e6.
	Offset float64
	// SentenceEnd is the probability r that a word ends a sentence, in
	// [0, 1].
	SentenceEnd float64
	// Newline is the probability m that a sentence end is followed by '\n'
	// rather than ' ', in [0, 1].
	Newline float64
	// Seed determines the lexicon and, mixed with the stream seed, the text.
	Seed uint64
}

// Limits of TaskConfig.
const (
	MaxTaskWords   = 4096
	MaxTaskWordLen = 32
)

// Probabilities are quantised to integer counts out of probOne.
const (
	probBits = 32
	probOne  = 1 << probBits
)

// The separators, in the order of Task.sep.
var separators = [3]string{" ", ". ", ".\n"}

// Builtin task parameters. BuiltinSeed fixes the lexicon, so "builtin"
// names the same task on every machine.
const (
	BuiltinSeed       uint64 = 0x73686f616c303031 // "shoal001"
	BuiltinTrainBytes        = 4 << 20            // default training text
	BuiltinEvalBytes         = 64 << 10           // default held-out text
)

// Stream seeds used by Task.Corpus.
const (
	TrainStream uint64 = 1
	EvalStream  uint64 = 2
)

// BuiltinConfig returns the configuration of Builtin.
func BuiltinConfig() TaskConfig {
	return TaskConfig{
		Words:       64,
		Letters:     16,
		MinLen:      2,
		MaxLen:      7,
		Zipf:        1,
		Offset:      1,
		SentenceEnd: 0.1,
		Newline:     0.25,
		Seed:        BuiltinSeed,
	}
}

var builtin = sync.OnceValue(func() *Task {
	t, err := NewTask(BuiltinConfig())
	if err != nil {
		panic(err)
	}
	return t
})

// Builtin returns the built-in task (BuiltinConfig). The Task is shared and
// immutable.
func Builtin() *Task { return builtin() }

// Task is a seeded synthetic language whose entropy rate is known exactly.
//
// # Process
//
// A lexicon of W distinct words is drawn from the task seed: each word has
// a length uniform in [MinLen, MaxLen] and letters uniform over the first A
// lowercase letters, and a draw repeating an earlier word is rejected. The
// word of rank k (1-based, in the order drawn) has weight 1/(k+q)^s; the
// normalised weights are quantised to integer counts out of 2^32 (any
// rounding remainder goes to rank 1), and these quantised values are the
// true word probabilities p_w. The text is an i.i.d. sequence of units. A
// unit is a word drawn from p followed by a separator: " " with probability
// 1-r, ". " with probability r(1-m) and ".\n" with probability rm (also
// quantised out of 2^32; Task.SeparatorProbs). The first word of the text
// and every word after a sentence end (". " or ".\n") starts with an
// upper-case letter. Generate draws each unit from one 64-bit output of a
// counter-based hash, using integer comparisons only.
//
// # Exact entropy rate
//
// Words consist of letters and separators of none, so text parses uniquely
// back into units: a unit is a maximal run of letters plus the separator
// after it, and the word is the run in lower case. Capitalisation is a
// function of the previous unit's separator and so carries no information.
// The map from unit sequences to text is therefore injective, and the
// characters of unit i are determined by unit i and unit i-1. Hence n units
// carry exactly n·H_u nats, H_u = H(p) + H(separator), and occupy n·E[L]
// characters on average, E[L] = sum_w p_w |w| + 1 + r. Since unit
// boundaries are renewal times, the number of units in the first N
// characters is N/E[L] + o(N), and the entropy rate of the character
// process is exactly H_u / E[L] nats per character (EntropyRate). No model
// can have a lower expected loss per character on long text.
//
// # Unigram and bigram floors
//
// For the stationary process, the probability that a position holds
// character j of a unit u is P(u)/E[L], and a word is capitalised with
// probability r, independently of the word. UnigramLoss is the entropy
// H(X_t) of that character distribution; BigramLoss is H(X_t | X_t-1),
// computed from the exact distribution of adjacent pairs: pairs inside a
// unit and pairs whose second character is the first letter of the next,
// independent, unit. They are the expected per-character losses of the best
// possible unigram and bigram models.
type Task struct {
	cfg    TaskConfig
	words  [][]byte
	counts []uint64 // per word, summing to probOne
	cum    []uint64 // cum[i] = counts[0] + ... + counts[i]
	sep    [3]uint64

	entropy, unigram, bigram float64
	unitEntropy, meanUnit    float64
}

// NewTask validates cfg and builds its task.
func NewTask(cfg TaskConfig) (*Task, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Task{cfg: cfg}
	if err := t.drawLexicon(); err != nil {
		return nil, err
	}
	t.quantise()
	t.computeFigures()
	return t, nil
}

func (c TaskConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("data: task: "+format, args...))
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	if c.Words < 1 || c.Words > MaxTaskWords {
		bad("words must be in [1, %d], got %d", MaxTaskWords, c.Words)
	}
	if c.Letters < 1 || c.Letters > 26 {
		bad("letters must be in [1, 26], got %d", c.Letters)
	}
	lengthsOK := c.MinLen >= 1 && c.MinLen <= c.MaxLen && c.MaxLen <= MaxTaskWordLen
	if !lengthsOK {
		bad("word lengths must satisfy 1 <= min <= max <= %d, got %d-%d", MaxTaskWordLen, c.MinLen, c.MaxLen)
	}
	if !finite(c.Zipf) || c.Zipf < 0 || c.Zipf > 16 {
		bad("zipf exponent must be in [0, 16], got %v", c.Zipf)
	}
	if !finite(c.Offset) || c.Offset <= -1 || c.Offset > 1e6 {
		bad("rank offset must be in (-1, 1e6], got %v", c.Offset)
	}
	if !finite(c.SentenceEnd) || c.SentenceEnd < 0 || c.SentenceEnd > 1 {
		bad("sentence-end probability must be in [0, 1], got %v", c.SentenceEnd)
	}
	if !finite(c.Newline) || c.Newline < 0 || c.Newline > 1 {
		bad("newline probability must be in [0, 1], got %v", c.Newline)
	}
	if lengthsOK && c.Letters >= 1 && c.Letters <= 26 && c.Words >= 1 {
		if n := distinctStrings(c.Letters, c.MinLen, c.MaxLen, 2*c.Words); n < 2*c.Words {
			bad("only %d distinct words of length %d-%d over %d letters, need at least %d for %d words",
				n, c.MinLen, c.MaxLen, c.Letters, 2*c.Words, c.Words)
		}
	}
	return errors.Join(errs...)
}

// distinctStrings counts the strings of length lo..hi over a letters,
// stopping once the count reaches enough.
func distinctStrings(a, lo, hi, enough int) int {
	total := 0
	for l := lo; l <= hi && total < enough; l++ {
		n := 1
		for range l {
			n *= a
			if n >= enough {
				break
			}
		}
		total += n
	}
	return total
}

// drawLexicon draws the words by rejection sampling from the task seed.
func (t *Task) drawLexicon() error {
	c := t.cfg
	state := absorb(domainLexicon, c.Seed)
	var counter uint64
	next := func() uint64 {
		counter++
		return mix64(state + counter*golden)
	}
	seen := make(map[string]bool, c.Words)
	spanLen := uint64(c.MaxLen - c.MinLen + 1)
	maxDraws := 1000*c.Words + 100000
	for draws := 0; len(t.words) < c.Words; draws++ {
		if draws == maxDraws {
			return fmt.Errorf("data: task: no %d distinct words after %d draws; widen the word lengths or alphabet", c.Words, draws)
		}
		n := c.MinLen + int(below(next(), spanLen))
		w := make([]byte, n)
		for i := range w {
			w[i] = 'a' + byte(below(next(), uint64(c.Letters)))
		}
		if seen[string(w)] {
			continue
		}
		seen[string(w)] = true
		t.words = append(t.words, w)
	}
	return nil
}

// quantise turns the Zipf weights and separator probabilities into integer
// counts out of probOne, deterministically on every architecture.
func (t *Task) quantise() {
	c := t.cfg
	weights := make([]float64, c.Words)
	sum := 0.0
	for i := range weights {
		weights[i] = detPow(float64(i+1)+c.Offset, -c.Zipf)
		sum += weights[i]
	}
	t.counts = make([]uint64, c.Words)
	var total uint64
	for i, w := range weights {
		// w/sum*2^32 is correctly rounded; the floor is exact.
		n := max(uint64(math.Floor(w/sum*probOne)), 1)
		t.counts[i] = n
		total += n
	}
	// The remainder is at most Words in magnitude, far below counts[0]
	// (at least probOne/Words), so counts[0] stays positive.
	t.counts[0] = t.counts[0] + probOne - total
	t.cum = make([]uint64, c.Words)
	var acc uint64
	for i, n := range t.counts {
		acc += n
		t.cum[i] = acc
	}

	end := min(uint64(math.Round(c.SentenceEnd*probOne)), probOne)
	nl := min(uint64(math.Round(c.Newline*float64(end))), end)
	t.sep = [3]uint64{probOne - end, end - nl, nl}
}

// drawUnit returns the word and separator indexes encoded by h: the high 32
// bits choose the word, the low 32 bits the separator.
func (t *Task) drawUnit(h uint64) (word, sep int) {
	u := h >> 32
	word = sort.Search(len(t.cum), func(i int) bool { return t.cum[i] > u })
	v := h & (probOne - 1)
	switch {
	case v < t.sep[0]:
		sep = 0
	case v < t.sep[0]+t.sep[1]:
		sep = 1
	default:
		sep = 2
	}
	return word, sep
}

// Generate returns exactly n bytes of text from the stream with the given
// seed (streams of different tasks are independent). The text starts with a
// capitalised word; the last unit is cut off at n bytes. The result is a
// pure function of the task and (seed, n), and a shorter text is a prefix
// of a longer one from the same seed.
func (t *Task) Generate(seed uint64, n int) []byte {
	if n <= 0 {
		return []byte{}
	}
	out := make([]byte, 0, n+MaxTaskWordLen+2)
	base := absorb(absorb(domainText, t.cfg.Seed), seed)
	capital := true
	for i := uint64(1); len(out) < n; i++ {
		w, s := t.drawUnit(mix64(base + i*golden))
		start := len(out)
		out = append(out, t.words[w]...)
		if capital {
			out[start] -= 'a' - 'A'
		}
		out = append(out, separators[s]...)
		capital = s != 0
	}
	return out[:n:n]
}

// Corpus returns training and held-out evaluation text, generated from the
// streams TrainStream and EvalStream. Builtin().Corpus(BuiltinTrainBytes,
// BuiltinEvalBytes) is the default built-in data set.
func (t *Task) Corpus(trainBytes, evalBytes int) (train, eval []byte) {
	return t.Generate(TrainStream, trainBytes), t.Generate(EvalStream, evalBytes)
}

// EntropyRate returns the entropy rate of the text in nats per character:
// the lowest expected per-character loss any model can reach.
func (t *Task) EntropyRate() float64 { return t.entropy }

// UnigramLoss returns H(X_t) in nats per character, the expected loss of the
// best model that ignores context.
func (t *Task) UnigramLoss() float64 { return t.unigram }

// BigramLoss returns H(X_t | X_t-1) in nats per character, the expected loss
// of the best model that sees only the previous character.
func (t *Task) BigramLoss() float64 { return t.bigram }

// UnitEntropy returns the entropy of one unit (word and separator) in nats.
func (t *Task) UnitEntropy() float64 { return t.unitEntropy }

// MeanUnitLength returns the expected length of a unit in characters.
func (t *Task) MeanUnitLength() float64 { return t.meanUnit }

// Config returns the task's configuration.
func (t *Task) Config() TaskConfig { return t.cfg }

// Words returns the lexicon in rank order (most probable first), in lower
// case.
func (t *Task) Words() []string {
	out := make([]string, len(t.words))
	for i, w := range t.words {
		out[i] = string(w)
	}
	return out
}

// WordProbs returns the exact probability of each word, in rank order.
func (t *Task) WordProbs() []float64 {
	out := make([]float64, len(t.counts))
	for i, n := range t.counts {
		out[i] = float64(n) / probOne
	}
	return out
}

// SeparatorProbs returns the exact probabilities of the separators " ",
// ". " and ".\n".
func (t *Task) SeparatorProbs() [3]float64 {
	var out [3]float64
	for i, n := range t.sep {
		out[i] = float64(n) / probOne
	}
	return out
}

// String describes the task on one line.
func (t *Task) String() string {
	c := t.cfg
	return fmt.Sprintf("synthetic text: %d words, %d letters, lengths %d-%d, zipf s=%g q=%g, sentence end %g, newline %g, seed %#x; floor %.3f nats/char (bigram %.3f, unigram %.3f)",
		c.Words, c.Letters, c.MinLen, c.MaxLen, c.Zipf, c.Offset, c.SentenceEnd, c.Newline, c.Seed,
		t.entropy, t.bigram, t.unigram)
}

func upper(b byte) byte { return b - ('a' - 'A') }

// computeFigures derives the entropy rate and the unigram and bigram floors
// from the quantised probabilities.
func (t *Task) computeFigures() {
	p := t.WordProbs()
	q := t.SeparatorProbs()
	end := q[1] + q[2] // P(the previous unit ended a sentence)

	meanWord := 0.0
	for i, w := range t.words {
		meanWord += p[i] * float64(len(w))
	}
	t.meanUnit = meanWord + q[0] + 2*end
	t.unitEntropy = entropy(p) + entropy(q[:])
	t.entropy = t.unitEntropy / t.meanUnit

	// Expected number of occurrences per unit of each character and of
	// each adjacent pair starting in the unit; both sum to E[L].
	var uni [VocabSize]float64
	var pair [VocabSize][VocabSize]float64
	var first [VocabSize]float64 // distribution of a word's first letter
	var chars [MaxTaskWordLen]byte
	for i, w := range t.words {
		first[w[0]] += p[i]
		for _, capital := range []bool{false, true} {
			pc := 1 - end
			if capital {
				pc = end
			}
			weight := p[i] * pc
			if weight == 0 {
				continue
			}
			s := chars[:len(w)]
			copy(s, w)
			if capital {
				s[0] = upper(s[0])
			}
			for j, ch := range s {
				uni[ch] += weight
				if j+1 < len(s) {
					pair[ch][s[j+1]] += weight
				}
			}
			last := s[len(s)-1]
			pair[last][' '] += weight * q[0]
			pair[last]['.'] += weight * end
		}
	}
	uni[' '] += q[0] + q[1]
	uni['.'] += end
	uni['\n'] += q[2]
	pair['.'][' '] += q[1]
	pair['.']['\n'] += q[2]
	for a, pa := range first {
		if pa == 0 {
			continue
		}
		pair[' '][a] += q[0] * pa
		pair[' '][upper(byte(a))] += q[1] * pa
		pair['\n'][upper(byte(a))] += q[2] * pa
	}

	hx := 0.0
	for _, v := range uni {
		hx += plogp(v / t.meanUnit)
	}
	hxy := 0.0
	for a := range pair {
		for _, v := range pair[a] {
			hxy += plogp(v / t.meanUnit)
		}
	}
	t.unigram = hx
	t.bigram = hxy - hx
}

// plogp returns -x ln x, with 0 for x = 0.
func plogp(x float64) float64 {
	if x <= 0 {
		return 0
	}
	return -x * math.Log(x)
}

func entropy(p []float64) float64 {
	h := 0.0
	for _, x := range p {
		h += plogp(x)
	}
	return h
}
