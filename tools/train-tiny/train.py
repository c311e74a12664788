"""Trains the small English Mixtral of models/tiny-en on CPU with PyTorch (Debian's python3-torch).

  corpus   Jane Austen's six novels from Debian's r-cran-janeaustenr (read without R: rdata.py)
  prepare  cleans the text, holds out the last tenth of Persuasion, trains a byte-level BPE
  train    a MixtralForCausalLM written out below (no transformers), AdamW, cosine schedule sized
           to a wall-clock budget; checkpoints (resumable + HF export) every few minutes
  export   HF checkpoint: config.json, model.safetensors (f16), tokenizer.json, tokenizer_config.json
  fixture  float64 forward of the exported (f16-rounded) weights: greedy tokens and logits on
           held-out prompts, for the TypeScript agreement test

See README.md beside this file for how to re-run it."""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import rdata  # noqa: E402

BOOKS = ['sensesensibility', 'prideprejudice', 'mansfieldpark', 'emma', 'northangerabbey',
         'persuasion']
HELDOUT_BOOK, HELDOUT_FRACTION = 'persuasion', 0.1
DEFAULT_RDATA = '/usr/lib/R/site-library/janeaustenr/data'

CONFIG = dict(
    hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
    num_key_value_heads=2, head_dim=32, num_local_experts=8, num_experts_per_tok=2,
    vocab_size=4096, rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=None,
    max_position_embeddings=1024, bos_token_id=bpe.BOS_ID, eos_token_id=bpe.EOS_ID,
    tie_word_embeddings=False, router_aux_loss_coef=0.02)


def log(*a):
    print(time.strftime('%H:%M:%S'), *a, flush=True)


# ---------------------------------------------------------------- corpus

def paragraphs(lines):
    """Gutenberg text wrapped at ~70 columns -> one string per paragraph; `_` (italics) dropped."""
    out, cur = [], []
    for line in lines:
        line = (line or '').strip().replace('_', '')
        if line:
            cur.append(line)
        elif cur:
            out.append(' '.join(cur))
            cur = []
    if cur:
        out.append(' '.join(cur))
    return out


def corpus(rdata_dir):
    """The training and held-out text (one paragraph a line): every book, less the last tenth of
    the held-out book. The draft (draft.py) trains on the same text."""
    data = rdata.load_lazy_data(os.path.join(rdata_dir, 'Rdata.rdx'),
                                os.path.join(rdata_dir, 'Rdata.rdb'))
    train_pars, held = [], []
    for b in BOOKS:
        ps = paragraphs(data[b].value)
        if b == HELDOUT_BOOK:
            cut = int(len(ps) * (1 - HELDOUT_FRACTION))
            train_pars += ps[:cut]
            held += ps[cut:]
        else:
            train_pars += ps
    return '\n'.join(train_pars) + '\n', '\n'.join(held) + '\n'


def prepare(args):
    train_text, held_text = corpus(args.rdata)
    os.makedirs(args.work, exist_ok=True)
    with open(os.path.join(args.work, 'train.txt'), 'w') as f:
        f.write(train_text)
    with open(args.heldout, 'w') as f:
        f.write(held_text)
    log(f'corpus: {len(train_text)} chars train, {len(held_text)} chars held out')
    merges = bpe.train(train_text, CONFIG['vocab_size'], log=log)
    tok, cfg = bpe.tokenizer_json(merges)
    with open(os.path.join(args.work, 'tokenizer.json'), 'w') as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(args.work, 'tokenizer_config.json'), 'w') as f:
        json.dump(cfg, f, indent=2)
    enc = bpe.Encoder(merges)
    ids = enc.encode(train_text, bos=False)
    torch.save(torch.tensor(ids, dtype=torch.int16), os.path.join(args.work, 'train_ids.pt'))
    held_ids = enc.encode(held_text, bos=False)
    torch.save(torch.tensor(held_ids, dtype=torch.int16), os.path.join(args.work, 'held_ids.pt'))
    log(f'tokens: {len(ids)} train, {len(held_ids)} held out '
        f'({len(train_text) / len(ids):.2f} chars/token)')


# ---------------------------------------------------------------- model (transformers' modeling_mixtral)

