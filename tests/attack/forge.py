"""The attack kit: forged frames of every kind (proto/WIRE.md) and hostile snapshots
(proto/SNAPSHOT.md) that carry code, for a real ZeroMQ client (Debian python3-zmq) to send
to a real node. tests/cluster/test_attack.py drives it; it can also be used by hand:

    python3 tests/attack/forge.py tcp://127.0.0.1:7400 /tmp/pwned

sends every forged frame once from a plain DEALER and says whether the file appeared.

The payload functions, if a node ever ran them, create a file (PATH); the suite checks
the file never appears. The bytecode is made by luac5.3 (Debian lua5.3) from source."""
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from harness import Bin, frame, hello_fields, mp_pack  # noqa: E402,F401

K = dict(HELLO=1, WELCOME=2, HEARTBEAT=3, GOSSIP=4, REGISTRY=5, MESSAGE=6, REPLY=7, ERROR=8,
         LEAVE=9, STATUS_REQ=10, STATUS=11, LOCK_ACQUIRE=12, LOCK_GRANT=13, LOCK_EXTEND=14,
         LOCK_RELEASE=15, CODE_MISS=16, LOCK_DENY=17, BATCH=18)
U64_MAX = (1 << 64) - 1
M64 = U64_MAX


# ---------------------------------------------------------------- MurmurHash3 x64_128

def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _fmix(k):
    k ^= k >> 33
    k = (k * 0xff51afd7ed558ccd) & M64
    k ^= k >> 33
    k = (k * 0xc4ceb9fe1a85ec53) & M64
    k ^= k >> 33
    return k


def murmur3_128(data, seed=0):
    """(h1, h2) as proto/sn_hash.c computes them."""
    c1, c2 = 0x87c37b91114253d5, 0x4cf5ad432745937f
    h1 = h2 = seed
    n = len(data) // 16
    for i in range(n):
        k1, k2 = struct.unpack_from("<QQ", data, i * 16)
        k1 = (_rotl((k1 * c1) & M64, 31) * c2) & M64
        h1 ^= k1
        h1 = (((_rotl(h1, 27) + h2) & M64) * 5 + 0x52dce729) & M64
        k2 = (_rotl((k2 * c2) & M64, 33) * c1) & M64
        h2 ^= k2
        h2 = (((_rotl(h2, 31) + h1) & M64) * 5 + 0x38495ab5) & M64
    tail = data[n * 16:]
    k1 = k2 = 0
    for i in range(len(tail) - 1, -1, -1):
        if i >= 8:
            k2 ^= tail[i] << ((i - 8) * 8)
        else:
            k1 ^= tail[i] << (i * 8)
    if len(tail) > 8:
        k2 = (_rotl((k2 * c2) & M64, 33) * c1) & M64
        h2 ^= k2
    if len(tail) > 0:
        k1 = (_rotl((k1 * c1) & M64, 31) * c2) & M64
        h1 ^= k1
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & M64
    h2 = (h2 + h1) & M64
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & M64
    h2 = (h2 + h1) & M64
    return h1, h2


# ---------------------------------------------------------------- hostile snapshots

def bytecode(source):
    """Lua 5.3 bytecode of a chunk (its main function has one upvalue, _ENV)."""
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "p.lua"), os.path.join(d, "p.luac")
        with open(src, "w") as f:
            f.write(source)
        subprocess.run(["luac5.3", "-o", out, src], check=True)
        with open(out, "rb") as f:
            return f.read()


def _ext(typ, payload, force32=False):
    n = len(payload)
    if not force32 and n in (1, 2, 4, 8, 16):
        return bytes([{1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8}[n], typ]) + payload
    return b"\xc9" + struct.pack(">I", n) + bytes([typ]) + payload


class Raw(bytes):
    """Bytes written into a snapshot as they are (an already-encoded value)."""


