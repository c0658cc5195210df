"""The federation map: the shipped nodes.toml, every check, and the tree API."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from hub.errors import ConfigInvalid
from hub.federation import (
    Federation,
    UnknownNode,
    load_federation,
    parse_federation,
)
from hub.federation.rules import domain_problem

ROOT = Path(__file__).parent.parent
SHIPPED = ROOT / "nodes.toml"
FIXTURES = Path(__file__).parent / "fixtures" / "federation"

# A small valid map; tests edit it to break one thing at a time.
VALID = """\
[[node]]
id = "cn"
name = "中华人民共和国中央人民政府"
level = "central"
site_code = "bm01000001"
domain = "www.gov.cn"

[[node]]
id = "gd"
name = "广东省人民政府"
level = "provincial"
parent = "cn"
site_code = "4400000001"
domain = "www.gd.gov.cn"

[[node]]
id = "gz"
name = "广州市人民政府"
level = "municipal"
parent = "gd"
site_code = "4401000001"
domain = "www.gz.gov.cn"
"""


def problems_of(text: str, where: str = "nodes.toml") -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        parse_federation(text, where)
    return [str(problem) for problem in caught.value.problems]


def line_with(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based line of the nth line of ``text`` containing ``needle`` (-1: the last)."""
    found = [number for number, line in enumerate(text.splitlines(), 1) if needle in line]
    return found[nth - 1 if nth > 0 else nth]


def edit(old: str, new: str, text: str = VALID) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def assert_problem(problems: list[str], line: int, field: str, fragment: str) -> None:
    prefix = f"nodes.toml:{line}: {field}: "
    matching = [p for p in problems if p.startswith(prefix) and fragment in p]
    assert matching, f"no {prefix!r}...{fragment!r} in:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def shipped() -> Federation:
    return load_federation(SHIPPED)


# -- the shipped map ---------------------------------------------------------------


def test_shipped_map_has_the_sample_tree(shipped: Federation) -> None:
    assert shipped.root.id == "cn"
    assert shipped.root.domain == "www.gov.cn"
    assert shipped.root.site_code == "bm01000001"
    assert len(shipped.nodes) == 15
    assert [n.id for n in shipped.children("cn")] == ["mee", "ndrc", "gd", "he"]
    paths = {node.id: node.path for node in shipped.nodes.values()}
    assert paths["gz"] == "cn.gd.gz"
    assert paths["yx"] == "cn.gd.gz.yx"
    assert paths["mee"] == "cn.mee"
    assert paths["shexian"] == "cn.he.hd.shexian"
    levels = {node.id: node.level for node in shipped.nodes.values()}
    assert levels["cn"] == "central"
    assert levels["gd"] == levels["he"] == "provincial"
    assert levels["hd"] == "municipal" and levels["ft"] == "county"


def test_shipped_map_subtree_and_ancestors(shipped: Federation) -> None:
    assert [n.id for n in shipped.subtree("gd")] == ["gd", "gdee", "gz", "yx", "sz", "ft", "fs"]
    assert [n.id for n in shipped.subtree("hd")] == ["hd", "hanshan", "shexian"]
    assert [n.id for n in shipped.subtree("yx")] == ["yx"]
    assert [n.id for n in shipped.ancestors("shexian")] == ["hd", "he", "cn"]
    assert shipped.ancestors("cn") == ()
    assert [n.id for n in shipped.subtree("cn")] == list(shipped.nodes)


def test_shipped_map_sources_credentials_subscriptions(shipped: Federation) -> None:
    gz = shipped.node("gz")
    assert [(s.name, s.adapter) for s in gz.sources] == [("portal-feed", "feed")]
    assert gz.sources[0].settings == {"url": "https://www.gz.gov.cn/rss.xml"}
    assert shipped.node("hd").sources[0].settings == {
        "path": "examples/records",
        "pattern": "interaction.xml",
    }
    assert gz.credentials == {"broker_password": "GOVHUB_NODE_GZ_PASSWORD"}
    for node in shipped.nodes.values():
        assert node.credentials["broker_password"] == f"GOVHUB_NODE_{node.id.upper()}_PASSWORD"
    shexian = shipped.node("shexian")
    assert [(s.from_id, s.kinds) for s in shexian.subscriptions] == [
        ("cn", ("document",)),
        ("he", ("notice",)),
    ]
    assert shexian.subscriptions[0].topics == ()
    assert shipped.node("gd").languages == ("zh-Hans", "zh-Hant", "en")
    assert shipped.node("sz").languages == ("zh-Hans",)