class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = x.to(torch.float32) if dt != torch.float64 else x
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, D = c['hidden_size'], c['head_dim']
        self.nq, self.nkv, self.D = c['num_attention_heads'], c['num_key_value_heads'], D
        self.q_proj = nn.Linear(H, self.nq * D, bias=False)
        self.k_proj = nn.Linear(H, self.nkv * D, bias=False)
        self.v_proj = nn.Linear(H, self.nkv * D, bias=False)
        self.o_proj = nn.Linear(self.nq * D, H, bias=False)
        self.theta = c['rope_theta']

    def forward(self, x):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nq, self.D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.D).transpose(1, 2)
        inv = 1.0 / (self.theta ** (torch.arange(0, self.D, 2, dtype=torch.float64) / self.D))
        ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nq // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.D)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float('-inf')).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, self.nq * self.D)
        return self.o_proj(y)


class Expert(nn.Module):
    def __init__(self, H, I):
        super().__init__()
        self.w1 = nn.Linear(H, I, bias=False)
        self.w2 = nn.Linear(I, H, bias=False)
        self.w3 = nn.Linear(H, I, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class SparseMoe(nn.Module):
    """softmax over the gate logits, top-k, renormalise the k weights (MixtralSparseMoeBlock)."""

    def __init__(self, c):
        super().__init__()
        self.E, self.k = c['num_local_experts'], c['num_experts_per_tok']
        self.gate = nn.Linear(c['hidden_size'], self.E, bias=False)
        self.experts = nn.ModuleList(
            [Expert(c['hidden_size'], c['intermediate_size']) for _ in range(self.E)])

    def forward(self, x):
        B, T, H = x.shape
        x = x.reshape(-1, H)
        probs = self.gate(x).softmax(-1)
        w, sel = probs.topk(self.k, dim=-1)
        w = w / w.sum(-1, keepdim=True)
        out = torch.zeros_like(x)
        for e in range(self.E):
            rows, slot = (sel == e).nonzero(as_tuple=True)
            if rows.numel() == 0:
                continue
            y = self.experts[e](x[rows]) * w[rows, slot, None]
            out.index_add_(0, rows, y)
        # Switch-style load balancing (transformers' load_balancing_loss_func).
        frac = F.one_hot(sel, self.E).to(x.dtype).sum(1).mean(0)
        aux = self.E * (frac * probs.mean(0)).sum() / self.k
        return out.view(B, T, H), aux, probs, sel


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.block_sparse_moe = SparseMoe(c)

    def forward(self, h):
        h = h + self.self_attn(self.input_layernorm(h))
        m, aux, probs, sel = self.block_sparse_moe(self.post_attention_layernorm(h))
        return h + m, aux, probs


class Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c['num_hidden_layers'])])
        self.norm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])


class MixtralForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Inner(c)
        self.lm_head = nn.Linear(c['hidden_size'], c['vocab_size'], bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, with_gates=False):
        h = self.model.embed_tokens(ids)
        aux, gates = 0.0, []
        for layer in self.model.layers:
            h, a, probs = layer(h)
            aux = aux + a
            gates.append(probs)
        logits = self.lm_head(self.model.norm(h))
        if with_gates:
            return logits, gates
        return logits, aux / len(self.model.layers)


# ---------------------------------------------------------------- export

def write_safetensors(path, tensors, dtype=torch.float16):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().to(dtype).contiguous().numpy().tobytes()
        header[name] = {'dtype': {torch.float16: 'F16', torch.float32: 'F32'}[dtype],
                        'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header['__metadata__'] = {'format': 'pt'}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path + '.tmp', 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + '.tmp', path)


def read_safetensors(path):
    import numpy as np
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, m in header.items():
        if name == '__metadata__':
            continue
        s, e = m['data_offsets']
        dt = {'F16': np.float16, 'F32': np.float32}[m['dtype']]
        out[name] = torch.from_numpy(np.frombuffer(data[s:e], dtype=dt).copy()).reshape(m['shape'])
    return out


def hf_config(c):
    j = {k: v for k, v in c.items()}
    j.update(architectures=['MixtralForCausalLM'], model_type='mixtral', attention_dropout=0.0,
             hidden_act='silu', torch_dtype='float16', output_router_logits=False,
             initializer_range=0.02, use_cache=True, transformers_version='4.46.0')
    return j


def write_checkpoint(out, model, config):
    """An HF checkpoint directory: model.safetensors (f16) and config.json."""
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, 'model.safetensors'), model.state_dict())
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
        f.write('\n')


def read_checkpoint(out, make, keys, dtype):
    """The model `make(config)` builds from an HF checkpoint directory's config.json (`keys` of
    it), with the weights of its model.safetensors in `dtype`, in eval mode."""
    with open(os.path.join(out, 'config.json')) as f:
        j = json.load(f)
    m = make({k: j[k] for k in keys if k in j})
    m.load_state_dict({k: v.to(dtype) for k, v in read_safetensors(
        os.path.join(out, 'model.safetensors')).items()})
    return m.to(dtype).eval()


