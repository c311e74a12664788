// The ONNX graph builder over onnx-proto (protobufjs), for the expert graphs (model/onnx) and the
// router's dense graphs (model/dense, which asks for opset 18).
//
//   const g = new GraphBuilder('expert')
//   const x = g.input('x', DT.FLOAT, ['rows', 1024])
//   const w = g.externalInitializer('w1', DT.BFLOAT16, [3584, 1024], { location: 'weights/a.safetensors', offset, length })
//   const [h] = g.node('Gemm', [x, g.cast(w, DT.FLOAT)], { transB: 1 })
//   g.output(h, DT.FLOAT, ['rows', 3584], 'y')
//   const bytes = g.toModel()            // Uint8Array (.onnx)
//
// Node and value names are made unique by the builder (ORT rejects duplicate node names).
import onnxProto from 'onnx-proto'

const { onnx } = onnxProto
export { onnx }

/** ONNX tensor element types. */
export const DT = onnx.TensorProto.DataType
export type DataType = onnxProto.onnx.TensorProto.DataType

/** Default opset of the ai.onnx domain: 17 has everything we use (LayerNormalization, bf16 Cast). */
export const DEFAULT_OPSET = 17
/** IR version 8 pairs with opset 17 (ORT 1.30 reads up to IR 11). */
export const IR_VERSION = 8
export const MS_DOMAIN = 'com.microsoft'

export type Dim = number | string

/** A float attribute (JS numbers that are integers would otherwise become INT attributes). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export class FloatsAttr {
  constructor(readonly value: number[]) {}
}
export const float = (v: number): FloatAttr => new FloatAttr(v)
export const floats = (v: number[]): FloatsAttr => new FloatsAttr(v)
/** Integer attributes: plain numbers / number[]; strings; floats via float()/floats(); tensors. */
export type AttrValue =
  number | bigint | string | number[] | FloatAttr | FloatsAttr | onnxProto.onnx.ITensorProto

export interface ExternalRef {
  /** Path relative to the .onnx file's directory, inside it (ORT rejects '..' and absolute). */
  location: string
  offset: number
  length: number
}

export const ELEMENT_SIZE: Partial<Record<DataType, number>> = {
  [DT.FLOAT]: 4,
  [DT.FLOAT16]: 2,
  [DT.BFLOAT16]: 2,
  [DT.INT8]: 1,
  [DT.UINT8]: 1,
  [DT.INT32]: 4,
  [DT.INT64]: 8,
  [DT.DOUBLE]: 8,
  [DT.BOOL]: 1
}

/** The ONNX element type of each safetensors dtype a checkpoint may store weights in. */
export const ONNX_TYPE_OF = {
  F32: DT.FLOAT,
  F16: DT.FLOAT16,
  BF16: DT.BFLOAT16
} as const satisfies Record<'F32' | 'F16' | 'BF16', DataType>

type TypedArray =
  Float32Array | Float64Array | Int32Array | BigInt64Array | Int8Array | Uint8Array | Uint16Array

function bytesOf(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType
  if (v instanceof FloatAttr) return { name, type: T.FLOAT, f: v.value }
  if (v instanceof FloatsAttr) return { name, type: T.FLOATS, floats: v.value }
  if (typeof v === 'string') return { name, type: T.STRING, s: Buffer.from(v, 'utf8') }
  if (typeof v === 'bigint') return { name, type: T.INT, i: Number(v) }
  if (typeof v === 'number')
    return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v }
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v }
  return { name, type: T.TENSOR, t: v }
}

