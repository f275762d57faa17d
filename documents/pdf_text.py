"""The text layer of a prescription's PDF: every piece of Bangla text searchable and copyable as the Unicode
it was written in.

WeasyPrint maps each glyph to one text in the font's ToUnicode table, the text of the first cluster it
drew it in. Bangla shaping reuses glyphs across clusters (a reph, a vowel sign's half, a conjunct's
part), and reorders them on the line, so a reader extracting "নির্ণয়" through that table gets whatever
the glyphs first stood for. PDF has the remedy: a marked-content sequence may carry `/ActualText`, which
readers (poppler, pdf.js, Acrobat) take instead of the glyphs' own text.

WeasyPrint's tagged output (its public `pdf_tags` option) wraps each piece of text it draws, one line of
one text node, in such a sequence (`/Span <</MCID n>> BDC … EMC`), and its structure tree lists them per
element in document order. Here the structure tree's runs of text spans are paired with the text nodes
of the HTML that was rendered, in the same order; a run whose text has Bangla gets the node's text as
`/ActualText` on its first line (the next lines' glyphs then stand for nothing: the whole text is read
once, in logical order). The pairing is checked before anything is written: every run's glyphs outside
the Bengali block (Latin letters, digits, punctuation, which the table maps one to one) must spell the
same characters as its node's; if one run does not, the PDF is returned as it was and a warning logged.
"""

import logging
import re

import lxml.html
import pikepdf

logger = logging.getLogger(__name__)

# The Bengali block, the dandas and the joiners: the characters whose glyphs the ToUnicode table may misname.
_BANGLA = re.compile("[\u0964\u0965\u0980-\u09ff\u200c\u200d]")
_SECTION = re.compile(rb"beginbf(char|range)(.*?)endbf\1", re.S)
_BFCHAR = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]*)>")
_BFRANGE = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")


class Unpaired(Exception):
    """The structure tree's text and the HTML's do not line up: the PDF is left as it is."""


def _skeleton(text: str) -> str:
    """What of a text its glyphs name reliably: everything but Bangla and white space."""
    return "".join(c for c in text if not c.isspace() and not _BANGLA.match(c))


def _collapsed(text: str) -> str:
    return " ".join(text.split())


def html_text_nodes(html: str) -> list[str]:
    """The body's text nodes in document order, white space collapsed, blank ones left out."""
    body = lxml.html.document_fromstring(html).find("body")
    nodes: list[str] = []

    def visit(element) -> None:
        if not isinstance(element.tag, str) or element.tag in ("script", "style"):
            return
        if element.text and element.text.strip():
            nodes.append(_collapsed(element.text))
        for child in element:
            visit(child)
            if child.tail and child.tail.strip():
                nodes.append(_collapsed(child.tail))

    visit(body)
    return nodes


def _to_unicode(font) -> tuple[dict[bytes, str], int]:
    """A font's ToUnicode table (code bytes → text) and its code length in bytes."""
    width = 2 if font.get("/Subtype") == "/Type0" else 1
    table: dict[bytes, str] = {}
    if "/ToUnicode" not in font:
        return table, width
    for kind, body in _SECTION.findall(font.ToUnicode.read_bytes()):
        if kind == b"range":
            for start, end, first in _BFRANGE.findall(body):
                low, high, base = int(start, 16), int(end, 16), int(first, 16)
                for offset, code in enumerate(range(low, high + 1)):
                    table[code.to_bytes(width, "big")] = chr(base + offset)
            continue
        for code, text in _BFCHAR.findall(body):
            key = bytes.fromhex(code.decode()).rjust(width, b"\0")
            table[key] = bytes.fromhex(text.decode()).decode("utf-16-be", "replace")
    return table, width


