"""Hostile XML is refused quickly, with a clear error, and nothing is fetched."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub import records
from hub.records import Limits

DOCUMENT = (Path(__file__).parent.parent / "examples" / "records" / "document.xml").read_bytes()


def refused(data: bytes, limits: Limits = records.DEFAULT_LIMITS) -> str:
    with pytest.raises(records.RecordInvalid) as caught:
        records.parse(data, "evil.xml", limits=limits)
    return str(caught.value)


@pytest.fixture
def parser_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the XML parser is reached: the refusal must come before it,
    which is what makes it quick whatever the document would have cost to parse."""

    def reached() -> None:
        raise AssertionError("the document reached the XML parser")

    monkeypatch.setattr(records.safe_xml, "hardened_parser", reached)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<record xmlns="urn:govhub:record:1" kind="news"><title>&lol9;</title></record>
"""


def with_doctype(doctype: str, title: str) -> bytes:
    text = DOCUMENT.decode().replace('<?xml version="1.0" encoding="UTF-8"?>\n', "")
    text = text.replace("<title>", f"<title>{title}", 1)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}\n{text}'.encode()


@pytest.mark.usefixtures("parser_unreachable")
def test_billion_laughs_is_refused_quickly() -> None:
    message = refused(BILLION_LAUGHS)
    assert "evil.xml:1: record: a <!DOCTYPE> declaration is not allowed" in message


@pytest.mark.usefixtures("parser_unreachable")
def test_external_file_entity_is_not_read() -> None:
    data = with_doctype('<!DOCTYPE record [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;")
    message = refused(data)
    assert "DOCTYPE" in message
    assert "root:" not in message


def test_parameter_entity_and_external_dtd_are_refused() -> None:
    data = with_doctype('<!DOCTYPE record SYSTEM "file:///etc/passwd">', "")
    assert "DOCTYPE" in refused(data)
    data = with_doctype('<!DOCTYPE record [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>', "")
    assert "evil.xml" in refused(data)


@pytest.fixture
def loopback_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY leak "fetched">')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        thread.join()


def test_network_entities_and_dtds_are_never_fetched(
    loopback_server: tuple[str, list[str]],
) -> None:
    url, hits = loopback_server
    attempts = [
        with_doctype(f'<!DOCTYPE record [<!ENTITY net SYSTEM "{url}/entity">]>', "&net;"),
        with_doctype(f'<!DOCTYPE record SYSTEM "{url}/dtd">', ""),
        with_doctype(f'<!DOCTYPE record [<!ENTITY % p SYSTEM "{url}/param"> %p;]>', ""),
    ]
    for data in attempts:
        refused(data)
    xinclude = DOCUMENT.replace(
        b"<summary>",
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{url}/xi"/><summary>'.encode(),
    )
    refused(xinclude)
    assert hits == []


def test_undefined_entity_is_a_clear_error() -> None:
    message = refused(DOCUMENT.replace(b"<title>", b"<title>&nbsp;"))
    assert "evil.xml:7: record: entities are not allowed" in message


@pytest.mark.usefixtures("parser_unreachable")
def test_oversized_input_is_refused_before_parsing() -> None:
    limits = Limits(max_bytes=1_000)
    message = refused(DOCUMENT, limits)
    assert (
        f"evil.xml: record: document is {len(DOCUMENT):,} bytes, over the limit of 1,000" in message
    )
    huge = DOCUMENT.replace(b"<summary>", b"<summary>" + "很".encode() * 2_000_000)
    assert "over the limit of 4,194,304" in refused(huge)


def test_deep_nesting_is_refused_by_the_parser() -> None:
    deep = (
        b"<record xmlns='urn:govhub:record:1'>"
        + b"<a>" * 100_000
        + b"</a>" * 100_000
        + b"</record>"
    )
    message = refused(deep)
    assert "elements nest deeper than 256 levels" in message


def test_deep_body_is_refused_by_the_depth_limit() -> None:
    nested = "<div>" * 70 + "深" + "</div>" * 70
    body = f'<div xmlns="http://www.w3.org/1999/xhtml">{nested}</div>'
    data = DOCUMENT.replace(b"<body>", f"<body>{body}".encode())
    message = refused(data)
    assert "evil.xml:19: body: markup nests more than 64 levels deep" in message
    assert records.parse(data, limits=Limits(max_depth=100)).body is not None


def test_not_xml_at_all() -> None:
    message = refused(b"\x89PNG\r\n\x1a\n")
    assert message.startswith("evil.xml:1: record: not well-formed XML:")
    assert "expected well-formed XML" in message


def test_truncated_record_names_the_line() -> None:
    message = refused(DOCUMENT[: DOCUMENT.index(b"<genre>")])
    assert message.startswith("evil.xml:")
    assert "not well-formed XML" in message


def test_utf16_doctype_is_refused_too() -> None:
    data = with_doctype('<!DOCTYPE record [<!ENTITY x "y">]>', "&x;").decode()
    data = data.replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert "DOCTYPE" in refused(data.encode("utf-16"))


def test_comments_and_processing_instructions_are_dropped() -> None:
    data = DOCUMENT.replace(b"<summary>", b"<!-- internal note --><?cms page=1?><summary>")
    record = records.parse(data)
    assert b"internal note" not in record.to_xml()
    assert record == records.parse(DOCUMENT)


@pytest.mark.parametrize(
    "prolog",
    [
        b"<?p?>" * 5000,
        b"\n" * 100_000,
        b"<!-- -->" * 5000 + b"<!--" + b"-" * 10_000,
        b"<?" + b"?" * 50_000,
    ],
    ids=["many-pis", "many-blank-lines", "many-comments", "unclosed-pi"],
)
def test_prolog_scan_is_linear_on_hostile_prologs(prolog: bytes) -> None:
    # A scan that backtracked on these would not finish; a linear one answers at once.
    declares = records.safe_xml.declares_doctype(
        b'<?xml version="1.0"?>' + prolog + b"<!DOCTYPE x><x/>"
    )
    assert declares == (
        prolog.count(b"<!--") == prolog.count(b"-->") and not prolog.startswith(b"<??")
    )


def test_doctype_after_comments_and_pis_is_found() -> None:
    data = b'<?xml version="1.0"?>\n<!-- a -->\n<?pi x?>\n<!DOCTYPE r [<!ENTITY e "x">]>\n<r/>'
    assert records.safe_xml.declares_doctype(data)
    assert not records.safe_xml.declares_doctype(b"<r><![CDATA[<!DOCTYPE r>]]></r>")


@pytest.mark.parametrize(
    "doctype",
    [
        "<!DOCTYPE record>",
        '<!DOCTYPE record SYSTEM "file:///etc/passwd">',
        '<!DOCTYPE record PUBLIC "-//govhub//x" "x.dtd">',
        '<!DOCTYPE record [<!ENTITY x "expanded">]>',
    ],
    ids=["bare", "system", "public", "internal-subset"],
)
def test_a_doctype_that_slips_past_the_prolog_scan_is_still_refused(
    doctype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records.safe_xml, "declares_doctype", lambda data: False)
    message = refused(with_doctype(doctype, ""))
    assert "a <!DOCTYPE> declaration is not allowed" in message


def test_the_parser_itself_reads_no_external_subset(
    tmp_path: Path, loopback_server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind the prolog scan, the parser alone opens neither a file nor a URL."""
    monkeypatch.setattr(records.safe_xml, "declares_doctype", lambda data: False)
    not_a_dtd = tmp_path / "subset.dtd"
    not_a_dtd.write_text("this would fail to parse as a DTD, had it been read")
    url, hits = loopback_server
    for system in (not_a_dtd.as_uri(), f"{url}/subset.dtd"):
        message = refused(with_doctype(f'<!DOCTYPE record SYSTEM "{system}">', ""))
        assert "a <!DOCTYPE> declaration is not allowed" in message, message
    assert hits == []
