"""A real Chromium files applications through /chat on a running `gateway serve`.

Keyboard only: text is typed into the message box and sent with Enter, choice buttons are
reached with Tab or focused and pressed with Enter. The finished application must be in
`gateway queue list --json` with all nine required items.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import missing_service

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
REFERENCE = re.compile(r"MCM-\d{4}-[0-9A-Z]+")

# (what the person does, text the newest message then shows). A step is ("press", label):
# focus the choice button with that label and press Enter; ("type", text): type into the
# message box and press Enter; ("file", name): choose a file and press Enter.
ENGLISH = [
    ("press", "English", "Are you applying for yourself"),
    ("tab", "For myself (or my own organisation)", "Who is the applicant?"),
    ("press", "An individual", "What is the full name of the applicant"),
    ("type", "Amina Diallo", "How many people or organisations"),
    ("type", "1", "Where does the applicant live"),
    ("type", "Kasulo, Kolwezi, Lualaba, DR Congo", "How can the secretariat contact"),
    ("type", "+243 970 000 002", "Which company, mine, smelter"),
    ("type", "Kolwezi Cobalt Mining SA", "Where is it?"),
    ("type", "Route de Likasi, Kolwezi, Lualaba", "a way to contact the respondent"),
    ("press", "Skip", "Where did it happen?"),
    ("type", "Kasulo, Kolwezi, DR Congo", "Which mineral or minerals"),
    ("press", "Skip", "At which part of the supply chain"),
    ("press", "Skip", "At what stage is the mining project?"),
    ("press", "Skip", "What kind of problem is it?"),
    ("press", "Skip", "Please describe what happened"),
    ("type", "Since March the tailings dam leaks into the river.", "Received"),
    ("type", "Our wells turned red and children fell ill.", "Received"),
    ("press", "Done", "What do you ask for?"),
    ("type", "Stop the leak and clean the wells.", "Received"),
    ("press", "Done", "Why do you think the respondent is responsible?"),
    ("type", "The dam belongs to the mine and its policy promises clean water.", "Received"),
    ("press", "Done", "standard, policy or guideline"),
    ("press", "Skip", "Have you already raised this"),
    ("press", "Skip", "Please send any evidence"),
    ("file", "well.png", "File received: well.png"),
    ("type", "Photos of the red well water; a letter from the clinic.", "Description received"),
    ("press", "Done", "kept confidential"),
    ("press", "No", "In which language should the secretariat write to you?"),
    ("press", "The language of this conversation", "need an interpreter"),
    ("press", "No", "Please check your application"),
    ("press", "Everything is correct", "Declaration"),
    ("press", "I agree, submit", "Your application has been received"),
]

CHINESE = [
    ("press", "中文 (Chinese)", "您是为自己申请，还是代表其他人申请"),
    ("press", "为我自己（或我自己的组织）", "申请方是谁？"),
    ("press", "社区或一群人", "申请方（个人或组织）的完整姓名或名称是什么？"),
    ("type", "王家村村民委员会", "一共有多少个人或组织一起申请？"),
    ("type", "2", "申请方住在哪里"),
    ("type", "中国云南省红河州王家村", "秘书处怎样联系申请方？"),
    ("type", "13800000000", "您的申请针对的是哪家公司"),
    ("type", "某某锡业有限公司", "它在哪里？"),
    ("type", "云南省个旧市", "您知道怎样联系相对方吗"),
    ("press", "跳过", "事情发生在哪里？"),
    ("type", "云南省红河州", "涉及哪一种或哪几种矿产？"),
    ("press", "锡", "问题出在供应链的哪个环节？"),
    ("press", "冶炼或精炼", "这个采矿项目现在处在哪个阶段？"),
    ("press", "运营", "这是哪一类问题？"),
    ("press", "环境（水、空气、土地、健康）", "请说说发生了什么事"),
    ("type", "冶炼厂的废水流进了村里的水田。", "已收到"),
    ("press", "完成", "您有什么请求？"),
    ("type", "停止排放并赔偿损失。", "已收到"),
    ("press", "完成", "您为什么认为相对方应当负责？"),
    ("type", "废水来自冶炼厂的排污口。", "已收到"),
    ("press", "完成", "您知道有哪项标准"),
    ("press", "跳过", "您是否已经向相对方反映过"),
    ("press", "跳过", "请发送证据"),
    ("type", "有照片和村民证言。", "已收到您的说明"),
    ("press", "完成", "您是否希望对某些信息保密"),
    ("press", "否", "秘书处给您写信时用哪种语言？"),
    ("press", "本次对话使用的语言", "您参加调解时需要翻译人员吗？"),
    ("press", "否", "请核对您的申请"),
    ("press", "全部正确", "声明"),
    ("press", "我同意，提交申请", "您的申请已经收到"),
]


def _require_chromium() -> None:
    """Skip where a developer lacks Chromium; in CI a missing browser is a failure."""
    if CHROMIUM.exists():
        return
    missing_service("Debian chromium is not installed: apt-get install chromium")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`gateway serve` in a subprocess on a free port, with its own data folder."""
    _require_chromium()
    data_dir = tmp_path_factory.mktemp("gateway")
    env = {**os.environ, "GATEWAY_DATA_DIR": str(data_dir),
           "GATEWAY_HTTP_PORT": str(_free_port()), "GATEWAY_HTTP_HOST": "127.0.0.1",
           "GATEWAY_MAX_ATTACHMENT_BYTES": str(64 * 1024)}
    log = (data_dir / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['GATEWAY_HTTP_PORT']}"
    try:
        _wait_until_healthy(url, server, data_dir / "serve.log")
        yield {"url": url, "env": env}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_until_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gateway serve exited:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"gateway serve did not become healthy:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def browser(gateway: dict[str, Any]) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, gateway: dict[str, Any]) -> Iterator[Page]:
    """A fresh browser profile (its own cookie, so its own conversation)."""
    context = browser.new_context(base_url=gateway["url"], locale="en-GB")
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


