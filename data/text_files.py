"""Bytes to text for the parsers: what decodes, what does not, and what to show of it.

A line that does not decode is reported, not dropped with its file: undecodable
bytes are kept as surrogate escapes so the rest of the file still loads and the
parsers can reject just the lines holding them (undecodable), shown with U+FFFD
in rejects.csv (shown).
"""

from __future__ import annotations

import codecs
import gzip
import re
from pathlib import Path
from typing import NamedTuple

_SURROGATE = re.compile("[\udc80-\udcff]")  # an undecodable byte, kept by surrogateescape


class Decoded(NamedTuple):
    text: str
    dirty: bool  # some bytes did not decode: kept as surrogate escapes (see undecodable)
    encoding: str  # the codec that decoded it


# What a file expected as UTF-8 is read as when it is not UTF-8 and holds no UTF-8
# character past ASCII: a single-byte export. Excel on Windows saves "CSV" so, where é
# is the one byte 0xE9; read as UTF-8, every line with an accent was rejected (293 of
# ml-latest-small's 9,742 titles, and their 1,466 ratings as unknown items).
SINGLE_BYTE_ENCODING = "cp1252"
SINGLE_BYTE_NAME = "Windows-1252"
UTF16 = "utf-16"  # read when a UTF-16 byte order mark starts data expected as UTF-8
_PAST_ASCII = re.compile("[^\x00-\x7f\udc80-\udcff]")  # a decoded non-ASCII character


def decode(data: bytes, encoding: str) -> Decoded:
    """Decode `data`, dropping a UTF-8 byte order mark.

    Undecodable bytes are kept as surrogate escapes so the rest of the file
    still loads and the lines holding them can be reported (see undecodable).
    Data expected as UTF-8 that starts with a UTF-16 byte order mark is UTF-16.
    Data expected as UTF-8 that is not, with no byte order mark, NUL byte (UTF-16)
    or UTF-8 character past ASCII, is decoded as SINGLE_BYTE_ENCODING instead: a
    UTF-8 file with a few broken bytes keeps its other accents and stays UTF-8.
    """
    utf8 = codecs.lookup(encoding).name == "utf-8"
    if utf8 and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = UTF16  # its byte order mark says so (PowerShell 5's `>` writes it)
    codec = "utf-8-sig" if utf8 and encoding != UTF16 else encoding
    try:
        return Decoded(data.decode(codec), False, encoding)
    except UnicodeDecodeError:
        if encoding == UTF16:  # broken mid-way (rare): surrogateescape cannot keep its bytes
            return Decoded(data.decode(codec, errors="replace"), False, encoding)
        text = data.decode(codec, errors="surrogateescape")
    if (not utf8 or encoding == UTF16 or data.startswith(codecs.BOM_UTF8) or b"\0" in data
            or _PAST_ASCII.search(text)):
        return Decoded(text, True, encoding)
    try:  # cp1252 leaves 5 bytes undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D)
        return Decoded(data.decode(SINGLE_BYTE_ENCODING), False, SINGLE_BYTE_ENCODING)
    except UnicodeDecodeError:
        return Decoded(data.decode(SINGLE_BYTE_ENCODING, errors="surrogateescape"), True,
                       SINGLE_BYTE_ENCODING)


def undecodable(text: str, encoding: str) -> str | None:
    """Why `text` (decoded with surrogate escapes) is not valid `encoding`; None when it is."""
    if not _SURROGATE.search(text):
        return None
    try:
        text.encode(encoding, errors="surrogateescape").decode(encoding)
    except UnicodeDecodeError as err:
        return f"not valid {encoding}: {err.reason}"
    return f"not valid {encoding}"


def shown(text: str) -> str:
    """Text fit to write out: undecodable bytes become U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


# Files saved under a text name in another format: a spreadsheet renamed .csv, or a
# Parquet file. Read as text, each was "line contains NUL (NUL bytes: UTF-16?)".
_NOT_TEXT = ((b"PK\x03\x04", "a ZIP archive (an .xlsx or .ods spreadsheet is one): save the "
              "sheet as CSV, or unpack the archive"),
             (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls spreadsheet: save it as CSV"),
             (b"PAR1", "a Parquet file: name it .parquet"),
             (b"SQLite format 3\x00", "an SQLite database: export the table as CSV"))
GZIP_MAGIC = b"\x1f\x8b"


def file_bytes(path: Path) -> bytes:
    """The file's bytes; gzip's decompressed: a .gz file (ValueError when it is not
    gzip), or a file gzipped under a .csv name. ValueError for a file in a format that
    is not text (_NOT_TEXT), which names the format."""
    data = path.read_bytes()
    if path.suffix == ".gz" or data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
            raise ValueError(f"{path}: not a readable gzip file ({err})") from None
    for magic, what in _NOT_TEXT:
        if data.startswith(magic):
            raise ValueError(f"{path}: {what}; it is not text")
    return data


def encoding_notes(read: dict[str, str]) -> tuple[str, ...]:
    """What the reports say of the files (name -> encoding read) that decode read as
    other than the UTF-8 their format says."""
    said = {SINGLE_BYTE_ENCODING: f"is not UTF-8: read as {SINGLE_BYTE_NAME} (if its text "
                                  "reads wrong, it was written in another encoding: save it "
                                  "as UTF-8)",
            UTF16: "is UTF-16, as its byte order mark says: read as such"}
    return tuple(f"{name} {said[encoding]}" for name, encoding in read.items()
                 if encoding in said)
