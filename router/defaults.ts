// Router defaults the CLI shows in its help: a module without imports, so that `pov --help`
// does not load libp2p to print them.

/** Long enough to cover a decode step's expert call (~1 ms on CPU), short enough not to burn a core through a prefill batch. */
export const DEFAULT_ROUTER_BUSY_POLL_US = 2000