# The reply has arrived: newer messages are shown and the send is over.
ANSWERED = """seen => {
  const transcript = document.getElementById("transcript");
  return transcript.dataset.after !== seen && !transcript.hasAttribute("aria-busy");
}"""


def latest(page: Page) -> Any:
    return page.locator("#transcript > li.msg.bot").last


def act(page: Page, step: tuple[str, str, str], files: Path) -> None:
    """One step of the person, with the keyboard; then wait for the expected reply."""
    kind, value, expected = step
    box = page.get_by_label(re.compile("^(Your message|您的消息)$"))
    seen = page.get_attribute("#transcript", "data-after")
    if kind == "type":
        box.fill(value)
        box.press("Enter")
    elif kind == "file":
        page.locator("#file").set_input_files(files / value)
        box.press("Enter")
    elif kind == "tab":
        # From the message box, Shift+Tab goes back through the choice buttons.
        box.focus()
        for _ in range(len(latest(page).get_by_role("button").all_text_contents())):
            page.keyboard.press("Shift+Tab")
        focused = page.evaluate("document.activeElement.textContent")
        assert focused == value
        page.keyboard.press("Enter")
    else:
        latest(page).get_by_role("button", name=value, exact=True).press("Enter")
    page.wait_for_function(ANSWERED, arg=seen)
    expect(latest(page)).to_contain_text(expected)
    expect(page.locator("#transcript > li.msg.me").last).to_contain_text(
        value if kind != "file" else f"📎 {value}")


def file_application(page: Page, steps: list[tuple[str, str, str]], files: Path) -> str:
    """Go through every step; return the reference number from the receipt."""
    page.goto("/chat")
    expect(latest(page)).to_contain_text("Which language do you want to use?")
    for step in steps:
        act(page, step, files)
        assert page.evaluate("document.activeElement.id") == "message"
    found = REFERENCE.search(latest(page).inner_text())
    assert found, latest(page).inner_text()
    return found.group(0)


def queue(gateway: dict[str, Any]) -> list[dict[str, Any]]:
    """What `gateway queue list --json` says, with the same data folder."""
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "queue", "list", "--json"],
                            env=gateway["env"], capture_output=True, text=True, timeout=60,
                            check=True)
    return json.loads(result.stdout)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "well.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"red water " * 200)
    return tmp_path


def test_english_application_filed_with_keyboard_and_buttons(
        page: Page, gateway: dict[str, Any], files: Path) -> None:
    reference = file_application(page, ENGLISH, files)
    entry = next(e for e in queue(gateway) if e["reference"] == reference)
    assert entry["channel"] == "web" and entry["language"] == "en"
    assert entry["completeness"] == {key: True for key in entry["completeness"]}
    assert len(entry["completeness"]) == 9
    page.reload()
    expect(latest(page)).to_contain_text(reference)


def test_chinese_application_renders_chinese_and_is_filed(
        page: Page, gateway: dict[str, Any], files: Path) -> None:
    reference = file_application(page, CHINESE, files)
    assert page.evaluate("document.documentElement.lang") == "zh"
    expect(page.get_by_role("button", name="发送")).to_be_visible()
    entry = next(e for e in queue(gateway) if e["reference"] == reference)
    assert entry["language"] == "zh"
    assert all(entry["completeness"].values())


def test_chat_fits_a_small_phone_screen(browser: Browser, gateway: dict[str, Any],
                                        tmp_path: Path) -> None:
    context = browser.new_context(base_url=gateway["url"], viewport={"width": 360,
                                                                       "height": 740})
    phone = context.new_page()
    phone.goto("/chat")
    latest(phone).get_by_role("button", name="English").press("Enter")
    expect(latest(phone)).to_contain_text("Are you applying for yourself")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    for button in phone.locator("button").all():
        box = button.bounding_box()
        assert box and box["height"] >= 44, button.inner_text()
    phone.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
    context.close()


def test_too_large_file_is_refused_with_a_clear_message(
        page: Page, tmp_path: Path) -> None:
    big = tmp_path / "video.mp4"
    big.write_bytes(b"\0" * (100 * 1024))
    page.goto("/chat")
    page.locator("#file").set_input_files(big)
    page.get_by_label("Your message").press("Enter")
    expect(page.get_by_role("alert")).to_have_text(
        "The file is too large (the limit is 0.0625 MB). Please send a smaller file, "
        "or describe the evidence in words.")
    expect(page.locator("#transcript > li.msg.me")).to_have_count(0)
    assert page.evaluate("document.activeElement.id") == "message"
    latest(page).get_by_role("button", name="English").press("Enter")
    expect(latest(page)).to_contain_text("Are you applying for yourself")
    expect(page.get_by_role("alert")).to_be_hidden()


def test_page_works_without_javascript(browser: Browser, gateway: dict[str, Any]) -> None:
    context = browser.new_context(base_url=gateway["url"], java_script_enabled=False)
    plain = context.new_page()
    plain.goto("/chat")
    latest(plain).get_by_role("button", name="English").press("Enter")
    expect(latest(plain)).to_contain_text("Are you applying for yourself")
    assert plain.url.endswith("/chat#latest")
    plain.get_by_label("Your message").fill("myself")
    plain.get_by_role("button", name="Send").press("Enter")
    expect(latest(plain)).to_contain_text("Who is the applicant?")
    expect(plain.locator("#transcript > li.msg.me")).to_have_text(
        [re.compile("English"), re.compile("myself")])
    context.close()
