// Constrained decoding for `response_format` json_object / json_schema: a byte-level pushdown
// recognizer of JSON (optionally shaped by a JSON schema subset) that says, for each vocabulary
// token, whether its bytes keep the output a prefix of a valid document. Tokens that would break
// it are masked (-Infinity) before sampling, so the reply always parses once it ends; and when
// the token budget runs short (max_tokens, or what a cost cap still pays, asked at every
// position), only tokens that spell the shortest way to close the document are allowed, so it
// ends complete within it. Bytes, not characters: byte-level BPE tokens
// may split a UTF-8 character, which JSON allows only inside strings (bytes ≥ 0x80).
//
// Supported schema keywords: type (one or a list), properties, required, additionalProperties
// (false, or absent/true: other keys with any value), items, minItems, maxItems, enum and const
// (of strings, numbers, booleans, null), and annotations (title, description, $schema, default,
// examples, strict). Anything else is refused with the keyword named (unsupportedKeyword).

export type Schema = Record<string, unknown>

const ANNOTATIONS = new Set(['title', 'description', '$schema', 'default', 'examples', '$comment'])
const SUPPORTED = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'maxItems',
  'enum',
  'const'
])
const TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'])

/** The path of the first keyword this recognizer cannot enforce, or null when it can all. */
export function unsupportedKeyword(schema: unknown, path = 'schema'): string | null {
  if (typeof schema !== 'object' || schema == null || Array.isArray(schema)) return path
  const s = schema as Schema
  for (const [k, v] of Object.entries(s)) {
    if (ANNOTATIONS.has(k)) continue
    if (!SUPPORTED.has(k)) return `${path}.${k}`
    if (k === 'type') {
      const ts = Array.isArray(v) ? v : [v]
      if (ts.length === 0 || !ts.every((t) => typeof t === 'string' && TYPES.has(t)))
        return `${path}.type`
    }
    if (k === 'properties') {
      if (typeof v !== 'object' || v == null) return `${path}.properties`
      for (const [name, sub] of Object.entries(v)) {
        const bad = unsupportedKeyword(sub, `${path}.properties.${name}`)
        if (bad != null) return bad
      }
    }
    if (k === 'items') {
      const bad = unsupportedKeyword(v, `${path}.items`)
      if (bad != null) return bad
    }
    if (k === 'additionalProperties' && v !== false && v !== true) return `${path}.${k}`
    if (k === 'required' && !(Array.isArray(v) && v.every((x) => typeof x === 'string')))
      return `${path}.required`
    if ((k === 'minItems' || k === 'maxItems') && !(Number.isSafeInteger(v) && (v as number) >= 0))
      return `${path}.${k}`
    if (k === 'enum' && !(Array.isArray(v) && v.length > 0 && v.every(isScalar)))
      return `${path}.enum`
    if (k === 'const' && !isScalar(v)) return `${path}.const`
  }
  return null
}

function isScalar(v: unknown): boolean {
  return v === null || ['string', 'number', 'boolean'].includes(typeof v)
}

/** The values allowed by `enum`/`const`, as their JSON texts; null when any value goes. */
function literals(s: Schema | null): string[] | null {
  if (s == null) return null
  if ('const' in s) return [JSON.stringify(s.const)]
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v))
  return null
}

function types(s: Schema | null): Set<string> {
  if (s == null || s.type == null) return new Set(TYPES)
  return new Set(Array.isArray(s.type) ? (s.type as string[]) : [s.type as string])
}

const WS = new Set([0x20, 0x0a, 0x09, 0x0d])
/** Whitespace bytes allowed in a row between tokens (more lets a model pad forever). */
const MAX_WS = 2
const enc = new TextEncoder()

type Frame =
  | { k: 'value'; s: Schema | null }
  /** A value constrained to literal texts (enum/const): the bytes so far must prefix one. */
  | { k: 'lit'; options: string[]; buf: string }
  | { k: 'str'; esc: number; key: boolean }
  | { k: 'num'; st: NumState; int: boolean }
  | { k: 'word'; word: string; i: number }
  | {
      k: 'obj'
      s: Schema | null
      phase: 'first' | 'key' | 'colon' | 'value' | 'next'
      seen: string[]
      key: string
    }
  | { k: 'key'; obj: Schema | null; seen: string[]; buf: string }
  | { k: 'arr'; s: Schema | null; phase: 'first' | 'value' | 'next'; n: number }

