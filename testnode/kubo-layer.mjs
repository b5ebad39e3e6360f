// Makes the js-ipfs HTTP servers answer like Kubo where ipfs-hamt, py-hamt's KuboCAS and our
// Python package depend on it. Every byte served still comes from the js-ipfs node: this layer
// only rewrites request parameters and answers some gateway requests from its blockstore.
//
// RPC API (/api/v0/...):
//   * block/put: Kubo takes the codec as `cid-codec` and defaults to raw; js-ipfs reads only
//     `format` and defaults to dag-pb, so `cid-codec` (or raw) is passed on as `format`.
//   * pin/update (missing in js-ipfs): pins the new CID, then unpins the old one.
//   * CIDs in JSON answers: Kubo prints CIDv1 in base32, js-ipfs in base58btc for most
//     commands. Unless the request names a `cid-base`, base58btc CIDv1 strings in JSON and
//     newline-delimited JSON answers are re-encoded in base32 (CIDv0 `Qm...` stay as they are).
// Gateway (/ipfs/<cid>, GET and HEAD):
//   * `Accept: application/vnd.ipld.raw` or `?format=raw`: the block's exact bytes;
//     `Accept: application/vnd.ipld.car` or `?format=car`: a CARv1 of the DAG under the CID.
//   * A plain request for any CID that is not dag-pb (raw, dag-cbor, dag-json, ...) gets the
//     block's bytes; stock js-ipfs answers 500 for dag-cbor. dag-pb (UnixFS) stays with the
//     stock gateway, which serves files with Range.
//   * Blocks answered here honour a single `Range` (206 with Content-Range, 416 when
//     unsatisfiable) and a missing block is a 404 at once (the node is offline).
import { CID } from 'multiformats/cid'
import { base32 } from 'multiformats/bases/base32'
import { Transform } from 'node:stream'

const DAG_PB = 0x70
const CODEC_TYPES = new Map([
  [0x55, 'application/octet-stream'], // raw
  [0x71, 'application/vnd.ipld.dag-cbor'],
  [0x0129, 'application/vnd.ipld.dag-json'],
  [0x51, 'application/cbor'],
  [0x0200, 'application/json']
])
// Answers that carry data, not JSON about CIDs: left alone.
const BINARY_RPC = new Set(['/api/v0/block/get', '/api/v0/cat', '/api/v0/get', '/api/v0/dag/export', '/api/v0/dag/get'])

// ------------------------------------------------------------------------------ RPC API

function rpcError (h, message) {
  return h.response({ Message: message, Code: 0, Type: 'error' }).code(500).takeover()
}

// Kubo's `pin/update?arg=FROM&arg=TO[&unpin=false]`, which js-ipfs lacks: pins TO recursively,
// then unpins FROM unless unpin=false; FROM must be pinned recursively.
async function pinUpdate (ipfs, params, h) {
  const args = params.getAll('arg')
  if (args.length !== 2) return rpcError(h, 'pin/update takes two arguments: FROM and TO')
  let from, to
  try {
    [from, to] = args.map((a) => CID.parse(a.replace(/^\/ipfs\//, '')))
  } catch (err) {
    return rpcError(h, `invalid CID: ${err.message}`)
  }
  try {
    for await (const _ of ipfs.pin.ls({ paths: [from], type: 'recursive' })) break // eslint-disable-line no-unused-vars
  } catch {
    return rpcError(h, `'from' cid was not recursively pinned already`)
  }
  try {
    await ipfs.pin.add(to, { recursive: true })
    if (params.get('unpin') !== 'false' && !from.equals(to)) await ipfs.pin.rm(from, { recursive: true })
  } catch (err) {
    return rpcError(h, err.message)
  }
  return h.response({ Pins: [from.toString(base32), to.toString(base32)] }).takeover()
}

function apiRequestHandler (ipfs) {
  return (request, h) => {
    const url = new URL(request.url.href)
    const params = url.searchParams
    request.app.kuboBase32 = !params.has('cid-base') && !BINARY_RPC.has(url.pathname)
    if (url.pathname === '/api/v0/pin/update' && request.method === 'post') return pinUpdate(ipfs, params, h)
    if (url.pathname === '/api/v0/block/put' && !params.has('format')) {
      params.set('format', params.get('cid-codec') || 'raw')
      params.delete('cid-codec')
      request.setUrl(url.pathname + url.search)
    }
    return h.continue
  }
}

// A multibase base58btc CIDv1 is 'z' + base58 text; CIDv0 is bare 'Qm...' and never matches.
const BASE58_V1 = /z[1-9A-HJ-NP-Za-km-z]{40,}/g

function toBase32Text (text) {
  return text.replace(BASE58_V1, (s) => {
    try {
      const cid = CID.parse(s)
      return cid.version === 1 ? cid.toString(base32) : s
    } catch {
      return s // base58-looking text that is not a CID
    }
  })
}

function mapStrings (value) {
  if (typeof value === 'string') return toBase32Text(value)
  if (Array.isArray(value)) return value.map(mapStrings)
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [toBase32Text(k), mapStrings(v)]))
  }
  return value
}

