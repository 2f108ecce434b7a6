"""The plain-text part of a message whose template has none, generated from its HTML.

``html.parser`` from the standard library: block elements end lines (paragraphs and
headings with a blank line between), ``<br>`` breaks a line, list items start with ``- ``,
a link reads ``text (url)`` (only ``url`` when the text is the address itself), images give
their ``alt`` text, ``<script>``/``<style>``/``<head>`` give nothing, runs of white space
collapse as a browser shows them (not inside ``<pre>``), and entities are unescaped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote",
               "pre", "hr", "dl"}
_LINES = {"div", "section", "article", "header", "footer", "main", "nav", "aside", "tr", "li",
          "dt", "dd", "address", "center", "figure", "figcaption", "form", "fieldset", "tbody",
          "thead", "tfoot", "caption", "body", "html"}
_CELLS = {"td", "th"}
_HIDDEN = {"script", "style", "head", "title", "template", "noscript"}
_SPACE = re.compile(r"[ \t\r\n\f\v]+")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0
        self.pre = 0
        self.links: list[tuple[str, int]] = []  # (href, where its text starts in out)

    # the output is a list of pieces; "\n" pieces are line breaks, "\n\n" paragraph breaks
    def _break(self, text: str) -> None:
        self.out.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self._break("\n")
        elif tag in _PARAGRAPHS:
            self._break("\n\n")
            if tag == "pre":
                self.pre += 1
            elif tag == "hr":
                self.out.append("----")
                self._break("\n\n")
        elif tag in _LINES:
            self._break("\n")
            if tag == "li":
                self.out.append("- ")
        elif tag in _CELLS:
            self.out.append(" ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.out)))
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt and not self.hidden:
                self.out.append(alt)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr", "img"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _PARAGRAPHS:
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self._break("\n\n")
        elif tag in _LINES:
            self._break("\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            self._link(href.strip(), start)

    def _link(self, href: str, start: int) -> None:
        label = _SPACE.sub(" ", "".join(p for p in self.out[start:] if p not in ("\n", "\n\n"))).strip()
        if not href or href.startswith(("#", "javascript:")):
            return
        shown = href[7:] if href.lower().startswith("mailto:") else href
        if _bare(label) == _bare(shown):  # the text is the address itself
            del self.out[start:]
            self.out.append(shown)
        elif label:
            self.out.append(f" ({shown})")
        else:
            self.out.append(shown)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        data = data.replace("\xa0", " ")  # &nbsp;: a plain space in plain text
        self.out.append(data if self.pre else _SPACE.sub(" ", data))

    def text(self) -> str:
        lines: list[str] = []
        pending = 0  # line breaks owed before the next text: 1 (line) or 2 (paragraph)
        current = ""
        for piece in self.out:
            if piece in ("\n", "\n\n"):
                if current.strip() or lines:
                    pending = max(pending, len(piece))
                if current.strip():
                    lines.append(current.strip(" "))
                    current = ""
                continue
            if pending and not current:
                if lines and pending == 2:
                    lines.append("")
                pending = 0
            if not current and not piece.strip(" "):
                continue  # white space at the start of a line
            current += piece
        if current.strip():
            lines.append(current.strip(" "))
        text = "\n".join(_tidy(line) for line in lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _bare(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/").lower()


def _tidy(line: str) -> str:
    if "\n" in line:  # <pre>: keep its lines, only trailing spaces go
        return "\n".join(part.rstrip() for part in line.split("\n"))
    return _SPACE.sub(" ", line).strip()


def html_to_text(html: str) -> str:
    """Readable plain text for ``html`` (see the module's docstring)."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.text()
