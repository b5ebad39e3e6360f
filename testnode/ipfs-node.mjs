// The test node's process: js-ipfs (ipfs-core + its HTTP RPC API and gateway) on 127.0.0.1,
// with a fresh repo at $IPFS_PATH, libp2p never started, and the Kubo layer of kubo-layer.mjs.
// Started by start.sh, which reads $TESTNODE_READY_FILE once this process has answered its own
// first requests. Environment:
//   IPFS_PATH               repo directory (must not hold a repo yet)
//   TESTNODE_API_PORT       RPC API port on 127.0.0.1 (0: the OS picks one)
//   TESTNODE_GATEWAY_PORT   gateway port on 127.0.0.1 (0: the OS picks one)
//   TESTNODE_READY_FILE     where to write the IPFS_*=... lines when ready
//   KUBO_COMPAT             1 (default): install kubo-layer.mjs; 0: stock js-ipfs answers
import { writeFileSync, renameSync } from 'node:fs'

// Newer releases of js-ipfs's transitive dependencies call Promise.withResolvers, which Node
// has only from version 22. Define it (and CustomEvent, below) before any of them is loaded.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      const out = {}
      out.promise = new this((resolve, reject) => Object.assign(out, { resolve, reject }))
      return out
    }
  })
}

// Node 18 has Event and EventTarget but no global CustomEvent (Node >= 19), which libp2p's
// event emitters construct.
if (typeof globalThis.CustomEvent !== 'function') {
  globalThis.CustomEvent = class CustomEvent extends Event {
    constructor (type, init = {}) {
      super(type, init)
      this.detail = init.detail ?? null
    }
  }
}

const { Daemon } = await import('ipfs-daemon')
const { from: hasherFrom } = await import('multiformats/hashes/hasher')
const { blake3 } = await import('@noble/hashes/blake3')

const env = (name, fallback) => {
  const v = process.env[name]
  if (v === undefined || v === '') {
    if (fallback === undefined) throw new Error(`${name} must be set`)
    return fallback
  }
  return v
}
const repo = env('IPFS_PATH')
const apiPort = Number(env('TESTNODE_API_PORT', '0'))
const gatewayPort = Number(env('TESTNODE_GATEWAY_PORT', '0'))
const readyFile = env('TESTNODE_READY_FILE')
const kubo = env('KUBO_COMPAT', '1') !== '0'

// Kubo hashes with blake3 when asked (`hash=blake3`, `mhtype=blake3`); js-ipfs knows no blake3.
const blake3Hasher = hasherFrom({ name: 'blake3', code: 0x1e, encode: (bytes) => blake3(bytes) })

const daemon = new Daemon({
  repo,
  repoAutoMigrate: false,
  init: { emptyRepo: true, profiles: ['test'] },
  start: false, // libp2p stays off: no swarm, DHT, bitswap, mDNS or bootstrap dials
  offline: true,
  preload: { enabled: false },
  ipld: { hashers: [blake3Hasher] },
  config: {
    Addresses: {
      API: `/ip4/127.0.0.1/tcp/${apiPort}`,
      Gateway: `/ip4/127.0.0.1/tcp/${gatewayPort}`,
      RPC: '',
      Swarm: [],
      Announce: [],
      NoAnnounce: [],
      Delegates: []
    },
    Bootstrap: [],
    Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } },
    Pubsub: { Enabled: false },
    Routing: { Type: 'none' },
    Swarm: { DisableNatPortMap: true }
  }
})

await daemon.start()
if (daemon._ipfs.isOnline()) throw new Error('libp2p started although start: false was given')
if (kubo) {
  const { installKuboLayer } = await import('./kubo-layer.mjs')
  installKuboLayer(daemon)
}

// Bound ports (port 0 lets the OS choose): hapi reports them once listening.
const portOf = (servers, what) => {
  const s = servers ?? []
  if (s.length !== 1) throw new Error(`expected one ${what} server, found ${s.length}`)
  return s[0].info.port
}
const rpcUrl = `http://127.0.0.1:${portOf(daemon._httpApi?._apiServers, 'RPC API')}`
const gatewayUrl = `http://127.0.0.1:${portOf(daemon._httpGateway?._gatewayServers, 'gateway')}`

// Answer our own first requests before saying we are ready: the RPC API's version, and the
// gateway for the empty identity CID.
const version = await fetch(`${rpcUrl}/api/v0/version`, { method: 'POST' })
if (!version.ok) throw new Error(`${rpcUrl}/api/v0/version answered ${version.status}`)
const empty = await fetch(`${gatewayUrl}/ipfs/bafkqaaa`)
if (!empty.ok) throw new Error(`${gatewayUrl}/ipfs/bafkqaaa answered ${empty.status}`)
const { Version } = await version.json()

const lines = [
  `IPFS_RPC_URL=${rpcUrl}`,
  `IPFS_GATEWAY_URL=${gatewayUrl}`,
  `IPFS_PID=${process.pid}`,
  `IPFS_PATH=${repo}`
]
writeFileSync(`${readyFile}.tmp`, lines.join('\n') + '\n')
renameSync(`${readyFile}.tmp`, readyFile)
console.log(`js-ipfs (ipfs-core ${Version}) ready: RPC ${rpcUrl}, gateway ${gatewayUrl}, kubo layer ${kubo ? 'on' : 'off'}`)

let stopping = false
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    if (stopping) return
    stopping = true
    console.log(`${signal}: stopping`)
    try {
      await daemon.stop()
    } catch (err) {
      console.error('stop failed:', err)
    }
    process.exit(0)
  })
}
