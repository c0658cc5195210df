"""The page adapter, with no selectors, on real pages of Chinese government sites.

Every page of /work/shared/corpora/gov-pages (index.md lists what each shows)
goes through ``PageAdapter.convert``; the expected values below are copied from
index.md and from reading the pages, not computed.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from adapters.contract import Context, Item
from adapters.page.adapter import Page, PageAdapter, PageSettings
from adapters.page.fields import recognise
from adapters.page.html import read_html
from adapters.page.links import detail_links, next_page
from hub import records
from hub.federation.model import Node
from hub.records import XHTML_NS, Record, Topic

CORPUS = Path(__file__).parents[2] / "shared" / "corpora" / "gov-pages"
BEIJING = timezone(timedelta(hours=8))

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"corpus of real government pages not found at {CORPUS}"
)

CN = Node("cn", "国务院办公厅", "central", None, "bm01000001", "www.gov.cn")
HANDAN = Node("handan", "邯郸市人民政府", "city", "hebei", "1304000009", "www.hd.gov.cn")
MEE = Node("mee", "中华人民共和国生态环境部", "department", "cn", "bm17000009", "www.mee.gov.cn")


def gov(number: str, **fields: Any) -> dict[str, Any]:
    """A www.gov.cn policy page: file name, origin URL and what its table shows."""
    month = fields.pop("month")
    url = f"http://www.gov.cn/zhengce/content/{month}/content_{number}.htm"
    return {"file": f"govcn-zhengce/content_{number}.html", "url": url, **fields}


GOVCN = [
    gov(
        "5365945",
        month="2019-02/15",
        index_number="000014349/2019-00007",
        issuers=("国务院",),
        doc_number="国发〔2019〕5号",
        created=date(2019, 1, 27),
        published=date(2019, 2, 15),
        topic=Topic("市场监管、安全生产监管", "工商"),
        keywords=(),
        title="国务院关于在市场监管领域全面推行部门联合“双随机、一公开”监管的意见",
    ),
    gov(
        "5365711",
        month="2019-02/14",
        index_number="000014349/2019-00006",
        issuers=("国务院办公厅",),
        doc_number="国办发〔2019〕6号",
        created=date(2019, 1, 22),
        published=date(2019, 2, 14),
        topic=Topic("财政、金融、审计", "银行"),
        keywords=(),
        title="国务院办公厅关于有效发挥政府性融资担保基金作用切实支持小微企业和“三农”发展的指导意见",
    ),
    gov(
        "5362266",
        month="2019-01/30",
        index_number="000014349/2019-00004",
        issuers=("国务院办公厅",),
        doc_number="国办发〔2019〕4号",
        created=date(2019, 1, 16),
        published=date(2019, 1, 30),
        topic=Topic("卫生、体育", "卫生"),
        keywords=(),
        title="国务院办公厅关于加强三级公立医院绩效考核工作的意见",
    ),
    gov(
        "5354528",
        month="2019-01/03",
        index_number="000014349/2018-00226",
        issuers=("国务院办公厅",),
        doc_number="国办发〔2018〕118号",
        created=date(2018, 12, 5),
        published=date(2019, 1, 3),
        topic=Topic("综合政务", "政务公开"),
        keywords=(),
        title="国务院办公厅关于全面推行行政执法公示制度执法全过程记录制度重大执法决定法制审核制度的指导意见",
    ),
    gov(
        "5353307",
        month="2018-12/29",
        index_number="000014349/2018-00222",
        issuers=("国务院",),
        doc_number="国发〔2018〕43号",
        created=date(2018, 12, 21),
        published=date(2018, 12, 29),
        topic=Topic("卫生、体育", "医药管理"),
        keywords=(),
        title="国务院关于在海南博鳌乐城国际医疗旅游先行区暂时调整实施《中华人民共和国药品管理法实施条例》有关规定的决定",
    ),
    gov(
        "5351718",
        month="2018-12/24",
        index_number="000014349/1996-00077",
        issuers=("国务院办公厅", "中央军委办公厅"),
        doc_number="国办发〔1996〕25号",
        created=date(1996, 6, 29),
        published=date(2018, 12, 24),
        topic=Topic("国防", "国防动员"),
        keywords=(),
        title="国务院办公厅、中央军委办公厅关于加强对侵华日军遗弃化学武器调查和管理工作的通知",
    ),
    gov(
        "5351707",
        month="2018-12/24",
        index_number="000014349/2004-00209",
        issuers=("国务院办公厅",),
        doc_number="国办函〔2004〕57号",
        created=date(2004, 8, 12),
        published=date(2018, 12, 24),
        topic=Topic("其他", None),
        keywords=("经济管理", "考察", "措施", "函"),
        title="国务院办公厅关于辽宁省在曾培炎副总理考察工作时所提问题和建议办理情况的函",
    ),
    gov(
        "5351624",
        month="2018-12/24",
        index_number="000014349/2004-00206",
        issuers=("国务院办公厅",),
        doc_number="国办函〔2004〕36号",
        created=date(2004, 4, 17),
        published=date(2018, 12, 24),
        topic=Topic("卫生、体育", "体育"),
        keywords=("体育", "运动会", "函"),
        title="国务院办公厅关于同意以哈尔滨市名义申办2009年第二十四届世界大学生冬季运动会的复函",
    ),
    gov(
        "5351177",
        month="2018-12/22",
        index_number="000014349/2018-00218",
        issuers=("国务院",),
        doc_number="国令第707号",
        created=date(2018, 12, 18),
        published=date(2018, 12, 22),
        topic=Topic("财政、金融、审计", "税务"),
        keywords=(),
        title="中华人民共和国个人所得税法实施条例",
    ),
    gov(
        "5346276",
        month="2018-12/06",
        index_number="000014349/2018-00213",
        issuers=("国务院办公厅",),
        doc_number="国办发明电〔2018〕15号",
        created=date(2018, 12, 4),
        published=date(2018, 12, 6),
        topic=Topic("综合政务", "其他"),
        keywords=(),
        title="国务院办公厅关于2019年部分节假日安排的通知",
    ),
    gov(
        "5345639",
        month="2018-12/04",
        index_number="000014349/1981-00021",
        issuers=("国务院",),
        doc_number="国发〔1981〕88号",
        created=date(1981, 5, 23),
        published=date(2018, 12, 4),
        topic=Topic("农业、林业、水利", "农业、畜牧业、渔业"),
        keywords=(),
        title="国务院关于棉粮、糖粮挂钩奖售粮几个问题的通知",
    ),
    gov(
        "5345459",
        month="2018-12/03",
        index_number="000014349/2005-00154",
        issuers=("国务院办公厅",),
        doc_number="国办函〔2005〕57号",
        created=date(2005, 6, 11),
        published=date(2018, 12, 3),
        topic=Topic("农业、林业、水利", "农业、畜牧业、渔业"),
        keywords=("农业", "粮食", "应急预案△", "函"),
        title="国务院办公厅关于印发国家粮食应急预案的函",
    ),
    gov(
        "5345410",
        month="2018-12/03",
        index_number="000014349/2006-00209",
        issuers=("国务院",),
        doc_number="国函〔2006〕132号",
        created=date(2006, 12, 30),
        published=date(2018, 12, 3),
        topic=Topic("港澳台侨工作", "港澳工作"),
        keywords=(),
        title="国务院关于授权香港特别行政区实施管辖的深圳湾口岸港方口岸区范围和土地使用期限的批复",
    ),
    gov(
        "5345407",
        month="2018-12/03",
        index_number="000014349/1996-00073",
        issuers=("国务院", "中央军委"),
        doc_number="国函〔1996〕95号",
        created=date(1996, 11, 5),
        published=date(2018, 12, 3),
        topic=Topic("国防", "国防建设"),
        keywords=(),
        title="国务院、中央军委关于同意武警总部后勤部机关等迁址新建的批复",
    ),
    gov(
        "5344150",
        month="2018-11/28",
        index_number="000014349/2018-00211",
        issuers=("国务院",),
        doc_number="国函〔2018〕145号",
        created=date(2018, 11, 23),
        published=date(2018, 11, 28),
        topic=Topic("科技、教育", "科技"),
        keywords=(),
        title="国务院关于同意乌鲁木齐、昌吉、石河子高新技术产业开发区建设国家自主创新示范区的批复",
    ),
    gov(
        "5341736",
        month="2018-11/19",
        index_number="000014349/2018-00206",
        issuers=("国务院",),
        doc_number="国令第706号",
        created=date(2018, 11, 6),
        published=date(2018, 11, 19),
        topic=Topic("科技、教育", "知识产权"),
        keywords=(),
        title="专利代理条例",
    ),
]

HANDAN_DETAIL = "http://hdzfxxgk.hd.gov.cn/gszbm/auto23716/202008/t20200802_1352104.html"
MEE_ARTICLE = "http://www.mee.gov.cn/ywdt/hjywnews/202204/t20220417_974894.shtml"


def convert(node: Node, file: str, url: str) -> Record | None:
    adapter = PageAdapter(PageSettings(url=url), Context(node, "pages"))
    page = Page(url, (CORPUS / file).read_bytes(), None)
    return adapter.convert(Item(url, url, page))


def body_text(record: Record) -> str:
    assert record.body is not None
    body = etree.fromstring(f"<body>{record.body}</body>".encode())
    return "".join("".join(body.itertext()).split())


def page_text(file: str, xpath: str) -> str:
    """The text of one element of the raw page, read with plain lxml."""
    root = etree.HTML((CORPUS / file).read_bytes(), etree.HTMLParser(encoding="utf-8"))
    (area,) = root.xpath(xpath)
    return "".join("".join(area.itertext()).split())


def test_the_corpus_lists_what_the_tests_expect() -> None:
    index = (CORPUS / "index.md").read_text(encoding="utf-8")
    listed = {line.split("|")[1].strip() for line in index.splitlines() if line.startswith("| ")}
    listed -= {"file", "---"}
    expected = {page["file"] for page in GOVCN} | {
        "handan-xxgk/detail_t20200802_1352104.html",
        "handan-xxgk/list_zfwj.html",
        "handan-xxgk/index_hdzfxxgk.html",
        "handan-xxgk/zfxxgkzn.html",
        "mee/t20220417_974894.excerpt.html",
    }
    assert listed == expected


def test_both_gov_cn_table_layouts_are_covered() -> None:
    tables = {(CORPUS / page["file"]).read_text(encoding="utf-8").count("<table") for page in GOVCN}
    assert 6 in tables  # the old layout
    assert tables & {8, 9}  # the 2019 layout


@pytest.mark.parametrize("page", GOVCN, ids=[page["file"] for page in GOVCN])
def test_gov_cn_policy_page(page: dict[str, Any]) -> None:
    record = convert(CN, page["file"], page["url"])
    assert record is not None
    assert record.kind == "document"
    assert record.title == page["title"]
    assert record.index_number == page["index_number"]
    assert record.issuers == page["issuers"]
    assert record.doc_number == page["doc_number"]
    assert record.created == page["created"]
    day = page["published"]
    assert record.published == datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    assert record.published.utcoffset() == timedelta(hours=8)
    assert record.topic == page["topic"]
    assert record.keywords == page["keywords"]
    assert record.link == page["url"]
    assert record.id == f"urn:govhub:cn:{record.local_id}"
    assert record.origin.site == "bm01000001"
    # The body is the UCAP-CONTENT cell, every character of its text kept.
    assert body_text(record) == page_text(page["file"], "//td[@id='UCAP-CONTENT']")
    assert record.body is not None and f'xmlns="{XHTML_NS}"' in record.body
    assert "style=" not in record.body
    assert records.parse(record.to_xml()) == record


def test_handan_detail_page_labels_and_meta_tags(caplog: pytest.LogCaptureFixture) -> None:
    file = "handan-xxgk/detail_t20200802_1352104.html"
    root = read_html((CORPUS / file).read_bytes())
    found = recognise(root)
    assert dict(found.labels) == {
        "index_number": "000014348/2020-35147",
        "issuers": "邯郸市教育局",
        "title": "邯郸市教育局关于印发《全市教育系统安全专项整治三年行动实施方案》的通知",
        "topic": "教育",
        "published": "2020年08月02日",
    }  # 成文日期, 主题词 and 有效期 are commented out on the page: not shown, not read
    assert "doc_number" in found.labelled  # 文号：无 — labelled, but 无 is no value
    assert dict(found.meta) == {
        "SiteIDCode": "1304000009",
        "ColumnName": "部门信息公开",
        "ArticleTitle": "邯郸市教育局关于印发《全市教育系统安全专项整治三年行动实施方案》的通知",
        "PubDate": "2020年08月02日",
        "ContentSource": "邯郸市教育局",
    }
    with caplog.at_level(logging.WARNING, logger="adapters.page.adapter"):
        record = convert(HANDAN, file, HANDAN_DETAIL)
    assert record is not None
    assert record.kind == "document"  # the page has a 索引号 and a 文号 label
    assert record.title == "邯郸市教育局关于印发《全市教育系统安全专项整治三年行动实施方案》的通知"
    assert record.issuers == ("邯郸市教育局",)
    assert record.doc_number is None  # 文号：无
    assert record.created is None
    assert record.published == datetime(2020, 8, 2, tzinfo=BEIJING)
    assert record.topic == Topic("科技、教育", "教育")  # the local class 教育, in its gov.cn class
    assert record.keywords == ()
    assert record.link == HANDAN_DETAIL
    assert record.body is None  # the saved page has no content area
    # 000014348 fails its GB 11714 check character (000014349 would pass): the record keeps
    # the site's value as a local index number, and the warning says why it is not standard.
    assert record.index_number is None
    assert record.local_index_number == "000014348/2020-35147"
    assert "kept as localIndexNumber" in caplog.text and "check character" in caplog.text
    assert records.parse(record.to_xml()) == record


def test_mee_article_meta_tags_and_body() -> None:
    file = "mee/t20220417_974894.excerpt.html"
    found = recognise(read_html((CORPUS / file).read_bytes()))
    assert dict(found.meta) == {
        "SiteIDCode": "bm17000009",
        "ColumnName": "环境要闻",
        "ArticleTitle": "生态环境部一周要闻（4.10-4.16）",
        "PubDate": "2022-04-17 14:46:00",
        "ContentSource": "生态环境部",
        "Url": MEE_ARTICLE,
        "contentid": "974894",
        "publishdate": "2022-04-17",
        "author": "王丽平",  # the empty <meta name="Author"> before it does not count
    }
    assert dict(found.labels) == {"source": "生态环境部"}  # <span>来源：生态环境部</span>
    record = convert(MEE, file, MEE_ARTICLE)
    assert record is not None
    assert record.kind == "news"  # no 索引号, no 发文字号: the configured kind
    assert record.title == "生态环境部一周要闻（4.10-4.16）"
    assert record.issuers == ("生态环境部",)
    assert record.published == datetime(2022, 4, 17, 14, 46, tzinfo=BEIJING)
    assert record.index_number is None and record.doc_number is None and record.topic is None
    assert record.link == MEE_ARTICLE
    assert body_text(record) == page_text(file, "//div[@class='TRS_Editor']")
    body = etree.fromstring(f"<body>{record.body}</body>".encode())
    links = body.findall(f".//{{{XHTML_NS}}}a")
    assert len(links) == 17
    assert all(link.get("href", "").startswith("http://www.mee.gov.cn/") for link in links)
    assert records.parse(record.to_xml()) == record


@pytest.mark.parametrize(
    ("file", "url"),
    [
        ("handan-xxgk/zfxxgkzn.html", "http://hdzfxxgk.hd.gov.cn/zfxxgkzn/"),
        ("handan-xxgk/index_hdzfxxgk.html", "http://hdzfxxgk.hd.gov.cn/"),
        ("handan-xxgk/list_zfwj.html", "http://hdzfxxgk.hd.gov.cn/zfwj/"),
    ],
)
def test_guide_navigation_and_list_pages_hold_no_record(file: str, url: str) -> None:
    assert convert(HANDAN, file, url) is None


def test_the_list_page_yields_its_detail_links() -> None:
    root = read_html((CORPUS / "handan-xxgk/list_zfwj.html").read_bytes())
    page = "http://hdzfxxgk.hd.gov.cn/zfwj/"
    # Only the table's row: not the footer's t20170912_… pages on www.hd.gov.cn.
    assert detail_links(root, page) == [
        "http://hdzfxxgk.hd.gov.cn/gszbm/auto23716/202008/t20200805_1353179.html"
    ]
    assert next_page(root, page) == "http://hdzfxxgk.hd.gov.cn/zfwj/jinqixxgk/index_1.html"


def test_the_portal_index_links_to_its_first_list() -> None:
    root = read_html((CORPUS / "handan-xxgk/index_hdzfxxgk.html").read_bytes())
    links = detail_links(root, "http://hdzfxxgk.hd.gov.cn/")
    assert links == ["http://hdzfxxgk.hd.gov.cn/gszbm/auto23692/202007/t20200731_1351817.html"]
