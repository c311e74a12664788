// A minimal ONNX graph builder for the dense graphs (opset 18). Private to model/dense: the
// compute-core builders in model/onnx/ serve the experts; these graphs only need a handful of ops.
import onnxProto from 'onnx-proto'

const { onnx } = onnxProto

export const OPSET = 18

/** ONNX TensorProto.DataType values used here. */
export const DT = { FLOAT: 1, INT64: 7, FLOAT16: 10, BFLOAT16: 16 } as const
export type DataType = (typeof DT)[keyof typeof DT]

/** Integral numbers encode as INT, others as FLOAT (no FLOAT attribute with an integral value is needed here). */
type Attr = number | number[] | string | { tensor: onnxProto.onnx.ITensorProto }

/** A symbolic dimension (string) or a fixed one (number). */
export type Dim = number | string

export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = []
  private readonly inits: onnxProto.onnx.ITensorProto[] = []
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = []
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = []
  private counter = 0

  constructor(readonly name: string) {}

  private fresh(hint: string): string {
    return `${hint}_${this.counter++}`
  }

  input(name: string, type: DataType, shape: Dim[]): string {
    this.inputs.push(valueInfo(name, type, shape))
    return name
  }

  output(name: string, type: DataType, shape: Dim[]): void {
    this.outputs.push(valueInfo(name, type, shape))
  }

  /** An initializer from raw little-endian bytes of the given type. */
  initializer(name: string, type: DataType, dims: number[], raw: Uint8Array): string {
    this.inits.push({ name, dataType: type, dims, rawData: raw })
    return name
  }

  constFloat(values: number[], dims: number[] = [values.length], hint = 'cf'): string {
    const name = this.fresh(hint)
    this.inits.push({ name, dataType: DT.FLOAT, dims, floatData: values })
    return name
  }

  constInt64(values: number[], dims: number[] = [values.length], hint = 'ci'): string {
    const name = this.fresh(hint)
    this.inits.push({ name, dataType: DT.INT64, dims, int64Data: values })
    return name
  }

  /** Adds a node; returns its output names (`nOut` fresh ones unless `outs` names them). */
  op(
    opType: string,
    inputs: string[],
    attrs: Record<string, Attr> = {},
    outs: string[] | number = 1
  ): string[] {
    const outputs =
      typeof outs === 'number'
        ? Array.from({ length: outs }, () => this.fresh(opType.toLowerCase()))
        : outs
    const attribute: onnxProto.onnx.IAttributeProto[] = Object.entries(attrs).map(([k, v]) =>
      attribute_(k, v)
    )
    this.nodes.push({
      opType,
      input: inputs,
      output: outputs,
      name: this.fresh(`n_${opType}`),
      attribute
    })
    return outputs
  }

  /** Single-output convenience. */
  o(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, out?: string): string {
    return this.op(opType, inputs, attrs, out != null ? [out] : 1)[0]
  }

  encode(): Uint8Array {
    const model: onnxProto.onnx.IModelProto = {
      irVersion: 8,
      producerName: 'pov',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.inits,
        input: this.inputs,
        output: this.outputs
      }
    }
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish()
  }
}

function valueInfo(name: string, elemType: DataType, shape: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }))
        }
      }
    }
  }
}

function attribute_(name: string, v: Attr): onnxProto.onnx.IAttributeProto {
  const AT = onnx.AttributeProto.AttributeType
  if (typeof v === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(v) }
  if (Array.isArray(v)) return { name, type: AT.INTS, ints: v }
  if (typeof v === 'number') {
    return Number.isInteger(v) ? { name, type: AT.INT, i: v } : { name, type: AT.FLOAT, f: v }
  }
  return { name, type: AT.TENSOR, t: v.tensor }
}
