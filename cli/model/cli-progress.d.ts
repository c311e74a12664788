// Minimal types for cli-progress 3 (the package ships none; @types/cli-progress is not installed).
declare module 'cli-progress' {
  export interface Options {
    format?: string
    hideCursor?: boolean
    clearOnComplete?: boolean
    stopOnComplete?: boolean
    stream?: NodeJS.WritableStream
    etaBuffer?: number
  }
  export class SingleBar {
    constructor(opts: Options, preset?: object)
    start(total: number, start: number, payload?: Record<string, unknown>): void
    update(value: number, payload?: Record<string, unknown>): void
    setTotal(total: number): void
    stop(): void
  }
  export const Presets: { shades_classic: object; legacy: object; rect: object }
  const _default: { SingleBar: typeof SingleBar; Presets: typeof Presets }
  export default _default
}