def export(model, out, work):
    write_checkpoint(out, model, hf_config(model.c))
    for name in ('tokenizer.json', 'tokenizer_config.json'):
        with open(os.path.join(work, name)) as src, open(os.path.join(out, name), 'w') as dst:
            dst.write(src.read())


def load_exported(out, dtype=torch.float32):
    return read_checkpoint(out, MixtralForCausalLM, CONFIG, dtype)


# ---------------------------------------------------------------- training

def batches(ids, B, T, gen):
    n = ids.numel() - T
    while True:
        starts = torch.randint(0, n, (B,), generator=gen)
        w = torch.stack([ids[s:s + T] for s in starts.tolist()]).long()
        x = torch.cat([torch.full((B, 1), bpe.BOS_ID), w[:, :-1]], dim=1)
        yield x, w


@torch.no_grad()
def heldout_loss(model, held, T, max_windows=20):
    model.eval()
    losses = []
    for i in range(0, min(held.numel() - T, max_windows * T), T):
        w = held[i:i + T].long()[None]
        x = torch.cat([torch.full((1, 1), bpe.BOS_ID), w[:, :-1]], dim=1)
        logits, _ = model(x)
        losses.append(F.cross_entropy(logits[0], w[0]).item())
    model.train()
    return sum(losses) / len(losses)


def train(args):
    torch.manual_seed(args.seed)
    ids = torch.load(os.path.join(args.work, 'train_ids.pt'))
    held = torch.load(os.path.join(args.work, 'held_ids.pt'))
    model = MixtralForCausalLM(CONFIG)
    n_params = sum(p.numel() for p in model.parameters())
    log(f'model: {n_params} parameters; {ids.numel()} training tokens')
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1},
                             {'params': other, 'weight_decay': 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(args.seed)
    ckpt = os.path.join(args.work, 'state.pt')
    step, hist, t_used = 0, [], 0.0
    if args.resume and os.path.exists(ckpt):
        s = torch.load(ckpt)
        model.load_state_dict(s['model'])
        opt.load_state_dict(s['opt'])
        step, hist, t_used = s['step'], s['hist'], s['t_used']
        gen.set_state(s['gen'])
        log(f'resumed at step {step}')
    it = batches(ids, args.batch, args.seq, gen)
    t0 = time.time() - t_used
    last_ckpt = time.time()
    # The schedule runs on wall-clock progress, not steps: the machine is shared and its speed
    # varies, and the run must end at its budget whatever it gets.
    budget = args.minutes * 60
    while True:
        prog = (time.time() - t0) / budget
        if prog >= 1:
            break
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        if step >= args.warmup:
            lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog))
        for g in opt.param_groups:
            g['lr'] = lr
        x, y = next(it)
        logits, aux = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
        (loss + CONFIG['router_aux_loss_coef'] * aux).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        final = time.time() - t0 >= budget
        if step % args.log_every == 0 or final:
            rec = {'step': step, 'tokens': step * args.batch * args.seq, 'loss': loss.item(),
                   'aux': float(aux), 'lr': lr, 'elapsed_s': round(time.time() - t0, 1)}
            if step % (args.log_every * 5) == 0 or final:
                rec['heldout_loss'] = heldout_loss(model, held, args.seq)
            hist.append(rec)
            log(json.dumps(rec))
        if time.time() - last_ckpt > args.ckpt_minutes * 60 or final:
            torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'step': step,
                        'hist': hist, 'gen': gen.get_state(),
                        't_used': time.time() - t0}, ckpt + '.tmp')
            os.replace(ckpt + '.tmp', ckpt)
            export(model, args.out, args.work)
            with open(os.path.join(args.work, 'history.json'), 'w') as f:
                json.dump(hist, f)
            last_ckpt = time.time()
            log(f'checkpoint at step {step}')
    log('done')


# ---------------------------------------------------------------- fixture for the TS agreement test

def window_nll(model, ids, window):
    """Sum of -log p over `ids`, scored in windows of `window` tokens each preceded by <s>."""
    nll = 0.0
    for i in range(0, len(ids), window):
        w = ids[i:i + window]
        logits, _ = model(torch.tensor([[bpe.BOS_ID] + w]))
        nll += F.cross_entropy(logits[0, :-1].double(), torch.tensor(w), reduction='sum').item()
    return nll


