"""Byte-level BPE: a trainer that writes a Hugging Face tokenizer.json (the same layout as
model/tokenizer.ts builds, so @huggingface/tokenizers loads it) and an encoder that applies the
learnt merges exactly as the Hugging Face BPE model does (lowest-rank pair first)."""
import json
import re

SPECIAL_TOKENS = ['<unk>', '<s>', '</s>']
BOS_ID = 1
EOS_ID = 2

# GPT-2's split, as the ByteLevel pre-tokenizer uses it (use_regex: true). Python's `re` has no
# \p{L}: [^\W\d_] is "a word character that is neither a digit nor an underscore", i.e. a letter;
# the corpus has no underscores (they mark italics and are stripped) and no non-decimal numerals.
PRETOKENIZE = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")


def bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    out, n = {}, 0
    for b in range(256):
        if b in bs:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


B2U = bytes_to_unicode()


def pretokenize(text):
    return [''.join(B2U[b] for b in w.encode('utf-8')) for w in PRETOKENIZE.findall(text)]


def train(text, vocab_size, log=print):
    """Merges learnt from `text` until the vocabulary has `vocab_size` ids."""
    counts = {}
    for w in pretokenize(text):
        counts[w] = counts.get(w, 0) + 1
    words = [list(w) for w in counts]
    freq = list(counts.values())
    pairs, where = {}, {}
    for i, s in enumerate(words):
        for p in zip(s, s[1:]):
            pairs[p] = pairs.get(p, 0) + freq[i]
            where.setdefault(p, set()).add(i)
    merges = []
    n_base = len(SPECIAL_TOKENS) + 256
    while n_base + len(merges) < vocab_size:
        # Highest count; ties broken by the pair itself so that the result is deterministic.
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]), default=None)
        if best is None or best[1] < 2:
            break
        (a, b), _ = best
        merges.append((a, b))
        ab = a + b
        for i in list(where.get((a, b), ())):
            s = words[i]
            for p in zip(s, s[1:]):
                pairs[p] -= freq[i]
                if pairs[p] == 0:
                    del pairs[p]
                where[p].discard(i)
            out, j = [], 0
            while j < len(s):
                if j + 1 < len(s) and s[j] == a and s[j + 1] == b:
                    out.append(ab)
                    j += 2
                else:
                    out.append(s[j])
                    j += 1
            words[i] = out
            for p in zip(out, out[1:]):
                pairs[p] = pairs.get(p, 0) + freq[i]
                where.setdefault(p, set()).add(i)
        if len(merges) % 500 == 0:
            log(f'bpe: {len(merges)} merges')
    return merges


class Encoder:
    def __init__(self, merges):
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
        for b in range(256):
            self.vocab[B2U[b]] = len(self.vocab)
        for a, b in merges:
            self.vocab[a + b] = len(self.vocab)
        self.inv = {i: t for t, i in self.vocab.items()}
        self.u2b = {u: b for b, u in B2U.items()}
        self.cache = {}

    def _bpe(self, word):
        s = list(word)
        while len(s) > 1:
            ranked = [(self.ranks.get(p, 1 << 30), k) for k, p in enumerate(zip(s, s[1:]))]
            r, k = min(ranked)
            if r == 1 << 30:
                break
            a, b = s[k], s[k + 1]
            out, j = [], 0
            while j < len(s):
                if j + 1 < len(s) and s[j] == a and s[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(s[j])
                    j += 1
            s = out
        return [self.vocab[t] for t in s]

    def encode(self, text, bos=True):
        ids = [BOS_ID] if bos else []
        for w in pretokenize(text):
            if w not in self.cache:
                self.cache[w] = self._bpe(w)
            ids += self.cache[w]
        return ids

    def decode(self, ids):
        bs = bytearray()
        for i in ids:
            if i < len(SPECIAL_TOKENS):
                continue
            bs += bytes(self.u2b[c] for c in self.inv[i])
        return bs.decode('utf-8', 'replace')


def tokenizer_json(merges):
    enc = Encoder(merges)
    added = [dict(id=i, content=t, single_word=False, lstrip=False, rstrip=False,
                  normalized=False, special=True) for i, t in enumerate(SPECIAL_TOKENS)]
    tok = {
        'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added,
        'normalizer': None,
        'pre_tokenizer': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True,
                          'use_regex': True},
        'post_processor': {
            'type': 'TemplateProcessing',
            'single': [{'SpecialToken': {'id': '<s>', 'type_id': 0}},
                       {'Sequence': {'id': 'A', 'type_id': 0}}],
            'pair': [{'SpecialToken': {'id': '<s>', 'type_id': 0}},
                     {'Sequence': {'id': 'A', 'type_id': 0}},
                     {'SpecialToken': {'id': '<s>', 'type_id': 1}},
                     {'Sequence': {'id': 'B', 'type_id': 1}}],
            'special_tokens': {'<s>': {'id': '<s>', 'ids': [BOS_ID], 'tokens': ['<s>']}}},
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True,
                    'use_regex': True},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None,
                  'continuing_subword_prefix': None, 'end_of_word_suffix': None,
                  'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False,
                  'vocab': enc.vocab, 'merges': [list(m) for m in merges]}}
    cfg = {'add_bos_token': True, 'add_eos_token': False, 'bos_token': '<s>',
           'eos_token': '</s>', 'unk_token': '<unk>', 'clean_up_tokenization_spaces': False,
           'model_max_length': 1000000000000000019884624838656,
           'tokenizer_class': 'PreTrainedTokenizerFast'}
    return tok, cfg


def load_merges(tokenizer_json_path):
    with open(tokenizer_json_path) as f:
        return [tuple(m) for m in json.load(f)['model']['merges']]
