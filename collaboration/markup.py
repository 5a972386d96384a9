"""Comments: markdown rendered to safe HTML, and @mentions.

Markdown (Python-Markdown) first, then every tag and attribute not on the lists below is
removed by nh3 (ammonia): no scripts, no event handlers, no styles, no images, and links
only to http(s) and mailto, opened without referrer or opener. Mentions are highlighted in
the sanitised text only, never inside code or links.
"""

from __future__ import annotations

import re

import markdown
import nh3

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "b", "i", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "span",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "span": {"class"}}
URL_SCHEMES = {"http", "https", "mailto"}
EXTENSIONS = ["fenced_code", "tables", "sane_lists", "nl2br"]

# A mention: @ and a user name (letters, digits and @.+-_), not inside a word or an address.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]{1,150})")
MAX_MENTIONS = 20


def mentioned_names(text: str) -> list[str]:
    """The names a text mentions, in order, each once. A trailing full stop or comma is not
    part of the name ("thanks @priya.")."""
    names: list[str] = []
    for match in MENTION.finditer(text):
        name = match.group(1)
        for candidate in (name, name.rstrip(".-+@")):
            if candidate and candidate not in names:
                names.append(candidate)
    return names


def render(text: str, mentioned: set[str] = frozenset()) -> str:
    rendered = markdown.markdown(text, extensions=EXTENSIONS, output_format="html")
    safe = nh3.clean(rendered, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="nofollow noopener noreferrer", strip_comments=True)
    return highlight_mentions(safe, mentioned) if mentioned else safe


_TAG = re.compile(r"(<[^>]+>)")
_OPAQUE = {"code", "pre", "a"}


def highlight_mentions(safe_html: str, names: set[str]) -> str:
    """Wrap `@name` of the given names in a span, in text outside code and links."""
    depth = 0
    parts = _TAG.split(safe_html)
    for index, part in enumerate(parts):
        if part.startswith("<"):
            tag = re.match(r"</?\s*([a-zA-Z0-9]+)", part)
            if tag and tag.group(1).lower() in _OPAQUE:
                depth += -1 if part.startswith("</") else 1
            continue
        if depth > 0 or "@" not in part:
            continue
        parts[index] = MENTION.sub(lambda m: _mark(m, names), part)
    return "".join(parts)


def _mark(match: re.Match, names: set[str]) -> str:
    name = match.group(1)
    for candidate in (name, name.rstrip(".-+@")):
        if candidate in names:
            rest = name[len(candidate):]
            return f'<span class="mention">@{candidate}</span>{rest}'
    return match.group(0)
