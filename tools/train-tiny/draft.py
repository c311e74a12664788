"""Trains the draft of speculative decoding for models/tiny-en: a small dense Llama-style model
with the same tokenizer, distilled on the target's own next-token distributions.

  data     the training text of train.py (same corpus, same cleaning, same held-out cut),
           tokenized with the committed models/tiny-en/tokenizer.json -> work/draft_ids.pt
  train    distillation: KL(target || draft) over every position of random training windows,
           the target (models/tiny-en, f16 weights in fp32) run alongside; the draft's
           embedding, final norm, LM head and first attention layers start as the target's;
           cosine schedule sized to a wall-clock budget; exports every few minutes
  export   HF checkpoint (LlamaForCausalLM): config.json, model.safetensors (f16)
  fixture  float64 forward of the exported (f16-rounded) draft on held-out prompts, for the
           TypeScript agreement test (tests/fixtures/tiny-en-draft-torch.json)

See README.md beside this file for how to re-run it."""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import train as target_lib  # noqa: E402

DRAFT_CONFIG = dict(
    hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, head_dim=32, vocab_size=4096, rms_norm_eps=1e-5, rope_theta=10000.0,
    max_position_embeddings=1024, bos_token_id=bpe.BOS_ID, eos_token_id=bpe.EOS_ID,
    tie_word_embeddings=False)

log = target_lib.log


# ---------------------------------------------------------------- model (transformers' modeling_llama)

class Mlp(nn.Module):
    def __init__(self, H, I):
        super().__init__()
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DenseLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = target_lib.RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.self_attn = target_lib.Attention(c)
        self.post_attention_layernorm = target_lib.RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.mlp = Mlp(c['hidden_size'], c['intermediate_size'])

    def forward(self, h):
        h = h + self.self_attn(self.input_layernorm(h))
        return h + self.mlp(self.post_attention_layernorm(h))


class Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.layers = nn.ModuleList([DenseLayer(c) for _ in range(c['num_hidden_layers'])])
        self.norm = target_lib.RMSNorm(c['hidden_size'], c['rms_norm_eps'])


class LlamaForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Inner(c)
        self.lm_head = nn.Linear(c['hidden_size'], c['vocab_size'], bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        h = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            h = layer(h)
        return self.lm_head(self.model.norm(h))


def init_from_target(draft, target):
    """Embedding, final norm and LM head, and the first layers' attention, copied from the target:
    the draft starts in the target's token space (a bigram model through the target's head)
    instead of learning it from scratch. Returns the copied parameters."""
    copied = []
    pairs = [(draft.model.embed_tokens, target.model.embed_tokens),
             (draft.model.norm, target.model.norm), (draft.lm_head, target.lm_head)]
    for d, t in zip(draft.model.layers, target.model.layers):
        pairs += [(d.input_layernorm, t.input_layernorm), (d.self_attn, t.self_attn),
                  (d.post_attention_layernorm, t.post_attention_layernorm)]
    with torch.no_grad():
        for d, t in pairs:
            for (_, pd), (_, pt) in zip(d.named_parameters(), t.named_parameters()):
                pd.copy_(pt)
                copied.append(pd)
    return copied


def hf_config(c):
    j = dict(c)
    j.update(architectures=['LlamaForCausalLM'], model_type='llama', attention_bias=False,
             attention_dropout=0.0, mlp_bias=False, hidden_act='silu', torch_dtype='float16',
             initializer_range=0.02, use_cache=True, pretraining_tp=1, rope_scaling=None,
             transformers_version='4.46.0', pov_draft_name='tiny-en-draft')
    return j


def export(model, out):
    target_lib.write_checkpoint(out, model, hf_config(model.c))


def load_exported(out, dtype=torch.float32):
    return target_lib.read_checkpoint(out, LlamaForCausalLM, DRAFT_CONFIG, dtype)


# ---------------------------------------------------------------- data

def data(args):
    """The same training text as train.py prepare (held-out tenth of Persuasion excluded), encoded
    with the committed tokenizer, so the draft never sees the held-out text either."""
    text, _ = target_lib.corpus(args.rdata)
    enc = bpe.Encoder(bpe.load_merges(os.path.join(args.target, 'tokenizer.json')))
    ids = enc.encode(text, bos=False)
    with open(args.heldout) as f:
        held = enc.encode(f.read(), bos=False)
    os.makedirs(args.work, exist_ok=True)
    torch.save(torch.tensor(ids, dtype=torch.int16), os.path.join(args.work, 'draft_ids.pt'))
    torch.save(torch.tensor(held, dtype=torch.int16), os.path.join(args.work, 'draft_held.pt'))
    log(f'data: {len(text)} chars -> {len(ids)} training tokens, {len(held)} held out')


# ---------------------------------------------------------------- distillation

def distill_loss(d_logits, t_logits):
    """Mean over positions of KL(p_target || q_draft), nats."""
    lp = F.log_softmax(t_logits, -1)
    lq = F.log_softmax(d_logits, -1)
    return (lp.exp() * (lp - lq)).sum(-1).mean()


@torch.no_grad()
def heldout_metrics(draft, target, held, T, windows):
    """Teacher-forced on held-out text: KL(p || q), the share of positions where the draft's argmax
    is the target's (greedy acceptance of a one-token draft), and E[Σ min(p, q)] (the acceptance
    probability of a one-token draft under speculative sampling at temperature 1)."""
    draft.eval()
    kl, agree, overlap, n = 0.0, 0, 0.0, 0
    for i in range(0, min(held.numel() - T, windows * T), T):
        x = torch.cat([torch.tensor([bpe.BOS_ID]), held[i:i + T - 1].long()])[None]
        tl, _ = target(x)
        dl = draft(x)
        kl += distill_loss(dl, tl).item() * T
        agree += (tl.argmax(-1) == dl.argmax(-1)).sum().item()
        overlap += torch.minimum(tl.softmax(-1), dl.softmax(-1)).sum(-1).sum().item()
        n += T
    draft.train()
    return {'heldout_kl': kl / n, 'heldout_argmax_agree': agree / n, 'heldout_overlap': overlap / n}


def train(args):
    torch.manual_seed(args.seed)
    ids = torch.load(os.path.join(args.work, 'draft_ids.pt'))
    held = torch.load(os.path.join(args.work, 'draft_held.pt'))
    target = target_lib.load_exported(args.target, torch.float32)
    for p in target.parameters():
        p.requires_grad_(False)
    draft = LlamaForCausalLM(DRAFT_CONFIG)
    copied = init_from_target(draft, target)
    copied_ids = {id(p) for p in copied}
    n_params = sum(p.numel() for p in draft.parameters())
    log(f'draft: {n_params} parameters ({sum(p.numel() for p in copied)} copied from the target); '
        f'{ids.numel()} training tokens')
    groups = []
    for is_copied, lr_scale in ((True, args.copied_lr_scale), (False, 1.0)):
        ps = [p for p in draft.parameters() if (id(p) in copied_ids) == is_copied]
        groups.append({'params': [p for p in ps if p.dim() == 2], 'weight_decay': 0.1,
                       'lr_scale': lr_scale})
        groups.append({'params': [p for p in ps if p.dim() < 2], 'weight_decay': 0.0,
                       'lr_scale': lr_scale})
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(args.seed)
    ckpt = os.path.join(args.work, 'draft_state.pt')
    step, hist, t_used = 0, [], 0.0
    if args.resume and os.path.exists(ckpt):
        s = torch.load(ckpt)
        draft.load_state_dict(s['model'])
        opt.load_state_dict(s['opt'])
        step, hist, t_used = s['step'], s['hist'], s['t_used']
        gen.set_state(s['gen'])
        log(f'resumed at step {step}')
    else:
        rec = {'step': 0, **heldout_metrics(draft, target, held, args.seq, args.eval_windows)}
        hist.append(rec)
        log(json.dumps(rec))
    it = target_lib.batches(ids, args.batch, args.seq, gen)
    t0 = time.time() - t_used
    last_ckpt = time.time()
    budget = args.minutes * 60
    while True:
        prog = (time.time() - t0) / budget
        if prog >= 1:
            break
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        if step >= args.warmup:
            lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog))
        for g in opt.param_groups:
            g['lr'] = lr * g['lr_scale']
        x, _ = next(it)
        with torch.no_grad():
            t_logits, _ = target(x)
        loss = distill_loss(draft(x), t_logits)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(draft.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        final = time.time() - t0 >= budget
        if step % args.log_every == 0 or final:
            rec = {'step': step, 'tokens': step * args.batch * args.seq, 'kl': loss.item(),
                   'lr': lr, 'elapsed_s': round(time.time() - t0, 1),
                   'load1': round(os.getloadavg()[0], 2)}
            if step % (args.log_every * 5) == 0 or final:
                rec.update(heldout_metrics(draft, target, held, args.seq, args.eval_windows))
            hist.append(rec)
            log(json.dumps(rec))
        if time.time() - last_ckpt > args.ckpt_minutes * 60 or final:
            torch.save({'model': draft.state_dict(), 'opt': opt.state_dict(), 'step': step,
                        'hist': hist, 'gen': gen.get_state(),
                        't_used': time.time() - t0}, ckpt + '.tmp')
            os.replace(ckpt + '.tmp', ckpt)
            export(draft, args.out)
            with open(os.path.join(args.work, 'draft_history.json'), 'w') as f:
                json.dump(hist, f)
            last_ckpt = time.time()
            log(f'checkpoint at step {step}')
    log('done')


# ---------------------------------------------------------------- fixture for the TS agreement test

@torch.no_grad()
def fixture(args):
    """Greedy continuations of held-out prompts by a float64 forward of the exported (f16) draft,
    with logits at each step; prompts with a top-1/top-2 near-tie are skipped."""
    draft = load_exported(args.out, torch.float64)
    enc = bpe.Encoder(bpe.load_merges(os.path.join(args.target, 'tokenizer.json')))
    with open(args.heldout) as f:
        pars = [p for p in f.read().split('\n') if len(p.split()) > 12]
    out = []
    for p in pars:
        if len(out) == 3:
            break
        prompt = ' '.join(p.split()[:8])
        seq = enc.encode(prompt)
        steps = []
        for _ in range(args.fixture_tokens):
            last = draft(torch.tensor([seq]))[0, -1]
            top = last.topk(2)
            idx = sorted(set(last.topk(16).indices.tolist()) |
                         set(range(0, DRAFT_CONFIG['vocab_size'], 256)))
            steps.append({'id': int(top.indices[0]), 'margin': float(top.values[0] - top.values[1]),
                          'logitIndices': idx, 'logits': [round(float(last[i]), 6) for i in idx]})
            seq.append(int(top.indices[0]))
        if min(s['margin'] for s in steps) < 0.01:
            log(f'fixture: skipping {prompt!r} (near-tie)')
            continue
        out.append({'prompt': prompt, 'promptIds': enc.encode(prompt),
                    'text': enc.decode(seq[len(enc.encode(prompt)):]), 'steps': steps})
        log(f'fixture: {prompt!r} -> {out[-1]["text"]!r}')
    os.makedirs(os.path.dirname(args.fixture), exist_ok=True)
    with open(args.fixture, 'w') as f:
        json.dump({'note': 'written by tools/train-tiny/draft.py fixture: float64 PyTorch forward '
                           'of the f16 draft checkpoint in models/tiny-en/draft',
                   'prompts': out}, f, indent=1)
        f.write('\n')
    log(f'fixture: {len(out)} prompts')


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('command', choices=['data', 'train', 'fixture'])
    ap.add_argument('--rdata', default=target_lib.DEFAULT_RDATA)
    ap.add_argument('--work', default=os.path.join(here, 'work'))
    ap.add_argument('--target', default=os.path.join(repo, 'models', 'tiny-en'))
    ap.add_argument('--out', default=os.path.join(repo, 'models', 'tiny-en', 'draft'))
    ap.add_argument('--heldout', default=os.path.join(repo, 'models', 'tiny-en', 'heldout.txt'))
    ap.add_argument('--fixture', default=os.path.join(repo, 'tests', 'fixtures',
                                                      'tiny-en-draft-torch.json'))
    ap.add_argument('--minutes', type=float, default=30, help='training wall-clock budget')
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--seq', type=int, default=128)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--copied-lr-scale', type=float, default=0.3,
                    help='learning-rate factor for the parameters copied from the target')
    ap.add_argument('--warmup', type=int, default=30)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--log-every', type=int, default=10)
    ap.add_argument('--eval-windows', type=int, default=8)
    ap.add_argument('--ckpt-minutes', type=float, default=5)
    ap.add_argument('--fixture-tokens', type=int, default=8)
    ap.add_argument('--resume', action='store_true')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    {'data': data, 'train': train, 'fixture': fixture}[args.command](args)


if __name__ == '__main__':
    main()
