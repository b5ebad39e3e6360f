"""KuboCAS (ipfs_hamt): constructor validation as py-hamt's, client lifetime, pins, real node I/O."""

from __future__ import annotations

import os

import httpx
import pytest
from multiformats import CID

from ipfs_hamt import HAMT, KuboCAS

try:
    import py_hamt
except ImportError:  # the zarr 3.1 venv has no py-hamt
    py_hamt = None


def _client_factory():
    return httpx.AsyncClient()


INVALID = [
    dict(chunker="bad"),
    dict(chunker="size-0"),
    dict(chunker="size-"),
    dict(chunker="rabin-1-2"),
    dict(chunker="rabin-0-2-3"),
    dict(chunker="size-01"),
    dict(concurrency=0),
    dict(concurrency=-3),
    dict(max_retries=-1),
    dict(initial_delay=0),
    dict(initial_delay=-0.5),
    dict(backoff_factor=0.99),
    dict(backoff_factor=0),
    dict(client="CLIENT", client_factory=_client_factory),
    dict(client_factory=_client_factory, headers={"X-A": "1"}),
    dict(client_factory=_client_factory, auth=("u", "p")),
    dict(gateway_base_url="http://127.0.0.1:1", gateway_base_urls=["http://127.0.0.1:2"]),
    dict(gateway_base_urls=[]),
]

VALID = [
    dict(),
    dict(chunker="size-1"),
    dict(chunker="rabin"),
    dict(chunker="rabin-1-2-3"),
    dict(concurrency=1),
    dict(max_retries=0),
    dict(initial_delay=0.001),
    dict(backoff_factor=1.0),
    dict(client_factory=_client_factory),
    dict(headers={"X-A": "1"}, auth=("u", "p")),
    dict(gateway_base_urls=["http://127.0.0.1:2", "http://127.0.0.1:3/"]),
    dict(pin_on_add=True, verify_content=True, hasher="blake3"),
]


def _args(kw):
    kw = dict(kw)
    if kw.get("client") == "CLIENT":
        kw["client"] = httpx.AsyncClient()
    return kw


def _id(kw):
    return ",".join(f"{k}={v!r}" if k in ("chunker", "concurrency", "max_retries",
                                           "initial_delay", "backoff_factor") else k
                    for k, v in kw.items()) or "defaults"


@pytest.mark.parametrize("kw", INVALID, ids=_id)
def test_invalid_parameters_raise_value_error_like_py_hamt(kw):
    with pytest.raises(ValueError) as ours:
        KuboCAS(**_args(kw))
    if py_hamt is not None:
        with pytest.raises(ValueError) as theirs:
            py_hamt.KuboCAS(**_args(kw))
        assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("kw", VALID, ids=_id)
async def test_valid_parameters(kw):
    cas = KuboCAS(**kw)
    await cas.aclose()


def test_defaults_and_gateway_normalisation():
    assert KuboCAS.KUBO_DEFAULT_LOCAL_RPC_BASE_URL == "http://127.0.0.1:5001"
    assert KuboCAS.KUBO_DEFAULT_LOCAL_GATEWAY_BASE_URL == "http://127.0.0.1:8080"
    assert KuboCAS.DAG_PB_MARKER == 0x70
    cas = KuboCAS(gateway_base_urls=["http://h:8080", "http://h:8080/", "http://h:8080/ipfs",
                                     "https://g.example/ipfs/", "http://h:8080"])
    assert cas.gateway_base_urls == ["http://h:8080/ipfs/", "https://g.example/ipfs/"]
    if py_hamt is not None:
        theirs = py_hamt.KuboCAS(gateway_base_urls=["http://h:8080", "http://h:8080/",
                                                    "http://h:8080/ipfs",
                                                    "https://g.example/ipfs/", "http://h:8080"])
        assert cas.gateway_base_urls == theirs.gateway_base_urls


# ----------------------------------------------------------------------------- real node


async def test_save_load_ranges_and_codecs(kubo_cas):
    data = bytes(range(256)) * 4
    raw = await kubo_cas.save(data, "raw")
    node = await kubo_cas.save(b"\xa0", "dag-cbor")  # an empty DAG-CBOR map
    raw_c, node_c = CID.decode(str(raw)), CID.decode(str(node))
    assert raw_c.codec.name == "raw" and node_c.codec.name == "dag-cbor"
    assert raw_c.hashfun.name == "blake3" and raw_c.version == 1
    assert str(raw).startswith("bafkr4i") and str(node).startswith("bafyr4i")
    assert await kubo_cas.load(raw) == data
    assert await kubo_cas.load(node) == b"\xa0"
    assert await kubo_cas.load(raw, offset=10, length=5) == data[10:15]
    assert await kubo_cas.load(raw, offset=1000) == data[1000:]
    assert await kubo_cas.load(raw, suffix=7) == data[-7:]
    assert await kubo_cas.load(raw, offset=3, length=0) == b""
    assert await kubo_cas.load(str(raw)) == data  # a CID string works too


