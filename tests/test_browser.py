"""The portal's pages in a real headless browser (Debian's Chromium through chromedriver),
served by the whole portal app on loopback from a real PostgreSQL: pages render, every
link on the home page and a record page works, the search form works, the Traditional
switch works, and the main pages screenshot as real images (kept under pytest's tmp_path
as artifacts, never compared with golden files).

Needs ``apt-get install chromium chromium-driver`` (and a CJK font such as
``fonts-noto-cjk`` or ``fonts-wqy-microhei`` for legible screenshots). Without the
browser the tests are skipped, except in CI (``CI=true``), where they fail."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import struct
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import support.postgres as postgres_fixtures
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from test_links import DOCUMENT, INTERPRETATION, ORIGINAL
from test_pages import fill, portal_server

from hub.store import connect, migrate
from hub.web.app import PARTS

pg_url = postgres_fixtures.pg_url

CHROMIUM = os.environ.get("GOVHUB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GOVHUB_CHROMEDRIVER", "/usr/bin/chromedriver")
WIDTH, HEIGHT = 1280, 900
PARTS_SERVED = {part.__name__.rsplit(".", 1)[-1] for part in PARTS}


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if not missing:
        return
    message = (
        f"{' and '.join(missing)} not found: install them with "
        "`apt-get install chromium chromium-driver` (or set GOVHUB_CHROMIUM/GOVHUB_CHROMEDRIVER)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class BackgroundPortal:
    """The portal served from its own event loop in a thread, for a synchronous browser."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.stack = contextlib.AsyncExitStack()
        self.url = url

    def __enter__(self) -> str:
        self.thread.start()
        start = self.stack.enter_async_context(portal_server(self.url))
        return asyncio.run_coroutine_threadsafe(start, self.loop).result(timeout=60)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.stack.aclose(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=60)
        self.loop.close()


@pytest.fixture(scope="module")
def site(pg_url: str) -> Iterator[str]:
    with connect(pg_url) as conn:
        migrate(conn)
        fill(conn)
    with BackgroundPortal(pg_url) as base:
        yield base


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(CHROMIUM) or CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    chrome = webdriver.Chrome(
        service=Service(shutil.which(CHROMEDRIVER) or CHROMEDRIVER), options=options
    )
    chrome.set_page_load_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


def follow(driver: WebDriver, element: WebElement) -> None:
    """Click ``element`` and wait until the page it leads to has replaced this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(page))


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def served(path: str) -> bool:
    """Whether the address belongs to a part that this app has (feeds and API may not yet)."""
    if path.startswith("/api/"):
        return "api" in PARTS_SERVED
    if path.endswith((".atom", ".rss")):
        return "feeds" in PARTS_SERVED
    return True


def test_pages_render_with_the_agency_name(site: str, driver: WebDriver) -> None:
    driver.get(site + "/")
    assert driver.current_url == site + "/nodes/cn/"
    assert "中华人民共和国中央人民政府" in driver.title
    assert driver.find_element(By.TAG_NAME, "h1").text == "中华人民共和国中央人民政府"
    driver.get(f"{site}/records/{DOCUMENT.id}")
    headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.metadata th")]
    for label in (
        "索引号",
        "主题分类",
        "发文机关",
        "成文日期",
        "标题",
        "发文字号",
        "发布日期",
        "有效性",
    ):
        assert label in headers
    interpretation = driver.find_element(By.CSS_SELECTOR, "ul.interpretations a")
    follow(driver, interpretation)
    assert driver.current_url == f"{site}/records/{INTERPRETATION.id}"


def test_data_tables_and_the_guide_have_borders(site: str, driver: WebDriver) -> None:
    """A body's data table (statistics.xml) and the 办事指南 table draw their cell borders."""
    for path, cells in (
        ("/records/urn:govhub:gd:11440000006939844R-2022-00018", ".body table td"),
        ("/records/urn:govhub:yx:11440104MB2C98655W-2022-00027", "table.guide td"),
    ):
        driver.get(site + path)
        cell = driver.find_element(By.CSS_SELECTOR, cells)
        style = driver.execute_script(
            "const s = getComputedStyle(arguments[0]);"
            " return [s.borderTopStyle, s.borderLeftStyle, parseFloat(s.borderTopWidth)];",
            cell,
        )
        assert style[:2] == ["solid", "solid"] and style[2] >= 1, (path, style)


@pytest.mark.parametrize("path", ["/nodes/cn/", f"/records/{ORIGINAL.id}"])
def test_every_link_on_the_page_works(site: str, driver: WebDriver, path: str) -> None:
    driver.get(site + path)
    hrefs = {a.get_attribute("href") for a in driver.find_elements(By.TAG_NAME, "a")}
    local = sorted(h for h in hrefs if h and urlsplit(h).netloc == urlsplit(site).netloc)
    checked = [h for h in local if served(urlsplit(h).path)]
    assert len(checked) >= 5, checked
    broken = {h: code for h in checked if (code := status_of(h)) >= 400}
    assert broken == {}


def test_search_form_finds_records(site: str, driver: WebDriver) -> None:
    driver.get(site + "/nodes/cn/")
    box = driver.find_element(By.CSS_SELECTOR, "header form.search input[name=q]")
    box.send_keys("三项制度")
    follow(driver, driver.find_element(By.CSS_SELECTOR, "header form.search button"))
    assert urlsplit(driver.current_url).path == "/search"
    titles = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "ol.results a.title")]
    assert DOCUMENT.title in titles and INTERPRETATION.title in titles


def test_traditional_switch_keeps_the_language_while_browsing(site: str, driver: WebDriver) -> None:
    driver.get(site + "/nodes/cn/")
    follow(driver, driver.find_element(By.CSS_SELECTOR, "a.lang"))
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-Hant"
    assert driver.find_element(By.TAG_NAME, "h1").text == "中華人民共和國中央人民政府"
    follow(driver, driver.find_element(By.CSS_SELECTOR, "section.latest a.title"))
    assert driver.current_url.endswith("?lang=zh-Hant")
    assert "發文機關" in driver.find_element(By.CSS_SELECTOR, "table.metadata").text
    follow(driver, driver.find_element(By.CSS_SELECTOR, "a.lang"))
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-Hans"


def png_facts(data: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values of the pixel data of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    position, pixels = 8, b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            pixels += data[position + 8 : position + 8 + length]
        position += 12 + length
    return width, height, len(set(zlib.decompress(pixels)))


@pytest.mark.parametrize(
    "name,path",
    [
        ("home", "/nodes/cn/"),
        ("record", f"/records/{ORIGINAL.id}"),
        ("service", "/records/urn:govhub:yx:11440104MB2C98655W-2022-00027"),
        ("interaction", "/records/urn:govhub:hd:szxx-2020-072000318"),
        ("catalogue", "/nodes/cn/catalogue"),
        ("search", "/search?q=三项制度"),
        ("directory", "/nodes"),
        ("traditional", "/nodes/gd/?lang=zh-Hant"),
    ],
)
def test_main_pages_screenshot_as_real_images(
    site: str, driver: WebDriver, tmp_path: Path, name: str, path: str
) -> None:
    driver.get(urljoin(site, path))
    shot = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(shot))
    width, height, values = png_facts(shot.read_bytes())
    viewport = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    ratio = driver.execute_script("return window.devicePixelRatio")
    assert (width, height) == (round(viewport[0] * ratio), round(viewport[1] * ratio))
    assert shot.stat().st_size > 20_000 and values > 64, "a blank or near-blank page"
