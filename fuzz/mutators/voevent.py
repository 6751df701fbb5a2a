"""Mutations of a VOEvent (XML) notice.

Text edits (what no tree can hold): DTD and entity declarations, entity and character
references, deep nesting, element and attribute floods, huge text, UTF-16/UTF-32/EBCDIC
transcoding, declared encodings, namespaces and versions, comments, PIs, CDATA and
XInclude. Tree edits of the parsed seed: Param values, texts, dropped, duplicated,
renamed or moved elements, attributes, role, and the IVORN and Packet_Type routed to
another registered mission's parser.
"""

from __future__ import annotations

import copy
import random
import re

from lxml import etree  # noqa: S410 - parses only the trusted seed files, entities off

from fuzz.corpus import NoticeSeed
from fuzz.mutators.common import position, weighted
from listeners.parsers.voevent_registry import REGISTRY

#: DTD, entity and other declarations (every one must be refused).
XML_DECLARATIONS: tuple[bytes, ...] = (
    b'<!DOCTYPE VOEvent [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>',
    b'<!DOCTYPE VOEvent [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE VOEvent SYSTEM "http://127.0.0.1:9/evil.dtd">',
    b'<!DOCTYPE VOEvent [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>',
    b'<!DOCTYPE VOEvent PUBLIC "-//x//y" "file:///dev/random">',
    b"<!ELEMENT VOEvent ANY>",
    b'<!ATTLIST VOEvent role CDATA "test">',
    b'<!NOTATION n SYSTEM "x">',
    b"<! DOCTYPE VOEvent>",
    b"<!doctype VOEvent>",
    b'<!\nENTITY x "y">',
    b"<!DOCTYPE VOEvent [<!ENTITY x \"&#60;y/&#62;\">]>",
)
#: References inserted in texts or attribute values.
XML_REFERENCES: tuple[bytes, ...] = (
    b"&xxe;", b"&d;", b"&#0;", b"&#xD800;", b"&#x110000;", b"&#65;", b"&#x1F600;", b"&lt;",
    b"&undefined;", b"&amp", b"&#;", b"&#x;", b"&#99999999999;",
)
#: Other nodes inserted between elements.
XML_NODES: tuple[bytes, ...] = (
    b"<!-- c -->", b"<!--", b"<?pi x?>", b'<?xml-stylesheet href="http://127.0.0.1:9/x.xsl"?>',
    b"<![CDATA[<x>&amp;]]>", b"<![CDATA[",
    b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" '
    b'parse="text"/>',
    b"\x00", b"\xef\xbb\xbf", b"\xc3\x28", b"\xed\xa0\x80",
    b"<original_prefix>voe</original_prefix>", b'<?xml version="1.0"?>', b"</VOEvent>",
    b"<Param/>", b'<Param name="Packet_Type" value="115"/>',
)
#: Values for Param ``value`` attributes and element texts.
XML_VALUES: tuple[str, ...] = (
    "", " ", "NaN", "nan", "-nan", "inf", "-inf", "Infinity", "1e999", "-1e999", "1e308",
    "-1", "0", "-0", "360", "360.0001", "-90.0001", "90", "180", "1e-320", "9" * 40, "0x1F",
    "0xZZ", "abc", " 12 ", "1,5", "1.5.2", "true", "false", "\u00e9", "x" * 5000,
    "2024-01-15T16:45:37.62", "2024-01-15T16:45:37.62Z", "2024-01-15T16:45:37.62+05:00",
    "0001-01-01T00:00:00", "9999-12-31T23:59:59.999999", "2024-02-30T00:00:00", "1970-01-01",
    "24:00:00", "2024-01-15T16:45:37.6212345678", "2024-13-45T99:99:99", "-1e-300", "3.4e38",
    "NULL", "None", "115", "61", "150", "173", "-2147483649", "18446744073709551616",
)
_XML_TAGS = ("Param", "Group", "Position2D", "C1", "C2", "Error2Radius", "What", "WhereWhen",
             "ISOTime", "Who", "Date", "AstroCoords", "x", "Value2", "TimeInstant")
_XML_ATTRS = ("value", "name", "unit", "dataType", "ucd", "role", "ivorn", "version",
              "coord_system_id", "type", "cite")
_XML_ATTR_VALUES = ("", "deg", "rad", "arcmin", "arcsec", "test", "utility", "observation",
                    "OBSERVATION", "UTC-FK5-GEO", "TT-ICRS-TOPO", "GPS-ICRS-GEO", "float",
                    "int", "string", "boolean", "retraction", "followup", "supersedes",
                    "ivo://", "ivo://nasa.gsfc.gcn/Fermi#x", "1.1", "2.0", "NaN")
