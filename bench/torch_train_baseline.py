#!/usr/bin/python3
"""PyTorch-CPU LoRA training baseline for `pocketlora bench train`: tokens/s (and peak RSS) of the same step.

  stories     the real stories260K (shared/data .../derived/hf, f32), batch 8 x 128, LoRA r=8 on all seven linears
  tinyllama   synthetic f32 weights in TinyLlama-1.1B's shapes, batch 1 x 512, LoRA r=16, checkpointing per layer
  llama32-1b  synthetic f32 weights in Llama-3.2-1B's shapes (tied head), same settings as tinyllama

Every step is a full training step: forward, mean cross-entropy over all next-token labels, backward (gradients
of the LoRA weights only; the base is frozen), AdamW (lr 2e-4). The linear shapes of the 1B models are read from
bench/model_layer_shapes.h, the file the C++ benchmarks use. Token ids are seeded random (speed does not depend
on them). The result is printed as one JSON line (and written to --json OUT); tokens/s is the best of --repeats
timed windows of --steps steps each, after --warmup untimed steps, since the machines this runs on are shared.

  /usr/bin/python3 bench/torch_train_baseline.py --model stories --threads 2 --json out.json
"""
import argparse
import ctypes
import json
import math
import os
import pathlib
import re
import resource
import struct
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# What bench/model_layer_shapes.h does not hold (its comments name the head counts): depth, vocabulary, tying.
SYNTHETIC = {
    "tinyllama": {"header_name": "tinyllama-1.1b", "n_layers": 22, "n_heads": 32, "vocab": 32000, "tied": False,
                  "theta": 10000.0},
    "llama32-1b": {"header_name": "llama-3.2-1b", "n_layers": 16, "n_heads": 32, "vocab": 128256, "tied": True,
                   "theta": 500000.0},
}
RUN_DEFAULTS = {  # batch, seq, rank, alpha, checkpointing, steps, warmup
    "stories": (8, 128, 8, 16.0, False, 20, 3),
    "tinyllama": (1, 512, 16, 32.0, True, 1, 1),
    "llama32-1b": (1, 512, 16, 32.0, True, 1, 1),
}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(RUN_DEFAULTS), default="stories")
    ap.add_argument("--steps", type=int, help="timed steps per window (default: 20 stories, 1 for the 1B models)")
    ap.add_argument("--warmup", type=int, help="untimed steps first (default: 3 stories, 1 for the 1B models)")
    ap.add_argument("--repeats", type=int, default=3, help="timed windows; tokens/s is the best (default 3)")
    ap.add_argument("--threads", type=int, help="torch intra-op and OpenBLAS threads (default: the libraries' own)")
    ap.add_argument("--checkpointing", choices=("on", "off"), help="per-layer recompute (default: off for stories)")
    ap.add_argument("--mmap-threshold", type=int, metavar="BYTES",
                    help="glibc mallopt(M_MMAP_THRESHOLD): allocations this large are mmapped and returned to the OS "
                         "when freed. By default glibc raises its threshold to 32 MiB as it goes, and freed "
                         "activations stay in the heap (tinyllama: peak RSS 7,517 MiB by default, 4,942 MiB at "
                         "1048576, 4,429 MiB after loading)")
    ap.add_argument("--layers", type=int, help="synthetic models only: build this many layers instead of the model's "
                                               "depth (a quick run; tokens/s is then that of the shallower model)")
    ap.add_argument("--vocab", type=int, help="synthetic models only: this vocabulary size instead of the model's")
    ap.add_argument("--data", type=pathlib.Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=pathlib.Path, help="also write the result here")
    args = ap.parse_args()
    batch, seq, rank, alpha, ckpt, steps, warmup = RUN_DEFAULTS[args.model]
    args.batch, args.seq, args.rank, args.alpha = batch, seq, rank, alpha
    args.checkpointing = ckpt if args.checkpointing is None else args.checkpointing == "on"
    args.steps = steps if args.steps is None else args.steps
    args.warmup = warmup if args.warmup is None else args.warmup
    for name in ("steps", "repeats", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            ap.error(f"--{name} must be >= 1 (got {value})")
    if args.layers is not None and (args.layers < 1 or args.model == "stories"):
        ap.error(f"--layers takes a positive depth and a synthetic model (got {args.layers}, --model {args.model})")
    if args.vocab is not None and (args.vocab < 2 or args.model == "stories"):
        ap.error(f"--vocab takes a size >= 2 and a synthetic model (got {args.vocab}, --model {args.model})")
    if args.warmup < 0:
        ap.error(f"--warmup must be >= 0 (got {args.warmup})")
    if args.mmap_threshold is not None and not 0 <= args.mmap_threshold <= 32 << 20:
        ap.error(f"--mmap-threshold must be in [0, 32 MiB] (glibc's maximum; got {args.mmap_threshold})")
    return args


args = parse_args()
if args.mmap_threshold is not None:
    M_MMAP_THRESHOLD = -3  # glibc <malloc.h>; setting it also stops the dynamic threshold
    if ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, args.mmap_threshold) != 1:
        sys.exit(f"mallopt(M_MMAP_THRESHOLD, {args.mmap_threshold}) failed")
