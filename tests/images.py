"""Image files for tests that real cameras do not make."""

import struct
import zlib


def huge_png(width: int = 16000, height: int = 16000) -> bytes:
    """A valid 1-bit grey PNG of width x height that is only a few hundred KB on disk (all black), as
    a hostile client would send: decoding it as RGB would take width*height*3 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes((width + 7) // 8)  # filter byte, then the packed 1-bit pixels
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
