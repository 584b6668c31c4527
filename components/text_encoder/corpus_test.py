"""item_text: the one item-text format (training corpus and add-items' new items)."""

from __future__ import annotations

from mtrec.components.text_encoder.corpus import description_text, item_text


def test_item_text_format():
    assert item_text("Toy Story (1995)", ["Animation", "Comedy"], "", 1995) == (
        "toy story (1995) | animation comedy | 1995 |"
    )
    assert item_text(" A ", ["B"], " C ") == "a | b | | c"
    assert item_text(" A ", ["B"], " C ", -1) == "a | b | | c"  # unknown year: empty
    assert item_text("", [], "", 0) == "| | |"


def test_item_text_collapses_ascii_whitespace_and_lowercases_unicode():
    spaced = item_text("  Spaced\tOut \n Title  ", ["  Sci-Fi ", "", "Drama"],
                       "  lots   of\r\nspace  ")
    assert spaced == "spaced out title | sci-fi drama | | lots of space"
    # A no-break space is not ASCII whitespace: kept as it is.
    assert item_text("Café\u00a0Noir À L'ÉCOLE", ["Film-Noir"], "ÜBER ΟΔΟΣ", 2001) == (
        "café\u00a0noir à l'école | film-noir | 2001 | über οδος"
    )
    assert description_text("  Two\n\nLines ") == "two lines"