type NumState = 'minus' | 'zero' | 'int' | 'dot' | 'frac' | 'e' | 'esign' | 'exp'
const NUM_END: ReadonlySet<NumState> = new Set(['zero', 'int', 'frac', 'exp'])

/** A recognizer state; `clone` before trying bytes that may be refused. */
export class JsonState {
  private constructor(
    private stack: Frame[],
    private ws: number,
    readonly root: Schema | null
  ) {}

  /** `schema` null: any JSON object (json_object); else a value of the schema. */
  static start(schema: Schema | null): JsonState {
    // json_object asks for an object at the top
    return new JsonState([{ k: 'value', s: schema ?? { type: 'object' } }], 0, schema)
  }

  clone(): JsonState {
    return new JsonState(
      this.stack.map((f) => ({ ...f, ...('seen' in f ? { seen: [...f.seen] } : {}) }) as Frame),
      this.ws,
      this.root
    )
  }

  /** The document is complete (nothing but trailing whitespace may follow). */
  get done(): boolean {
    return this.stack.length === 0
  }

  /** Feeds bytes; false (and a state to throw away) when they break the document. */
  feed(bytes: Uint8Array | number[]): boolean {
    for (const b of bytes) if (!this.byte(b)) return false
    return true
  }

  private byte(b: number): boolean {
    const f = this.stack[this.stack.length - 1]
    if (f == null) return WS.has(b) && ++this.ws <= MAX_WS
    switch (f.k) {
      case 'str':
        return this.strByte(f, b)
      case 'key':
        return this.keyByte(f, b)
      case 'lit':
        return this.litByte(f, b)
      case 'num':
        return this.numByte(f, b)
      case 'word':
        if (b !== f.word.charCodeAt(f.i)) return false
        if (++f.i === f.word.length) this.pop()
        return true
    }
    // between tokens: whitespace, bounded
    if (WS.has(b)) return ++this.ws <= MAX_WS
    this.ws = 0
    switch (f.k) {
      case 'value':
        return this.startValue(b, f.s)
      case 'obj':
        return this.objByte(f, b)
      case 'arr':
        return this.arrByte(f, b)
    }
  }

  private pop(): void {
    this.stack.pop()
    this.ws = 0
  }

  /** Replaces the top `value` frame by the frame of the value starting with byte `b`. */
  private startValue(b: number, s: Schema | null): boolean {
    this.stack.pop()
    const lits = literals(s)
    if (lits != null) {
      const f: Frame = { k: 'lit', options: lits, buf: '' }
      this.stack.push(f)
      return this.litByte(f, b)
    }
    const t = types(s)
    const c = String.fromCharCode(b)
    if (c === '{' && t.has('object')) {
      this.stack.push({ k: 'obj', s, phase: 'first', seen: [], key: '' })
      return true
    }
    if (c === '[' && t.has('array')) {
      this.stack.push({ k: 'arr', s, phase: 'first', n: 0 })
      return true
    }
    if (c === '"' && t.has('string')) {
      this.stack.push({ k: 'str', esc: 0, key: false })
      return true
    }
    if ((c === '-' || (c >= '0' && c <= '9')) && (t.has('number') || t.has('integer'))) {
      const f: Frame = { k: 'num', st: 'minus', int: !t.has('number') }
      f.st = c === '-' ? 'minus' : c === '0' ? 'zero' : 'int'
      this.stack.push(f)
      return true
    }
    for (const [word, type] of [
      ['true', 'boolean'],
      ['false', 'boolean'],
      ['null', 'null']
    ] as const)
      if (c === word[0] && t.has(type)) {
        this.stack.push({ k: 'word', word, i: 1 })
        return true
      }
    return false
  }

  private strByte(f: Frame & { k: 'str' }, b: number): boolean {
    if (f.esc > 1) {
      // \uXXXX: four hex digits
      if (!/[0-9a-fA-F]/.test(String.fromCharCode(b))) return false
      f.esc = f.esc === 5 ? 0 : f.esc + 1
      return true
    }
    if (f.esc === 1) {
      if (b === 0x75) f.esc = 2
      else if ('"\\/bfnrt'.includes(String.fromCharCode(b))) f.esc = 0
      else return false
      return true
    }
    if (b === 0x22) {
      this.pop()
      return true
    }
    if (b === 0x5c) {
      f.esc = 1
      return true
    }
    return b >= 0x20
  }

