#!/usr/bin/env python3
"""Write the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/): a few small valid inputs each."""
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuse: records of (control byte, fuse_in_header + arguments) ----------------------------
OP = dict(LOOKUP=1, FORGET=2, GETATTR=3, SETATTR=4, READLINK=5, SYMLINK=6, MKNOD=8, MKDIR=9,
          UNLINK=10, RMDIR=11, RENAME=12, LINK=13, OPEN=14, READ=15, WRITE=16, STATFS=17,
          RELEASE=18, FSYNC=20, SETXATTR=21, GETXATTR=22, LISTXATTR=23, REMOVEXATTR=24,
          FLUSH=25, INIT=26, OPENDIR=27, READDIR=28, RELEASEDIR=29, FSYNCDIR=30, GETLK=31,
          SETLK=32, SETLKW=33, ACCESS=34, CREATE=35, INTERRUPT=36, DESTROY=38,
          BATCH_FORGET=42, FALLOCATE=43, READDIRPLUS=44, RENAME2=45, LSEEK=46,
          COPY_FILE_RANGE=47, SYNCFS=50)
CTL = 0x1c  # one request iovec, the largest reply buffer, one reply iovec
ROOT_ID = 1
VF = 1 << 62  # the first virtual file's node id (and handle)


class Fuse:
    def __init__(self):
        self.out = b""
        self.unique = 0

    def req(self, op, nodeid=0, args=b"", ctl=CTL):
        self.unique += 1
        hdr = struct.pack("<IIQQIIIHH", 40 + len(args), OP[op], self.unique, nodeid, 0, 0, 1, 0, 0)
        self.out += bytes([ctl]) + hdr + args
        return self

    def init(self, ctl=CTL):
        flags = 0x1 | 0x2 | 0x8 | 0x10 | 0x400 | 0x2000 | 0x4000 | 0x40000 | 0x400000
        return self.req("INIT", 0, struct.pack("<IIII", 7, 38, 65536, flags) + bytes(48), ctl)


def z(s):
    return s.encode() + b"\0"


def read_in(fh, off, size):
    return struct.pack("<QQIIQII", fh, off, size, 0, 0, 0, 0)


def many_files():
    """Enough new files and handles to run out of descriptors (the target sets RLIMIT_NOFILE 100)."""
    f = Fuse().init()
    for i in range(50):
        f.req("CREATE", ROOT_ID, struct.pack("<IIII", os.O_RDWR, 0o100600, 0, 0) + z("f%d" % i))
    return f.req("LOOKUP", ROOT_ID, z("a")).req("OPENDIR", ROOT_ID, struct.pack("<II", 0, 0))


