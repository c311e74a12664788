// The pov web page: a chat playground over /v1/chat/completions (streamed with server-sent
// events; each reply shows its POV cost and the nodes that served it) and a network view over
// /v1/pov/network. Plain browser JavaScript, no build step.
/* global document, localStorage, fetch, Node, AbortController, TextDecoderStream */
const $ = (sel) => document.querySelector(sel)
const tokenInput = $('#token')
tokenInput.value = localStorage.getItem('pov-token') ?? ''
tokenInput.addEventListener('change', () => {
  localStorage.setItem('pov-token', tokenInput.value)
  void loadModels()
})

function headers() {
  const h = { 'content-type': 'application/json' }
  if (tokenInput.value !== '') h.authorization = `Bearer ${tokenInput.value}`
  return h
}

async function api(path) {
  const r = await fetch(path, { headers: headers() })
  const body = await r.json()
  if (!r.ok) throw new Error(body.error?.message ?? `HTTP ${r.status}`)
  return body
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
    if (!r.ok) throw new Error((await r.json()).error?.message ?? `HTTP ${r.status}`)
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
  if (pov?.capped != null) out.push(` · stopped by the ${pov.capped} cost cap`)
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
    `payer ${v.payer.address}: unallocated deposit ${v.payer.escrow} POV${v.payer.unlocking ? ' (unlocking)' : ''}, spent by this gateway ${v.payer.spent} POV — chain ${v.chainId}`
  const root = $('#network')
  root.replaceChildren()
  for (const m of v.models) {
    root.append(el('h2', {}, `${m.name} `, el('code', {}, short(m.modelId, 10))))
    const shards = el(
      'table',
      { class: 'shards' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Shard'), el('th', {}, 'Nodes')))
    )
    const sb = el('tbody')
    for (const s of m.shards) {
      const names = s.nodes.map((op) => short(m.nodes.find((n) => n.operator === op)?.peerId ?? op))
      sb.append(
        el(
          'tr',
          {},
          el('td', { class: 'num' }, s.shard),
          el('td', {}, names.length > 0 ? names.join(', ') : 'none')
        )
      )
    }
    shards.append(sb)
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
          el('td', { class: 'num' }, n.earned),
          el('td', { class: 'num' }, n.withdrawn),
          el('td', { class: 'num' }, n.paidByGateway),
          el('td', { class: 'num' }, n.lane),
          el('td', {}, el('code', {}, n.addrs.join(' ')))
        )
      )
    nodes.append(nb)
    root.append(el('h3', {}, 'Nodes per shard'), shards, el('h3', {}, 'Nodes'), nodes)
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

void loadModels()