def _page_texts(page) -> dict[int, str]:
    """Each marked-content id's text on a page, as the ToUnicode tables name its glyphs."""
    fonts = {}
    resources = page.obj.get("/Resources", {})
    for name, font in resources.get("/Font", {}).items():
        fonts[name] = _to_unicode(font)
    texts: dict[int, list[str]] = {}
    marks: list[int | None] = []
    table, width = {}, 2
    for operands, operator in pikepdf.parse_content_stream(page):
        op = str(operator)
        if op == "BDC":
            props = operands[1] if len(operands) > 1 else None
            mcid = int(props.MCID) if isinstance(props, pikepdf.Dictionary) and "/MCID" in props else None
            marks.append(mcid)
        elif op == "BMC":
            marks.append(None)
        elif op == "EMC":
            if marks:
                marks.pop()
        elif op == "Tf":
            table, width = fonts.get(str(operands[0]), ({}, 2))
        elif op in ("TJ", "Tj", "'", '"'):
            mcid = next((m for m in reversed(marks) if m is not None), None)
            if mcid is None:
                continue
            shown = operands[-1]
            strings = [s for s in shown if isinstance(s, pikepdf.String)] if op == "TJ" else [shown]
            out = texts.setdefault(mcid, [])
            for string in strings:
                data = bytes(string)
                out.extend(table.get(data[i : i + width], "") for i in range(0, len(data), width))
    return {mcid: "".join(parts) for mcid, parts in texts.items()}


def _runs(pdf) -> list[list[tuple[int, int]]]:
    """The structure tree's runs of text spans in document order: each a list of (page index, MCID), one per
    line of one text node (consecutive span leaves of one element)."""
    pages = {page.obj.objgen: index for index, page in enumerate(pdf.pages)}
    runs: list[list[tuple[int, int]]] = []

    def kids(element) -> list:
        k = element.get("/K")
        if k is None:
            return []
        return list(k) if isinstance(k, pikepdf.Array) else [k]

    def leaf(kid) -> tuple[int, int] | None:
        if not isinstance(kid, pikepdf.Dictionary) or kid.get("/S") != "/Span":
            return None
        inner = kids(kid)
        if len(inner) != 1 or not isinstance(inner[0], int):
            return None
        return pages[kid.Pg.objgen], int(inner[0])

    def visit(element) -> None:
        run: list[tuple[int, int]] = []
        for kid in kids(element):
            mark = leaf(kid)
            if mark is not None:
                run.append(mark)
                continue
            if run:
                runs.append(run)
                run = []
            if isinstance(kid, int):
                raise Unpaired("marked content directly under an element")
            if isinstance(kid, pikepdf.Dictionary) and kid.get("/Type") != "/OBJR":
                visit(kid)
        if run:
            runs.append(run)

    visit(pdf.Root.StructTreeRoot)
    return runs


def with_actual_text(pdf_bytes: bytes, html: str) -> bytes:
    """`pdf_bytes` (WeasyPrint's tagged rendering of `html`) with each Bangla text node as its ActualText; the
    bytes unchanged when the pairing does not check out (a warning says so, without the text)."""
    import io

    try:
        with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
            if "/StructTreeRoot" not in pdf.Root:
                raise Unpaired("no structure tree")
            nodes = html_text_nodes(html)
            runs = _runs(pdf)
            if len(runs) != len(nodes):
                raise Unpaired(f"{len(runs)} runs of text for {len(nodes)} text nodes")
            drawn = [_page_texts(page) for page in pdf.pages]
            actual: dict[tuple[int, int], str] = {}
            for index, (run, node) in enumerate(zip(runs, nodes, strict=True)):
                glyphs = "".join(drawn[page].get(mcid, "") for page, mcid in run)
                if _skeleton(glyphs) != _skeleton(node) or bool(_BANGLA.search(glyphs)) != bool(_BANGLA.search(node)):
                    raise Unpaired(f"text node {index} does not match its run")
                if _BANGLA.search(node):
                    actual.update({mark: "" for mark in run[1:]})
                    actual[run[0]] = node
            if not actual:
                return pdf_bytes
            for index, page in enumerate(pdf.pages):
                ops = []
                for operands, operator in pikepdf.parse_content_stream(page):
                    if str(operator) == "BDC" and len(operands) > 1 and isinstance(operands[1], pikepdf.Dictionary):
                        props = operands[1]
                        text = actual.get((index, int(props.MCID))) if "/MCID" in props else None
                        if text is not None:
                            props.ActualText = pikepdf.String(text)
                    ops.append((operands, operator))
                page.Contents = pdf.make_stream(pikepdf.unparse_content_stream(ops))
            out = io.BytesIO()
            pdf.save(out, compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.preserve)
            return out.getvalue()
    except Unpaired as exc:
        logger.warning("prescription PDF: Bangla text layer left as drawn (%s)", exc)
        return pdf_bytes