def test_shipped_map_lines_point_at_node_headers(shipped: Federation) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    lines = text.splitlines()
    for node in shipped.nodes.values():
        assert lines[node.line - 1].startswith("[[node]]")
        assert lines[node.line] == f'id = "{node.id}"'
    shexian = shipped.node("shexian")
    assert shexian.subscriptions[1].line == line_with(text, "[[node.subscribe]]", nth=2)


def test_lookups_by_id_and_path(shipped: Federation) -> None:
    assert shipped.by_path("cn.gd.sz.ft").id == "ft"
    assert shipped.is_in_subtree("yx", "gd")
    assert shipped.is_in_subtree("gd", "gd")
    assert not shipped.is_in_subtree("gd", "yx")
    assert not shipped.is_in_subtree("hd", "gd")
    assert shipped.is_in_subtree("mee", "cn")


def test_unknown_id_suggests_close_matches(shipped: Federation) -> None:
    with pytest.raises(UnknownNode) as caught:
        shipped.node("gzz")
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, ConfigInvalid)
    assert str(caught.value) == f"{SHIPPED}: node[gzz]: 'gzz' is not in the map; did you mean gz?"
    with pytest.raises(
        KeyError,
        match=re.escape("path[cn.gd.gzz]: 'cn.gd.gzz' is not in the map; did you mean cn.gd.gz or"),
    ):
        shipped.by_path("cn.gd.gzz")
    with pytest.raises(UnknownNode):
        shipped.children("nowhere")


def test_federation_is_immutable(shipped: Federation) -> None:
    with pytest.raises(TypeError, match="parse_federation"):
        Federation()
    with pytest.raises(AttributeError):
        shipped._nodes = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        shipped.nodes["x"] = shipped.root  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        shipped.root.name = "x"  # type: ignore[misc]


def test_render_tree_draws_every_node(shipped: Federation) -> None:
    tree = shipped.render_tree()
    lines = tree.splitlines()
    assert len(lines) == len(shipped.nodes)
    assert "├── " in tree and "└── " in tree and "│   " in tree
    assert lines[0].startswith("cn ")
    for line, node in zip(lines, shipped.subtree("cn"), strict=True):
        assert re.search(rf"(^|── ){node.id} ", line)
        for cell in (node.name, node.level, node.site_code, node.domain, f"({node.path})"):
            assert cell in line
    assert lines[-1].startswith("        └── shexian  涉县人民政府")


def test_render_tree_aligns_columns_despite_wide_characters(shipped: Federation) -> None:
    def display_column(line: str, cell: str) -> int:
        before = line[: line.index(cell)]
        return sum(2 if "\u4e00" <= char <= "\u9fff" else 1 for char in before)

    lines = shipped.render_tree().splitlines()
    nodes = shipped.subtree("cn")
    assert len({display_column(ln, n.level) for ln, n in zip(lines, nodes, strict=True)}) == 1
    assert len({display_column(ln, n.name) for ln, n in zip(lines, nodes, strict=True)}) == 1


# -- reading files --------------------------------------------------------------


def test_valid_small_map_parses() -> None:
    federation = parse_federation(VALID, where="test.toml")
    assert federation.where == "test.toml"
    assert [n.path for n in federation.nodes.values()] == ["cn", "cn.gd", "cn.gd.gz"]
    assert federation.node("gz").languages == ("zh-Hans",)
    assert federation.node("gz").credentials == {}