_VOEVENT_NS = b"http://www.ivoa.net/xml/VOEvent/v2.0"
_ROOT_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?VOEvent\b[^>]*>")
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")
_SEED_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                               huge_tree=False)


def _after_root(data: bytes) -> int:
    match = _ROOT_START.search(data)
    if match:
        return match.end()
    end = data.find(b">")
    return end + 1 if end >= 0 else 0


def _after_decl(data: bytes) -> int:
    match = _XML_DECL.search(data)
    return match.end() if match else 0


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _xml_tree_edit(rng: random.Random, root: etree._Element) -> str:
    """One edit of a parsed (seed) VOEvent tree."""
    elements = _elements(root)
    inner = elements[1:]
    params = [e for e in inner if _local(e) == "Param"]
    texts = [e for e in inner if e.text and e.text.strip()]
    ops = [("param_value", 30 if params else 0), ("text", 22 if texts else 0),
           ("drop", 12), ("dup", 7), ("rename", 4), ("move", 4), ("attr", 9), ("route", 10),
           ("role", 3), ("swap", 4 if len(params) > 1 else 0)]
    op = weighted(rng, [(n, w) for n, w in ops if w])
    if not inner and op in ("drop", "dup", "rename", "move", "attr"):
        op = "role"
    if op == "param_value":
        rng.choice(params).set("value", rng.choice(XML_VALUES))
    elif op == "text":
        rng.choice(texts).text = rng.choice(XML_VALUES)
    elif op == "drop":
        el = rng.choice(inner)
        parent = el.getparent()
        if parent is not None:
            parent.remove(el)
    elif op == "dup":
        el = rng.choice(inner)
        parent = el.getparent()
        if parent is not None:
            parent.insert(parent.index(el) + 1, copy.deepcopy(el))
    elif op == "rename":
        rng.choice(inner).tag = rng.choice(_XML_TAGS)
    elif op == "move":
        el = rng.choice(inner)
        targets = [e for e in elements if e is not el and el not in e.iterancestors()]
        parent = el.getparent()
        if parent is not None and targets:
            parent.remove(el)
            rng.choice(targets).append(el)
    elif op == "attr":
        el = rng.choice(inner)
        if el.attrib and rng.random() < 0.3:
            del el.attrib[rng.choice(sorted(el.attrib))]
        else:
            el.set(rng.choice(_XML_ATTRS), rng.choice(_XML_ATTR_VALUES))
    elif op == "route":
        _route(rng, root, params)
    elif op == "role":
        root.set("role", rng.choice(("observation", "test", "utility", "", "OBSERVATION",
                                     "prediction", "x" * 300)))
    else:
        first, second = rng.sample(params, 2)
        a, b = first.get("value"), second.get("value")
        first.set("value", b or "")
        second.set("value", a or "")
    return f"xml.tree.{op}"


def _route(rng: random.Random, root: etree._Element, params: list[etree._Element]) -> None:
    """Send the packet to another registered parser: IVORN stream and Packet_Type."""
    _, (stream, packet_type) = rng.choice(sorted(REGISTRY, key=repr))
    root.set("ivorn", f"{stream}#fuzz_{rng.randrange(10**6)}")
    found = [p for p in params if p.get("name") == "Packet_Type"]
    if packet_type is None:
        for p in found:
            p.getparent().remove(p)
        return
    if found:
        found[0].set("value", str(packet_type))
        return
    what = [e for e in _elements(root) if _local(e) == "What"]
    parent = what[0] if what else root
    etree.SubElement(parent, "Param", name="Packet_Type", value=str(packet_type))