  /** A literal (enum/const) value: its bytes so far prefix one option, and it ends on one. */
  private litByte(f: Frame & { k: 'lit' }, b: number): boolean {
    const buf = f.buf + String.fromCharCode(b)
    if (!f.options.some((o) => o.startsWith(buf))) {
      // a complete option ends here: the byte belongs to the parent (only numbers end so)
      if (f.options.includes(f.buf) && !f.buf.endsWith('"')) {
        this.pop()
        return this.byte(b)
      }
      return false
    }
    f.buf = buf
    // a string, word or bracketed option that is complete and prefixes no longer one ends now
    if (f.options.includes(buf) && !f.options.some((o) => o !== buf && o.startsWith(buf)))
      this.pop()
    return true
  }

  private keyByte(f: Frame & { k: 'key' }, b: number): boolean {
    const props = objectKeys(f.obj)
    if (b === 0x22) {
      if (props != null && !props.map(latin1).includes(f.buf)) return false
      if (f.seen.includes(f.buf)) return false
      this.stack.pop()
      const o = this.stack[this.stack.length - 1] as Frame & { k: 'obj' }
      o.key = f.buf
      o.seen.push(f.buf)
      o.phase = 'colon'
      this.ws = 0
      return true
    }
    // keys are plain: no escapes, no control bytes
    if (b === 0x5c || b < 0x20) return false
    const buf = f.buf + String.fromCharCode(b)
    if (
      props != null &&
      !props.some((p) => !f.seen.includes(latin1(p)) && latin1(p).startsWith(buf))
    )
      return false
    f.buf = buf
    return true
  }

  private objByte(f: Frame & { k: 'obj' }, b: number): boolean {
    const c = String.fromCharCode(b)
    switch (f.phase) {
      case 'first':
      case 'key':
        if (c === '"' && moreKeys(f)) {
          this.stack.push({ k: 'key', obj: f.s, seen: f.seen, buf: '' })
          return true
        }
        if (c === '}' && f.phase === 'first' && requiredDone(f)) {
          this.pop()
          return true
        }
        return false
      case 'colon':
        if (c !== ':') return false
        f.phase = 'next'
        this.stack.push({ k: 'value', s: propertySchema(f.s, f.key) })
        return true
      case 'next':
        if (c === ',' && moreKeys(f)) {
          f.phase = 'key'
          return true
        }
        if (c === '}' && requiredDone(f)) {
          this.pop()
          return true
        }
        return false
      case 'value':
        return false
    }
  }

  private arrByte(f: Frame & { k: 'arr' }, b: number): boolean {
    const c = String.fromCharCode(b)
    const min = (f.s?.minItems as number | undefined) ?? 0
    const max = (f.s?.maxItems as number | undefined) ?? Infinity
    if (f.phase === 'next') {
      if (c === ',' && f.n < max) {
        f.phase = 'value'
        return true
      }
      if (c === ']' && f.n >= min) {
        this.pop()
        return true
      }
      return false
    }
    if (c === ']' && f.phase === 'first' && min === 0) {
      this.pop()
      return true
    }
    if (f.phase === 'first' && max === 0) return false
    f.phase = 'next'
    f.n++
    const v: Frame = { k: 'value', s: itemSchema(f.s) }
    this.stack.push(v)
    return this.byte(b)
  }

  private numByte(f: Frame & { k: 'num' }, b: number): boolean {
    const c = String.fromCharCode(b)
    const digit = c >= '0' && c <= '9'
    const next = ((): NumState | null => {
      switch (f.st) {
        case 'minus':
          return c === '0' ? 'zero' : digit ? 'int' : null
        case 'zero':
          return c === '.' && !f.int ? 'dot' : (c === 'e' || c === 'E') && !f.int ? 'e' : null
        case 'int':
          return digit
            ? 'int'
            : c === '.' && !f.int
              ? 'dot'
              : (c === 'e' || c === 'E') && !f.int
                ? 'e'
                : null
        case 'dot':
          return digit ? 'frac' : null
        case 'frac':
          return digit ? 'frac' : c === 'e' || c === 'E' ? 'e' : null
        case 'e':
          return digit ? 'exp' : c === '+' || c === '-' ? 'esign' : null
        case 'esign':
        case 'exp':
          return digit ? 'exp' : null
      }
    })()
    if (next != null) {
      f.st = next
      return true
    }
    // the number ends here: the byte belongs to the parent
    if (!NUM_END.has(f.st)) return false
    this.pop()
    return this.byte(b)
  }