def test_missing_file_says_how_to_point_elsewhere(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigInvalid) as caught:
        load_federation(missing)
    message = str(caught.value)
    assert str(missing) in message and "not found" in message
    assert "--config" in message and "GOVHUB_CONFIG" in message


def test_toml_syntax_error_reports_line() -> None:
    path = FIXTURES / "syntax_error.toml"
    with pytest.raises(ConfigInvalid) as caught:
        load_federation(path)
    (problem,) = caught.value.problems
    assert problem.where == str(path)
    assert problem.line == 4
    assert "(at line 4, column" in problem.message


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    path = FIXTURES / "many_problems.toml"
    with pytest.raises(ConfigInvalid) as caught:
        load_federation(path)
    found = [(p.line, p.field) for p in caught.value.problems]
    assert found == [
        (2, "owner"),
        (18, "node[gd].languages[1]"),
        (19, "node[gd].credentials.broker_password"),
        (21, "node[gz].parent"),  # missing: reported at the [[node]] header
        (25, "node[gz].parnet"),
        (26, "node[gz].site_code"),
        (27, "node[gz].domain"),
        (33, "node[sz].parent"),
        (34, "node[sz].site_code"),
        (40, "node[sz].sources[0].api_token"),
    ]
    assert str(caught.value).startswith(f"{path}:2: owner: unknown top-level key")


def test_lines_survive_strings_comments_and_multiline_values() -> None:
    path = FIXTURES / "tricky_layout.toml"
    with pytest.raises(ConfigInvalid) as caught:
        load_federation(path)
    found = [(p.line, p.field) for p in caught.value.problems]
    assert found == [
        (31, "node[gd].subscribe[0].kinds[1]"),
        (34, "node[gd].credentials.broker_password.env"),
    ]


# -- single checks --------------------------------------------------------------

GZ_HEADER = "the [[node]] header of gz"  # where a key missing from gz is reported

CASES = [
    # (old text, new text, field, message fragment, text on the line the problem is at)
    ('parent = "gd"', 'parnet = "gd"', "node[gz].parnet", "did you mean 'parent'?", "parnet"),
    ('parent = "gd"', "", "node[gz].parent", "is missing", GZ_HEADER),
    (
        'site_code = "4401000001"',
        "site_code = 4401000001",
        "node[gz].site_code",
        "must be a string, not an integer",
        "site_code = 44",
    ),
    ('name = "广州市人民政府"', 'name = " "', "node[gz].name", "is blank", 'name = " "'),
    ('id = "gz"', 'id = "g.z"', "node[g.z].id", "'g.z' is not a valid id", 'id = "g.z"'),
    ('id = "gz"', 'id = "GZ"', "node[GZ].id", "'GZ' is not a valid id", 'id = "GZ"'),
    ('level = "municipal"', 'level = "city"', "node[gz].level", "'city' is not a level", "city"),
    (
        'site_code = "4401000001"',
        'site_code = "44010000"',
        "node[gz].site_code",
        "has 8 characters",
        "44010000",
    ),
    (
        'site_code = "4401000001"',
        'site_code = "4400000001"',
        "node[gz].site_code",
        "'4400000001' is already used by node[gd] at line 13",
        "4400000001",
    ),
    (
        'domain = "www.gz.gov.cn"',
        'domain = "www.gd.gov.cn"',
        "node[gz].domain",
        "'www.gd.gov.cn' is already used by node[gd] at line 14",
        'domain = "www.gd.gov.cn"',
    ),
    (
        'domain = "www.gz.gov.cn"',
        'domain = "www.gz.com.cn"',
        "node[gz].domain",
        "is not a government domain",
        "www.gz.com.cn",
    ),
    (
        'parent = "gd"',
        'parent = "gdd"',
        "node[gz].parent",
        "'gdd' is not a node (expected the id of a node in this file, e.g. gd",
        "gdd",
    ),
    (
        'parent = "gd"',
        'parent = "cn"',
        "node[gz].parent",
        "a municipal node cannot sit under cn (central) (expected a parent of level provincial)",
        'parent = "cn"',
    ),
    (
        'level = "provincial"',
        'level = "department"',
        "node[gz].parent",
        "a municipal node cannot sit under gd (department)",
        'parent = "gd"',
    ),
    (
        'domain = "www.gov.cn"',
        'domain = "www.gov.cn"\nparent = "gz"',
        "node[cn].parent",
        "the central node has no parent",
        'parent = "gz"',
    ),
    (
        'domain = "www.gz.gov.cn"',
        'domain = "www.gz.gov.cn"\nlanguages = ["zh-Hans", "fr"]',
        "node[gz].languages[1]",
        "'fr' is not allowed here (expected one of zh-Hans, zh-Hant, en",
        "languages",
    ),
    (
        'domain = "www.gz.gov.cn"',
        'domain = "www.gz.gov.cn"\nlanguages = []',
        "node[gz].languages",
        "must be a non-empty array of strings, not an empty array",
        "languages",
    ),
    (
        'domain = "www.gz.gov.cn"',
        'domain = "www.gz.gov.cn"\nsources = "rss"',
        "node[gz].sources",
        "must be an array of tables, not a string",
        "sources",
    ),
]


