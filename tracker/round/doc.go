// Package round is the round spec: what a researcher writes to start a
// round of training, its strict parsing and checks, its canonical
// encoding and round ID, and the deterministic work assignment every
// participant derives from it. It holds no state: the coordinator that
// runs a round is package tracker, and the messages of the round protocol
// are package tracker/wire.
//
// # Round spec
//
// A researcher describes a round in YAML (Template, the file
// testdata/round.yaml, is the one to copy). Parse reads it strictly and
// reports every problem with its file, line and field:
//
//	round.yaml:12: inner.lr: must be positive, got -0.1
//	round.yaml:14: model.hiden: unknown field (did you mean hidden?)
//	round.yaml: trackers: missing (required)
//
// Validate repeats the value checks on a spec built in Go. Codecs and
// aggregation rules are checked, and put in canonical form, by the
// packages that implement them (gradient/codec and gradient/aggregate, see
// CanonicalCodec and CanonicalRule); the model architecture by its name and
// the ranges below. Deeper checks belong where the spec is used, and
// Spec.Problem lets them report at the field's line. Every problem is a
// *FieldError; Problems lists those an error holds.
//
// # Schema
//
// Every field, with its default; "required" fields have none. A null value
// (`field:` or `field: ~`) is the same as leaving the field out.
//
//	version            integer   format and arithmetic version (see Version)         default 2 (the only one)
//	name               string    one line, at most 200 bytes                         default ""
//	description        string    at most 4096 bytes                                  default ""
//	model              mapping   an architecture of the zoo                          required
//	  arch             string    gpt or mlp                                          required
//	  vocab            integer   token IDs, [2, 2^24]                                default 256
//	  ctx              integer   sequence length, [1, 65536]                         required
//	  dim              integer   embedding width, [1, 65536]                         required
//	  layers           integer   gpt blocks or mlp hidden layers, [1, 1024]          required
//	  heads            integer   gpt only: attention heads, divides dim              required for gpt
//	  hidden           integer   mlp only: hidden width, [1, 2^20]                   required for mlp
//	  window           integer   mlp only: tokens of context seen, [1, ctx]          required for mlp
//	  seed             integer   initialisation seed, [0, 2^64)                      default: the round's seed
//	dataset            string    builtin, or a dataset manifest CID                  required
//	inner_steps        integer   H, inner steps per work unit, [1, 10^6]             required
//	batch              integer   sequences per inner step, [1, 4096]                 default 16
//	inner              mapping   the inner optimizer, AdamW                          required
//	  lr               number    peak learning rate, (0, 10]                         required
//	  warmup           integer   inner steps of linear warm-up over the round, ≥ 0   default 0
//	  betas            [b1, b2]  each in [0, 1)                                      default [0.9, 0.95]
//	  eps              number    (0, 1]                                              default 1e-8
//	  weight_decay     number    decoupled, ≥ 0                                      default 0.1
//	  clip_norm        number    global gradient norm cap, ≥ 0; 0 disables           default 1
//	outer              mapping   the outer optimizer, Nesterov momentum              default {lr: 0.7, momentum: 0.9}
//	  lr               number    (0, 10]                                             default 0.7
//	  momentum         number    [0, 1)                                              default 0.9
//	codec              string    update codec, name[:k=v,...] (CanonicalCodec)       default fp32
//	aggregation        string    aggregation rule, name[:k=v,...] (CanonicalRule)    default mean
//	feedback_decay     number    residual × (1 − decay) before each encoding, [0, 1] default 0
//	late_weight        number    a late update joins the next step at this weight    default 0 (left out)
//	quorum             number    close grace after this fraction of the target, (0,1] default 1
//	grace              duration  see quorum, [0, deadline]                           default 0
//	target_samples     integer   sequences per outer step, ≥ inner_steps × batch     required
//	deadline           duration  Go duration such as 90s or 5m, (0, 24h]             required
//	verification_rate  number    fraction of work units computed twice, [0, 1]       default 0.05
//	seed               integer   seed of sampling and work assignment, [0, 2^64)     default 0
//	trackers           list      tracker peer IDs, 1 to 16, in order of preference   required
//	init_checkpoint    string    checkpoint CID to start from                        default none: initialise from model.seed
//	tokenizer          string    CID of the tokenizer (GPT-2 BPE; shoal tokenize)    default none: one token per byte
//	admission          string    open or closed                                      default open
//	adapter            mapping   train a low-rank adapter (LoRA) of a frozen base     default none: train the whole model
//	  base             string    CID of the base checkpoint (model above is its)     required
//	  rank             integer   [1, min(1024, model.dim)]                           required
//	  alpha            number    the product's scale is alpha/rank, (0, 10000]       default: rank
//	  targets          list      of attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj   default [attn.c_attn, attn.c_proj]
//	teacher            mapping   distil a teacher model into the round's (gpt)       default none
//	  checkpoint       string    CID of the teacher's checkpoint                     required
//	  temperature      number    softens both distributions, (0, 100]                default 2
//	  mix              number    weight of the data's loss, [0, 1]; KL's is 1 − mix  default 0.5
//
// Defaults returns these defaults as a Spec. CIDs (dataset,
// init_checkpoint) must be CIDv1 with the raw codec and a sha2-256 hash,
// as everything on the network is; any multibase go-cid reads is
// accepted. Peer IDs are checked syntactically (CanonicalPeerID): a
// base58btc multihash ("12D3KooW…", "Qm…") or a CIDv1 with the libp2p-key
// codec.
//
// Parsing is strict: unknown and duplicate fields, values of the wrong YAML
// type (an integer field given 64.0, a duration given 90), aliases, merge
// keys and more than one YAML document are errors; files over MaxSpecSize
// are refused.
//
// # Round ID
//
// Canonical encodes a spec as compact JSON with sorted keys, normalised
// numbers and every default written out (see Spec.Canonical), so that two
// files meaning the same round, whatever their comments, white space, key
// order, number spelling ("3e-3" or "0.003"), duration spelling ("120s" or
// "2m"), codec spelling ("topk" or "topk:chunk=4096,k=64,values=fp16"),
// CID multibase or peer ID form, or fields written at their default, encode
// to the same bytes, and any other change gives different bytes. The round
// ID (Spec.ID) is the CID of those bytes: CIDv1, raw codec, sha2-256. The
// canonical encoding is itself a valid spec, so a peer that fetches it by
// the round ID can check it and Parse it.
//
// # Work assignment
//
// Assign deals a step's work units out to the members of a round, a
// replicated fraction of them to two distinct peers, as a pure function of
// the round seed, the step and the member set, so that the tracker and
// every peer compute the same assignment. HeartbeatInterval and Liveness
// derive from the spec how often peers announce themselves and how long a
// silent member still counts.
package round