def fuse_seeds():
    # The server is fresh each run: the first new node id is 2, the first handle 1.
    seeds = {
        "lookup_open_read": Fuse().init().req("LOOKUP", ROOT_ID, z("a"))
        .req("OPEN", 2, struct.pack("<II", os.O_RDONLY, 0)).req("READ", 2, read_in(1, 0, 4096))
        .req("RELEASE", 2, struct.pack("<QIIQ", 1, 0, 0, 0)).req("FORGET", 2, struct.pack("<Q", 1)),
        "create_write_read": Fuse().init()
        .req("CREATE", ROOT_ID, struct.pack("<IIII", os.O_RDWR, 0o100644, 0o22, 0) + z("n"))
        .req("WRITE", 2, struct.pack("<QQIIQII", 1, 0, 5, 0, 0, 0, 0) + b"hello")
        .req("READ", 2, read_in(1, 0, 16))
        .req("SETATTR", 2, struct.pack("<IIQQQQQQIIIIIIII", 8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        .req("LSEEK", 2, struct.pack("<QQII", 1, 0, 3, 0))
        .req("FLUSH", 2, struct.pack("<QIIQ", 1, 0, 0, 7)),
        "dir_ops": Fuse().init().req("MKDIR", ROOT_ID, struct.pack("<II", 0o755, 0) + z("m"))
        .req("OPENDIR", ROOT_ID, struct.pack("<II", 0, 0)).req("READDIRPLUS", ROOT_ID, read_in(1, 0, 4096))
        .req("READDIR", ROOT_ID, read_in(1, 0, 4096))
        .req("RELEASEDIR", ROOT_ID, struct.pack("<QIIQ", 1, 0, 0, 0)).req("RMDIR", ROOT_ID, z("m")),
        "links": Fuse().init().req("SYMLINK", ROOT_ID, z("s") + z("../canary"))
        .req("READLINK", 2).req("LOOKUP", ROOT_ID, z("up")).req("LOOKUP", ROOT_ID, z("a"))
        .req("LINK", ROOT_ID, struct.pack("<Q", 4) + z("hard"))
        .req("RENAME", ROOT_ID, struct.pack("<Q", ROOT_ID) + z("hard") + z("moved"))
        .req("RENAME2", ROOT_ID, struct.pack("<QII", ROOT_ID, 2, 0) + z("a") + z("b"))
        .req("UNLINK", ROOT_ID, z("moved")).req("LOOKUP", ROOT_ID, z("..")),
        "xattr_lock": Fuse().init().req("LOOKUP", ROOT_ID, z("a"))
        .req("SETXATTR", 2, struct.pack("<II", 3, 0) + z("user.k") + b"val")
        .req("GETXATTR", 2, struct.pack("<II", 64, 0) + z("user.k"))
        .req("LISTXATTR", 2, struct.pack("<II", 64, 0)).req("REMOVEXATTR", 2, z("user.k"))
        .req("OPEN", 2, struct.pack("<II", os.O_RDWR, 0))
        .req("SETLK", 2, struct.pack("<QQQQIIII", 1, 9, 0, 10, 1, 1, 0, 0))
        .req("GETLK", 2, struct.pack("<QQQQIIII", 1, 8, 0, 10, 1, 1, 0, 0))
        .req("SETLK", 2, struct.pack("<QQQQIIII", 1, 9, 0, 10, 2, 1, 1, 0)),
        "misc": Fuse().init().req("GETATTR", ROOT_ID, struct.pack("<IIQ", 0, 0, 0)).req("STATFS", ROOT_ID)
        .req("ACCESS", ROOT_ID, struct.pack("<II", 4, 0))
        .req("MKNOD", ROOT_ID, struct.pack("<IIII", 0o10644, 0, 0, 0) + z("fifo"))
        .req("LOOKUP", ROOT_ID, z("d")).req("LOOKUP", 3, z("f"))
        .req("BATCH_FORGET", 0, struct.pack("<IIQQQQ", 2, 0, 3, 1, 4, 1))
        .req("OPEN", ROOT_ID, struct.pack("<II", 0, 0))
        .req("COPY_FILE_RANGE", 2, struct.pack("<QQQQQQQ", 1, 0, 2, 1, 4, 8, 0))
        .req("FSYNC", 2, struct.pack("<QII", 1, 0, 0)).req("SYNCFS", ROOT_ID, struct.pack("<Q", 0))
        .req("INTERRUPT", 0, struct.pack("<Q", 5)).req("DESTROY"),
        "split_iovecs": Fuse().init().req("LOOKUP", ROOT_ID, z("a"), ctl=0x7f)
        .req("OPEN", 2, struct.pack("<II", os.O_RDWR, 0), ctl=0x3e)
        .req("WRITE", 2, struct.pack("<QQIIQII", 1, 3, 4, 0, 0, 0, 0) + b"XYZW", ctl=0x5b)
        .req("READ", 2, read_in(1, 0, 100), ctl=0x75),
        "virtual_files": Fuse().init().req("LOOKUP", ROOT_ID, z("vf_data")).req("GETATTR", VF, struct.pack("<IIQ", 0, 0, 0))
        .req("OPEN", VF, struct.pack("<II", os.O_RDONLY, 0)).req("READ", VF, read_in(VF, 4, 100))
        .req("LOOKUP", ROOT_ID, z("vf_sink")).req("OPEN", VF + 1, struct.pack("<II", os.O_WRONLY, 0))
        .req("WRITE", VF + 1, struct.pack("<QQIIQII", VF + 1, 0, 6, 0, 0, 0, 0) + b"exit=0")
        .req("SETATTR", VF + 1, struct.pack("<IIQQQQQQIIIIIIII", 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        .req("RELEASE", VF, struct.pack("<QIIQ", VF, 0, 0, 0)).req("READDIR", ROOT_ID, read_in(1, 0, 1024)),
        "read_only": Fuse().init(ctl=CTL | 0x80).req("LOOKUP", ROOT_ID, z("a"))
        .req("OPEN", 2, struct.pack("<II", os.O_RDWR, 0)).req("OPEN", 2, struct.pack("<II", os.O_RDONLY, 0))
        .req("WRITE", 2, struct.pack("<QQIIQII", 1, 0, 2, 0, 0, 0, 0) + b"no")
        .req("MKDIR", ROOT_ID, struct.pack("<II", 0o755, 0) + z("m")).req("UNLINK", ROOT_ID, z("a")),
        "sync_alloc_copy": Fuse().init().req("LOOKUP", ROOT_ID, z("a"))
        .req("OPEN", 2, struct.pack("<II", os.O_RDWR, 0))
        .req("FALLOCATE", 2, struct.pack("<QQQII", 1, 0, 8192, 0, 0))
        .req("FSYNC", 2, struct.pack("<QII", 1, 1, 0))
        .req("COPY_FILE_RANGE", 2, struct.pack("<QQQQQQQ", 1, 0, 2, 1, 100, 10, 0))
        .req("OPENDIR", ROOT_ID, struct.pack("<II", 0, 0)).req("FSYNCDIR", ROOT_ID, struct.pack("<QII", 2, 0, 0))
        .req("LSEEK", 2, struct.pack("<QQII", 1, 0, 4, 0)),
        "many_files": many_files(),
        "no_init": Fuse().req("LOOKUP", ROOT_ID, z("a")).req("INIT", 0, struct.pack("<IIII", 6, 0, 0, 0)),
    }
    for name, f in seeds.items():
        write("fuse", name, f.out)


# ---- vhost_user: mode byte, u16 memory length, memory bytes, messages -------------------------
VU = dict(GET_FEATURES=1, SET_FEATURES=2, SET_OWNER=3, RESET_OWNER=4, SET_MEM_TABLE=5,
          SET_VRING_NUM=8, SET_VRING_ADDR=9, SET_VRING_BASE=10, GET_VRING_BASE=11,
          SET_VRING_KICK=12, SET_VRING_CALL=13, SET_VRING_ERR=14, GET_PROTOCOL_FEATURES=15,
          SET_PROTOCOL_FEATURES=16, GET_QUEUE_NUM=17, SET_VRING_ENABLE=18, GET_CONFIG=24,
          SET_CONFIG=25, RESET_DEVICE=34)
VU_GPA, VU_UADDR = 0x100000, 0x7f0000000000
NEED_REPLY = 0x8


def vu_msg(req, payload=b"", flags=0):
    return struct.pack("<III", VU[req], 1 | flags, len(payload)) + payload


def vu_kick(ring):
    return struct.pack("<III", 0xff00 | ring, 1, 0)


def vu_guest_memory():
    """Ring 0 (size 8) at offset 0: one request (16 bytes out, 16 bytes in) in the avail ring."""
    mem = bytearray(0x320)
    struct.pack_into("<QIHH", mem, 0, VU_GPA + 0x200, 16, 1, 1)   # desc 0: out, NEXT -> 1
    struct.pack_into("<QIHH", mem, 16, VU_GPA + 0x300, 16, 2, 0)  # desc 1: in (WRITE)
    struct.pack_into("<HHH", mem, 0x80, 0, 1, 0)                  # avail: flags, idx 1, ring[0]
    mem[0x200:0x210] = b"ping from guest!"
    return bytes(mem)


def vu_ring_setup(ring, kick=True):
    m = vu_msg("SET_VRING_NUM", struct.pack("<II", ring, 8))
    m += vu_msg("SET_VRING_ADDR", struct.pack("<IIQQQQ", ring, 0, VU_UADDR, VU_UADDR + 0x100,
                                              VU_UADDR + 0x80, 0))
    m += vu_msg("SET_VRING_BASE", struct.pack("<II", ring, 0))
    m += vu_msg("SET_VRING_CALL", struct.pack("<Q", ring))
    m += vu_msg("SET_VRING_ERR", struct.pack("<Q", ring))
    if kick:
        m += vu_msg("SET_VRING_KICK", struct.pack("<Q", ring))
    return m


def vu_seed(mode, mem, msgs):
    return bytes([mode]) + struct.pack("<H", len(mem)) + mem + msgs


def vhost_user_seeds():
    mem = vu_guest_memory()
    table = vu_msg("SET_MEM_TABLE", struct.pack("<II", 1, 0) +
                   struct.pack("<QQQQ", VU_GPA, 0x10000, VU_UADDR, 0), NEED_REPLY)
    hello = vu_msg("GET_FEATURES") + vu_msg("GET_PROTOCOL_FEATURES")
    proto = vu_msg("SET_PROTOCOL_FEATURES", struct.pack("<Q", 0x2209), NEED_REPLY)
    feats = struct.pack("<Q", (1 << 32) | (1 << 30) | (1 << 3))
    session = (hello + vu_msg("SET_FEATURES", feats) + proto + vu_msg("SET_OWNER") +
               vu_msg("GET_QUEUE_NUM") + table + vu_ring_setup(0) + vu_ring_setup(1) +
               vu_msg("SET_VRING_ENABLE", struct.pack("<II", 0, 1)) +
               vu_msg("SET_VRING_ENABLE", struct.pack("<II", 1, 1)) + vu_kick(0) +
               vu_msg("GET_CONFIG", struct.pack("<III", 0, 8, 0) + bytes(8)) +
               vu_msg("SET_CONFIG", struct.pack("<III", 4, 4, 0) + b"abcd", NEED_REPLY) +
               vu_msg("GET_VRING_BASE", struct.pack("<II", 0, 0)) + table + vu_kick(1) +
               vu_msg("RESET_OWNER") + vu_msg("RESET_DEVICE"))
    legacy = (vu_msg("GET_FEATURES") + vu_msg("SET_FEATURES", struct.pack("<Q", 1 << 32)) +
              table + vu_ring_setup(0) + vu_kick(0) + vu_msg("GET_VRING_BASE", struct.pack("<II", 0, 0)))
    nofd = (hello + vu_msg("SET_FEATURES", feats) + proto + table +
            vu_msg("SET_VRING_NUM", struct.pack("<II", 0, 8)) +
            vu_msg("SET_VRING_KICK", struct.pack("<Q", 0x100)) +
            vu_msg("SET_VRING_CALL", struct.pack("<Q", 0x100), NEED_REPLY) +
            vu_msg("SET_VRING_ENABLE", struct.pack("<II", 0, 1)))
    write("vhost_user", "session", vu_seed(1, mem, session))
    write("vhost_user", "legacy_no_protocol", vu_seed(1, mem, legacy))
    write("vhost_user", "without_fds", vu_seed(0, b"", nofd))
    write("vhost_user", "bad_version", vu_seed(0, b"", vu_msg("GET_FEATURES") + b"\x01\0\0\0\0\0\0\0\0\0\0\0"))


# ---- kernel_loader: flags byte, u16 initrd length, initrd, kernel file -----------------------
def tiny_elf(nphdr=1, paddr=0x1000000, entry=0x1000000):
    code = b"\xe6\xf5\xf4\xeb\xfd" + bytes(11)
    phoff = 64
    data_off = phoff + 56 * nphdr
    eh = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    eh += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, phoff, 0, 0, 64, 56, nphdr, 64, 0, 0)
    ph = b""
    for i in range(nphdr):
        ph += struct.pack("<IIQQQQQQ", 1, 7, data_off, 0, paddr + i * 0x2000, len(code), 0x2000, 0x1000)
    return eh + ph + code


def tiny_bzimage(init_size=0x10000, setup_sects=1, version=0x020F):
    setup = bytearray(512 * (setup_sects + 1))
    setup[0x1F1] = setup_sects
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x200], setup[0x201] = 0xEB, 0x66  # jmp: header ends at 0x268
    struct.pack_into("<IH", setup, 0x202, 0x53726448, version)
    struct.pack_into("<I", setup, 0x22C, 0x37FFFFFF)  # initrd_addr_max
    struct.pack_into("<H", setup, 0x236, 0x1)  # XLF_KERNEL_64
    struct.pack_into("<I", setup, 0x260, init_size)
    return bytes(setup) + b"\x90" * 0x200 + b"\xf4" * 64


def kl_seed(flags, kernel, initrd=b""):
    return bytes([flags | (1 if initrd else 0)]) + struct.pack("<H", len(initrd)) + initrd + kernel


def kernel_loader_seeds():
    write("kernel_loader", "elf", kl_seed(2, tiny_elf()))
    write("kernel_loader", "elf_3phdr_highram", kl_seed(4, tiny_elf(3, 0x200000, 0x202000)))
    write("kernel_loader", "elf_initrd", kl_seed(2, tiny_elf(), b"initrd-bytes" * 8))
    write("kernel_loader", "bzimage", kl_seed(0, tiny_bzimage()))
    write("kernel_loader", "bzimage_initrd", kl_seed(2, tiny_bzimage(0x400000, 2), b"07070100" * 16))
    write("kernel_loader", "bzimage_lowram", kl_seed(6, tiny_bzimage()))


# ---- api_parsers: selector byte (0 rlimits, 1 port map, 2 volumes, 3 records, 4 JSON/OCI) ---
def nul(*strings):
    return b"".join(x.encode() + b"\0" for x in strings)


OCI = b"""{"ociVersion":"1.0.2","process":{"args":["/bin/sh","-c","echo \\"hi\\" \\u00e9"],
"env":["PATH=/usr/bin","A=1"],"cwd":"/work","user":{"uid":1000,"gid":100,"additionalGids":[5,6]},
"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":512}]},"hostname":"vm","root":{"path":"rootfs"}}"""
DOCKER = b"""{"config":{"Entrypoint":["/entry"],"Cmd":["a","b"],"Env":["X=y"],"WorkingDir":"/w",
"User":"1:2"},"architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]},"n":[1.5e3,-0,null,true,false]}"""


def api_parsers_seeds():
    write("api_parsers", "rlimits", b"\0" + nul("RLIMIT_NOFILE=1024:4096", "6=unlimited:RLIM_INFINITY",
                                                 "nproc=10:20", "AS=0:0"))
    write("api_parsers", "port_map", b"\1" + nul("8080:80", "1:65535", "443:8443"))
    write("api_parsers", "volumes", b"\2" + nul("/tmp:/mnt/tmp", "/:/host", "/proc/self:/p"))
    write("api_parsers", "records", b"\3" + nul("exec=/bin/sh", "arg=-c", "arg=echo hi", "env=A=1",
                                               "workdir=/w", "rlimit=NOFILE=10:20", "rlimit=6=unlimited:-1",
                                               "hostname=h", "mount=vol0:/mnt/a", "uid=1000", "gid=100",
                                               "groups=1,2,3", "clock=1700000000", "future=x"))
    write("api_parsers", "oci", b"\4" + OCI)
    write("api_parsers", "docker", b"\4" + DOCKER)


# ---- vsock: actions (0 tx packet, 1 rx buffers, 2 reset, 3 RAM write, 4 host drain, 5-7 kicks)
HOST_PORT = 49152  # the device's first port for host-initiated connections
VS = dict(REQUEST=1, RESPONSE=2, RST=3, SHUTDOWN=4, RW=5, CREDIT_UPDATE=6, CREDIT_REQUEST=7)


def vs_tx(op, src_port=5000, dst_port=1234, payload=b"", flags=0, ndesc=1, src_cid=3, dst_cid=2,
          typ=1, hlen=None, buf_alloc=65536, fwd_cnt=0, bulk=0):
    """bulk: a payload of bulk * 32 zero bytes the input does not carry."""
    plen = bulk * 32 if bulk else len(payload)
    hdr = struct.pack("<QQIIIHHIII", src_cid, dst_cid, src_port, dst_port,
                      plen if hlen is None else hlen, typ, VS[op], flags, buf_alloc, fwd_cnt)
    if bulk:
        return bytes([0x20 | ((ndesc - 1) << 3)]) + hdr + bytes([bulk])
    return bytes([(ndesc - 1) << 3]) + hdr + bytes([len(payload)]) + payload


def vs_rx(count, size_bytes):
    return bytes([1 | ((count - 1) << 3), size_bytes // 8])


def vsock_seeds():
    write("vsock", "connect_rw_close", vs_rx(8, 512) + vs_tx("REQUEST") + vs_tx("RW", payload=b"hello host")
          + vs_tx("CREDIT_REQUEST") + vs_tx("CREDIT_UPDATE", fwd_cnt=10) + vs_tx("RW", payload=b"x" * 40, ndesc=3)
          + vs_tx("SHUTDOWN", flags=3) + bytes([4]) + vs_tx("RST"))
    write("vsock", "unmapped_and_rst", vs_tx("REQUEST", dst_port=9999) + vs_rx(2, 64) + vs_tx("RW", dst_port=7)
          + vs_tx("RST", dst_port=7) + bytes([6]))
    write("vsock", "malformed", vs_rx(4, 256) + vs_tx("REQUEST", src_cid=4) + vs_tx("REQUEST", typ=2)
          + vs_tx("RW", payload=b"abc", hlen=100) + vs_tx("REQUEST", dst_cid=3) + vs_rx(1, 8)
          + vs_tx("REQUEST", src_port=1) + vs_tx("RW", src_port=1, payload=b"q", ndesc=2))
    write("vsock", "reset_and_poke", vs_rx(4, 128) + vs_tx("REQUEST") + bytes([2]) + vs_tx("RW", payload=b"after")
          + bytes([3]) + struct.pack("<HB", 0x1202, 2) + b"\xff\x00" + bytes([5]) + vs_rx(2, 128))
    pump, accept, close0, connect0 = bytes([7]), bytes([6]), bytes([6 | 2 << 3]), bytes([6 | 3 << 3])

    def host_write(data, conn=0):
        return bytes([6 | 1 << 3 | conn << 5, len(data)]) + data
    write("vsock", "host_data", vs_rx(8, 512) + vs_tx("REQUEST") + pump + accept + host_write(b"from the host")
          + pump + vs_tx("CREDIT_UPDATE", fwd_cnt=13) + vs_tx("RW", payload=b"reply") + pump + close0 + pump
          + vs_tx("RST"))
    # Bulk data to a host peer that never reads: the device must buffer within its credit.
    bulk = vs_rx(8, 512) + vs_tx("REQUEST") + pump + accept
    for i in range(60):
        bulk += vs_tx("RW", bulk=120, fwd_cnt=0)
        if i % 8 == 7:
            bulk += pump + vs_rx(1, 512)
    write("vsock", "host_backpressure", bulk + vs_tx("SHUTDOWN", flags=3) + pump + close0 + pump)
    write("vsock", "host_connect", vs_rx(8, 512) + connect0 + pump
          + vs_tx("RESPONSE", src_port=77, dst_port=HOST_PORT) + host_write(b"hi guest") + pump
          + vs_tx("RW", src_port=77, dst_port=HOST_PORT, payload=b"hi host") + pump
          + vs_tx("SHUTDOWN", src_port=77, dst_port=HOST_PORT, flags=3) + pump + bytes([5 | 1 << 3]))
    vsock_seqpacket_seeds(pump, accept, close0, host_write)


SEQ_PORT, SEQ, EOM, EOR = 1235, 2, 1, 2  # the seqpacket-mapped port, TYPE_SEQPACKET, SEQ_* flags


def seq_tx(op, **kw):
    kw.setdefault("dst_port", SEQ_PORT)
    return vs_tx(op, typ=SEQ, **kw)


def vsock_seqpacket_seeds(pump, accept, close0, host_write):
    """Seqpacket (VIRTIO_VSOCK_F_SEQPACKET, negotiated at the first activation)."""
    write("vsock", "seq_roundtrip", vs_rx(8, 512) + seq_tx("REQUEST") + pump + accept
          + seq_tx("RW", payload=b"first part, ") + seq_tx("RW", payload=b"end", flags=EOM | EOR)
          + seq_tx("RW", payload=b"one", flags=EOM) + seq_tx("RW", flags=EOM) + pump
          + host_write(b"a host message") + host_write(b"") + pump + seq_tx("CREDIT_UPDATE", fwd_cnt=30)
          + seq_tx("SHUTDOWN", flags=3) + pump + close0 + pump + seq_tx("RST"))
    # Host messages larger than one rx buffer go out as fragments, EOM on the last.
    write("vsock", "seq_fragments", vs_rx(4, 64) + seq_tx("REQUEST") + pump + accept
          + host_write(b"m" * 200) + host_write(b"n" * 90) + pump + vs_rx(8, 64) + pump + vs_rx(8, 64)
          + pump + seq_tx("CREDIT_REQUEST") + pump + close0 + pump)
    # Seqpacket only once negotiated; stream and seqpacket ports refuse the other type.
    # (a reset drops the rx buffers: post new ones after each)
    write("vsock", "seq_negotiation", bytes([2 | 8]) + vs_rx(8, 256) + seq_tx("REQUEST") + pump
          + bytes([2]) + vs_rx(8, 256) + seq_tx("REQUEST") + pump + seq_tx("REQUEST", src_port=5001, dst_port=1234)
          + vs_tx("REQUEST", src_port=5002, dst_port=SEQ_PORT) + pump + accept + bytes([4]))
    # Complete messages for a host peer that never reads: the device bounds what it holds.
    held = vs_rx(8, 512) + seq_tx("REQUEST") + pump + accept
    for i in range(280):   # small messages within the credit, more than a socket buffers
        held += seq_tx("RW", bulk=16, flags=EOM if i % 4 else 0)
        if i % 32 == 31:
            held += pump + vs_rx(1, 512)
    write("vsock", "seq_backpressure", held + seq_tx("SHUTDOWN", flags=3) + pump + close0 + pump)


# ---- console: actions on the rings, the host ends and the event loop (see fuzz_console.c) ------
CON_EV = dict(DEVICE_READY=0, PORT_READY=3, PORT_OPEN=6, BOGUS=99)


def con_tx(port, data, ndesc=1, ctrl=False):
    return bytes([0 | port << 3 | (0x20 if ctrl else 0) | (ndesc - 1) << 6, len(data)]) + data


def con_rx(port, count, size, ctrl=False):
    return bytes([1 | port << 3 | (0x20 if ctrl else 0) | (count - 1) << 6, size])


def con_ctrl(port_id, event, value=1, ndesc=1):
    return con_tx(0, struct.pack("<IHH", port_id, CON_EV[event], value), ndesc, ctrl=True)


CON_PUMP, CON_READ = b"\7", b"\5"


def con_close(port):
    return bytes([5 | 8 | port << 4])


def con_host_in(port, data):
    return bytes([4 | (8 if port else 0), len(data)]) + data


def con_handshake(open_ports=(0, 1, 2, 3)):
    """The Linux driver's order: DEVICE_READY, PORT_READY per announced port, PORT_OPEN."""
    out = con_rx(0, 4, 64, ctrl=True) * 3 + con_ctrl(0, "DEVICE_READY")
    for port in range(4):
        out += con_ctrl(port, "PORT_READY")
    out += con_rx(0, 4, 64, ctrl=True) * 2
    for port in open_ports:
        out += con_ctrl(port, "PORT_OPEN")
    return out


def console_seeds():
    write("console", "multiport_roundtrip", con_handshake() + con_rx(0, 4, 64) + con_rx(1, 4, 64)
          + con_host_in(0, b"typed on the host") + con_host_in(1, b"port input") + CON_PUMP + CON_PUMP
          + con_tx(0, b"console output") + con_tx(2, b"named port output", ndesc=3)
          + con_tx(3, b"socket port output", ndesc=2) + con_tx(1, b"to an input-only port") + CON_READ)
    write("console", "single_port", bytes([2 | 0x10]) + con_rx(0, 4, 32) + con_host_in(0, b"abc")
          + CON_PUMP + con_tx(0, b"console out", ndesc=4) + b"\6x" + CON_READ + bytes([6 | 8]) + CON_PUMP
          + con_tx(2, b"no such queue without MULTIPORT") + bytes([7 | 8 | 6 << 4]))
    held = con_handshake()
    for i in range(20):
        held += con_tx(2, bytes([65 + i]) * 255) + con_tx(3, bytes([97 + i]) * 255)
    write("console", "backpressure", held + CON_PUMP + CON_READ + CON_PUMP + CON_READ + con_close(2)
          + con_tx(2, b"after the reader left") + con_close(3) + con_tx(3, b"gone too") + CON_PUMP)
    write("console", "ctrl_malformed", con_rx(0, 4, 4, ctrl=True) + con_ctrl(0, "DEVICE_READY")
          + con_tx(0, b"abc", ctrl=True) + con_ctrl(9, "PORT_READY") + con_ctrl(1, "BOGUS")
          + con_ctrl(2, "PORT_READY", value=0) + con_rx(0, 4, 7, ctrl=True) + con_ctrl(1, "PORT_READY", ndesc=2)
          + con_ctrl(0, "DEVICE_READY", value=0) + con_rx(0, 2, 200, ctrl=True))
    write("console", "input_eof", con_handshake((0, 1)) + con_rx(1, 2, 16) + con_host_in(1, b"last words")
          + con_close(1) + CON_PUMP + CON_PUMP + con_rx(1, 2, 16) + CON_PUMP + con_ctrl(1, "PORT_OPEN", 0)
          + con_ctrl(1, "PORT_OPEN"))
    write("console", "reset_and_poke", con_handshake() + con_tx(2, b"pending") + bytes([2 | 8 | 0x10])
          + con_handshake() + bytes([3, 0x00, 0x00, 16]) + bytes(range(16)) + con_rx(0, 2, 32)
          + bytes([3, 0x02, 0x01, 2, 0xff, 0xff]) + CON_PUMP)
    write("console", "zero_length_rx", con_handshake() + con_rx(0, 1, 0) + con_host_in(0, b"input")
          + CON_PUMP + con_rx(0, 2, 8) + CON_PUMP + con_rx(1, 1, 0) + con_host_in(1, b"more")
          + CON_PUMP + con_rx(1, 2, 8) + CON_PUMP)


# ---- tsi: mode byte, then a request (struct krun_tsi_request + path) or a krun_tsi_dgram ------
TSI_MAGIC = 0x4B545349
TSI_OP = dict(CONNECT=1, DNS=2, DGRAM=3)
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
SOCK_STREAM, SOCK_DGRAM = 1, 2


def tsi_req(op, family, typ=SOCK_STREAM, port=0, path=b"", addr=b"", timeout=0, version=1):
    return b"\0" + struct.pack("<IHHHHHH16sI", TSI_MAGIC, version, TSI_OP[op], family, typ, port,
                               len(path), addr.ljust(16, b"\0"), timeout) + path


def tsi_dgram(family, port, addr, sock_v6=True):
    return bytes([1 | (2 if sock_v6 else 0)]) + struct.pack("<HH16s", family, port, addr.ljust(16, b"\0"))


def tsi_seeds():
    """AF_UNIX paths in and out of the share (see fuzz_tsi.c's tree), inet requests, peers."""
    paths = dict(unix_inside=b"share/inside.sock", unix_symlink_inside=b"share/in.sock",
                 unix_sub_back=b"share/sub/back.sock", unix_dotdot=b"share/../outside/outside.sock",
                 unix_up_link=b"share/up/outside/outside.sock", unix_rel_escape=b"share/out.sock",
                 unix_sub_escape=b"share/sub/esc.sock", unix_abs_dir=b"share/abs/outside.sock",
                 unix_abs_link=b"share/absout.sock", unix_proc_cwd=b"share/cwd/x.sock",
                 unix_not_socket=b"share/file", unix_other_tag=b"other/inside.sock")
    for name, path in paths.items():
        write("tsi", name, tsi_req("CONNECT", AF_UNIX, path=path, timeout=100))
    write("tsi", "inet4_connect", tsi_req("CONNECT", AF_INET, port=80, addr=bytes([127, 0, 0, 1])))
    write("tsi", "inet6_udp", tsi_req("CONNECT", AF_INET6, SOCK_DGRAM, port=53,
                                      addr=bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1])))
    write("tsi", "dgram_v6", tsi_req("DGRAM", AF_INET6, SOCK_DGRAM, addr=bytes(15) + b"\1"))
    write("tsi", "dns", tsi_req("DNS", 0))
    write("tsi", "bad_magic", b"\0" + b"ISTL" + bytes(32))
    write("tsi", "peer_v4_on_v6", tsi_dgram(AF_INET, 5353, bytes([192, 168, 1, 2])))
    write("tsi", "peer_v4_on_v4", tsi_dgram(AF_INET, 5353, bytes([192, 168, 1, 2]), False))
    write("tsi", "peer_mapped", tsi_dgram(AF_INET6, 123, bytes(10) + b"\xff\xff" + bytes([1, 2, 3, 4])))
    write("tsi", "peer_v6_on_v4", tsi_dgram(AF_INET6, 123, b"\x20\x01\x0d\xb8" + bytes(11) + b"\1", False))


def main():
    targets = sys.argv[1:] or list(GEN)
    for t in targets:
        GEN[t]()


GEN = {"fuse": fuse_seeds, "vhost_user": vhost_user_seeds,
       "kernel_loader": kernel_loader_seeds,
       "api_parsers": api_parsers_seeds, "vsock": vsock_seeds, "tsi": tsi_seeds,
       "console": console_seeds}

if __name__ == "__main__":
    main()