def _xml_text_edit(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """One textual mutation of an XML payload (what no tree can hold)."""
    op = weighted(rng, [("entity", 14), ("reference", 8), ("nest", 10), ("flood", 3),
                        ("attr_flood", 3), ("huge_text", 2), ("transcode", 10),
                        ("encoding", 6), ("namespace", 10), ("node", 10)])
    root_end = _after_root(data)
    if op == "entity":
        decl = rng.choice(XML_DECLARATIONS)
        at = rng.choice((_after_decl(data), 0, position(rng, len(data)) if data else 0))
        out = data[:at] + decl + data[at:]
        if rng.random() < 0.5:
            ins = _after_root(out)
            out = out[:ins] + b"<Description>&xxe;&d;</Description>" + out[ins:]
        return out, "xml.entity"
    if op == "reference":
        at = position(rng, len(data)) if data else 0
        return data[:at] + rng.choice(XML_REFERENCES) + data[at:], "xml.reference"
    if op == "nest":
        depth = rng.choice((8, 24, 31, 32, 33, 100, 5000, 200_000))
        tag = rng.choice((b"d", b"Group", b"What"))
        nested = (b"<" + tag + b">") * depth + (b"</" + tag + b">") * depth
        return data[:root_end] + nested + data[root_end:], "xml.nest"
    if op == "flood":
        count = rng.choice((100, 19_990, 20_001, 60_000))
        blob = b"".join(b'<Param name="p%d" value="1"/>' % i for i in range(count))
        return data[:root_end] + blob + data[root_end:], "xml.flood"
    if op == "attr_flood":
        count = rng.choice((100, 1_000, 10_000, 50_000))
        if rng.random() < 0.2:
            blob = b'<Param name="x" name="y" value="1"/>'
        else:
            blob = (b'<Param name="x" ' + b" ".join(b'a%d="%d"' % (i, i) for i in range(count))
                    + b"/>")
        return data[:root_end] + blob + data[root_end:], "xml.attr_flood"
    if op == "huge_text":
        size = rng.choice((100_000, 3_000_000, 10 * 2**20 + 1))
        blob = b"<Description>" + b"A" * size + b"</Description>"
        return data[:root_end] + blob + data[root_end:], "xml.huge_text"
    if op == "transcode":
        encoding = rng.choice(("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                               "utf-32-be", "cp037", "latin-1"))
        text = data.decode("utf-8", "replace")
        if rng.random() < 0.4:
            at = _after_decl(data)
            text = text[:at] + XML_DECLARATIONS[1].decode() + text[at:]
        if rng.random() < 0.7:
            text = re.sub(r'encoding="[^"]*"', f'encoding="{encoding}"', text, count=1)
        return text.encode(encoding, "replace"), f"xml.transcode.{encoding}"
    if op == "encoding":
        name = rng.choice((b"UTF-16", b"UTF-32", b"EBCDIC-US", b"ISO-8859-1", b"bogus-enc",
                           b"UTF-7", b"ascii", b"SHIFT_JIS", b"cp037", b""))
        decl = b'<?xml version="1.0" encoding="' + name + b'"?>'
        at = _after_decl(data)
        return decl + data[at:], "xml.encoding"
    if op == "namespace":
        choice = rng.randrange(4)
        if choice == 0:
            new = rng.choice((b"http://www.ivoa.net/xml/VOEvent/v1.1", b"",
                              b"http://example.invalid/", b"http://www.ivoa.net/xml/VOEvent/v2.1"))
            return data.replace(_VOEVENT_NS, new, 1), "xml.namespace.uri"
        if choice == 1:
            new = rng.choice((b'version="1.1"', b'version="3.0"', b'version=""', b""))
            return data.replace(b'version="2.0"', new, 1), "xml.namespace.version"
        if choice == 2:
            return data.replace(b"voe:VOEvent", b"VOEvent"), "xml.namespace.prefix"
        return data.replace(b"xmlns:voe=", b"xmlns:vox=", 1), "xml.namespace.unbound"
    ends = [m.end() for m in re.finditer(rb">", data[:20_000])] or [0]
    at = rng.choice(ends)
    return data[:at] + rng.choice(XML_NODES) + data[at:], "xml.node"


def structured(rng: random.Random, seed: NoticeSeed,
               count: int) -> tuple[bytes, list[str]] | None:
    """Apply ``count`` structured mutations (tree or text edits) to an XML seed.

    Parameters
    ----------
    rng : random.Random
        Source of every choice.
    seed : NoticeSeed
        A VOEvent notice.
    count : int
        Number of mutations.

    Returns
    -------
    (bytes, list of str)
        The payload and the mutations applied (never None: a seed lxml cannot read
        gets text edits only).
    """
    data = seed.data
    ops: list[str] = []
    n_tree = sum(rng.random() < 0.6 for _ in range(count))
    if n_tree:
        try:
            root = etree.fromstring(data, _SEED_PARSER)  # noqa: S320 - trusted seed file
        except etree.XMLSyntaxError:
            root = None
        if root is not None:
            for _ in range(n_tree):
                ops.append(_xml_tree_edit(rng, root))
            data = etree.tostring(root, xml_declaration=rng.random() < 0.7, encoding="UTF-8")
        else:
            n_tree = 0
    for _ in range(count - n_tree):
        data, op = _xml_text_edit(rng, data)
        ops.append(op)
    return data, ops
