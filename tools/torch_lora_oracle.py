#!/usr/bin/python3
"""Independent PyTorch oracle for the QLoRA trainer: loss and LoRA gradients of stories260K on a fixed batch.

A self-contained Llama forward in float64 (RMSNorm, HF rotate_half RoPE, GQA causal attention, SwiGLU, tied head)
with PEFT LoRA (y = x W^T + (alpha/r) * x A^T B^T) on all seven linears of every layer, written without the
project's code or any package beyond torch and numpy, so the C++ trainer can be checked against it (as llm.c does).

Before writing, it checks itself:
  1. with every B = 0, logits at positions 0..15 match expected/logits_f32_pos0-15.bin (independent fp32 reference);
  2. autograd gradients of a few A and B entries match a float64 central-difference estimate.
Then it writes tests/golden/stories260k_lora_oracle.safetensors (see tests/golden/README.md).

Run from the repository root:  /usr/bin/python3 tools/torch_lora_oracle.py [--data ../shared/data] [--out FILE]
"""
import argparse
import json
import math
import pathlib
import struct
import sys

import numpy as np
import torch

RANK = 8
ALPHA = 16.0
SEED = 1234
BATCH, SEQ = 2, 32
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MODULE_PARENT = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
                 "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
# Label positions set to -100 (ignored), as a prompt mask and a padded tail would: HF shifts labels, so
# labels[b, t] is predicted by logits[b, t-1] and labels[:, 0] is never used.
IGNORED_LABELS = [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (1, 17), (1, 30), (1, 31)]
LOGITS_TOL = 1e-4
FD_EPS = 1e-6
FD_REL_TOL = 1e-6

SAFETENSORS_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "F16": np.float16}


def read_safetensors(path):
    """Returns {name: float64 torch tensor} for a safetensors file (8-byte header length, JSON header, data)."""
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len])
    data = raw[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            sys.exit(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=np.dtype(dtype).newbyteorder("<")).reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.astype(np.float64))
    return tensors


def write_safetensors(path, tensors, metadata):
    """Writes {name: torch tensor} (float32/float64/int64) with string metadata, keys sorted, header 8-aligned."""
    names = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
    header = {"__metadata__": metadata}
    chunks, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        blob = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        chunks.append(blob)
        offset += len(blob)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + b"".join(chunks))
    tmp.replace(path)


class Config:
    def __init__(self, config_json):
        c = json.loads(config_json.read_text())
        self.dim = c["hidden_size"]
        self.hidden_dim = c["intermediate_size"]
        self.n_layers = c["num_hidden_layers"]
        self.n_heads = c["num_attention_heads"]
        self.n_kv_heads = c.get("num_key_value_heads", self.n_heads)
        self.head_dim = c.get("head_dim", self.dim // self.n_heads)
        self.vocab = c["vocab_size"]
        self.eps = c["rms_norm_eps"]
        self.theta = c.get("rope_theta", 10000.0)
        self.tied = c.get("tie_word_embeddings", False)
        if c.get("rope_scaling"):
            sys.exit(f"{config_json}: rope_scaling is not implemented by this oracle")


def lora_scale():
    return ALPHA / RANK  # PEFT default (rsLoRA would be alpha / sqrt(r))


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(cfg, seq):
    inv_freq = 1.0 / (cfg.theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float64) / cfg.head_dim))
    angles = torch.outer(torch.arange(seq, dtype=torch.float64), inv_freq)
    emb = torch.cat((angles, angles), dim=-1)  # HF layout: frequency i drives dims i and i + head_dim/2
    return emb.cos(), emb.sin()


def lora_linear(x, w, a, b):
    return x @ w.T + lora_scale() * ((x @ a.T) @ b.T)