@pytest.mark.parametrize(("old", "new", "field", "fragment", "needle"), CASES)
def test_each_check_names_file_line_and_field(
    old: str, new: str, field: str, fragment: str, needle: str
) -> None:
    text = edit(old, new)
    if needle == GZ_HEADER:
        line = line_with(text, 'id = "gz"') - 1
    else:
        line = line_with(text, needle, nth=-1)
    assert_problem(problems_of(text), line, field, fragment)


def test_duplicate_id_names_the_earlier_node() -> None:
    text = VALID + '\n[[node]]\nid = "gz"\nname = "x"\nlevel = "county"\nparent = "gd"\n'
    text += 'site_code = "4401040001"\ndomain = "www.yuexiu.gov.cn"\n'
    second = line_with(text, 'id = "gz"', 2)
    assert problems_of(text) == [
        f"nodes.toml:{second}: node[gz].id: 'gz' is already used by node[gz] at line 17"
        " (expected each id used once in the map)"
    ]


def test_cycles_are_named_once_each() -> None:
    with pytest.raises(ConfigInvalid) as caught:
        load_federation(FIXTURES / "cycle.toml")
    cycles = [p for p in caught.value.problems if "cycle" in p.message]
    assert [(p.line, p.field, p.message) for p in cycles] == [
        (13, "node[gz].parent", "parents form a cycle: gz -> gd -> gz"),
        (29, "node[hd].parent", "parents form a cycle: hd -> hd"),
    ]


def test_root_must_be_single() -> None:
    none = edit('level = "central"', 'level = "provincial"\nparent = "gd"')
    assert any(
        p.endswith('node: no node has level = "central" (expected exactly one central node)')
        for p in problems_of(none)
    )
    two = VALID + (
        '\n[[node]]\nid = "cn2"\nname = "x"\nlevel = "central"\n'
        'site_code = "bm02000001"\ndomain = "www.x.gov.cn"\n'
    )
    assert_problem(
        problems_of(two),
        line_with(two, 'level = "central"', 2),
        "node[cn2].level",
        "a second central node; node[cn] at line 1 is the root",
    )


def test_department_cannot_sit_under_a_department() -> None:
    text = VALID + (
        '\n[[node]]\nid = "mee"\nname = "生态环境部"\nlevel = "department"\nparent = "cn"\n'
        'site_code = "bm17000001"\ndomain = "www.mee.gov.cn"\n'
        '\n[[node]]\nid = "mee-sub"\nname = "某司"\nlevel = "department"\nparent = "mee"\n'
        'site_code = "bm17010001"\ndomain = "sub.mee.gov.cn"\n'
    )
    line = line_with(text, 'parent = "mee"')
    assert problems_of(text) == [
        f"nodes.toml:{line}: node[mee-sub].parent: a department"
        " node cannot sit under mee (department) (expected a parent of level central or"
        " provincial or municipal or county)"
    ]


