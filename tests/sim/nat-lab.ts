// Real NATs on this machine (issue #23): Linux network namespaces joined by veth pairs, home
// routers that masquerade with nftables, one of them a symmetric NAT, and a UPnP IGD / NAT-PMP
// server (miniupnpd, Debian's) on the routers that offer port mapping. Needs root, `ip`, `nft`
// and, for mapping, `miniupnpd`; NatLab.check() says why when the machine cannot.
//
//   root namespace (the client, the chain)  11.R.0.1 ─┐
//   <p>rl: the relay                         11.R.0.2 ─┤ bridge in <p>p: the public internet
//   <p>g0 … : home routers' WAN sides        11.R.0.1x ─┘
//   <p>h0 … : one home per router, 192.168.(i+1).2 behind 192.168.(i+1).1
//
// The public range is 11.R.0.0/24 (R random): libp2p treats the RFC 5737/6598 test ranges as
// private and never tries to hole-punch or map them. It exists only inside these namespaces and
// on one veth of the root namespace, removed by close(). Every name starts with `povnat` and a
// random suffix, so parallel runs never meet.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'

const run = promisify(execFile)

export type NatKind = 'cone' | 'symmetric'

export interface HomeSpec {
  /** cone: masquerade keeping ports (endpoint-independent); symmetric: a random port per connection. */
  nat: NatKind
  /** The router answers UPnP IGD and NAT-PMP (miniupnpd). */
  upnp: boolean
}

export interface Home extends HomeSpec {
  index: number
  /** Namespace the operator node runs in. */
  ns: string
  /** The router's namespace. */
  routerNs: string
  /** The router's public address. */
  wanIp: string
  /** The node's address on the home LAN. */
  lanIp: string
}

export class NatLab {
  readonly prefix = 'povnat' + randomBytes(2).toString('hex')
  private readonly r = 1 + (randomBytes(1)[0] % 250)
  readonly pubNs = this.prefix + 'p'
  readonly relayNs = this.prefix + 'rl'
  readonly homes: Home[] = []
  private readonly namespaces: string[] = []
  private readonly rootVeth = this.prefix + 'r0'
  private readonly daemons: ChildProcess[] = []
  private dir = ''
  private closed = false

  /** Why this machine cannot build the lab, or null when it can. */
  static async check(opts: { upnp: boolean }): Promise<string | null> {
    if (process.platform !== 'linux') return 'network namespaces need Linux'
    if (process.getuid?.() !== 0) return 'creating network namespaces needs root'
    for (const [bin, pkg] of [
      ['ip', 'iproute2'],
      ['nft', 'nftables'],
      ...(opts.upnp ? [['miniupnpd', 'miniupnpd']] : [])
    ]) {
      try {
        await run('sh', ['-c', `command -v ${bin}`])
      } catch {
        return `\`${bin}\` is missing (Debian: apt-get install ${pkg})`
      }
    }
    const probe = 'povnat' + randomBytes(2).toString('hex') + 'x'
    try {
      await run('ip', ['netns', 'add', probe])
      await run('ip', ['netns', 'del', probe])
    } catch (err) {
      return `cannot create a network namespace: ${(err as Error).message.split('\n')[0]}`
    }
    return null
  }

  /** The public address of the root namespace (the client, the chain). */
  get clientIp(): string {
    return `11.${this.r}.0.1`
  }

  get relayIp(): string {
    return `11.${this.r}.0.2`
  }

  static async create(homes: HomeSpec[]): Promise<NatLab> {
    const lab = new NatLab()
    try {
      await lab.build(homes)
    } catch (err) {
      await lab.close()
      throw err
    }
    return lab
  }

