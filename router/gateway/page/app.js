// The pov web page: a chat playground over /v1/chat/completions (streamed with server-sent
// events; each reply shows its POV cost and the nodes that served it) and a network view over
// /v1/pov/network (a picture of shards × nodes, tokens/s over time, the deposit and each lane,
// the queue). Plain browser JavaScript, no build step, no outside resources.
/* global document, localStorage, fetch, Node, AbortController, TextDecoderStream, setInterval */
const $ = (sel) => document.querySelector(sel)
const SVG = 'http://www.w3.org/2000/svg'
const tokenInput = $('#token')
tokenInput.value = localStorage.getItem('pov-token') ?? ''

// ---- the access token: asked for when the gateway answers 401, kept in this browser
function askToken(why) {
  $('#token-why').textContent = why
  $('#token-box').hidden = false
  tokenInput.focus()
}
$('#token-open').addEventListener('click', () => {
  askToken('The access token this browser sends to the gateway (kept in this browser only).')
})
$('#token-box').addEventListener('submit', (e) => {
  e.preventDefault()
  localStorage.setItem('pov-token', tokenInput.value.trim())
  $('#token-box').hidden = true
  void loadModels()
  void loadStatus()
})
$('#token-clear').addEventListener('click', () => {
  tokenInput.value = ''
  localStorage.removeItem('pov-token')
})

class AuthError extends Error {}

function headers() {
  const h = { 'content-type': 'application/json' }
  const t = localStorage.getItem('pov-token') ?? ''
  if (t !== '') h.authorization = `Bearer ${t}`
  return h
}

/** An API error as a person reads it; a 401 opens the token prompt instead. */
async function failure(r) {
  let body = null
  try {
    body = await r.json()
  } catch {}
  if (r.status === 401) {
    const had = (localStorage.getItem('pov-token') ?? '') !== ''
    askToken(
      had
        ? 'The gateway refused the saved access token. Paste a valid one.'
        : 'This gateway needs an access token. Paste the one its operator gave you (it stays in this browser).'
    )
    return new AuthError('an access token is needed (see above)')
  }
  return new Error(body?.error?.message ?? `HTTP ${r.status}`)
}

async function api(path) {
  const r = await fetch(path, { headers: headers() })
  if (!r.ok) throw await failure(r)
  return await r.json()
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v
    else e.setAttribute(k, v)
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)))
  return e
}

const short = (s, n = 8) => (s.length > 2 * n + 1 ? `${s.slice(0, n)}…${s.slice(-n)}` : s)

// ---- tabs
for (const b of document.querySelectorAll('.tab'))
  b.addEventListener('click', () => {
    for (const t of document.querySelectorAll('.tab')) t.classList.toggle('active', t === b)
    for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== `view-${b.dataset.view}`
    if (b.dataset.view === 'network') void loadNetwork()
  })

// ---- chat
const history = []
let controller = null

$('#new-chat').addEventListener('click', () => {
  controller?.abort()
  history.length = 0
  $('#messages').replaceChildren()
  $('#chat-error').hidden = true
  $('#prompt').focus()
})

async function loadModels() {
  try {
    const { data } = await api('/v1/models')
    const select = $('#model')
    select.replaceChildren(...data.map((m) => el('option', { value: m.id }, m.id)))
    const showPrice = () => {
      const m = data.find((x) => x.id === select.value)
      const p = m?.pov?.price_per_1k_tokens
      $('#price').textContent =
        p != null
          ? `≈ ${p} POV per 1k tokens, ${m.pov.nodes} nodes`
          : 'no price: a shard has no node'
    }
    select.onchange = showPrice
    showPrice()
    $('#chat-error').hidden = true
  } catch (err) {
    showError('#chat-error', err)
  }
}

function showError(sel, err) {
  const p = $(sel)
  p.textContent = err.message
  p.hidden = false
}

$('#chat-form').addEventListener('submit', (e) => {
  e.preventDefault()
  void send()
})
$('#prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault()
    void send()
  }
})
$('#stop').addEventListener('click', () => controller?.abort())

