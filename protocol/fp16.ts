// fp16 on the wire (IEEE 754 binary16, little-endian, round-to-nearest-even). One implementation
// for the whole project: the model's dtype conversions (model/dtype.ts), re-exported here.
export { f16ToF32, f32ToF16, f32ToF16Bits } from '../model/dtype.js'
