"""Safe XML parsing for untrusted payloads: :func:`parse_xml`.

Every XML payload that reaches mm_broker comes from outside (a Kafka topic, a VTP
broker, a file) and is parsed here, by :func:`parse_xml`, before anything else looks
at it.  The rules, in the order they are applied:

1. Size: a payload larger than ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`,
   10 MiB; real VOEvents are 2-10 kB) is refused with :class:`UnsafeXML` before a
   single byte is parsed.
2. Declarations: any ``<!DOCTYPE``, ``<!ENTITY``, ``<!ELEMENT``, ``<!ATTLIST`` or
   ``<!NOTATION`` declaration is refused (:class:`UnsafeXML`) by a byte scan, also
   for UTF-16/UTF-32 payloads (EBCDIC payloads, which the scan cannot read, are
   refused as :class:`MalformedPayload`).  Entity bombs ("billion laughs"), external
   entities (``file:///etc/passwd``, ``http://...``) and external DTDs therefore
   never reach the parser.  No VOEvent uses a DTD.
3. Parser: lxml with ``resolve_entities=False``, ``no_network=True``,
   ``load_dtd=False``, ``huge_tree=False``; comments and processing instructions are
   dropped; a document type declaration that got past the scan is refused again by
   the parser target.
4. Shape: the payload is fed in 64 kB chunks to a parser whose target builds the
   tree and counts elements and depth as lxml reports them; it aborts at the first
   element beyond ``max_depth`` (default :data:`DEFAULT_MAX_DEPTH`) or
   ``max_elements`` (default :data:`DEFAULT_MAX_ELEMENTS`) with :class:`UnsafeXML`,
   so a hostile tree is never built in full.
5. Anything that is not well-formed XML is :class:`MalformedPayload`.

The VOEvent 2.0 reader on top of it is :mod:`listeners.parsers.voevent`.
"""

from __future__ import annotations

import codecs
import re

from lxml import etree  # noqa: S410 - hardened below: no DTD, no entities, no network

from mm_broker.core.errors import (
    MalformedPayload,
    NoticeError,
    UnsafeXML,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_ELEMENTS",
    "parse_xml",
]

#: Largest payload accepted, in bytes (10 MiB).  Real VOEvents are 2-10 kB.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: Deepest element nesting accepted.  A VOEvent is 8 levels deep (C1 in Position2D).
DEFAULT_MAX_DEPTH = 32
#: Most elements accepted in one document.  Real VOEvents have 20-300.
DEFAULT_MAX_ELEMENTS = 20_000

_CHUNK = 64 * 1024
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_DECLARATION_TEXT = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
# Byte-order marks and NUL patterns of the encodings that are not ASCII-compatible.
_WIDE_ENCODINGS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)
# libxml2 messages of its own hard limits (active because huge_tree=False).
_LIBXML2_LIMITS = (
    "XML_PARSE_HUGE",
    "Excessive depth",
    "huge text node",
    "Huge input lookup",
    "entity amplification",
    "Detected an entity reference loop",
)
# "<?xm" in EBCDIC: an encoding the declaration scan cannot read, refused outright.
_EBCDIC = b"\x4c\x6f\xa7\x94"


# --------------------------------------------------------------------------- #
# Safe parsing
# --------------------------------------------------------------------------- #


def _refuse_declarations(data: bytes) -> None:
    """Raise :class:`UnsafeXML` if the payload declares a DTD, entity or element."""
    found = _DECLARATION.search(data)
    if found is None:
        for bom, encoding in _WIDE_ENCODINGS:
            if data.startswith(bom):
                try:
                    text = data.decode(encoding)
                except UnicodeDecodeError as exc:
                    raise MalformedPayload(f"cannot decode {encoding} payload: {exc}") from exc
                match = _DECLARATION_TEXT.search(text)
                if match is not None:
                    raise UnsafeXML(
                        f"<!{match.group(1).upper()} declaration refused "
                        "(DTDs and entities are never accepted)"
                    )
                break
        return
    raise UnsafeXML(
        f"<!{found.group(1).decode().upper()} declaration at byte {found.start()} refused "
        "(DTDs and entities are never accepted)"
    )


#: Most attributes accepted on one element (VOEvent elements carry fewer than ten).
MAX_ATTRIBUTES = 256
_START_TAG = re.compile(rb"<[^<>!?/][^<>]*>")


def _refuse_attribute_floods(data: bytes) -> None:
    """Refuse an element with more than :data:`MAX_ATTRIBUTES` attributes before lxml
    sees it: libxml2 checks attribute names in quadratic time (40,000 attributes,
    0.6 MB, took 15 s), a stall no tree-builder callback can interrupt."""
    for match in _START_TAG.finditer(data):
        if match.group().count(b"=") > MAX_ATTRIBUTES:
            raise UnsafeXML(f"an element has more than {MAX_ATTRIBUTES} attributes")


