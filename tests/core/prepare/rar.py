"""Write small RAR 4 archives with stored (uncompressed) members, since no free tool creates RAR files.

Format: the RAR 4 technical note (marker block, archive header, one file header per member
followed by its bytes, end block); every header carries the low 16 bits of its CRC32.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

MARKER = b"Rar!\x1a\x07\x00"
HOST_UNIX = 3
STORED = 0x30
DOS_TIME_2020 = ((2020 - 1980) << 9 | 1 << 5 | 1) << 16
LONG_BLOCK = 0x8000  # the header is followed by PACK_SIZE bytes of data


def _block(kind: int, flags: int, body: bytes) -> bytes:
    header = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(header) & 0xFFFF) + header


def write_rar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """A RAR 4 archive holding `members` (name -> content) and Unix symbolic `links` (name -> target).

    Names are used as given, so `../x` is possible; a link's content is its target, as RAR 4 stores it.
    """
    entries = [(name, data, 0o100644) for name, data in members.items()]
    entries += [(name, target.encode(), 0o120777) for name, target in (links or {}).items()]
    parts = [MARKER, _block(0x73, 0, bytes(6))]
    for name, data, mode in entries:
        encoded = name.encode()
        body = struct.pack(
            "<IIBIIBBHI",
            len(data),
            len(data),
            HOST_UNIX,
            zlib.crc32(data),
            DOS_TIME_2020,
            20,
            STORED,
            len(encoded),
            mode,
        )
        parts += [_block(0x74, LONG_BLOCK, body + encoded), data]
    parts.append(_block(0x7B, 0x4000, b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(parts))
    return path