async function send() {
  const prompt = $('#prompt').value.trim()
  if (prompt === '' || controller != null) return
  $('#prompt').value = ''
  $('#chat-error').hidden = true
  history.push({ role: 'user', content: prompt })
  $('#messages').append(el('div', { class: 'msg user' }, prompt))
  const text = el('span', { class: 'text' })
  const meta = el('div', { class: 'meta' }, 'waiting for the network…')
  const bubble = el('div', { class: 'msg assistant streaming' }, text, meta)
  $('#messages').append(bubble)
  controller = new AbortController()
  $('#send').disabled = true
  $('#stop').disabled = false
  let reply = ''
  try {
    const r = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: headers(),
      signal: controller.signal,
      body: JSON.stringify({
        model: $('#model').value,
        messages: history,
        max_tokens: Number($('#max-tokens').value),
        temperature: Number($('#temperature').value),
        stream: true,
        stream_options: { include_usage: true }
      })
    })
    if (!r.ok) throw await failure(r)
    meta.textContent = 'streaming…'
    let usage = null
    let pov = null
    let finish = null
    for await (const event of sseEvents(r.body)) {
      if (event.error != null) throw new Error(event.error.message)
      const choice = event.choices?.[0]
      if (choice?.delta?.content) {
        reply += choice.delta.content
        text.textContent = reply
      }
      if (choice?.finish_reason) finish = choice.finish_reason
      if (event.pov != null) pov = event.pov
      if (event.usage != null) usage = event.usage
    }
    history.push({ role: 'assistant', content: reply })
    meta.replaceChildren(...describe(pov, usage, finish))
  } catch (err) {
    meta.textContent =
      err.name === 'AbortError' ? 'stopped (nothing more is paid)' : `error: ${err.message}`
    history.pop()
  } finally {
    bubble.classList.remove('streaming')
    bubble.classList.add('done')
    controller = null
    $('#send').disabled = false
    $('#stop').disabled = true
  }
}

function describe(pov, usage, finish) {
  const out = []
  if (pov != null) out.push(el('span', { class: 'cost' }, `cost ${pov.cost_pov} POV`))
  if (usage != null)
    out.push(` · ${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens`)
  if (finish != null) out.push(` · finish: ${finish}`)
  if (pov?.capped === 'funds') out.push(' · the deposit is spent: top it up with pov deposit')
  else if (pov?.capped != null) out.push(` · stopped by the ${pov.capped} cost cap`)
  if (pov?.degraded) out.push(' · DEGRADED (an expert was substituted)')
  if (pov != null && pov.nodes.length > 0) {
    const list = el('ul', { class: 'nodes' })
    for (const n of pov.nodes)
      list.append(
        el(
          'li',
          { 'data-peer-id': n.peer_id },
          el('code', {}, short(n.peer_id)),
          ` (operator ${short(n.operator, 6)}): ${n.calls} calls, ${n.units} units, ${n.amount_pov} POV`
        )
      )
    out.push(el('div', {}, 'served by:'), list)
  }
  return out
}

/** Parses a text/event-stream body into the JSON of each `data:` event (until [DONE]). */
async function* sseEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let buf = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buf += value
    let i
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const data = event
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trim())
        .join('\n')
      if (data === '[DONE]') return
      if (data !== '') yield JSON.parse(data)
    }
  }
}

// ---- network
$('#refresh').addEventListener('click', () => void loadNetwork())

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v))
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)))
  return e
}