class _GuardedTreeBuilder:
    """lxml parser target that builds the tree and stops at the first excess.

    lxml calls these methods while it parses, so raising here aborts the parse at
    the element that crosses a limit, before the rest of the document is read.
    """

    def __init__(self, max_depth: int, max_elements: int) -> None:
        self._builder = etree.TreeBuilder()
        self._max_depth = max_depth
        self._max_elements = max_elements
        self._depth = 0
        self._count = 0
        self.error: UnsafeXML | None = None

    def _refuse(self, message: str) -> UnsafeXML:
        # lxml calls close() after a target raised; keeping the error lets close()
        # raise it again instead of the tree builder's "missing end tags".
        self.error = UnsafeXML(message)
        return self.error

    def start(self, tag: str, attrib: dict[str, str]) -> etree._Element:
        self._depth += 1
        self._count += 1
        if self._depth > self._max_depth:
            raise self._refuse(f"element nesting deeper than {self._max_depth} levels")
        if self._count > self._max_elements:
            raise self._refuse(f"more than {self._max_elements} elements")
        return self._builder.start(tag, attrib)

    def end(self, tag: str) -> etree._Element:
        self._depth -= 1
        return self._builder.end(tag)

    def data(self, data: str) -> None:
        self._builder.data(data)

    def doctype(self, name: str | None, pubid: str | None, system: str | None) -> None:
        raise self._refuse(f"document type declaration {name!r} refused")

    def close(self) -> etree._Element | None:
        if self.error is not None:
            raise self.error
        try:
            return self._builder.close()
        except etree.XMLSyntaxAssertionError:
            # An incomplete tree: lxml then raises the parser's own syntax error.
            return None


def _new_parser(target: _GuardedTreeBuilder) -> etree.XMLParser:
    return etree.XMLParser(
        target=target,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def _syntax_error(exc: etree.LxmlError) -> MalformedPayload | UnsafeXML:
    text = str(exc)
    if any(marker in text for marker in _LIBXML2_LIMITS):
        return UnsafeXML(f"document exceeds the parser's safety limits: {text}")
    return MalformedPayload(f"not well-formed XML: {text}")


def parse_xml(
    payload: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> etree._Element:
    """Parse an untrusted XML payload safely and return its root element.

    Parameters
    ----------
    payload : bytes
        The raw payload as received (bytes, bytearray or memoryview).
    max_bytes : int, optional
        Largest payload accepted (default :data:`DEFAULT_MAX_BYTES`, 10 MiB).  Checked
        before any parsing, so an oversized payload costs nothing but its length.
    max_depth : int, optional
        Deepest element nesting accepted (default :data:`DEFAULT_MAX_DEPTH`).
    max_elements : int, optional
        Most elements accepted (default :data:`DEFAULT_MAX_ELEMENTS`).

    Returns
    -------
    lxml.etree._Element
        Root element of the document (comments and processing instructions removed).

    Raises
    ------
    UnsafeXML
        Oversized payload, DTD or entity declaration, too deep or too many elements.
    MalformedPayload
        Empty, not bytes, or not well-formed XML.

    Examples
    --------
    >>> parse_xml(b"<a><b>1</b></a>").findtext("b")
    '1'
    >>> parse_xml(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')
    Traceback (most recent call last):
    ...
    mm_broker.core.errors.UnsafeXML: unsafe_xml: <!DOCTYPE declaration at byte 0 refused \
(DTDs and entities are never accepted)
    """
    if isinstance(payload, memoryview):
        size = payload.nbytes
    elif isinstance(payload, bytes | bytearray):
        size = len(payload)
    else:
        raise MalformedPayload(f"payload must be bytes, not {type(payload).__name__}")
    if size > max_bytes:
        raise UnsafeXML(f"payload of {size} bytes exceeds the limit of {max_bytes} bytes")
    data = bytes(payload)  # no copy for bytes; bounded by max_bytes otherwise
    if not data or data.isspace():
        raise MalformedPayload("empty payload")
    _refuse_declarations(data)

    if data.startswith(_EBCDIC):
        raise MalformedPayload("EBCDIC-encoded XML is not accepted")
    _refuse_attribute_floods(data)

    parser = _new_parser(_GuardedTreeBuilder(max_depth, max_elements))
    try:
        for offset in range(0, len(data), _CHUNK):
            parser.feed(data[offset : offset + _CHUNK])
        root: etree._Element = parser.close()
    except NoticeError:
        raise
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc) from exc
    except etree.ParserError as exc:
        raise MalformedPayload(f"not well-formed XML: {exc}") from exc
    except (LookupError, UnicodeError) as exc:  # unknown or inconsistent encoding
        raise MalformedPayload(f"cannot decode payload: {exc}") from exc
    except ValueError as exc:  # lxml refuses a name or namespace URI while building
        raise MalformedPayload(f"not well-formed XML: {exc}") from exc
    if root is None:
        raise MalformedPayload("not well-formed XML: no root element")
    return root
