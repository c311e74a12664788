// Busy polling of the event loop around expert calls (docs/protocol.md#latency).
//
// An idle Node process blocks in epoll_wait; the packet that ends the wait then has to wake the
// thread, and on a VM the halted vCPU. On a VM that wake-up costs 50-300 µs per message and
// grows with how long the process slept (a raw 16 KiB TCP echo went from ~420 µs to ~110 µs with
// both ends polling; 2-vCPU AMD EPYC VM, 2026-12, docs/toolchain.md). So for a short, bounded window around a call the
// loop is kept turning with setImmediate: libuv then polls with a zero timeout, never sleeps,
// and an arriving frame is read on the next turn. I/O, timers and other callbacks run as
// usual (each turn yields to them); the cost is one core busy for the window, nothing after it.
// The same trade as ORT's spinning intra-op threads or Linux's SO_BUSY_POLL.

export interface BusyPollOptions {
  /** How long to keep polling after the last kick, µs. 0 disables polling. */
  windowUs: number
  /**
   * Stop early once no wait is open (router: once every pending call has its answer).
   * @default false: poll for the whole window (node: expecting the next request)
   */
  onlyWhileWaiting?: boolean
}

export class BusyPoll {
  private readonly windowMs: number
  private readonly onlyWhileWaiting: boolean
  private deadline = 0
  private waits = 0
  private running = false
  /** Loop turns spent polling (for tests and metrics). */
  turns = 0

  constructor(opts: BusyPollOptions) {
    if (!Number.isFinite(opts.windowUs) || opts.windowUs < 0)
      throw new RangeError(
        `busy-poll window must be a non-negative number of µs, got ${opts.windowUs}`
      )
    this.windowMs = opts.windowUs / 1000
    this.onlyWhileWaiting = opts.onlyWhileWaiting ?? false
  }

  get enabled(): boolean {
    return this.windowMs > 0
  }
  /** Whether the loop is being kept hot right now. */
  get active(): boolean {
    return this.running
  }
  /** Waits opened with begin() and not yet ended. */
  get waiting(): number {
    return this.waits
  }

  /** Keeps the loop polling for one window from now. */
  kick(): void {
    if (this.windowMs === 0) return
    this.deadline = performance.now() + this.windowMs
    if (!this.running) {
      this.running = true
      setImmediate(this.tick)
    }
  }

  /** Opens a wait (a call in flight) and kicks; call the returned function once it settles. */
  begin(): () => void {
    if (this.windowMs === 0) return noop
    this.waits++
    this.kick()
    let done = false
    return () => {
      if (!done) {
        done = true
        this.waits--
      }
    }
  }

  /** Stops polling at the next turn. */
  stop(): void {
    this.deadline = 0
  }

  private readonly tick = (): void => {
    if (performance.now() < this.deadline && (!this.onlyWhileWaiting || this.waits > 0)) {
      this.turns++
      setImmediate(this.tick)
    } else {
      this.running = false
    }
  }
}

const noop = (): void => {}

/** A BusyPoll that never polls (windowUs 0). */
export const NO_BUSY_POLL = new BusyPoll({ windowUs: 0 })