// Newline-delimited JSON, re-encoded line by line (a CID never spans a newline).
function ndjsonToBase32 () {
  let pending = ''
  return new Transform({
    transform (chunk, _enc, done) {
      pending += chunk.toString('utf8')
      const cut = pending.lastIndexOf('\n') + 1
      const whole = pending.slice(0, cut)
      pending = pending.slice(cut)
      done(null, whole ? toBase32Text(whole) : undefined)
    },
    flush (done) {
      done(null, pending ? toBase32Text(pending) : undefined)
    }
  })
}

function onApiResponse (request, h) {
  const res = request.response
  if (!request.app.kuboBase32 || res.isBoom) return h.continue
  const type = String(res.headers['content-type'] || '')
  if (res.variety === 'plain') {
    if (typeof res.source === 'string') {
      if (type.includes('json')) res.source = toBase32Text(res.source)
    } else if (res.source && typeof res.source === 'object' && !Buffer.isBuffer(res.source)) {
      res.source = mapStrings(res.source)
    }
    return h.continue
  }
  if (res.variety === 'stream' && type.includes('json')) {
    // hapi reads `source` when it sends the response (after this hook), so the transform
    // takes the original stream's place; a failing source fails the transform too.
    const source = res.source
    const rewritten = ndjsonToBase32()
    source.on('error', (err) => rewritten.destroy(err))
    res.source = source.pipe(rewritten)
  }
  return h.continue
}

// ------------------------------------------------------------------------------ gateway

function wants (request, mediaType, format) {
  return request.query.format === format || String(request.headers.accept || '').includes(mediaType)
}

function isNotFound (err) {
  const text = `${err?.code} ${err?.message}`
  return /ERR_NOT_FOUND|ENOENT|not found/i.test(text)
}

// One `bytes=` range of a body of `size` bytes: {start, end} (inclusive), null when
// unsatisfiable, undefined when there is no usable Range header (serve everything).
function parseRange (header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(String(header || '').trim())
  if (!m || (m[1] === '' && m[2] === '')) return undefined
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0 || size === 0) return null
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (start >= size || end < start) return null
  return { start, end }
}

function text (h, code, message) {
  return h.response(message + '\n').code(code).type('text/plain; charset=utf-8').takeover()
}

function gatewayHandler (ipfs) {
  return async (request, h) => {
    if (request.method !== 'get' && request.method !== 'head') return h.continue
    const m = /^\/ipfs\/([^/]+)\/*$/.exec(request.path)
    if (!m) return h.continue // paths inside a DAG, IPNS, other routes: stock gateway
    let cid
    try {
      cid = CID.parse(m[1])
    } catch (err) {
      return text(h, 400, `invalid CID ${m[1]}: ${err.message}`)
    }
    const raw = wants(request, 'application/vnd.ipld.raw', 'raw')
    const car = !raw && wants(request, 'application/vnd.ipld.car', 'car')
    if (!raw && !car && (cid.code === DAG_PB || !CODEC_TYPES.has(cid.code))) return h.continue

    let body
    try {
      if (car) {
        const parts = []
        for await (const part of ipfs.dag.export(cid)) parts.push(part)
        body = Buffer.concat(parts)
      } else {
        body = Buffer.from(await ipfs.block.get(cid))
      }
    } catch (err) {
      if (isNotFound(err)) return text(h, 404, `${cid}: block not found (the test node is offline)`)
      return text(h, 500, `${cid}: ${err.message}`)
    }

    const type = car ? 'application/vnd.ipld.car; version=1' : raw ? 'application/vnd.ipld.raw' : CODEC_TYPES.get(cid.code)
    const etag = `"${cid}${raw ? '.raw' : car ? '.car' : ''}"`
    if (request.headers['if-none-match'] === etag) return h.response().code(304).header('Etag', etag).takeover()

    let code = 200
    let range
    if (!car && request.headers.range) {
      range = parseRange(request.headers.range, body.length)
      if (range === null) {
        return h.response().code(416).header('Content-Range', `bytes */${body.length}`).takeover()
      }
    }
    const size = body.length
    if (range) {
      body = body.subarray(range.start, range.end + 1)
      code = 206
    }
    const response = h.response(request.method === 'head' ? undefined : body)
      .code(code)
      .type(type)
      .header('Content-Length', String(body.length))
      .header('Etag', etag)
      .header('Cache-Control', 'public, max-age=29030400, immutable')
      .header('X-Ipfs-Path', request.path)
      .header('X-Ipfs-Roots', cid.toString())
      .header('Accept-Ranges', car ? 'none' : 'bytes')
      .header('Vary', 'Accept')
    if (range) response.header('Content-Range', `bytes ${range.start}-${range.end}/${size}`)
    return response.takeover()
  }
}

export function installKuboLayer (daemon) {
  const apiServers = daemon._httpApi?._apiServers ?? []
  const gatewayServers = daemon._httpGateway?._gatewayServers ?? []
  if (apiServers.length === 0 || gatewayServers.length === 0) {
    throw new Error('kubo-layer: js-ipfs started no RPC API or no gateway server')
  }
  const onApiRequest = apiRequestHandler(daemon._ipfs)
  for (const server of apiServers) {
    server.ext('onRequest', onApiRequest)
    server.ext('onPreResponse', onApiResponse)
  }
  const handler = gatewayHandler(daemon._ipfs)
  for (const server of gatewayServers) server.ext('onRequest', handler)
}
