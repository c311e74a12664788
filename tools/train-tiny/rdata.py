"""A minimal reader for R's serialization format (XDR, version 2/3), enough to pull the character
vectors out of an R package's lazy-load data base (data/Rdata.rdx + Rdata.rdb). Used to read the
Jane Austen novels that Debian's r-cran-janeaustenr ships without installing R itself."""
import gzip
import struct
import zlib

NILVALUE, SYM, LIST, CLO, ENV, PROM, LANG, CHAR, LGL, INT, REAL, CPLX, STR, VEC = (
    254, 1, 2, 3, 4, 5, 6, 9, 10, 13, 14, 15, 16, 19)
GLOBALENV, EMPTYENV, BASEENV, BASENS, MISSINGARG, UNBOUNDVALUE, REF = 253, 242, 241, 247, 251, 252, 255


class RObj:
    def __init__(self, kind, value, attrs=None):
        self.kind, self.value, self.attrs = kind, value, attrs or {}


class Reader:
    def __init__(self, data):
        self.b, self.p, self.refs = data, 0, []

    def int(self):
        v = struct.unpack_from('>i', self.b, self.p)[0]
        self.p += 4
        return v

    def header(self):
        assert self.b[self.p:self.p + 2] == b'X\n', 'only XDR serializations are supported'
        self.p += 2
        version = self.int()
        self.int(), self.int()
        if version == 3:
            n = self.int()
            self.p += n

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
        if t in (NILVALUE, GLOBALENV, EMPTYENV, BASEENV, BASENS, MISSINGARG, UNBOUNDVALUE):
            return None
        if t == REF:
            return self.refs[(flags >> 8) - 1]
        if t == SYM:
            s = self.item()
            self.refs.append(s)
            return s
        if t == CHAR:
            n = self.int()
            if n == -1:
                return None
            s = self.b[self.p:self.p + n].decode('utf-8', 'replace')
            self.p += n
            return s
        if t in (LIST, LANG):
            attrs = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            out = [(tag, car)]
            if isinstance(cdr, RObj) and cdr.kind == LIST:
                out += cdr.value
            return RObj(LIST, out, attrs)
        if t in (STR, VEC, INT, LGL, REAL):
            n = self.int()
            if t == STR or t == VEC:
                v = [self.item() for _ in range(n)]
            elif t == REAL:
                v = list(struct.unpack_from('>%dd' % n, self.b, self.p))
                self.p += 8 * n
            else:
                v = list(struct.unpack_from('>%di' % n, self.b, self.p))
                self.p += 4 * n
            attrs = {}
            if has_attr:
                a = self.item()
                attrs = {tag: val for tag, val in a.value}
            return RObj(t, v, attrs)
        raise ValueError('unsupported R type %d' % t)


def load_lazy_data(rdx_path, rdb_path):
    """{name: RObj} for every object of an R lazy-load data base."""
    r = Reader(gzip.open(rdx_path).read() if open(rdx_path, 'rb').read(2) == b'\x1f\x8b'
               else zlib.decompress(open(rdx_path, 'rb').read()[4:]))
    r.header()
    index = r.item()
    variables = index.value[index.attrs['names'].value.index('variables')]
    names = variables.attrs['names'].value
    rdb = open(rdb_path, 'rb').read()
    out = {}
    for name, pos in zip(names, variables.value):
        off, length = int(pos.value[0]), int(pos.value[1])
        chunk = rdb[off:off + length]
        rr = Reader(zlib.decompress(chunk[4:]))
        rr.header()
        out[name] = rr.item()
    return out
