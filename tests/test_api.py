"""The JSON API and its OpenAPI document, over real HTTP on loopback, on real PostgreSQL.

Every JSON body the tests receive is checked against the schema that
``/openapi.json`` states for it (a small JSON Schema checker below: types,
required properties, items, enums, ``$ref``, ``anyOf``, date-time format),
and the document itself is checked for the structure OpenAPI 3.1 asks for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import support.postgres as postgres_fixtures
from aiohttp import web
from lxml import etree
from psycopg_pool import AsyncConnectionPool
from test_search import CORPUS, DAY0, FEDERATION, ROOT, follow, make_record, store

from hub.records import Status, parse
from hub.store.connection import Connection
from hub.web.api import openapi
from hub.web.api import params as api_params
from hub.web.api import records as api
from hub.web.api import search as web_search
from hub.web.context import PORTAL, Portal

pg_url = postgres_fixtures.own_pg_url  # reads the change feed: a server of its own
pg_conn = postgres_fixtures.pg_conn

Work = Callable[["Client"], Awaitable[None]]


@dataclasses.dataclass
class Client:
    session: aiohttp.ClientSession
    base: str
    document: dict[str, Any]
    app: web.Application

    async def get(self, path: str, **params: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with self.session.get(self.base + path, params=params or None) as response:
            if response.content_type == "application/json":
                return response.status, await response.json(), response
            return response.status, await response.text(), response

    async def json(self, path: str, schema: str, **params: Any) -> Any:
        """GET ``path``; expect 200 and a body valid against component ``schema``."""
        status, body, _ = await self.get(path, **params)
        assert status == 200, body
        check(body, {"$ref": f"#/components/schemas/{schema}"}, self.document)
        return body

    async def error(self, path: str, status: int, parameter: str | None, **params: Any) -> str:
        """GET ``path``; expect the one error shape with ``status`` naming ``parameter``."""
        got, body, response = await self.get(path, **params)
        assert got == status, body
        assert response.content_type == "application/json"
        check(body, {"$ref": "#/components/schemas/Error"}, self.document)
        assert body["status"] == status
        assert body["parameter"] == parameter, body
        return str(body["error"])


def serve(url: str, work: Work, scope: str = "cn") -> None:
    async def go() -> None:
        async with AsyncConnectionPool(url, min_size=1, max_size=4, open=False) as pool:
            portal = Portal(FEDERATION, pool, "", scope)
            app = web.Application()
            app[PORTAL] = portal
            api.setup(app)
            web_search.setup(app)
            openapi.setup(app)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            portal.base_url = f"http://127.0.0.1:{port}"
            try:
                async with aiohttp.ClientSession() as session:
                    async with session.get(portal.base_url + "/openapi.json") as response:
                        document = await response.json()
                    await work(Client(session, portal.base_url, document, app))
            finally:
                await runner.cleanup()

    asyncio.run(go())


# -- a small JSON Schema checker (no new dependency) ---------------------------------------


def check(value: Any, schema: dict[str, Any], document: dict[str, Any], at: str = "$") -> None:
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        check(value, document["components"]["schemas"][name], document, at)
        return
    if "anyOf" in schema:
        check_any(value, schema["anyOf"], document, at)
        return
    if "type" in schema:
        check_type(value, schema["type"], at)
    if "enum" in schema and value is not None:
        assert value in schema["enum"], f"{at}: {value!r} not in {schema['enum']}"
    if schema.get("format") == "date-time" and isinstance(value, str):
        assert datetime.fromisoformat(value).tzinfo is not None, f"{at}: {value!r}"
    if isinstance(value, dict) and "properties" in schema:
        for name in schema.get("required", []):
            assert name in value, f"{at}: {name} missing"
        assert set(value) <= set(schema["properties"]), (
            f"{at}: {set(value) - set(schema['properties'])}"
        )
        for name, item in value.items():
            check(item, schema["properties"][name], document, f"{at}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            check(item, schema["items"], document, f"{at}[{index}]")


def check_any(value: Any, options: list[Any], document: dict[str, Any], at: str) -> None:
    failures = []
    for option in options:
        try:
            check(value, option, document, at)
            return
        except AssertionError as exc:
            failures.append(str(exc))
    raise AssertionError(f"{at}: matches no anyOf option: {failures}")


def check_type(value: Any, types: str | list[str], at: str) -> None:
    python = {
        "string": str,
        "integer": int,
        "boolean": bool,
        "object": dict,
        "array": list,
        "null": type(None),
    }
    names = types if isinstance(types, list) else [types]
    ok = any(
        isinstance(value, python[n]) and not (n == "integer" and isinstance(value, bool))
        for n in names
    )
    assert ok, f"{at}: {value!r} is not {names}"


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


@pytest.fixture
def loaded(pg_conn: Connection, pg_url: str) -> str:
    store(pg_conn, CORPUS)
    follow(pg_conn)
    return pg_url


# -- the OpenAPI document ----------------------------------------------------------------


def test_openapi_document_is_31_and_matches_the_routes(pg_url: str) -> None:
    async def work(client: Client) -> None:
        doc = client.document
        assert re.fullmatch(r"3\.1\.\d+", doc["openapi"])
        assert doc["info"]["title"] and doc["info"]["version"]
        routes = {
            (r.method, r.resource.canonical)
            for r in client.app.router.routes()
            if r.resource is not None and r.resource.canonical.startswith("/api/")
        }
        described = {
            (method.upper(), path) for path, item in doc["paths"].items() for method in item
        }
        assert routes == described
        assert {p for _, p in routes} >= {
            "/api/records/{id}",
            "/api/records",
            "/api/nodes",
            "/api/nodes/{id}",
            "/api/search",
        }
        schemas = doc["components"]["schemas"]
        for ref in refs(doc):
            assert ref.startswith("#/components/schemas/") and ref.split("/")[-1] in schemas
        for path, item in doc["paths"].items():
            template = set(re.findall(r"{(\w+)}", path))
            for operation in item.values():
                assert operation["operationId"] and operation["responses"]["200"]
                names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
                assert names == template, path
                for param in operation["parameters"]:
                    assert param["in"] in ("query", "path") and "schema" in param
                    assert param["in"] == "query" or param["required"] is True
                for status, response in operation["responses"].items():
                    assert re.fullmatch(r"[1-5]\d\d", status) and response["description"]
                    if status != "200":
                        error = response["content"]["application/json"]["schema"]
                        assert error == {"$ref": "#/components/schemas/Error"}
        ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
        assert len(ids) == len(set(ids))

    serve(pg_url, work)


# -- records ----------------------------------------------------------------------------


def test_record_by_id_as_json_and_xml(loaded: str, pg_conn: Connection) -> None:
    record = CORPUS[5]

    async def work(client: Client) -> None:
        body = await client.json(f"/api/records/{record.id}", "Record")
        assert body["id"] == record.id and body["title"] == record.title
        assert body["docNumber"] == "国办发〔2006〕104号"
        assert body["published"] == "2024-01-02T09:00:00+08:00"
        assert body["origin"] == {"node": "cn", "site": "bm01000001"}
        assert body["topic"] == {"top": "综合政务", "sub": None}
        assert body["issuers"] == ["测试机关"] and body["attachments"] == []
        assert body["body"] == record.body
        status, xml, response = await client.get(f"/api/records/{record.id}", format="xml")
        assert status == 200 and response.content_type == "application/xml"
        assert parse(xml.encode()) == record
        assert 'rel="alternate"' in response.headers["Link"]
        async with client.session.get(
            client.base + f"/api/records/{record.id}", headers={"Accept": "application/xml"}
        ) as accepted:
            assert accepted.content_type == "application/xml"
        await client.error("/api/records/urn:govhub:cn:nothing", 404, "id")
        await client.error("/api/records/not-an-id", 400, "id")
        await client.error(f"/api/records/{record.id}", 400, "format", format="pdf")

    serve(loaded, work)


def test_record_filters_are_exact(loaded: str) -> None:
    async def listed(client: Client, **params: Any) -> list[str]:
        body = await client.json("/api/records", "RecordPage", **params)
        return [r["id"].rsplit(":", 1)[1] for r in body["records"]]

    async def work(client: Client) -> None:
        everything = await listed(client)
        newest_first = sorted(CORPUS, key=lambda r: (r.published, r.id), reverse=True)
        assert everything == [r.id.rsplit(":", 1)[1] for r in newest_first]
        assert await listed(client, node="gz") == ["t2", "t1"]
        assert await listed(client, scope="gd") == ["t2", "t5", "t1", "t3"]
        assert await listed(client, scope="he") == ["t8", "t7"]
        assert await listed(client, kind="news") == ["t7"]
        assert await listed(client, topic="城乡建设、环境保护") == ["t8"]
        assert await listed(client, issuer="测试机关") == everything
        assert await listed(client, issuer="别的机关") == []
        assert await listed(client, lang="en") == ["t7"]
        assert await listed(client, validity="in-force") == [
            i for i in everything if i not in ("t7", "t8")
        ]
        window = {"from": "2024-01-11", "to": "2024-01-31"}
        assert await listed(client, **window) == ["t2", "t5", "t7", "t1"]
        assert await listed(client, **{"from": "2024-01-11T09:00:00+08:00"}) == [
            "t8",
            "t4",
            "t2",
            "t5",
            "t7",
            "t1",
        ]

    serve(loaded, work)


def test_bad_parameters_are_400_naming_them(loaded: str) -> None:
    async def work(client: Client) -> None:
        cases = [
            ("limit", {"limit": "0"}),
            ("limit", {"limit": "201"}),
            ("limit", {"limit": "ten"}),
            ("kind", {"kind": "memo"}),
            ("topic", {"topic": "天气"}),
            ("validity", {"validity": "valid"}),
            ("lang", {"lang": "fr"}),
            ("from", {"from": "2024-13-01"}),
            ("to", {"to": "2024-01-01T00:00:00"}),
            ("from", {"from": "2024-02-30"}),
            ("to", {"to": "2024-01-01T24:00:00+08:00"}),
            ("issuer", {"issuer": "测试\x00机关"}),
            ("issuer", {"issuer": " "}),
            ("issuer", {"issuer": "机" * (api.MAX_ISSUER + 1)}),
            ("cursor", {"cursor": "2024-02-30T09:00:00+08:00|urn:govhub:gd:x-1"}),
            ("node", {"node": ""}),
            ("node", {"node": "nowhere"}),
            ("scope", {"scope": "Not An Id"}),
            ("cursor", {"cursor": "yesterday"}),
            ("colour", {"colour": "red"}),
        ]
        for parameter, params in cases:
            await client.error("/api/records", 400, parameter, **params)
        status, body, _ = await client.get("/api/records?kind=news&kind=notice")
        assert status == 400 and body["parameter"] == "kind"
        await client.error("/api/search", 400, "q")
        for q in ("", "。", "碳汇 。", "a\x00b", " ".join("碳汇" for _ in range(9)), "碳" * 201):
            await client.error("/api/search", 400, "q", q=q)
        message = await client.error("/api/search", 400, "limit", q="碳汇", limit="101")
        assert f"1 to {web_search.MAX_LIMIT}" in message
        message = await client.error("/api/records", 400, "limit", limit="201")
        assert f"1 to {api_params.MAX_LIMIT}" in message
        await client.error("/api/nothing-here", 404, None)
        # a period that ends before it begins holds no record
        body = await client.json(
            "/api/records", "RecordPage", **{"from": "2024-02-01", "to": "2024-01-01"}
        )
        assert body["records"] == []
        body = await client.json("/api/records", "RecordPage", to="9999-12-31")
        assert len(body["records"]) == len(CORPUS)

    serve(loaded, work)


def test_pages_while_records_change(loaded: str, pg_conn: Connection) -> None:
    """Cursor pages: no duplicate and no gap, though records are updated between pages."""
    extra = [make_record(f"p{n:02}", f"第{n}号公告", node="sz", day=n % 7) for n in range(30)]
    store(pg_conn, extra)
    expected = [
        r.id for r in sorted(CORPUS + extra, key=lambda r: (r.published, r.id), reverse=True)
    ]

    async def work(client: Client) -> None:
        seen: list[str] = []
        body = await client.json("/api/records", "RecordPage", limit="4")
        revision = 2
        while True:
            seen += [r["id"] for r in body["records"]]
            # update (new revision, same published) and withdraw records before the next page
            changed = [
                dataclasses.replace(r, revision=revision, title=r.title + "（修订）")
                for r in extra[::5]
            ]
            gone = dataclasses.replace(
                extra[1], revision=revision, status=Status("withdrawn", "重复", DAY0)
            )
            await asyncio.to_thread(store, pg_conn, [*changed, gone])
            revision += 1
            if body["next"] is None:
                break
            async with client.session.get(body["next"]) as response:
                assert response.status == 200
                body = await response.json()
        assert seen == expected

    serve(loaded, work)


# -- nodes and search -------------------------------------------------------------------------


def test_node_directory(loaded: str, pg_conn: Connection) -> None:
    gone = dataclasses.replace(CORPUS[1], revision=2, status=Status("withdrawn", "有误", DAY0))
    store(pg_conn, [gone])
    follow(pg_conn)

    async def work(client: Client) -> None:
        body = await client.json("/api/nodes", "NodeList")
        nodes = {n["id"]: n for n in body["nodes"]}
        assert set(nodes) == set(FEDERATION.nodes)
        assert nodes["gz"]["records"] == {"own": 2, "ownWithdrawn": 1, "subtree": 2}
        assert nodes["gd"]["records"]["subtree"] == 4  # gd, gz (2), sz
        assert nodes["cn"]["records"]["subtree"] == len(CORPUS)
        assert nodes["yx"]["status"] == "no-records" and nodes["yx"]["lastStored"] is None
        assert nodes["gz"]["status"] == "active"
        assert nodes["gz"]["lastPublished"] == "2024-01-31T09:00:00+08:00"
        assert nodes["gd"]["siteCode"] == "4400000001" and "gz" in nodes["gd"]["children"]
        scoped = await client.json("/api/nodes", "NodeList", scope="he")
        assert [n["id"] for n in scoped["nodes"]] == ["he", "sjz", "hd", "hanshan", "shexian"]
        one = await client.json("/api/nodes/gz", "Node")
        assert one == nodes["gz"]
        await client.error("/api/nodes/nowhere", 404, "id")

    serve(loaded, work)


def test_a_provincial_portal_knows_only_its_subtree(loaded: str) -> None:
    async def work(client: Client) -> None:
        body = await client.json("/api/nodes", "NodeList")
        assert [n["id"] for n in body["nodes"]][:3] == ["gd", "gdee", "gz"]
        assert "he" not in {n["id"] for n in body["nodes"]}
        await client.error("/api/nodes/he", 404, "id")
        await client.error("/api/records", 400, "node", node="he")
        await client.error("/api/search", 400, "scope", q="碳汇", scope="cn")

    serve(loaded, work, scope="gd")


def test_search_endpoint(loaded: str) -> None:
    async def work(client: Client) -> None:
        body = await client.json("/api/search", "SearchPage", q="碳汇")
        assert [h["id"].rsplit(":", 1)[1] for h in body["hits"]] == ["t1", "t3", "t8", "t4", "t2"]
        assert body["next"] is None and body["parts"] == ["碳汇"]
        scoped = await client.json("/api/search", "SearchPage", q="碳汇", scope="gd", limit="2")
        assert [h["id"].rsplit(":", 1)[1] for h in scoped["hits"]] == ["t1", "t3"]
        async with client.session.get(scoped["next"]) as response:
            rest = await response.json()
        assert [h["id"].rsplit(":", 1)[1] for h in rest["hits"]] == ["t2"]
        numbered = await client.json("/api/search", "SearchPage", q="国办发（2006）104号")
        assert [h["inHeading"] for h in numbered["hits"]] == [True, False]
        dated = await client.json(
            "/api/search", "SearchPage", q="碳汇", **{"from": "2024-01-11", "to": "2024-02-09"}
        )
        assert [h["id"].rsplit(":", 1)[1] for h in dated["hits"]] == ["t1", "t2"]
        await client.error("/api/search", 400, "cursor", q="碳汇", cursor="x")
        await client.error("/api/search", 400, "scope", q="碳汇", scope="nowhere")
        # one script; the page's filter and sort names; count and marks
        hant = await client.json("/api/search", "SearchPage", q="碳匯", sort="date", year="2024")
        assert [h["id"].rsplit(":", 1)[1] for h in hant["hits"]] == ["t8", "t4", "t2", "t1", "t3"]
        assert hant["total"] == 5 and hant["totalMore"] is False
        first = hant["hits"][3]
        assert [first["title"][s:e] for s, e in first["titleMarks"]] == ["碳汇"]
        paged = await client.json("/api/search", "SearchPage", q="碳汇", sort="date", limit="2")
        assert paged["total"] == 5 and "sort=date" in paged["next"]
        await client.error("/api/search", 400, "year", q="碳汇", year="24")
        await client.error("/api/search", 400, "sort", q="碳汇", sort="best")

    serve(loaded, work)


def test_index_of_the_api_and_allow_on_405(pg_url: str) -> None:
    async def work(client: Client) -> None:
        body = await client.json("/api/", "ApiIndex")
        assert body["openapi"] == client.base + "/openapi.json"
        described = {
            op["operationId"] for item in client.document["paths"].values() for op in item.values()
        }
        assert {op["operationId"] for op in body["operations"]} == described
        assert all(op["url"] == client.base + op["path"] for op in body["operations"])
        for method in ("POST", "DELETE", "HEAD"):
            async with client.session.request(method, client.base + "/api/nodes") as response:
                assert response.status == 405 and response.headers["Allow"] == "GET"

    serve(pg_url, work)


def test_the_document_states_the_code_s_own_rules(pg_url: str) -> None:
    """Patterns are the parsers' regular expressions, the node ids the portal's, the limits
    the constants the messages quote, and ids follow the published record schema."""

    async def work(client: Client) -> None:
        doc = client.document
        params = {
            (path, p["name"]): p["schema"]
            for path, item in doc["paths"].items()
            for op in item.values()
            for p in op["parameters"]
        }
        schemas = doc["components"]["schemas"]
        assert schemas["PortalNode"]["enum"] == [n.id for n in FEDERATION.subtree("cn")]
        assert params[("/api/records", "node")] == {"$ref": "#/components/schemas/PortalNode"}
        assert params[("/api/records/{id}", "id")]["pattern"] == api_params.pattern(
            api_params.RECORD_ID
        )
        assert params[("/api/nodes/{id}", "id")]["pattern"] == api_params.pattern(
            api_params.NODE_ID
        )
        assert params[("/api/records", "limit")]["maximum"] == api_params.MAX_LIMIT
        assert params[("/api/search", "limit")]["maximum"] == web_search.MAX_LIMIT
        assert params[("/api/search", "q")]["maxLength"] == web_search.MAX_QUERY
        assert params[("/api/records", "issuer")]["maxLength"] == api.MAX_ISSUER
        for name in ("/api/records", "/api/search"):
            when = params[(name, "from")]["anyOf"]
            assert [w["format"] for w in when] == ["date", "date-time"]
        assert "405" not in doc["paths"]["/api/nodes"]["get"]["responses"]

    serve(pg_url, work)


def test_id_patterns_are_the_record_schema_s() -> None:
    """The API's node and record ids are the XSD's types NodeId and RecordId."""
    xsd = etree.parse(ROOT / "schemas" / "record.xsd")
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}

    def xsd_pattern(name: str) -> str:
        found = xsd.xpath(f"//xs:simpleType[@name='{name}']//xs:pattern/@value", namespaces=ns)
        return str(found[0])

    assert api_params.NODE_ID.pattern == xsd_pattern("NodeId")
    assert api_params.RECORD_ID.pattern == xsd_pattern("RecordId")


def test_dates_in_the_pattern_are_the_dates_that_exist() -> None:
    years = [1, 4, 100, 400, 1900, 2000, 2023, 2024, 2100, 9996, 9999]
    for year in years:
        for month in range(14):
            for day in range(33):
                text = f"{year:04}-{month:02}-{day:02}"
                try:
                    date.fromisoformat(text)
                    exists = True
                except ValueError:
                    exists = False
                assert bool(api_params.DATE.fullmatch(text)) == exists, text
    assert not api_params.DATE.fullmatch("0000-01-01")


def test_when_helpers() -> None:
    start = api_params.parse_when("2024-01-01")
    assert start == datetime(2024, 1, 1, tzinfo=api_params.CHINA)
    assert api_params.until_of("2024-01-01", start) - start == timedelta(days=1)
    with pytest.raises(ValueError, match="offset"):
        api_params.parse_when("2024-01-01T08:00:00")
    assert api_params.parse_when("2024-01-01t01:00:00.1234567z") == datetime(
        2024, 1, 1, 1, 0, 0, 123456, tzinfo=UTC
    )
    last = api_params.parse_when("9999-12-31")
    assert api_params.until_of("9999-12-31", last) is None
