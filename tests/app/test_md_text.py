"""pages.ui.messages.md_text: user text reads the same but carries no markdown, links or shortcodes."""
from __future__ import annotations

import re

import pytest

from pages.ui.messages import md_text
from test_pages import plain

HOSTILE = ["![px](http://127.0.0.1:9/p.png)", ":red[boo] :smile: :material/home:", "**b** _i_ ~~s~~ `c`",
           "<img src=x onerror=alert(1)>", "https://example.com www.example.com me@example.com", "$x^2$ # h",
           "=HYPERLINK(\"x\")", "naïve 東京 — ok", "a\nb\r\n\tc"]


@pytest.mark.parametrize("text", HOSTILE)
def test_reads_the_same(text):
    assert plain(md_text(text)) == " ".join(text.split())


@pytest.mark.parametrize("text", HOSTILE)
def test_no_markup_survives(text):
    out = md_text(text)
    # every ASCII punctuation character is escaped: no markdown construct can start
    assert not re.search(r"(?<!\\)[!\[\]()*_`<>$#~:|]", out.replace("\\\\", "")), out
    assert "://" not in out and "www." not in out.lower()
    assert "\n" not in out


def test_none_and_numbers():
    assert md_text(None) == "" and md_text(42) == "42" and md_text(0.5) == "0\\.5"