  /**
   * The shortest bytes that complete the document from here (a number is closed as it stands;
   * a missing value is the shortest one its schema allows).
   */
  closing(): string {
    const s = this.clone()
    let out = ''
    for (let guard = 0; !s.done && guard < 10_000; guard++) {
      // '' when the step only ended a frame (a complete number or literal)
      const step = s.closeStep()
      if (step !== '' && !s.feed(latin1Bytes(step))) break
      out += step
    }
    // a number left open at the top level ends with the document
    return out
  }

  /** One step towards closing the top frame. */
  private closeStep(): string {
    const f = this.stack[this.stack.length - 1]
    switch (f.k) {
      case 'str':
        return f.esc === 0 ? '"' : f.esc === 1 ? 'n' : '0'
      case 'word':
        return f.word.slice(f.i)
      case 'lit': {
        const best = f.options
          .filter((o) => o.startsWith(f.buf))
          .sort((a, b) => a.length - b.length)[0]
        const rest = best.slice(f.buf.length)
        if (rest === '') {
          this.pop()
          return ''
        }
        return rest
      }
      case 'num':
        if (!NUM_END.has(f.st)) return '0'
        this.pop()
        return ''
      case 'key': {
        const props = objectKeys(f.obj)
        if (props == null) return '"'
        const fits = (p: string): boolean =>
          !f.seen.includes(latin1(p)) && latin1(p).startsWith(f.buf)
        const need = requiredOf(f.obj).filter(fits)
        const cands = (need.length > 0 ? need : props.filter(fits)).sort(
          (a, b) => a.length - b.length
        )
        return latin1(cands[0] ?? '').slice(f.buf.length) + '"'
      }
      case 'obj':
        switch (f.phase) {
          case 'first':
            return requiredDone(f) ? '}' : '"'
          case 'key':
            return '"'
          case 'colon':
            return ':'
          case 'next':
            return requiredDone(f) ? '}' : ','
          default:
            return ''
        }
      case 'arr': {
        const min = (f.s?.minItems as number | undefined) ?? 0
        if (f.phase === 'value') return shortestValue(itemSchema(f.s))
        if (f.n >= min) return ']'
        return f.phase === 'next' ? ',' : shortestValue(itemSchema(f.s))
      }
      case 'value':
        return shortestValue(f.s)
    }
  }
}

function objectKeys(s: Schema | null): string[] | null {
  if (s?.properties == null || s.additionalProperties === true) return null
  return Object.keys(s.properties as object)
}

function requiredOf(s: Schema | null): string[] {
  return Array.isArray(s?.required) ? (s.required as string[]) : []
}

// keys seen are kept as the recognizer reads them: UTF-8 bytes, one char each (latin1)
function requiredDone(f: { s: Schema | null; seen: string[] }): boolean {
  return requiredOf(f.s).every((r) => f.seen.includes(latin1(r)))
}

function moreKeys(f: { s: Schema | null; seen: string[] }): boolean {
  const props = objectKeys(f.s)
  return props == null || props.some((p) => !f.seen.includes(latin1(p)))
}

/** The schema of property `key` (as read: latin1 bytes). */
function propertySchema(s: Schema | null, key: string): Schema | null {
  const props = s?.properties as Record<string, Schema> | undefined
  if (props == null) return null
  for (const [k, v] of Object.entries(props)) if (latin1(k) === key) return v
  return null
}

function itemSchema(s: Schema | null): Schema | null {
  return (s?.items as Schema | undefined) ?? null
}

/** The shortest JSON text a value of `s` can be. */
function shortestValue(s: Schema | null): string {
  const lits = literals(s)
  if (lits != null) return [...lits].sort((a, b) => a.length - b.length)[0]
  const t = types(s)
  if (t.has('number') || t.has('integer')) return '0'
  if (t.has('string')) return '""'
  if (t.has('null')) return 'null'
  if (t.has('boolean')) return 'true'
  if (t.has('array')) {
    const min = (s?.minItems as number | undefined) ?? 0
    return `[${Array.from({ length: min }, () => shortestValue(itemSchema(s))).join(',')}]`
  }
  const req = requiredOf(s)
  return `{${req.map((k) => `"${latin1(k)}":${shortestValue(propertySchema(s, latin1(k)))}`).join(',')}}`
}

/** A string's UTF-8 bytes as a latin-1 string (one char per byte), as the recognizer sees it. */
function latin1(s: string): string {
  return String.fromCharCode(...enc.encode(s))
}

