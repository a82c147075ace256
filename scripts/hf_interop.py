#!/usr/bin/python3
"""GPT-2 weights between PyTorch and shoal, in Hugging Face's layout.

An independent implementation of GPT-2 in plain PyTorch (learned positions,
pre-norm blocks, LayerNorm eps 1e-5, causal attention scaled by
1/sqrt(head dim), tanh GELU, biases, head tied to the token embedding).

  write FILE  initialise a model from --seed, save it as Hugging Face's
              GPT2Model writes a GPT-2 (names without the "transformer."
              prefix, Conv1D weights stored [in, out], the attn.bias mask
              buffers, a tied lm_head.weight), with --dtype F32 or BF16
  loss FILE   load a safetensors file of GPT-2 weights (either layout) into
              the model and print the mean cross-entropy of a token batch

Both print JSON: {"loss": ...}, the loss of the token batch read from
--tokens (a JSON file: a list of rows of ctx+1 token IDs).
"""
import argparse
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x, mask):
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q = q.view(b, t, self.heads, hd).transpose(1, 2)
        k = k.view(b, t, self.heads, hd).transpose(1, 2)
        v = v.view(b, t, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(mask[:t, :t], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, ctx, d, layers, heads):
        super().__init__()
        self.ctx = ctx
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.register_buffer("mask", torch.triu(torch.ones(ctx, ctx, dtype=torch.bool), 1))

    def forward(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t))
        for blk in self.h:
            x = blk(x, self.mask)
        return self.ln_f(x) @ self.wte.weight.t()


# Hugging Face's names of each parameter, and whether its Conv1D stores the
# transpose of nn.Linear's weight.
def hf_names(m):
    out = {"wte.weight": (m.wte.weight, False), "wpe.weight": (m.wpe.weight, False),
           "ln_f.weight": (m.ln_f.weight, False), "ln_f.bias": (m.ln_f.bias, False)}
    for i, b in enumerate(m.h):
        p = "h.%d." % i
        for name, mod in (("ln_1", b.ln_1), ("ln_2", b.ln_2)):
            out[p + name + ".weight"] = (mod.weight, False)
            out[p + name + ".bias"] = (mod.bias, False)
        for name, mod in (("attn.c_attn", b.c_attn), ("attn.c_proj", b.c_proj), ("mlp.c_fc", b.c_fc), ("mlp.c_proj", b.mlp_proj)):
            out[p + name + ".weight"] = (mod.weight, True)
            out[p + name + ".bias"] = (mod.bias, False)
    return out


def save(path, tensors, dtype):
    """Write a safetensors file: {name: (array as float32 torch tensor, dtype)}."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t, dt = tensors[name]
        t = t.detach().contiguous()
        if dt == "BF16":
            raw = t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
        else:
            raw = t.to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        raw = data[e["data_offsets"][0]:e["data_offsets"][1]]
        if e["dtype"] == "BF16":
            t = torch.frombuffer(bytearray(raw), dtype=torch.int16).view(torch.bfloat16).to(torch.float32)
        elif e["dtype"] == "F32":
            t = torch.frombuffer(bytearray(raw), dtype=torch.float32)
        else:
            raise SystemExit("%s: dtype %s" % (name, e["dtype"]))
        out[name] = t.reshape(e["shape"])
    return out


def batch_loss(m, tokens):
    rows = torch.tensor(tokens, dtype=torch.long)
    with torch.no_grad():
        logits = m(rows[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1)).item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["write", "loss"])
    p.add_argument("file")
    p.add_argument("--tokens", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dtype", default="F32", choices=["F32", "BF16"])
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--ctx", type=int, default=64)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    m = GPT(a.vocab, a.ctx, a.dim, a.layers, a.heads)
    for prm in m.parameters():  # weights worth the name, not only zeros and ones
        nn.init.normal_(prm, std=0.2)
    names = hf_names(m)
    with open(a.tokens) as f:
        tokens = json.load(f)
    if a.mode == "write":
        if a.dtype == "BF16":  # the model computes with what the file holds
            with torch.no_grad():
                for prm in m.parameters():
                    prm.copy_(prm.to(torch.bfloat16).to(torch.float32))
        out = {}
        for name, (prm, conv) in names.items():
            out[name] = (prm.t() if conv else prm, a.dtype)
        for i in range(a.layers):
            out["h.%d.attn.bias" % i] = (torch.tril(torch.ones(1, 1, a.ctx, a.ctx)), "F32")
        out["lm_head.weight"] = (m.wte.weight, a.dtype)
        save(a.file, out, a.dtype)
    else:
        w = load(a.file)
        with torch.no_grad():
            for name, (prm, conv) in names.items():
                t = w.get(name, w.get("transformer." + name))
                if t is None:
                    raise SystemExit("%s: no tensor %s" % (a.file, name))
                prm.copy_(t.t() if conv else t)
    print(json.dumps({"loss": batch_loss(m, tokens), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