  private async build(homes: HomeSpec[]): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), this.prefix + '-'))
    const p = this.prefix
    const net = `11.${this.r}.0`
    await this.addNs(this.pubNs)
    await this.sh(
      `ip -n ${this.pubNs} link add ${p}br type bridge && ip -n ${this.pubNs} link set ${p}br up`
    )
    // root namespace ↔ public segment
    await this.sh(
      `ip link add ${this.rootVeth} type veth peer name ${p}r1 netns ${this.pubNs} && ` +
        `ip -n ${this.pubNs} link set ${p}r1 master ${p}br up && ` +
        `ip addr add ${net}.1/24 dev ${this.rootVeth} && ip link set ${this.rootVeth} up`
    )
    // the relay's own namespace on the public segment
    await this.addNs(this.relayNs)
    await this.sh(
      `ip -n ${this.relayNs} link add ${p}l0 type veth peer name ${p}l1 netns ${this.pubNs} && ` +
        `ip -n ${this.pubNs} link set ${p}l1 master ${p}br up && ` +
        `ip -n ${this.relayNs} addr add ${net}.2/24 dev ${p}l0 && ip -n ${this.relayNs} link set ${p}l0 up`
    )
    for (const [i, spec] of homes.entries()) await this.addHome(i, spec)
  }

  private async addHome(i: number, spec: HomeSpec): Promise<void> {
    const p = this.prefix
    const g = `${p}g${i}`
    const h = `${p}h${i}`
    const wanIp = `11.${this.r}.0.${10 + i}`
    const lan = `192.168.${i + 1}`
    const wan = `${p}w${i}a`
    const lanIf = `${p}n${i}a`
    await this.addNs(g)
    await this.addNs(h)
    await this.sh(
      `ip -n ${g} link add ${wan} type veth peer name ${p}w${i}b netns ${this.pubNs} && ` +
        `ip -n ${this.pubNs} link set ${p}w${i}b master ${p}br up && ` +
        `ip -n ${g} addr add ${wanIp}/24 dev ${wan} && ip -n ${g} link set ${wan} up && ` +
        `ip -n ${g} link add ${lanIf} type veth peer name ${p}n${i}b netns ${h} && ` +
        `ip -n ${g} addr add ${lan}.1/24 dev ${lanIf} && ip -n ${g} link set ${lanIf} up && ` +
        `ip -n ${h} addr add ${lan}.2/24 dev ${p}n${i}b && ip -n ${h} link set ${p}n${i}b up && ` +
        `ip -n ${h} route add default via ${lan}.1 && ` +
        `ip netns exec ${g} sysctl -qw net.ipv4.ip_forward=1`
    )
    // cone: masquerade keeps the source port when it can, so a mapping does not depend on the
    // destination; symmetric: fully-random picks a new port per connection.
    const masq = spec.nat === 'symmetric' ? 'masquerade fully-random' : 'masquerade'
    // the forward chain is a home router's firewall: replies and what the LAN starts pass, and,
    // from the internet, only what a port mapping forwards (ct status dnat)
    const rules = `
table inet filter {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "${lanIf}" accept
    ct status dnat accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
}
table inet nat {
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "${wan}" ${masq}
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
`
    const file = join(this.dir, `${g}.nft`)
    await writeFile(file, rules)
    await this.sh(`ip netns exec ${g} nft -f ${file}`)
    if (spec.upnp) await this.startMiniupnpd(g, wan, lanIf, `${lan}.1`)
    this.homes.push({ ...spec, index: i, ns: h, routerNs: g, wanIp, lanIp: `${lan}.2` })
  }

  private async startMiniupnpd(
    ns: string,
    wan: string,
    lanIf: string,
    lanIp: string
  ): Promise<void> {
    const conf = join(this.dir, `${ns}-miniupnpd.conf`)
    await writeFile(
      conf,
      [
        `ext_ifname=${wan}`,
        `listening_ip=${lanIf}`,
        'http_port=0',
        'enable_natpmp=yes',
        'enable_upnp=yes',
        'secure_mode=yes',
        'system_uptime=yes',
        'upnp_table_name=filter',
        'upnp_nat_table_name=nat',
        `uuid=${randomUuid()}`,
        `allow 1024-65535 ${lanIp.replace(/\.1$/, '.0')}/24 1024-65535`,
        'deny 0-65535 0.0.0.0/0 0-65535',
        ''
      ].join('\n')
    )
    const child = spawn(
      'ip',
      ['netns', 'exec', ns, 'miniupnpd', '-d', '-f', conf, '-P', join(this.dir, `${ns}.pid`)],
      { stdio: ['ignore', 'ignore', 'pipe'] }
    )
    let err = ''
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString()
    })
    this.daemons.push(child)
    // ready when it listens for SSDP (or gone with a reason)
    const t0 = Date.now()
    for (;;) {
      if (child.exitCode != null) throw new Error(`miniupnpd in ${ns} exited: ${err.trim()}`)
      const { stdout } = await run('ip', ['netns', 'exec', ns, 'ss', '-uln'])
      if (stdout.includes(':1900')) return
      if (Date.now() - t0 > 10_000)
        throw new Error(`miniupnpd in ${ns} not listening: ${err.trim()}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  /** Namespaced command line: `ip netns exec <ns> <cmd…>`. */
  exec(ns: string, cmd: string[]): string[] {
    return ['ip', 'netns', 'exec', ns, ...cmd]
  }

  private async addNs(ns: string): Promise<void> {
    await run('ip', ['netns', 'add', ns])
    this.namespaces.push(ns)
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  }

  private async sh(cmd: string): Promise<void> {
    await run('sh', ['-ec', cmd])
  }

  /** Stops the daemons, deletes every namespace (their veths go with them) and the root veth. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const d of this.daemons) if (d.exitCode == null) d.kill('SIGTERM')
    await run('ip', ['link', 'del', this.rootVeth]).catch(() => {})
    for (const ns of this.namespaces.reverse())
      await run('ip', ['netns', 'del', ns]).catch(() => {})
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true })
  }

  /** Synchronous last resort for process 'exit' handlers. */
  closeSync(): void {
    if (this.closed) return
    for (const d of this.daemons) d.kill('SIGKILL')
    try {
      execFileSync('ip', ['link', 'del', this.rootVeth], { stdio: 'ignore' })
    } catch {}
    for (const ns of this.namespaces)
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
      } catch {}
  }
}

function randomUuid(): string {
  const b = randomBytes(16).toString('hex')
  return `${b.slice(0, 8)}-${b.slice(8, 12)}-${b.slice(12, 16)}-${b.slice(16, 20)}-${b.slice(20)}`
}