if args.threads is not None:  # OpenBLAS reads this once, when torch loads it
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
import numpy as np  # noqa: E402  (after the thread environment is set)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.utils.checkpoint  # noqa: E402

if args.threads is not None:
    torch.set_num_threads(args.threads)


class Config:
    def __init__(self, dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab, tied, eps, theta):
        self.dim, self.hidden_dim, self.n_layers = dim, hidden_dim, n_layers
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, dim // n_heads
        self.vocab, self.tied, self.eps, self.theta = vocab, tied, eps, theta

    def linear_shape(self, module):  # (out, in)
        q, kv = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        return {"q_proj": (q, self.dim), "k_proj": (kv, self.dim), "v_proj": (kv, self.dim), "o_proj": (self.dim, q),
                "gate_proj": (self.hidden_dim, self.dim), "up_proj": (self.hidden_dim, self.dim),
                "down_proj": (self.dim, self.hidden_dim)}[module]


def header_shapes(header_name):
    """{'q/o': (N, K), ...} for one model from bench/model_layer_shapes.h."""
    path = ROOT / "bench" / "model_layer_shapes.h"
    text = path.read_text()
    block = re.search(r'if \(model == "' + re.escape(header_name) + r'"\)(.*?)(?:\n\s*if \(|\n\s*throw)', text, re.S)
    rows = re.findall(r'\{model, "([a-z/]+)", (\d+), (\d+)\}', block.group(1)) if block else []
    shapes = {layer: (int(n), int(k)) for layer, n, k in rows}
    if set(shapes) != {"q/o", "k/v", "gate/up", "down"}:
        sys.exit(f"{path}: expected q/o, k/v, gate/up, down shapes for {header_name}, found {sorted(shapes)}")
    return shapes


def synthetic_model(name, gen):
    spec = SYNTHETIC[name]
    s = header_shapes(spec["header_name"])
    dim, hidden = s["q/o"][0], s["gate/up"][0]
    head_dim = dim // spec["n_heads"]
    if s["down"] != (dim, hidden) or s["q/o"][1] != dim or s["k/v"][1] != dim or s["k/v"][0] % head_dim:
        sys.exit(f"bench/model_layer_shapes.h: inconsistent shapes for {spec['header_name']}: {s}")
    cfg = Config(dim, hidden, args.layers or spec["n_layers"], spec["n_heads"], s["k/v"][0] // head_dim,
                 args.vocab or spec["vocab"],
                 spec["tied"], 1e-5, spec["theta"])
    # Filled in place: a temporary per tensor would inflate the peak RSS the benchmark reports.
    w = {"embed": torch.empty(cfg.vocab, dim).normal_(0.0, 0.02, generator=gen), "norm": torch.ones(dim)}
    if not cfg.tied:
        w["head"] = torch.empty(cfg.vocab, dim).normal_(0.0, 0.02, generator=gen)
    for i in range(cfg.n_layers):
        w[f"{i}.attn_norm"], w[f"{i}.mlp_norm"] = torch.ones(dim), torch.ones(dim)
        for m in TARGETS:
            out_f, in_f = cfg.linear_shape(m)
            w[f"{i}.{m}"] = torch.empty(out_f, in_f).normal_(0.0, 1.0 / math.sqrt(in_f), generator=gen)
    return cfg, w