async def test_large_value_is_chunked_by_kubo(kubo_cas):
    big = os.urandom(3_000_000)  # > 1 MiB: stored by the node as a UnixFS dag-pb file
    hamt = await HAMT.build(cas=kubo_cas, values_are_bytes=True)
    await hamt.set("big", big)
    await hamt.set("small", b"x")
    await hamt.make_read_only()
    ro = await HAMT.build(cas=kubo_cas, root_node_id=hamt.root_node_id, read_only=True,
                          values_are_bytes=True)
    ptr = CID.decode(str(await ro.get_pointer("big")))
    assert ptr.codec.code == KuboCAS.DAG_PB_MARKER
    assert await ro.get("big") == big
    assert await ro.get("big", offset=2_000_000, length=10) == big[2_000_000:2_000_010]


async def test_aclose_and_async_with(kubo_urls):
    rpc, gateway = kubo_urls
    async with KuboCAS(rpc_base_url=rpc, gateway_base_url=gateway) as cas:
        cid = await cas.save(b"hello aclose", "raw")
        assert await cas.load(cid) == b"hello aclose"
    # Reusing an instance after close re-creates its own clients.
    assert await cas.load(cid) == b"hello aclose"
    await cas.aclose()
    await cas.aclose()  # idempotent

    # A supplied client is not closed by aclose.
    async with httpx.AsyncClient() as client:
        cas = KuboCAS(rpc_base_url=rpc, gateway_base_url=gateway, client=client)
        assert await cas.load(cid) == b"hello aclose"
        await cas.aclose()
        assert not client.is_closed


async def test_pins(kubo_cas, kubo_urls):
    rpc, _ = kubo_urls
    a = await kubo_cas.save(b"pin me " + os.urandom(8), "raw")
    b = await kubo_cas.save(b"pin me too " + os.urandom(8), "raw")

    def pinned(pins, cid):
        want = CID.decode(str(cid))
        return any(CID.decode(str(k)) == want for k in pins)

    await kubo_cas.pin_cid(a, target_rpc=rpc)
    pins = await kubo_cas.pin_ls(target_rpc=rpc)
    assert pinned(pins, a) and not pinned(pins, b)
    await kubo_cas.unpin_cid(a, target_rpc=rpc)
    pins = await kubo_cas.pin_ls(target_rpc=rpc)
    assert not pinned(pins, a)
    # pin/update moves the pin (the test node's Kubo layer provides it, as Kubo does).
    await kubo_cas.pin_cid(a, target_rpc=rpc)
    await kubo_cas.pin_update(a, b, target_rpc=rpc)
    pins = await kubo_cas.pin_ls(target_rpc=rpc)
    assert pinned(pins, b) and not pinned(pins, a)
    # Moving a pin that is not there is an error, which must raise.
    with pytest.raises(Exception):
        await kubo_cas.pin_update(a, b, target_rpc=rpc)
    await kubo_cas.unpin_cid(b, target_rpc=rpc)


class _RecordingRPC:
    """A loopback HTTP server that records RPC calls and answers like Kubo's pin endpoints."""

    def __init__(self):
        import http.server
        import json
        import threading
        from urllib.parse import parse_qs, urlsplit

        calls = self.calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                u = urlsplit(self.path)
                calls.append((u.path, parse_qs(u.query)))
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                if u.path == "/api/v0/pin/ls":
                    body = {"Keys": {"bafkqaaa": {"Type": "recursive"}}}
                else:
                    body = {"Pins": parse_qs(u.query).get("arg", [])}
                out = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self):
                calls.append(("GET", self.path))
                out = b"tampered bytes"
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("lib", ["ipfs_hamt", "py_hamt"])
async def test_pin_requests_match_py_hamt(lib):
    """pin_cid / unpin_cid / pin_update / pin_ls send Kubo's requests (checked on a recorder)."""
    if lib == "py_hamt" and py_hamt is None:
        pytest.skip("py-hamt not installed")
    Kubo = KuboCAS if lib == "ipfs_hamt" else py_hamt.KuboCAS
    rpc = _RecordingRPC()
    try:
        old = CID.decode("bafkr4ihuergbnpou6qb7bpavl555tt5m7jscuwldpa6zicl356maf2siay")
        new = CID.decode("bafkr4ieyjoi2vfd4cjlvxz2np2fsvlnx2tr3ygdvkouqx42huloy74n37i")
        async with Kubo(rpc_base_url=rpc.url, gateway_base_url=rpc.url) as cas:
            await cas.pin_cid(old, target_rpc=rpc.url)
            await cas.unpin_cid(old, target_rpc=rpc.url)
            await cas.pin_update(old, new, target_rpc=rpc.url)
            pins = await cas.pin_ls(target_rpc=rpc.url)
        # Kubo's pin/update unpins the old CID by default; an explicit unpin=true is the same.
        for path, q in rpc.calls:
            if path == "/api/v0/pin/update" and q.get("unpin") == ["true"]:
                del q["unpin"]
        assert rpc.calls == [
            ("/api/v0/pin/add", {"arg": [str(old)], "recursive": ["true"]}),
            ("/api/v0/pin/rm", {"arg": [str(old)], "recursive": ["true"]}),
            ("/api/v0/pin/update", {"arg": [str(old), str(new)]}),
            ("/api/v0/pin/ls", {}),
        ]
        assert pins == {"bafkqaaa": {"Type": "recursive"}}  # Kubo's "Keys" object, as py-hamt
    finally:
        rpc.close()


