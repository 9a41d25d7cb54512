"""Hidden text out of what people write, before it reaches an agent's prompt.

Issue text is untrusted. Instructions hidden where a maintainer reading the issue
cannot see them (HTML comments, zero-width and bidi characters, Unicode tag
characters) are removed; visible text, links and images are kept.
"""

from __future__ import annotations

import re
import unicodedata

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# Zero-width, joiners, word joiner, invisible operators, BOM, soft hyphen, Mongolian
# vowel separator, bidi embeddings/overrides/isolates, and the Unicode tag block.
_HIDDEN = re.compile(
    "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)
# Details blocks and <img alt> are visible to readers; what is not visible is text the
# renderer drops: comments (above) and tags that render nothing.
_INVISIBLE_TAGS = re.compile(
    r"<(script|style|template)\b[^>]*>.*?(?:</\1\s*>|\Z)", re.DOTALL | re.IGNORECASE
)


def clean(text: str) -> str:
    """`text` without HTML comments and invisible characters."""
    # Removing one comment can join the halves of another ("<!<!---->-- x -->"):
    # repeat until nothing changes.
    while True:
        before = text
        text = _HTML_COMMENT.sub("", text)
        text = _INVISIBLE_TAGS.sub("", text)
        # Other format characters (category Cf) are invisible too; control characters
        # other than newline and tab have no business in a prompt.
        text = "".join(
            ch
            for ch in _HIDDEN.sub("", text)
            if ch in "\n\t" or unicodedata.category(ch) not in ("Cf", "Cc", "Co", "Cs")
        )
        if text == before:
            return text


def is_clean(text: str) -> bool:
    return clean(text) == text