@torch.no_grad()
def fixture(args):
    """Greedy continuations of held-out prompts by a float64 forward of the exported (f16) weights.
    Prompts whose continuation has a near-tie (top-1 vs top-2 logit, or the gate's 2nd vs 3rd
    probability) are skipped: a correct implementation could legitimately diverge there."""
    model = load_exported(args.out, torch.float64)
    enc = bpe.Encoder(bpe.load_merges(os.path.join(args.out, 'tokenizer.json')))
    with open(args.heldout) as f:
        held_text = f.read()
    pars = [p for p in held_text.split('\n') if len(p.split()) > 12]
    out = []
    for p in pars:
        if len(out) == 4:
            break
        prompt = ' '.join(p.split()[:8])
        seq = enc.encode(prompt)
        steps = []
        for _ in range(args.fixture_tokens):
            logits, gates = model(torch.tensor([seq]), with_gates=True)
            last = logits[0, -1]
            top = last.topk(2)
            gap = min((g.sort(-1, descending=True).values[..., 1] -
                       g.sort(-1, descending=True).values[..., 2]).min().item() for g in gates)
            idx = sorted(set(last.topk(16).indices.tolist()) |
                         set(range(0, CONFIG['vocab_size'], 256)))
            steps.append({'id': int(top.indices[0]),
                          'margin': float(top.values[0] - top.values[1]),
                          'minGateGap': gap,
                          'logitIndices': idx,
                          'logits': [round(float(last[i]), 6) for i in idx]})
            seq.append(int(top.indices[0]))
        if min(s['margin'] for s in steps) < 0.01 or min(s['minGateGap'] for s in steps) < 1e-4:
            log(f'fixture: skipping {prompt!r} (near-tie)')
            continue
        out.append({'prompt': prompt, 'promptIds': enc.encode(prompt),
                    'text': enc.decode(seq[len(enc.encode(prompt)):]), 'steps': steps})
        log(f'fixture: {prompt!r} -> {out[-1]["text"]!r}')
    ids = enc.encode(held_text, bos=False)[:args.fixture_eval_tokens]
    window = args.seq - 1
    nll = window_nll(model, ids, window)
    os.makedirs(os.path.dirname(args.fixture), exist_ok=True)
    with open(args.fixture, 'w') as f:
        json.dump({'note': 'written by tools/train-tiny/train.py fixture: float64 PyTorch forward '
                           'of the f16 checkpoint in models/tiny-en',
                   'prompts': out,
                   'eval': {'window': window, 'tokens': len(ids), 'nll': nll / len(ids)}},
                  f, indent=1)
        f.write('\n')
    log(f'fixture: {len(out)} prompts, eval nll {nll / len(ids):.5f} over {len(ids)} tokens')


@torch.no_grad()
def evaluate(args):
    """Perplexity over the held-out text, as `pov eval` computes it: windows of --seq - 1 tokens,
    each preceded by <s>, every token scored once."""
    model = load_exported(args.out, torch.float32)
    enc = bpe.Encoder(bpe.load_merges(os.path.join(args.out, 'tokenizer.json')))
    with open(args.heldout) as f:
        ids = enc.encode(f.read(), bos=False)
    nll = window_nll(model, ids, args.seq - 1) / len(ids)
    log(f'held-out: {len(ids)} tokens, nll/token {nll:.4f}, perplexity {math.exp(nll):.3f}')


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('command', choices=['prepare', 'train', 'fixture', 'eval', 'all'])
    ap.add_argument('--rdata', default=DEFAULT_RDATA, help='janeaustenr data dir (Rdata.rdx/rdb)')
    ap.add_argument('--work', default=os.path.join(here, 'work'), help='scratch dir (not committed)')
    ap.add_argument('--out', default=os.path.join(repo, 'models', 'tiny-en'))
    ap.add_argument('--heldout', default=os.path.join(repo, 'models', 'tiny-en', 'heldout.txt'))
    ap.add_argument('--fixture', default=os.path.join(repo, 'tests', 'fixtures', 'tiny-en-torch.json'))
    ap.add_argument('--minutes', type=float, default=50, help='training wall-clock budget')
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--seq', type=int, default=128)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--warmup', type=int, default=50)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--log-every', type=int, default=10)
    ap.add_argument('--ckpt-minutes', type=float, default=5)
    ap.add_argument('--fixture-tokens', type=int, default=12)
    ap.add_argument('--fixture-eval-tokens', type=int, default=254)
    ap.add_argument('--resume', action='store_true')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cmds = ['prepare', 'train', 'fixture', 'eval'] if args.command == 'all' else [args.command]
    for c in cmds:
        {'prepare': prepare, 'train': train, 'fixture': fixture, 'eval': evaluate}[c](args)


if __name__ == '__main__':
    main()
