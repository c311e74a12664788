// bench:network's picture, as a self-contained SVG: left, each decode token's latency against
// its physical floor (with the floor and 1.25 × floor lines); right, aggregate tokens/s against
// concurrent clients (with linear scaling from one client).

export interface PlotData {
  tokens: Array<{ clients: number; ms: number; floor: number }>
  throughput: Array<{ clients: number; tokensPerS: number }>
}

const W = 420
const H = 320
const M = { l: 56, r: 16, t: 34, b: 44 }
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd']

export function plotSvg(d: PlotData): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel(
      0,
      'Per-token latency vs physical floor (Σ layers RTT)',
      'floor (ms)',
      'token latency (ms)',
      latencyPanel(d)
    ),
    panel(
      W,
      'Aggregate throughput vs clients',
      'concurrent clients',
      'tokens/s',
      throughputPanel(d)
    ),
    '</svg>'
  ].join('\n')
}

type Scale = (v: number) => number
interface Body {
  xMax: number
  yMax: number
  draw: (x: Scale, y: Scale) => string
}

function panel(x0: number, title: string, xl: string, yl: string, b: Body): string {
  const iw = W - M.l - M.r
  const ih = H - M.t - M.b
  const x: Scale = (v) => x0 + M.l + (v / b.xMax) * iw
  const y: Scale = (v) => M.t + ih - (v / b.yMax) * ih
  const ticks = (max: number): number[] => {
    const step = niceStep(max / 5)
    return Array.from({ length: Math.floor(max / step) + 1 }, (_, i) => i * step)
  }
  const out = [
    `<text x="${x0 + W / 2}" y="18" text-anchor="middle" font-size="13">${title}</text>`,
    `<line x1="${x(0)}" y1="${y(0)}" x2="${x(b.xMax)}" y2="${y(0)}" stroke="black"/>`,
    `<line x1="${x(0)}" y1="${y(0)}" x2="${x(0)}" y2="${y(b.yMax)}" stroke="black"/>`,
    ...ticks(b.xMax).map(
      (t) => `<text x="${x(t)}" y="${y(0) + 14}" text-anchor="middle">${fmt(t)}</text>`
    ),
    ...ticks(b.yMax).map(
      (t) =>
        `<text x="${x(0) - 4}" y="${y(t) + 4}" text-anchor="end">${fmt(t)}</text><line x1="${x(0)}" y1="${y(t)}" x2="${x(b.xMax)}" y2="${y(t)}" stroke="#eee"/>`
    ),
    `<text x="${x(b.xMax / 2)}" y="${H - 8}" text-anchor="middle">${xl}</text>`,
    `<text transform="translate(${x0 + 14} ${M.t + ih / 2}) rotate(-90)" text-anchor="middle">${yl}</text>`,
    b.draw(x, y)
  ]
  return out.join('\n')
}

function latencyPanel(d: PlotData): Body {
  const xMax = niceCeil(Math.max(1, ...d.tokens.map((t) => t.floor)) * 1.05)
  const yMax = niceCeil(Math.max(xMax * 1.3, ...d.tokens.map((t) => Math.min(t.ms, xMax * 3))))
  const cs = [...new Set(d.tokens.map((t) => t.clients))].sort((a, b) => a - b)
  return {
    xMax,
    yMax,
    draw: (x, y) =>
      [
        `<line x1="${x(0)}" y1="${y(0)}" x2="${x(xMax)}" y2="${y(xMax)}" stroke="black" stroke-dasharray="4 3"/>`,
        `<line x1="${x(0)}" y1="${y(0)}" x2="${x(xMax)}" y2="${y(Math.min(yMax, 1.25 * xMax))}" stroke="gray" stroke-dasharray="2 3"/>`,
        ...d.tokens.map(
          (t) =>
            `<circle cx="${x(t.floor).toFixed(1)}" cy="${y(Math.min(t.ms, yMax)).toFixed(1)}" r="2" fill="${COLORS[cs.indexOf(t.clients) % COLORS.length]}" fill-opacity="0.5"/>`
        ),
        ...cs.map(
          (c, i) =>
            `<circle cx="${x(0) + 12}" cy="${M.t + 10 + i * 14}" r="4" fill="${COLORS[i % COLORS.length]}"/><text x="${x(0) + 20}" y="${M.t + 14 + i * 14}">${c} client${c > 1 ? 's' : ''}</text>`
        ),
        `<text x="${x(xMax) - 4}" y="${y(xMax) + 14}" text-anchor="end">floor</text>`,
        `<text x="${x(xMax * 0.8) - 4}" y="${y(Math.min(yMax, 1.25 * xMax * 0.8)) - 6}" text-anchor="end" fill="gray">1.25 × floor</text>`
      ].join('\n')
  }
}

function throughputPanel(d: PlotData): Body {
  const pts = [...d.throughput].sort((a, b) => a.clients - b.clients)
  const one = pts.find((p) => p.clients === 1)?.tokensPerS ?? pts[0]?.tokensPerS ?? 1
  const xMax = niceCeil(Math.max(1, ...pts.map((p) => p.clients)))
  const yMax = niceCeil(Math.max(one * xMax, ...pts.map((p) => p.tokensPerS)) * 1.05)
  return {
    xMax,
    yMax,
    draw: (x, y) =>
      [
        `<line x1="${x(0)}" y1="${y(0)}" x2="${x(xMax)}" y2="${y(one * xMax)}" stroke="gray" stroke-dasharray="4 3"/>`,
        `<text x="${x(xMax) - 4}" y="${y(one * xMax) + 14}" text-anchor="end" fill="gray">linear</text>`,
        `<polyline fill="none" stroke="${COLORS[0]}" stroke-width="2" points="${pts.map((p) => `${x(p.clients).toFixed(1)},${y(p.tokensPerS).toFixed(1)}`).join(' ')}"/>`,
        ...pts.map(
          (p) =>
            `<circle cx="${x(p.clients)}" cy="${y(p.tokensPerS)}" r="3.5" fill="${COLORS[0]}"/><text x="${x(p.clients) + 6}" y="${y(p.tokensPerS) - 6}">${p.tokensPerS.toFixed(1)}</text>`
        )
      ].join('\n')
  }
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)))
  const f = raw / p
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p
}
function niceCeil(v: number): number {
  const s = niceStep(v / 5)
  return Math.ceil(v / s) * s
}
function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1)
}