def test_levels_that_nest_are_accepted() -> None:
    # a 直辖市 district straight under its province-level city; departments under a
    # county, a city and the centre
    text = VALID + (
        '\n[[node]]\nid = "sh"\nname = "上海市人民政府"\nlevel = "provincial"\nparent = "cn"\n'
        'site_code = "3100000001"\ndomain = "www.shanghai.gov.cn"\n'
        '\n[[node]]\nid = "hp"\nname = "上海市黄浦区人民政府"\nlevel = "county"\nparent = "sh"\n'
        'site_code = "3101010001"\ndomain = "www.shhuangpu.gov.cn"\n'
        '\n[[node]]\nid = "hp-ee"\nname = "上海市黄浦区生态环境局"\nlevel = "department"\n'
        'parent = "hp"\nsite_code = "3101010002"\ndomain = "sthjj.shhuangpu.gov.cn"\n'
        '\n[[node]]\nid = "gz-ee"\nname = "广州市生态环境局"\nlevel = "department"\n'
        'parent = "gz"\nsite_code = "4401000002"\ndomain = "sthjj.gz.gov.cn"\n'
        '\n[[node]]\nid = "mee"\nname = "生态环境部"\nlevel = "department"\nparent = "cn"\n'
        'site_code = "bm17000001"\ndomain = "www.mee.gov.cn"\n'
    )
    federation = parse_federation(text)
    assert federation.node("hp").path == "cn.sh.hp"
    assert federation.node("hp-ee").path == "cn.sh.hp.hp-ee"
    assert [n.id for n in federation.children("gz")] == ["gz-ee"]
    assert [n.id for n in federation.children("cn")] == ["gd", "sh", "mee"]


@pytest.mark.parametrize(
    "domain",
    ["www.gov.cn", "www.gd.gov.cn", "gdee.gd.gov.cn", "广东.政务", "中国政府网.cn", "www.gd.政务"],
)
def test_government_domains_are_accepted(domain: str) -> None:
    assert domain_problem(domain) is None


@pytest.mark.parametrize(
    ("domain", "fragment"),
    [
        ("www.gd.cn", "is not a government domain"),
        ("gov.cn", "is not a government domain"),
        ("www.gd.gov.cn.example.com", "is not a government domain"),
        ("WWW.GD.GOV.CN", "upper-case"),
        ("https://www.gd.gov.cn/", "is not a bare host name"),
        ("www..gd.gov.cn", "is not a valid host name"),
        ("-www.gd.gov.cn", "is not a valid host name"),
        ("www_gd.gov.cn", "is not a valid host name"),
    ],
)
def test_other_domains_are_rejected(domain: str, fragment: str) -> None:
    problem = domain_problem(domain)
    assert problem is not None
    assert fragment in problem[0]


# -- secrets and credentials ------------------------------------------------------


def test_inline_secrets_are_rejected_with_the_fix() -> None:
    text = edit(
        'domain = "www.gz.gov.cn"',
        'domain = "www.gz.gov.cn"\n'
        'credentials = { broker_password = "hunter2", user = "gz" }\n\n'
        '[[node.sources]]\nname = "portal"\nadapter = "feed"\n'
        'headers = { API-Key = "k1" }\nauth_token = "t1"\n',
    )
    problems = problems_of(text)
    credentials = line_with(text, "credentials")
    assert_problem(
        problems,
        credentials,
        "node[gz].credentials.broker_password",
        'is a secret written inline: write { env = "GOVHUB_NODE_GZ_BROKER_PASSWORD" } instead',
    )
    assert_problem(
        problems,
        credentials,
        "node[gz].credentials.user",
        'is a secret written inline: write { env = "GOVHUB_NODE_GZ_USER" }',
    )
    assert_problem(
        problems, line_with(text, "API-Key"), "node[gz].sources[0].headers.API-Key", "inline"
    )
    assert_problem(problems, line_with(text, "auth_token"), "node[gz].sources[0].auth_token", "")
    assert all("hunter2" not in p and "t1" not in p for p in problems)


