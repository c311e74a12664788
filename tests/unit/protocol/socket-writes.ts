// Counts write syscalls issued through net.Socket (write() when uncorked, _writev when corked):
// what the transport and stream tests assert about how many sends a message costs.
import { Socket } from 'node:net'

export function countSocketWrites(): { count: () => number; restore: () => void } {
  const proto = Socket.prototype as any // eslint-disable-line @typescript-eslint/no-explicit-any
  const write = proto._write
  const writev = proto._writev
  let n = 0
  proto._write = function (...a: unknown[]) {
    n++
    return write.apply(this, a)
  }
  proto._writev = function (...a: unknown[]) {
    n++
    return writev.apply(this, a)
  }
  return {
    count: () => n,
    restore: () => {
      proto._write = write
      proto._writev = writev
    }
  }
}