/** Shards × nodes: a dot where a node serves a shard; per node its round trip, load and earnings. */
function networkPicture(m) {
  const nodes = m.nodes
  const shards = m.shards.length
  const cell = 22
  const left = 92
  const right = 200
  const top = 30
  const w = left + shards * cell + right
  const h = top + nodes.length * (cell + 6) + 8
  const out = svg('svg', {
    viewBox: `0 0 ${w} ${h}`,
    width: w,
    height: h,
    role: 'img',
    class: 'network-picture',
    'aria-label': `${nodes.length} nodes × ${shards} shards`
  })
  out.append(svg('title', {}, `${m.name}: which node serves which shard`))
  for (let s = 0; s < shards; s++)
    out.append(
      svg(
        'text',
        {
          x: left + s * cell + cell / 2,
          y: 18,
          'text-anchor': 'middle',
          'font-size': 10,
          fill: '#667085'
        },
        s
      )
    )
  out.append(svg('text', { x: 4, y: 18, 'font-size': 10, fill: '#667085' }, 'node \\ shard'))
  const maxGot = Math.max(
    1e-18,
    ...nodes.map((n) => Math.max(Number(n.earned), Number(n.paidByGateway)))
  )
  nodes.forEach((n, i) => {
    const y = top + i * (cell + 6)
    const g = svg('g', { 'data-peer-id': n.peerId, class: 'node-row' })
    g.append(
      svg(
        'text',
        { x: 4, y: y + 15, 'font-size': 11, 'font-family': 'monospace' },
        short(n.peerId, 4)
      )
    )
    for (let s = 0; s < shards; s++) {
      const serves = n.shards.includes(s)
      g.append(
        svg('rect', {
          x: left + s * cell + 2,
          y: y + 2,
          width: cell - 4,
          height: cell - 4,
          rx: 4,
          fill: serves ? (n.rttMs == null ? '#f4b4ad' : '#8fd3a8') : '#eef0f4',
          class: serves ? 'serves' : 'idle'
        })
      )
    }
    const x = left + shards * cell + 8
    const rtt = n.rttMs == null ? 'unreachable' : `${n.rttMs.toFixed(1)} ms`
    const busy = n.load == null ? '' : ` · ${n.load.inFlight} in flight · ${n.paidByGateway} POV`
    g.append(svg('text', { x, y: y + 10, 'font-size': 10 }, `${rtt}${busy}`))
    // what the node earned on-chain or was promised by this gateway (the larger), as a bar
    // relative to the node that got most
    const got = Math.max(Number(n.earned), Number(n.paidByGateway))
    const bar = Math.max(1, (got / maxGot) * (right - 20))
    g.append(svg('rect', { x, y: y + 14, width: bar, height: 6, rx: 2, fill: '#ffd37a' }))
    g.append(
      svg(
        'title',
        {},
        `${n.peerId}\noperator ${n.operator}\nround trip ${rtt}\npaid calls by this gateway ${n.load?.calls ?? 0}\nearned ${n.earned} POV`
      )
    )
    out.append(g)
  })
  return out
}

/** Tokens/s over time as a line. */
function throughputChart(samples) {
  const w = 600
  const h = 120
  const pad = 24
  const out = svg('svg', {
    viewBox: `0 0 ${w} ${h}`,
    width: w,
    height: h,
    role: 'img',
    'aria-label': 'tokens per second'
  })
  const max = Math.max(1, ...samples.map((s) => s.tokensPerS))
  out.append(svg('line', { x1: pad, y1: h - pad, x2: w - 4, y2: h - pad, stroke: '#d9dee7' }))
  out.append(svg('text', { x: 2, y: 12, 'font-size': 10, fill: '#667085' }, `${max.toFixed(1)}`))
  out.append(svg('text', { x: 2, y: h - pad, 'font-size': 10, fill: '#667085' }, '0'))
  if (samples.length === 0) {
    out.append(
      svg(
        'text',
        { x: w / 2, y: h / 2, 'text-anchor': 'middle', 'font-size': 12, fill: '#667085' },
        'no sample yet (one every 5 s)'
      )
    )
    return out
  }
  const t0 = samples[0].t
  const span = Math.max(1, samples[samples.length - 1].t - t0)
  const pts = samples.map((s) => {
    const x = pad + ((s.t - t0) / span) * (w - pad - 8)
    const y = h - pad - (s.tokensPerS / max) * (h - pad - 16)
    return `${x.toFixed(1)},${y.toFixed(1)}`
  })
  out.append(
    svg('polyline', {
      points: pts.join(' '),
      fill: 'none',
      stroke: '#2f5bea',
      'stroke-width': 2,
      class: 'tps'
    })
  )
  const last = samples[samples.length - 1].tokensPerS
  out.append(
    svg(
      'text',
      { x: w - 6, y: 12, 'text-anchor': 'end', 'font-size': 11 },
      `now ${last.toFixed(1)} tokens/s`
    )
  )
  return out
}