def test_credentials_must_be_env_references() -> None:
    text = edit(
        'domain = "www.gz.gov.cn"',
        'domain = "www.gz.gov.cn"\n\n[node.credentials]\n'
        'broker_password = { env = "bad name" }\n'
        'broker_user = { env = "X", default = "y" }\n'
        "port = 5672\n",
    )
    problems = problems_of(text)
    assert_problem(
        problems,
        line_with(text, "broker_password"),
        "node[gz].credentials.broker_password.env",
        "'bad name' is not an environment variable name",
    )
    assert_problem(
        problems, line_with(text, "broker_user"), "node[gz].credentials.broker_user", "env ref"
    )
    assert_problem(problems, line_with(text, "port"), "node[gz].credentials.port", "not an integer")


def test_credentials_resolve_from_an_environment_mapping(shipped: Federation) -> None:
    gz = shipped.node("gz")
    environ = {"GOVHUB_NODE_GZ_PASSWORD": "s3cret", "GOVHUB_NODE_SZ_PASSWORD": "other"}
    assert gz.resolve_credentials(environ) == {"broker_password": "s3cret"}
    with pytest.raises(ConfigInvalid) as caught:
        shipped.node("sjz").resolve_credentials(environ)
    assert str(caught.value) == (
        "environment: node[sjz].credentials.broker_password: GOVHUB_NODE_SJZ_PASSWORD is not set"
        " (expected GOVHUB_NODE_SJZ_PASSWORD set, non-empty, in the environment of node sjz)"
    )
    with pytest.raises(ConfigInvalid):
        gz.resolve_credentials({"GOVHUB_NODE_GZ_PASSWORD": ""})


# -- sources and subscriptions ---------------------------------------------------


def test_sources_need_unique_names_and_an_adapter() -> None:
    text = edit(
        'domain = "www.gz.gov.cn"',
        'domain = "www.gz.gov.cn"\n\n'
        '[[node.sources]]\nname = "portal"\nadapter = "feed"\nurl = "https://www.gz.gov.cn/rss"\n\n'
        '[[node.sources]]\nname = "portal"\n',
    )
    problems = problems_of(text)
    first = line_with(text, 'name = "portal"')
    second = line_with(text, 'name = "portal"', 2)
    assert_problem(
        problems, second, "node[gz].sources[1].name", f"already a source at line {first}"
    )
    assert_problem(
        problems, second - 1, "node[gz].sources[1].adapter", "is missing (expected the name of an"
    )
    assert len(problems) == 2


def test_subscriptions_are_checked() -> None:
    text = edit(
        'domain = "www.gz.gov.cn"',
        'domain = "www.gz.gov.cn"\n'
        "subscribe = [\n"
        '    { from = "cn", kinds = ["document"], topics = ["综合政务"] },\n'
        '    { from = "gz", kinds = ["memo"], topic = ["x"] },\n'
        '    { from = "gd" },\n'
        "]\n",
    )
    problems = problems_of(text)
    second = line_with(text, 'from = "gz"')
    assert_problem(problems, second, "node[gz].subscribe[1].from", "'gz' is not an ancestor of gz")
    assert "(expected one of gd, cn)" in "\n".join(problems)
    assert_problem(problems, second, "node[gz].subscribe[1].kinds[0]", "'memo' is not allowed")
    assert_problem(problems, second, "node[gz].subscribe[1].topic", "did you mean 'topics'?")
    assert_problem(problems, second + 1, "node[gz].subscribe[2].kinds", "is missing")
    assert len(problems) == 4


def test_subscriptions_parse() -> None:
    text = edit(
        'domain = "www.gz.gov.cn"',
        'domain = "www.gz.gov.cn"\n\n'
        '[[node.subscribe]]\nfrom = "cn"\nkinds = ["document", "notice"]\ntopics = ["综合政务"]\n',
    )
    (subscription,) = parse_federation(text).node("gz").subscriptions
    assert subscription.from_id == "cn"
    assert subscription.kinds == ("document", "notice")
    assert subscription.topics == ("综合政务",)
    assert subscription.line == line_with(text, "[[node.subscribe]]")