def forward(cfg, weights, lora, ids):
    """Logits [B, T, V] for ids [B, T]; lora maps 'layers.{i}.{module}' to (A, B)."""
    bsz, seq = ids.shape
    x = weights["model.embed_tokens.weight"][ids]
    cos, sin = rope_cos_sin(cfg, seq)
    causal = torch.full((seq, seq), float("-inf"), dtype=torch.float64).triu(1)
    group = cfg.n_heads // cfg.n_kv_heads
    for i in range(cfg.n_layers):
        p = f"model.layers.{i}."

        def lin(module, inp):
            return lora_linear(inp, weights[p + MODULE_PARENT[module] + "." + module + ".weight"],
                               *lora[f"layers.{i}.{module}"])

        h = rms_norm(x, weights[p + "input_layernorm.weight"], cfg.eps)
        q = lin("q_proj", h).view(bsz, seq, cfg.n_heads, cfg.head_dim).transpose(1, 2)
        k = lin("k_proj", h).view(bsz, seq, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        v = lin("v_proj", h).view(bsz, seq, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(group, dim=1)  # query head j reads kv head j // group (HF repeat_kv)
        v = v.repeat_interleave(group, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(cfg.head_dim) + causal
        attn = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(bsz, seq, cfg.n_heads * cfg.head_dim)
        x = x + lin("o_proj", attn)
        h = rms_norm(x, weights[p + "post_attention_layernorm.weight"], cfg.eps)
        x = x + lin("down_proj", torch.nn.functional.silu(lin("gate_proj", h)) * lin("up_proj", h))
    x = rms_norm(x, weights["model.norm.weight"], cfg.eps)
    head = weights["model.embed_tokens.weight"] if cfg.tied else weights["lm_head.weight"]
    return x @ head.T


def loss_fn(cfg, weights, lora, ids, labels):
    """HF causal-LM loss: mean cross-entropy of logits[:, t-1] against labels[:, t] over labels != -100."""
    logits = forward(cfg, weights, lora, ids)
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, cfg.vocab), labels[:, 1:].reshape(-1),
                                             ignore_index=-100, reduction="mean")


def module_shape(cfg, module):
    """(out_features, in_features) of a target linear."""
    q_out, kv_out = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    return {"q_proj": (q_out, cfg.dim), "k_proj": (kv_out, cfg.dim), "v_proj": (kv_out, cfg.dim),
            "o_proj": (cfg.dim, q_out), "gate_proj": (cfg.hidden_dim, cfg.dim),
            "up_proj": (cfg.hidden_dim, cfg.dim), "down_proj": (cfg.dim, cfg.hidden_dim)}[module]


def make_lora(cfg):
    """Deterministic adapters, float32 values held in float64 so the C++ side can load them exactly.
    A follows PEFT's Kaiming-uniform bound (1/sqrt(in)); B is nonzero (PEFT starts it at 0, which would make
    every dA zero) and sized so the adapters change the loss measurably."""
    gen = torch.Generator().manual_seed(SEED)
    lora = {}
    for i in range(cfg.n_layers):
        for module in TARGETS:
            out_f, in_f = module_shape(cfg, module)
            a = (torch.rand(RANK, in_f, generator=gen, dtype=torch.float64) * 2 - 1) / math.sqrt(in_f)
            b = (torch.rand(out_f, RANK, generator=gen, dtype=torch.float64) * 2 - 1) * 0.1
            lora[f"layers.{i}.{module}"] = (a.float().double(), b.float().double())
    return lora


def peft_key(name, module_key, which):
    i, module = module_key.split(".")[1], module_key.split(".")[2]
    return f"base_model.model.model.layers.{i}.{MODULE_PARENT[module]}.{module}.lora_{which}.{name}"


def check_logits(cfg, weights, lora, ids, expected_path):
    expected = np.fromfile(expected_path, dtype="<f4").reshape(16, cfg.vocab)
    zero_b = {k: (a, torch.zeros_like(b)) for k, (a, b) in lora.items()}
    with torch.no_grad():
        logits = forward(cfg, weights, zero_b, ids[:1, :16])[0]
    err = (logits - torch.from_numpy(expected.astype(np.float64))).abs().max().item()
    print(f"logits (B = 0) vs {expected_path.name}: max |diff| = {err:.3e} (tolerance {LOGITS_TOL:g})")
    if not err <= LOGITS_TOL:
        sys.exit(f"forward check failed: logits at positions 0..15 differ from {expected_path} by {err:.3e} "
                 f"> {LOGITS_TOL:g}")
    return err


def check_gradients(cfg, weights, lora, ids, labels, grads):
    """Central differences in float64 on entries of A and B in the first, a middle and the last layer."""
    mid, last = cfg.n_layers // 2, cfg.n_layers - 1
    probes = [("layers.0.q_proj", 0, (3, 5)), ("layers.0.down_proj", 1, (7, 2)),
              (f"layers.{mid}.v_proj", 0, (1, 60)), (f"layers.{mid}.gate_proj", 1, (100, 4)),
              (f"layers.{last}.o_proj", 1, (10, 7)), (f"layers.{last}.up_proj", 0, (6, 33))]
    worst = 0.0
    for key, which, idx in probes:
        param = lora[key][which]
        saved = param[idx].item()
        with torch.no_grad():
            param[idx] = saved + FD_EPS
            up = loss_fn(cfg, weights, lora, ids, labels).item()
            param[idx] = saved - FD_EPS
            down = loss_fn(cfg, weights, lora, ids, labels).item()
            param[idx] = saved
        numeric = (up - down) / (2 * FD_EPS)
        analytic = grads[key][which][idx].item()
        rel = abs(numeric - analytic) / max(abs(numeric), abs(analytic), 1e-12)
        worst = max(worst, rel)
        print(f"  d loss / d {key}.lora_{'AB'[which]}{list(idx)}: autograd {analytic:+.10e}, "
              f"central difference {numeric:+.10e}, rel diff {rel:.2e}")
        if not rel <= FD_REL_TOL:
            sys.exit(f"gradient check failed at {key}.lora_{'AB'[which]}{list(idx)}: "
                     f"rel diff {rel:.2e} > {FD_REL_TOL:g}")
    return worst


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=pathlib.Path, default=root.parent / "shared" / "data")
    ap.add_argument("--out", type=pathlib.Path,
                    default=root / "tests" / "golden" / "stories260k_lora_oracle.safetensors")
    args = ap.parse_args()
    model_dir = args.data / "models" / "stories260K"
    hf_dir = model_dir / "derived" / "hf"
    for f in (hf_dir / "config.json", hf_dir / "model.safetensors", model_dir / "expected" / "runc_t0_n200.ids.json",
              model_dir / "expected" / "logits_f32_pos0-15.bin"):
        if not f.is_file():
            sys.exit(f"missing {f} (pass --data pointing at shared/data)")

    torch.set_grad_enabled(True)
    cfg = Config(hf_dir / "config.json")
    weights = read_safetensors(hf_dir / "model.safetensors")
    if cfg.tied and "lm_head.weight" in weights and not torch.equal(weights["lm_head.weight"],
                                                                     weights["model.embed_tokens.weight"]):
        sys.exit(f"{hf_dir}: tie_word_embeddings is true but lm_head.weight differs from model.embed_tokens.weight")

    all_ids = json.loads((model_dir / "expected" / "runc_t0_n200.ids.json").read_text())["tokens_bos_plus_200"]
    ids = torch.tensor(all_ids[:BATCH * SEQ], dtype=torch.int64).view(BATCH, SEQ)
    labels = ids.clone()
    for b, t in IGNORED_LABELS:
        labels[b, t] = -100

    lora = make_lora(cfg)
    logits_err = check_logits(cfg, weights, lora, ids, model_dir / "expected" / "logits_f32_pos0-15.bin")

    for a, b in lora.values():
        a.requires_grad_(True)
        b.requires_grad_(True)
    loss = loss_fn(cfg, weights, lora, ids, labels)
    params = [p for pair in lora.values() for p in pair]
    flat = torch.autograd.grad(loss, params)
    grads = {key: (flat[2 * n], flat[2 * n + 1]) for n, key in enumerate(lora)}
    with torch.no_grad():
        base_loss = loss_fn(cfg, weights, {k: (a, torch.zeros_like(b)) for k, (a, b) in lora.items()}, ids, labels)
    print(f"loss {loss.item():.12f} (with B = 0: {base_loss.item():.12f}); "
          f"valid labels {int((labels[:, 1:] != -100).sum())} of {BATCH * (SEQ - 1)}")
    for p in params:
        p.requires_grad_(False)
    fd_worst = check_gradients(cfg, weights, lora, ids, labels, grads)

    tensors = {"ids": ids, "labels": labels, "loss": loss.detach().reshape(1)}
    for key, (a, b) in lora.items():
        tensors[peft_key("weight", key, "A")] = a.float()
        tensors[peft_key("weight", key, "B")] = b.float()
        tensors[peft_key("grad", key, "A")] = grads[key][0].float()
        tensors[peft_key("grad", key, "B")] = grads[key][1].float()
    info = {
        "what": "PocketLoRA LoRA oracle: stories260K (derived/hf, f32 base) with PEFT LoRA on all seven linears; "
                "loss = HF causal-LM mean cross-entropy (logits[:, t-1] vs labels[:, t], -100 ignored) and its "
                "gradient w.r.t. every lora_A / lora_B, computed in float64 by tools/torch_lora_oracle.py",
        "model": "models/stories260K/derived/hf",
        "ids_source": "models/stories260K/expected/runc_t0_n200.ids.json tokens_bos_plus_200[0:64] as [2, 32]",
        "r": RANK, "alpha": ALPHA, "scale": lora_scale(), "rslora": False, "dropout": 0.0,
        "target_modules": list(TARGETS), "seed": SEED, "batch": BATCH, "seq_len": SEQ,
        "ignored_labels": [list(p) for p in IGNORED_LABELS],
        "init": "torch.Generator(seed): per layer, per module in target order: A = U(-1,1)/sqrt(in), then "
                "B = 0.1*U(-1,1), both rounded to float32",
        "tensors": "ids, labels [2,32] I64; loss [1] F64; base_model.model.model.layers.{i}.{self_attn|mlp}.{m}."
                   "lora_{A|B}.weight F32 (the adapters); same keys with .grad instead of .weight F32 (d loss)",
        "loss_with_b_zero": base_loss.item(),
        "checks": {"logits_b0_vs_expected_max_abs": logits_err, "central_difference_max_rel": fd_worst},
        "torch_version": torch.__version__,
    }
    write_safetensors(args.out, tensors, {"format": "pt", "pocketlora_oracle": json.dumps(info)})
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