function latin1Bytes(s: string): number[] {
  return Array.from(s, (c) => c.charCodeAt(0))
}

/**
 * Tokens a reply may still take from position `n` on (the position whose logits are being
 * masked, counted), as the reply's budget stands now: a number is max_tokens; a function follows
 * what is actually left (a cost cap: the rows the money left pays, router/gateway/budget.ts).
 */
export type TokenBudget = number | ((n: number) => number)

/**
 * The mask a constraint applies to each step's logits, over a vocabulary given as each token's
 * bytes (null: a token the output may never contain, such as BOS). `eos` ends the reply once the
 * document is complete.
 */
export class JsonConstraint {
  private state: JsonState
  private consumed = 0
  /** Every token's bytes as a latin1 string → its id (the first one, for duplicates). */
  private readonly byText = new Map<string, number>()
  private readonly longest: number
  private readonly left: (n: number) => number

  constructor(
    private readonly tokenBytes: ReadonlyArray<Uint8Array | null>,
    private readonly eos: number | null,
    schema: Schema | null,
    budget: TokenBudget
  ) {
    // asked at every position: a budget that shrinks (rows paid dearer than planned) is followed
    this.left = typeof budget === 'number' ? (n) => budget - n : budget
    this.state = JsonState.start(schema)
    let longest = 1
    tokenBytes.forEach((b, id) => {
      if (b == null || b.length === 0) return
      const t = String.fromCharCode(...b)
      if (!this.byText.has(t)) this.byText.set(t, id)
      if (b.length > longest) longest = b.length
    })
    this.longest = longest
  }

  get done(): boolean {
    return this.state.done
  }

  /** Tokens the shortest document of the schema takes (max_tokens below it cannot end well). */
  minTokens(): number {
    return this.spell(JsonState.start(this.state.root).closing()).length
  }

  /** Advances over the tokens chosen since the last call; false when one broke the grammar. */
  accept(generated: readonly number[]): boolean {
    for (; this.consumed < generated.length; this.consumed++) {
      const id = generated[this.consumed]
      if (id === this.eos) continue
      const bytes = this.tokenBytes[id]
      if (bytes == null || !this.state.feed(bytes)) return false
    }
    return true
  }

  /**
   * The tokens that complete the document from where `generated` left it, spelled as the mask
   * forces them (empty once it is complete): what a reply cut short by its budget ends with.
   */
  closing(generated: readonly number[]): number[] {
    if (!this.accept(generated)) throw new Error('a generated token broke the JSON grammar')
    return this.state.done ? [] : this.spell(this.state.closing())
  }

  /** `text` (latin1 bytes) as tokens, longest match first: how the budget is counted. */
  private spell(text: string): number[] {
    const out: number[] = []
    for (let i = 0; i < text.length;) {
      let n = Math.min(this.longest, text.length - i)
      for (; n > 0; n--) {
        const id = this.byText.get(text.slice(i, i + n))
        if (id != null) {
          out.push(id)
          break
        }
      }
      if (n === 0) return [...out, ...Array.from({ length: text.length - i }, () => -1)]
      i += n
    }
    return out
  }

  /** Masks (−Infinity) every token that cannot come next. */
  mask(logits: Float32Array, generated: readonly number[]): void {
    if (!this.accept(generated)) throw new Error('a generated token broke the JSON grammar')
    if (this.state.done) {
      for (let id = 0; id < logits.length; id++) if (id !== this.eos) logits[id] = -Infinity
      return
    }
    const left = this.left(generated.length)
    const closing = this.spell(this.state.closing())
    // at the end of the budget, only the way out: the closing, spelled in the fewest tokens
    if (closing.length + 1 >= left) {
      const only = closing[0]
      for (let id = 0; id < logits.length; id++) if (id !== only) logits[id] = -Infinity
      return
    }
    const near = closing.length + 8 >= left
    for (let id = 0; id < logits.length; id++) {
      if (logits[id] === -Infinity) continue
      const bytes = this.tokenBytes[id]
      let ok = id !== this.eos && bytes != null && bytes.length > 0
      if (ok) {
        const s = this.state.clone()
        ok = s.feed(bytes as Uint8Array)
        // a token may not open more than the rest of the budget can close
        if (ok && near) ok = this.spell(s.closing()).length + 1 < left
      }
      if (!ok) logits[id] = -Infinity
    }
  }
}