def _value(v):
    if isinstance(v, Raw):
        return bytes(v)
    if isinstance(v, list):
        n = len(v)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(_value(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(_value(k) + _value(x) for k, x in v.items())
    return mp_pack(v)


def lua_function(source):
    """A snapshot value: the Lua function of source's main chunk (upvalue _ENV)."""
    code = bytecode(source)
    h1, h2 = murmur3_128(code)
    head = _ext(5, b"\x00" + struct.pack(">QQ", h1, h2) + code, force32=True)
    return Raw(b"\x92" + head + _ext(6, b"\x00"))


def table_with_gc(source):
    """A snapshot value: an empty table whose metatable's __gc is source's function."""
    return Raw(b"\x93" + _ext(4, b"\x00") + b"\x80" + _value({"__gc": lua_function(source)}))


def snap(*values):
    """A snapshot of values (Raw ones written as they are)."""
    return Bin(b"\x01" + _value(list(values)))


def creates(path, tag):
    """Lua that, if it ever runs, leaves a file at path (however the sandbox is set up)."""
    return ('local p = %r\n'
            'pcall(function () local f = io.open(p, "w"); f:write(%r); f:close() end)\n'
            'pcall(function () os.execute("echo %s > " .. p) end)\n'
            'print("PWNED %s")\n' % (path, tag, tag, tag)).replace("'", '"')


def code_payloads(path):
    """Each snapshot that carries code: a function to call, a __gc table, both nested."""
    f = lua_function(creates(path, "function"))
    g = table_with_gc(creates(path, "gc"))
    return {"function": snap(f), "gc_table": snap(g), "nested": snap({"x": [g, f]}),
            "metatable_only": snap(Raw(b"\x93" + _ext(4, b"\x00") + b"\x80" + b"\x80"))}


# ---------------------------------------------------------------- frames of every kind

def addr(node="", inc=0, actor=0, stage=""):
    return {k: v for k, v in ((1, node), (2, inc), (3, actor), (4, stage)) if v}


def member(name, endpoint, inc, state=0, version=0, http=""):
    return {k: v for k, v in ((1, name), (2, endpoint), (3, http), (4, inc), (5, state),
                              (6, version)) if v or k == 1}


def _with(d, k, v):
    d = dict(d)
    d[k] = v
    return d


def batch(frames):
    """A BATCH frame (kind 18) holding frames, each a complete frame (proto/WIRE.md)."""
    return bytes([0xC1, 1, K["BATCH"]]) + mp_pack({1: [Bin(f) for f in frames]})


def forged_frames(claim, claim_inc, target, payload, stage="victim", handler="call",
                  endpoint="tcp://127.0.0.1:9", cluster="stage"):
    """{name: frame bytes}: one forged frame of every kind, claiming to come from node
    `claim` (incarnation claim_inc) and sent to node `target`, carrying payload (a snapshot)
    wherever a kind carries one."""
    src = addr(claim, claim_inc, 1, "evil")
    return {
        "HELLO": frame(K["HELLO"], hello_fields(cluster, claim, claim_inc + 1, endpoint)),
        "WELCOME": frame(K["WELCOME"], _with(hello_fields(cluster, claim, claim_inc + 1,
                                                          endpoint),
                                             9, [member(claim, endpoint, claim_inc + 1)])),
        "HEARTBEAT": frame(K["HEARTBEAT"], {1: claim, 2: claim_inc, 3: U64_MAX, 4: 1,
                                            5: U64_MAX}),
        "GOSSIP": frame(K["GOSSIP"], {1: claim, 2: claim_inc,
                                      3: [member(claim, endpoint, claim_inc + 1, 0, U64_MAX)]}),
        "REGISTRY": frame(K["REGISTRY"], {1: claim, 2: claim_inc, 3: U64_MAX,
                                          4: [{1: stage, 2: 1000}]}),
        "MESSAGE": frame(K["MESSAGE"], {1: src, 2: addr(target, 0, 0, stage), 4: handler,
                                        7: U64_MAX - 1, 8: 1, 9: payload}),
        "REPLY": frame(K["REPLY"], {1: addr(target, 0, 1), 2: src, 3: handler, 4: 1,
                                    7: U64_MAX, 8: 1, 9: payload}),
        "ERROR": frame(K["ERROR"], {1: 5, 2: "forged"}),
        "LEAVE": frame(K["LEAVE"], {1: claim, 2: claim_inc}),
        "STATUS_REQ": frame(K["STATUS_REQ"], {1: claim, 2: claim_inc, 3: 1}),
        "STATUS": frame(K["STATUS"], {1: claim, 2: claim_inc, 3: 1, 4: Bin(b"{}")}),
        # addr.node "": the grant was posted to a local actor, trusted (issue 12)
        "LOCK_ACQUIRE_EMPTY": frame(K["LOCK_ACQUIRE"], {1: "l", 2: addr("", 0, 1), 3: handler,
                                                        4: 100, 6: 1, 9: payload}),
        "LOCK_ACQUIRE": frame(K["LOCK_ACQUIRE"], {1: "l", 2: addr(claim, claim_inc, 1),
                                                  3: handler, 4: 100, 6: 2, 9: payload}),
        "LOCK_GRANT": frame(K["LOCK_GRANT"], {2: addr(target, 0, 1), 3: handler, 9: payload}),
        "LOCK_EXTEND": frame(K["LOCK_EXTEND"], {1: "l", 2: addr(claim, claim_inc, 1),
                                                4: 60000}),
        "LOCK_RELEASE": frame(K["LOCK_RELEASE"], {1: "l", 2: addr(claim, claim_inc, 1)}),
        "LOCK_DENY": frame(K["LOCK_DENY"], {1: "l", 2: addr(target, 0, 1), 6: 1, 7: 11,
                                            8: "forged"}),
        "CODE_MISS": frame(K["CODE_MISS"], {1: Bin(b"\x01" * 16), 2: 1}),
        # the data frames again, in one BATCH: each entry must pass the checks a lone frame
        # does. No sequence number (0: unsequenced), so no entry is dropped as a duplicate of
        # the lone frames above before its payload is decoded; lock ids of their own.
        "BATCH": batch([
            frame(K["MESSAGE"], {1: src, 2: addr(target, 0, 0, stage), 4: handler, 8: 1,
                                 9: payload}),
            frame(K["MESSAGE"], {1: src, 2: addr(target, 0, 0, stage), 4: handler, 6: 2,
                                 8: 1, 9: payload}),
            frame(K["REPLY"], {1: addr(target, 0, 1), 2: src, 3: handler, 4: 2, 8: 1,
                               9: payload}),
            frame(K["LOCK_ACQUIRE"], {1: "lb", 2: addr("", 0, 1), 3: handler, 4: 100, 6: 3,
                                      9: payload}),
            frame(K["LOCK_ACQUIRE"], {1: "lb", 2: addr(claim, claim_inc, 1), 3: handler,
                                      4: 100, 6: 4, 9: payload}),
            frame(K["LOCK_GRANT"], {2: addr(target, 0, 1), 3: handler, 9: payload}),
            frame(K["LOCK_EXTEND"], {1: "lb", 2: addr(claim, claim_inc, 1), 4: 60000}),
            frame(K["LOCK_RELEASE"], {1: "lb", 2: addr(claim, claim_inc, 1)}),
            frame(K["LOCK_DENY"], {1: "lb", 2: addr(target, 0, 1), 6: 4, 7: 11,
                                   8: "forged"})]),
    }


def read_keypair(path):
    """(public, secret) Z85 bytes of a `stage-node keygen` secret file."""
    fields = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                fields[k.strip()] = v.strip().encode()
    return fields["public-key"], fields["secret-key"]


def main(argv):
    import argparse
    import time
    from harness import need_zmq
    zmq = need_zmq()
    ap = argparse.ArgumentParser(description="send every forged frame to a node once")
    ap.add_argument("endpoint")
    ap.add_argument("path", help="the file the payload code would create")
    ap.add_argument("--server-key", help="the node's Z85 public key (CurveZMQ)")
    ap.add_argument("--key", help="our secret key file (stage-node keygen); default: a new key")
    ap.add_argument("--claim", default="B", help="the node the frames claim to come from")
    ap.add_argument("--inc", type=int, default=1, help="its incarnation")
    ap.add_argument("--target", default="A", help="the node the frames are sent to")
    a = ap.parse_args(argv[1:])
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 1000)
    s.setsockopt(zmq.RECONNECT_IVL, 100)
    if a.server_key:
        pub, sec = read_keypair(a.key) if a.key else zmq.curve_keypair()
        s.curve_serverkey, s.curve_publickey, s.curve_secretkey = a.server_key.encode(), pub, sec
    s.connect(a.endpoint)
    n = 0
    time.sleep(0.5)  # the handshake, if the node lets us in
    for what, p in code_payloads(a.path).items():
        for name, data in forged_frames(a.claim, a.inc, a.target, p).items():
            try:  # never block: a refused handshake leaves no peer to queue for
                s.send(data, zmq.NOBLOCK)
                n += 1
            except zmq.Again:
                pass
    time.sleep(2)
    s.close()
    ran = os.path.exists(a.path)
    print("sent %d forged frames; %s %s" % (n, a.path, "EXISTS: code ran" if ran
                                             else "does not exist"))
    return 1 if ran else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