export class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = []
  readonly initializers: onnxProto.onnx.ITensorProto[] = []
  readonly inputs: onnxProto.onnx.IValueInfoProto[] = []
  readonly outputs: onnxProto.onnx.IValueInfoProto[] = []
  private readonly used = new Set<string>()
  private readonly opsetImports = new Map<string, number>([['', DEFAULT_OPSET]])

  constructor(
    readonly name = 'graph',
    opts: { opset?: number } = {}
  ) {
    if (opts.opset != null) this.opsetImports.set('', opts.opset)
  }

  /** A fresh value/node name based on `base`. */
  unique(base: string): string {
    let n = base
    for (let i = 1; this.used.has(n); i++) n = `${base}_${i}`
    this.used.add(n)
    return n
  }

  private claim(name: string): string {
    if (this.used.has(name))
      throw new Error(`ONNX graph "${this.name}": name "${name}" is already used`)
    this.used.add(name)
    return name
  }

  /** Declares a domain import (e.g. com.microsoft v1 for MatMulNBits). */
  useDomain(domain: string, version = 1): void {
    this.opsetImports.set(domain, version)
  }

  input(name: string, elemType: DataType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), elemType, dims))
    return name
  }

  /** Marks `value` as a graph output; with `name`, adds an Identity so the output gets that name. */
  output(value: string, elemType: DataType, dims?: Dim[], name?: string): string {
    let v = value
    if (name != null && name !== value)
      v = this.node('Identity', [value], {}, { outputs: [name] })[0]
    this.outputs.push(valueInfo(v, elemType, dims))
    return v
  }

  /** Initializer with inline data (raw bytes in the .onnx). */
  initializer(name: string, elemType: DataType, dims: number[], data: TypedArray): string {
    return this.addInitializer(this.claim(name), elemType, dims, data)
  }

  /** `name` already claimed or made unique. */
  private addInitializer(
    name: string,
    elemType: DataType,
    dims: number[],
    data: TypedArray
  ): string {
    const numel = dims.reduce((a, b) => a * b, 1)
    const size = ELEMENT_SIZE[elemType]
    if (
      size != null &&
      data.byteLength !== numel * size &&
      !(elemType === DT.UINT8 || elemType === DT.INT8)
    ) {
      throw new Error(
        `initializer "${name}": ${data.byteLength} bytes for ${numel} elements of type ${DT[elemType]}`
      )
    }
    this.initializers.push({ name, dataType: elemType, dims, rawData: bytesOf(data) })
    return name
  }

  /** Scalar/1-D constants are common enough to deserve shortcuts. */
  constFloat(
    name: string,
    values: number[] | Float32Array,
    dims: number[] = [values.length]
  ): string {
    return this.addInitializer(this.unique(name), DT.FLOAT, dims, Float32Array.from(values))
  }

  constInt64(name: string, values: number[], dims: number[] = [values.length]): string {
    return this.addInitializer(
      this.unique(name),
      DT.INT64,
      dims,
      BigInt64Array.from(values.map((v) => BigInt(v)))
    )
  }

  /** Initializer whose bytes live in another file (ONNX external data; zero copy). */
  externalInitializer(name: string, elemType: DataType, dims: number[], ref: ExternalRef): string {
    const n = this.claim(name)
    if (ref.location.startsWith('/') || ref.location.split(/[\\/]/).includes('..')) {
      throw new Error(
        `initializer "${name}": external data location "${ref.location}" must be relative and inside the model's directory`
      )
    }
    const size = ELEMENT_SIZE[elemType]
    const numel = dims.reduce((a, b) => a * b, 1)
    if (size != null && ref.length !== numel * size)
      throw new Error(`initializer "${name}": external length ${ref.length} != ${numel} × ${size}`)
    this.initializers.push({
      name: n,
      dataType: elemType,
      dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: ref.location },
        { key: 'offset', value: String(ref.offset) },
        { key: 'length', value: String(ref.length) }
      ]
    })
    return n
  }

  /**
   * Adds a node; returns its output names. `opts.outputs` names them (else unique names from
   * `opts.name ?? opType`), or `opts.numOutputs` asks for several.
   */
  node(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue | undefined> = {},
    opts: { name?: string; outputs?: string[]; numOutputs?: number; domain?: string } = {}
  ): string[] {
    const base = opts.name ?? opType.toLowerCase()
    const name = this.unique(`${base}_node`)
    const outputs =
      opts.outputs?.map((o) => this.claim(o)) ??
      Array.from({ length: opts.numOutputs ?? 1 }, (_, i) =>
        this.unique(opts.numOutputs != null && opts.numOutputs > 1 ? `${base}_${i}` : base)
      )
    if (opts.domain != null && opts.domain !== '' && !this.opsetImports.has(opts.domain))
      this.useDomain(opts.domain, 1)
    this.nodes.push({
      name,
      opType,
      domain: opts.domain ?? '',
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => attribute(k, v as AttrValue))
    })
    return outputs
  }

  /** One-output node shortcut. */
  op(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue | undefined> = {},
    opts: { name?: string; output?: string; domain?: string } = {}
  ): string {
    return this.node(opType, inputs, attrs, {
      name: opts.name,
      domain: opts.domain,
      outputs: opts.output != null ? [opts.output] : undefined
    })[0]
  }

  cast(x: string, to: DataType, name?: string): string {
    return this.op('Cast', [x], { to }, { name: name ?? `${x}_cast` })
  }
  matmul(a: string, b: string, name?: string): string {
    return this.op('MatMul', [a, b], {}, { name })
  }
  /** a @ b^T when transB (b stored [N, K] as in PyTorch Linear weights). */
  gemm(
    a: string,
    b: string,
    opts: { transB?: boolean; bias?: string; name?: string } = {}
  ): string {
    return this.op(
      'Gemm',
      opts.bias != null ? [a, b, opts.bias] : [a, b],
      { transB: opts.transB === true ? 1 : undefined },
      { name: opts.name }
    )
  }

  add(a: string, b: string, name?: string): string {
    return this.op('Add', [a, b], {}, { name })
  }
  mul(a: string, b: string, name?: string): string {
    return this.op('Mul', [a, b], {}, { name })
  }
  sigmoid(a: string, name?: string): string {
    return this.op('Sigmoid', [a], {}, { name })
  }
  /** silu(a) = a * sigmoid(a) (ORT fuses it into QuickGelu-like kernels under 'all'). */
  silu(a: string, name = 'silu'): string {
    return this.mul(a, this.sigmoid(a, `${name}_sigmoid`), name)
  }

  /** Serialised ModelProto. */
  toModel(
    opts: {
      producer?: string
      docString?: string
      metadata?: Record<string, string>
      /** IR 10 for opset 21's 4-bit types (default IR_VERSION). */
      irVersion?: number
    } = {}
  ): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: opts.irVersion ?? IR_VERSION,
      producerName: opts.producer ?? 'pov',
      producerVersion: '1',
      docString: opts.docString,
      opsetImport: [...this.opsetImports].map(([domain, version]) => ({ domain, version })),
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs
      }
    })
    return onnx.ModelProto.encode(model).finish()
  }
}

export function valueInfo(
  name: string,
  elemType: DataType,
  dims?: Dim[]
): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape:
          dims == null
            ? undefined
            : { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) }
      }
    }
  }
}