async def test_pin_hamt_root_recursively(kubo_cas, kubo_urls):
    rpc, _ = kubo_urls
    hamt = await HAMT.build(cas=kubo_cas, values_are_bytes=True)
    for i in range(20):
        await hamt.set(f"k{i}", f"v{i}".encode())
    await hamt.make_read_only()
    root = hamt.root_node_id
    await kubo_cas.pin_cid(root, target_rpc=rpc)
    pins = await kubo_cas.pin_ls(target_rpc=rpc)
    assert any(CID.decode(str(k)) == CID.decode(str(root)) for k in pins)
    await kubo_cas.unpin_cid(root, target_rpc=rpc)


async def test_pin_on_add(kubo_urls):
    rpc, gateway = kubo_urls
    async with KuboCAS(rpc_base_url=rpc, gateway_base_url=gateway, pin_on_add=True) as cas:
        cid = await cas.save(b"auto-pinned " + os.urandom(8), "raw")
        pins = await cas.pin_ls(target_rpc=rpc)
        assert any(CID.decode(str(k)) == CID.decode(str(cid)) for k in pins)
        await cas.unpin_cid(cid, target_rpc=rpc)


async def test_verify_content_reads(kubo_urls):
    rpc, gateway = kubo_urls
    async with KuboCAS(rpc_base_url=rpc, gateway_base_url=gateway, verify_content=True) as cas:
        hamt = await HAMT.build(cas=cas, values_are_bytes=False)
        await hamt.set("a", {"x": [1, 2, 3]})
        await hamt.make_read_only()
        ro = await HAMT.build(cas=cas, root_node_id=hamt.root_node_id, read_only=True)
        assert await ro.get("a") == {"x": [1, 2, 3]}


async def test_unreachable_node_fails(kubo_urls):
    async with KuboCAS(rpc_base_url="http://127.0.0.1:9", gateway_base_url="http://127.0.0.1:9",
                       max_retries=0) as cas:
        with pytest.raises(Exception):
            await cas.save(b"x", "raw")


@pytest.mark.parametrize("lib", ["ipfs_hamt", "py_hamt"])
async def test_verify_content_detects_a_lying_gateway(lib):
    """verify_content=True re-hashes gateway bodies: wrong bytes raise GatewayContentMismatch."""
    if lib == "py_hamt" and py_hamt is None:
        pytest.skip("py-hamt not installed")
    import ipfs_hamt

    mod = ipfs_hamt if lib == "ipfs_hamt" else py_hamt
    gw = _RecordingRPC()
    try:
        cid = CID.decode("bafkr4ihuergbnpou6qb7bpavl555tt5m7jscuwldpa6zicl356maf2siay")
        async with mod.KuboCAS(rpc_base_url=gw.url, gateway_base_url=gw.url,
                               verify_content=True, max_retries=0) as cas:
            with pytest.raises(mod.GatewayContentMismatch):
                await cas.load(cid)
        async with mod.KuboCAS(rpc_base_url=gw.url, gateway_base_url=gw.url,
                               max_retries=0) as cas:
            if lib == "py_hamt":
                assert await cas.load(cid) == b"tampered bytes"  # py-hamt: unverified by default
            else:
                # ipfs_hamt always verifies (README: "verify_content is always on").
                with pytest.raises(mod.GatewayContentMismatch):
                    await cas.load(cid)
        assert all(c[1].startswith(f"/ipfs/{cid}") for c in gw.calls if c[0] == "GET")
    finally:
        gw.close()
