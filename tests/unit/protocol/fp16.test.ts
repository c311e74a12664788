import { test } from 'node:test'
import assert from 'node:assert/strict'
import { f16ToF32, f32ToF16, f32ToF16Bits } from '../../../protocol/fp16.js'

test('exact values and specials', () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [0.5, 0x3800],
    [2 ** -14, 0x0400],
    [2 ** -24, 0x0001],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [65520, 0x7c00], // halfway between max and 2^16 rounds to even -> Inf
    [1e-10, 0x0000],
    [2 ** -25, 0x0000], // exactly half the smallest subnormal: ties to even (0)
    [2 ** -25 * 1.5, 0x0001]
  ]
  for (const [x, h] of cases) assert.equal(f32ToF16Bits(x), h, `f32ToF16(${x})`)
  assert.ok(Number.isNaN(f16ToF32(new Uint16Array([f32ToF16Bits(NaN)]))[0]))
})

test('round to nearest even at the mantissa boundary', () => {
  const ulp = 2 ** -10
  assert.equal(f32ToF16Bits(1 + ulp / 2), 0x3c00) // tie -> even (down)
  assert.equal(f32ToF16Bits(1 + 1.5 * ulp), 0x3c02) // tie -> even (up)
  assert.equal(f32ToF16Bits(1 + ulp / 2 + 2 ** -20), 0x3c01) // above tie -> up
})

test('every half value round-trips exactly', () => {
  const all = new Uint16Array(65536).map((_, i) => i)
  const back = f32ToF16(f16ToF32(all))
  for (let i = 0; i < 65536; i++) {
    const isNaN = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0
    if (!isNaN) assert.equal(back[i], i)
  }
})

test('relative error of random normals is within half an ulp (2^-11)', () => {
  const x = Float32Array.from({ length: 10000 }, (_, i) => Math.sin(i * 12.9898) * 100)
  const y = f16ToF32(f32ToF16(x))
  for (let i = 0; i < x.length; i++) {
    if (Math.abs(x[i]) > 2 ** -14)
      assert.ok(Math.abs(y[i] - x[i]) <= Math.abs(x[i]) * 2 ** -11 + 1e-30)
  }
})