function queueLine(q) {
  if (q == null) return ''
  const wait =
    q.estimatedWaitS > 0
      ? `, a new request waits about ${q.estimatedWaitS.toFixed(1)} s`
      : ', no wait'
  return `queue: ${q.running}/${q.slots} generating, ${q.waiting} waiting${wait}`
}

async function loadNetwork() {
  $('#network-error').hidden = true
  let v
  try {
    v = await api('/v1/pov/network')
  } catch (err) {
    showError('#network-error', err)
    return
  }
  $('#payer').textContent =
    `payer ${v.payer.address}${v.payer.unlocking ? ' (deposit unlocking)' : ''}, spent by this gateway ${v.payer.spent} POV — chain ${v.chainId}`
  const funds = $('#funds')
  funds.replaceChildren(
    el('div', { class: 'deposit' }, `Deposit not yet in a lane: ${v.payer.escrow} POV`)
  )
  for (const [model, f] of Object.entries(v.lanes ?? {})) {
    const lanes = el('div', { class: 'lanes' })
    for (const l of f.lanes)
      lanes.append(
        el(
          'span',
          { class: 'lane', 'data-operator': l.operator },
          `lane to ${short(l.operator, 6)}: ${l.room} POV left`
        )
      )
    const name = v.models.find((m) => m.modelId === model)?.name ?? short(model, 8)
    funds.append(el('div', {}, `${name}: ${f.available} POV available in all`), lanes)
  }
  $('#queue').textContent = queueLine(v.queue)
  $('#throughput').replaceChildren(throughputChart(v.throughput ?? []))
  const root = $('#network')
  root.replaceChildren()
  for (const m of v.models) {
    root.append(el('h2', {}, `${m.name} `, el('code', {}, short(m.modelId, 10))))
    root.append(el('div', { class: 'picture' }, networkPicture(m)))
    const nodes = el(
      'table',
      { class: 'nodes' },
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          ...[
            'Peer',
            'Operator',
            'Shards',
            'Stake (POV)',
            'Price (POV/unit)',
            'RTT (ms)',
            'In flight',
            'Paid calls',
            'Earned (POV)',
            'Withdrawn (POV)',
            'Paid by this gateway (POV)',
            'Left in our lane (POV)',
            'Address'
          ].map((h) => el('th', {}, h))
        )
      )
    )
    const nb = el('tbody')
    for (const n of m.nodes)
      nb.append(
        el(
          'tr',
          { 'data-peer-id': n.peerId },
          el('td', {}, el('code', {}, short(n.peerId))),
          el('td', {}, el('code', {}, short(n.operator, 6))),
          el('td', {}, n.shards.join(',')),
          el('td', { class: 'num' }, n.stake),
          el('td', { class: 'num' }, n.price),
          el('td', { class: 'num' }, n.rttMs == null ? 'unreachable' : n.rttMs.toFixed(1)),
          el('td', { class: 'num' }, n.load?.inFlight ?? 0),
          el('td', { class: 'num' }, n.load?.calls ?? 0),
          el('td', { class: 'num' }, n.earned),
          el('td', { class: 'num' }, n.withdrawn),
          el('td', { class: 'num' }, n.paidByGateway),
          el('td', { class: 'num' }, n.lane),
          el('td', {}, el('code', {}, n.addrs.join(' ')))
        )
      )
    nodes.append(nb)
    root.append(el('h3', {}, 'Nodes'), el('div', { class: 'scroll' }, nodes))
  }
  const gov = $('#governance tbody')
  gov.replaceChildren(
    ...v.governance.map((g) =>
      el(
        'tr',
        {},
        el('td', { class: 'num' }, g.block),
        el('td', {}, g.contract),
        el('td', {}, g.event),
        el('td', {}, g.summary)
      )
    )
  )
}

/** The chat view's status line: the queue and the money, every 5 s while the page is open. */
async function loadStatus() {
  try {
    const v = await api('/v1/pov/network')
    const f = Object.values(v.lanes ?? {})[0]
    $('#status').textContent =
      `· ${queueLine(v.queue)}${f != null ? ` · ${f.available} POV left to spend` : ''}`
  } catch {}
}
setInterval(() => {
  if (!$('#view-chat').hidden && document.visibilityState === 'visible') void loadStatus()
}, 5000)

void loadModels()
void loadStatus()