def stories_model(data):
    hf = data / "models" / "stories260K" / "derived" / "hf"
    for f in (hf / "config.json", hf / "model.safetensors"):
        if not f.is_file():
            sys.exit(f"missing {f} (pass --data pointing at shared/data)")
    c = json.loads((hf / "config.json").read_text())
    cfg = Config(c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["num_attention_heads"],
                 c["num_key_value_heads"], c["vocab_size"], c["tie_word_embeddings"], c["rms_norm_eps"],
                 c["rope_theta"])
    raw = (hf / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])

    def tensor(name):
        info = header[name]
        if info["dtype"] != "F32":
            sys.exit(f"{hf / 'model.safetensors'}: {name} is {info['dtype']}, expected F32")
        begin, end = info["data_offsets"]
        values = np.frombuffer(raw, "<f4", (end - begin) // 4, 8 + n + begin)
        return torch.from_numpy(values.reshape(info["shape"]).copy())

    w = {"embed": tensor("model.embed_tokens.weight"), "norm": tensor("model.norm.weight")}
    if not cfg.tied:
        w["head"] = tensor("lm_head.weight")
    for i in range(cfg.n_layers):
        p = f"model.layers.{i}."
        w[f"{i}.attn_norm"] = tensor(p + "input_layernorm.weight")
        w[f"{i}.mlp_norm"] = tensor(p + "post_attention_layernorm.weight")
        for m in TARGETS:
            parent = "mlp." if m in ("gate_proj", "up_proj", "down_proj") else "self_attn."
            w[f"{i}.{m}"] = tensor(p + parent + m + ".weight")
    return cfg, w


def peft_lora(cfg, rank, gen):
    """PEFT's initialisation: A Kaiming-uniform (a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))), B zero."""
    lora = {}
    for i in range(cfg.n_layers):
        for m in TARGETS:
            out_f, in_f = cfg.linear_shape(m)
            a = (torch.rand(rank, in_f, generator=gen) * 2 - 1) / math.sqrt(in_f)
            lora[f"{i}.{m}"] = (a.requires_grad_(True), torch.zeros(out_f, rank, requires_grad=True))
    return lora


class LoraLlama:
    def __init__(self, cfg, weights, lora, scale, seq, checkpointing):
        self.cfg, self.w, self.lora, self.scale, self.checkpointing = cfg, weights, lora, scale, checkpointing
        inv_freq = 1.0 / (cfg.theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float64) / cfg.head_dim))
        angles = torch.outer(torch.arange(seq, dtype=torch.float64), inv_freq)
        emb = torch.cat((angles, angles), -1)
        self.cos, self.sin = emb.cos().float(), emb.sin().float()
        self.mask = torch.full((seq, seq), float("-inf")).triu(1)

    def linear(self, i, m, x):
        a, b = self.lora[f"{i}.{m}"]
        return F.linear(x, self.w[f"{i}.{m}"]) + self.scale * F.linear(F.linear(x, a), b)

    def norm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.eps) * w

    def rope(self, x):
        half = x.shape[-1] // 2
        return x * self.cos + torch.cat((-x[..., half:], x[..., :half]), -1) * self.sin

    def layer(self, i, x):
        c = self.cfg
        bsz, seq, _ = x.shape
        h = self.norm(x, self.w[f"{i}.attn_norm"])
        q = self.rope(self.linear(i, "q_proj", h).view(bsz, seq, c.n_heads, c.head_dim).transpose(1, 2))
        k = self.rope(self.linear(i, "k_proj", h).view(bsz, seq, c.n_kv_heads, c.head_dim).transpose(1, 2))
        v = self.linear(i, "v_proj", h).view(bsz, seq, c.n_kv_heads, c.head_dim).transpose(1, 2)
        group = c.n_heads // c.n_kv_heads
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(c.head_dim) + self.mask
        att = torch.matmul(torch.softmax(scores, -1), v).transpose(1, 2).reshape(bsz, seq, c.n_heads * c.head_dim)
        x = x + self.linear(i, "o_proj", att)
        h = self.norm(x, self.w[f"{i}.mlp_norm"])
        return x + self.linear(i, "down_proj", F.silu(self.linear(i, "gate_proj", h)) * self.linear(i, "up_proj", h))

    def loss(self, ids):
        x = F.embedding(ids, self.w["embed"])
        for i in range(self.cfg.n_layers):
            if self.checkpointing:
                x = torch.utils.checkpoint.checkpoint(self.layer, i, x, use_reentrant=False)
            else:
                x = self.layer(i, x)
        logits = F.linear(self.norm(x, self.w["norm"]), self.w["embed" if self.cfg.tied else "head"])
        return F.cross_entropy(logits[:, :-1].reshape(-1, self.cfg.vocab), ids[:, 1:].reshape(-1))


def main():
    gen = torch.Generator().manual_seed(args.seed)
    t_load = time.perf_counter()
    cfg, weights = stories_model(args.data) if args.model == "stories" else synthetic_model(args.model, gen)
    load_s = time.perf_counter() - t_load
    rss_after_load_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lora = peft_lora(cfg, args.rank, gen)
    model = LoraLlama(cfg, weights, lora, args.alpha / args.rank, args.seq, args.checkpointing)
    params = [p for pair in lora.values() for p in pair]
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
    ids = torch.randint(0, cfg.vocab, (args.batch, args.seq), generator=gen)

    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model.loss(ids)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    for _ in range(args.warmup):
        step()
    windows = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        windows.append(time.perf_counter() - t0)
    tokens = args.batch * args.seq * args.steps
    result = {
        "bench": "torch_train_baseline", "model": args.model, "base_dtype": "f32", "torch": torch.__version__,
        "threads": torch.get_num_threads(), "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "mmap_threshold": args.mmap_threshold,
        "batch": args.batch, "seq_len": args.seq, "rank": args.rank, "alpha": args.alpha, "targets": list(TARGETS),
        "optimizer": "AdamW", "lr": 2e-4, "checkpointing": args.checkpointing,
        "layers": cfg.n_layers, "full_depth_layers": SYNTHETIC[args.model]["n_layers"] if args.model in SYNTHETIC
        else cfg.n_layers, "dim": cfg.dim, "hidden_dim": cfg.hidden_dim, "vocab": cfg.vocab,
        "trainable_params": sum(p.numel() for p in params),
        "warmup": args.warmup, "steps": args.steps, "repeats": args.repeats,
        "window_s": [round(t, 4) for t in windows],
        "step_s": round(min(windows) / args.steps, 5),
        "tokens_per_s": round(tokens / min(windows), 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_after_load_mib": round(rss_after_load_mib, 1), "load_s": round(load_s, 2),
        "loss_first": round(losses[0], 5), "loss_last": round(losses[-1], 5),
    }
    line = json.dumps(result)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


if __name__ == "__main__":
    main()
