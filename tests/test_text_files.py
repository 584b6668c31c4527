"""data/text_files.py: which bytes decode, and when a file that is not UTF-8 is read as
Windows-1252 (an Excel "CSV" on Windows) rather than rejected line by line."""

from __future__ import annotations

import codecs

from mtrec.data.text_files import decode, shown, undecodable


def test_a_file_with_no_utf8_character_past_ascii_reads_as_windows_1252() -> None:
    text, dirty, encoding = decode("Cité\n\u201cQuotes\u201d \u20ac5\n".encode("cp1252"),
                                   "utf-8")
    assert (text, dirty, encoding) == ("Cité\n\u201cQuotes\u201d \u20ac5\n", False, "cp1252")


def test_utf8_text_with_a_broken_byte_stays_utf8_and_only_that_line_is_bad() -> None:
    """One UTF-8 character past ASCII says the file is UTF-8: a stray byte is damage."""
    text, dirty, encoding = decode("Amélie\n".encode() + b"Cit\xe9\n", "utf-8")
    assert encoding == "utf-8" and dirty
    first, second = text.split("\n")[:2]
    assert first == "Amélie" and undecodable(first, encoding) is None
    assert undecodable(second, encoding) == "not valid utf-8: unexpected end of data"
    assert shown(second) == "Cit\ufffd"


def test_a_byte_order_mark_or_nul_bytes_keep_the_file_utf8() -> None:
    """A BOM declares UTF-8; NUL bytes are UTF-16, which the CSV reader names."""
    text, dirty, encoding = decode(codecs.BOM_UTF8 + b"Cit\xe9\n", "utf-8")
    assert (text, dirty, encoding) == ("Cit\udce9\n", True, "utf-8")  # the BOM dropped
    text, dirty, encoding = decode(b"C\0i\0t\0\xe9\0", "utf-8")
    assert (text, dirty, encoding) == ("C\0i\0t\0\udce9\0", True, "utf-8")


def test_ascii_and_utf8_files_are_untouched() -> None:
    assert decode(b"user_id,item_id\n", "utf-8") == ("user_id,item_id\n", False, "utf-8")
    assert decode(codecs.BOM_UTF8 + "é".encode(), "utf-8") == ("é", False, "utf-8")


def test_bytes_windows_1252_leaves_undefined_are_that_lines_fault() -> None:
    """cp1252 has no character for 0x81, 0x8D, 0x8F, 0x90 and 0x9D."""
    text, dirty, encoding = decode(b"Cit\xe9\nbad\x81\n", "utf-8")
    assert (dirty, encoding) == (True, "cp1252")
    good, bad = text.split("\n")[:2]
    assert good == "Cité" and undecodable(good, encoding) is None
    assert undecodable(bad, encoding).startswith("not valid cp1252")
    assert shown(bad) == "bad\ufffd"


def test_a_declared_single_byte_encoding_is_never_replaced() -> None:
    """MovieLens' u.item is latin-1 by its format: no guessing there."""
    assert decode(b"Cit\xe9", "latin-1") == ("Cité", False, "latin-1")


def test_a_utf16_byte_order_mark_is_read_as_utf16() -> None:
    """PowerShell 5's `>` writes UTF-16 with a byte order mark: it was a header error."""
    text, dirty, encoding = decode("a,Café\n".encode("utf-16"), "utf-8")
    assert (text, dirty, encoding) == ("a,Café\n", False, "utf-16")
    broken = "a,b\n".encode("utf-16") + b"\x00\xd8"  # a lone high surrogate at the end
    text, dirty, encoding = decode(broken, "utf-8")
    assert text == "a,b\n\ufffd" and encoding == "utf-16"
