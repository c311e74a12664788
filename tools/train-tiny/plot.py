"""Writes the loss curve of a training run (work/history.json) as an SVG, without matplotlib:
training loss per logged step and held-out loss where it was measured, against tokens seen."""
import json
import sys


def svg(hist, title):
    W, H, L, R, T, B = 640, 360, 60, 20, 30, 50
    xs = [h['tokens'] / 1e6 for h in hist]
    tr = [h['loss'] for h in hist]
    he = [(h['tokens'] / 1e6, h['heldout_loss']) for h in hist if 'heldout_loss' in h]
    x1 = max(xs)
    y0, y1 = 2.0, 9.0
    y0 = min(y0, min(tr + [v for _, v in he]) - 0.2)

    def px(x):
        return L + (W - L - R) * x / x1

    def py(y):
        return T + (H - T - B) * (1 - (min(y, y1) - y0) / (y1 - y0))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>']
    for k in range(int(y0), int(y1) + 1):
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{py(k):.1f}" y2="{py(k):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{py(k) + 4:.1f}" text-anchor="end">{k}</text>')
    step = 0.25 if x1 <= 2 else 0.5
    t = 0.0
    while t <= x1 + 1e-9:
        out.append(f'<line y1="{T}" y2="{H - B}" x1="{px(t):.1f}" x2="{px(t):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{px(t):.1f}" y="{H - B + 16}" text-anchor="middle">{t:g}</text>')
        t += step
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">'
               'training tokens (millions)</text>')
    out.append(f'<text x="16" y="{(T + H - B) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(T + H - B) / 2})">cross-entropy (nats/token)</text>')
    pts = ' '.join(f'{px(x):.1f},{py(y):.1f}' for x, y in zip(xs, tr))
    out.append(f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="1.2"/>')
    if he:
        pts = ' '.join(f'{px(x):.1f},{py(y):.1f}' for x, y in he)
        out.append(f'<polyline points="{pts}" fill="none" stroke="#d62728" stroke-width="2"/>')
        for x, y in he:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="#d62728"/>')
    lx = W - R - 170
    out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{T + 14}" y2="{T + 14}" stroke="#1f77b4"/>')
    out.append(f'<text x="{lx + 30}" y="{T + 18}">training batch</text>')
    out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{T + 32}" y2="{T + 32}" stroke="#d62728" '
               'stroke-width="2"/>')
    out.append(f'<text x="{lx + 30}" y="{T + 36}">held-out (Persuasion)</text>')
    out.append('</svg>')
    return '\n'.join(out) + '\n'


if __name__ == '__main__':
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        hist = json.load(f)
    with open(dst, 'w') as f:
        f.write(svg(hist, 'models/tiny-en: loss during training'))
