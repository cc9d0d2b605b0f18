"""What a signed-in sender could do to the web app with a small upload or many requests, over real HTTP:
a template that renders gigabytes, a CSV of millions of empty columns, a flood of uploads, and what a
proof shows to a viewer. The app stays up, refuses naming the limit, and shows only what the role may see.
"""

from __future__ import annotations

import concurrent.futures
import html
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from dispatcher.store import Campaign, Recipient
from tests.contacts import crafted
from tests.helpers import basic
from tests.web.conftest import Web, campaigns, csrf_of, still_up, upload

CSV = "text/csv"
TEMPLATE = "{姓名}您好，回T退订【测试】"


def _api_create(web: Web, path: Path, template: str, **form: str) -> httpx.Response:
    return web.client().post(
        "/api/campaigns",
        data={"template": template, "account": web.accounts["yunxin"], **form},
        files={"file": (path.name, path.read_bytes(), CSV)},
        headers=basic("sender"),
    )


def _long_values(path: Path, rows: int = 100, width: int = 1000) -> Path:
    path.write_text(
        "手机号,姓名\n" + "".join(f"139{i:08d},{'长' * width}\n" for i in range(rows)), encoding="utf-8"
    )
    return path


def test_given_a_template_of_thousands_of_placeholders_when_creating_then_refused_naming_the_limit(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    # 100 rows of a 1,000-character value, and a template repeating it 40,000 times: 4 GB of text
    web = make_web()
    path = _long_values(tmp_path / "amplify.csv")
    r = _api_create(web, path, "{姓名}" * 40_000 + "回T退订【测试】")
    assert r.status_code == 400, r.text
    assert r.json()["detail"] == "the template has 160,008 characters; the limit is 2,000"
    r = _api_create(web, path, "{姓名}" * 51 + "回T退订【测试】")
    assert r.json()["detail"] == "the template has 51 placeholders; the limit is 50"
    # The page route, without a preview first, too
    c = web.signed_in("sender")
    page = upload(c, path)
    form = {"csrf": csrf_of(c.get(page).text), "account": web.accounts["yunxin"]}
    r = c.post(f"{page}/create", data={**form, "template": "{姓名}" * 40_000})
    assert r.status_code == 400 and "the limit is 2,000" in r.text
    assert campaigns(web) == 0
    still_up(web)


def test_given_a_long_value_repeated_by_the_template_when_rendered_then_each_row_is_refused_with_the_limit(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web()
    path = _long_values(tmp_path / "amplify.csv", rows=3)
    template = "{姓名}" * 40 + "回T退订【测试】"  # 40,000 characters a row
    preview = web.client().post(
        "/api/campaigns/preview",
        data={"template": template, "account": web.accounts["yunxin"]},
        files={"file": (path.name, path.read_bytes(), CSV)},
        headers=basic("sender"),
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["messages"] == 0
    assert [(r["row"], r["reason"]) for r in preview.json()["rejected"]] == [
        (row, "text longer than 1000 characters") for row in (2, 3, 4)
    ]
    r = _api_create(web, path, template)  # every row refused: no one to send to, so no campaign
    assert r.status_code == 400, r.text
    assert "no recipient left to send to: all 3 rows were rejected" in r.json()["detail"]
    with web.sessions() as session:  # nothing stored, no text built
        assert session.query(Recipient).count() == 0


def test_given_a_list_whose_rendering_exhausts_memory_when_created_without_preview_then_the_child_fails(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    # Each row renders ten times its value: within every text limit, but the whole list renders more
    # than the sandbox allows. Reading it through (what the child did before) fits; rendering does
    # not, and must never be tried first in the web process.
    web = make_web(settings_toml="parse_memory_mb = 700")
    path = tmp_path / "tenfold.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("手机号,v\n")
        f.writelines(f"139{i:08d},{i:09d}{'x' * 88}\n" for i in range(400_000))
    r = _api_create(web, path, "{v}" * 10 + "回T退订【测试】")
    assert r.status_code == 400, r.text
    assert "tenfold.csv: reading the file was stopped: it needed more than the 700 MB allowed" in r.text
    assert campaigns(web) == 0
    still_up(web)


def test_given_a_csv_of_millions_of_trailing_commas_when_its_page_opens_then_only_the_real_columns_show(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    path = tmp_path / "commas.csv"
    path.write_text(
        "手机号,姓名" + "," * 2_000_000 + "\n13900000001,张三" + "," * 1000 + "\n", encoding="utf-8"
    )
    page = upload(c, path)
    r = c.get(page)
    assert r.status_code == 200, r.text[:2000]
    assert len(r.content) < 200_000  # a page the size of its two columns, not of two million
    assert re.findall(r'data-field="([^"]*)"', r.text) == ["手机号", "姓名"]
    preview = c.post(
        f"{page}/preview",
        data={"csrf": csrf_of(r.text), "template": TEMPLATE, "account": web.accounts["yunxin"]},
    )
    assert preview.status_code == 200 and "张三您好" in preview.text
    assert len(preview.content) < 300_000
    # A line of more fields than any sheet has is refused before it becomes a list of them
    wide = tmp_path / "wide.csv"
    wide.write_text("手机号,姓名\n13900000001," + "x," * 30_000 + "x\n", encoding="utf-8")
    r = c.get(upload(c, wide))
    assert r.status_code == 400
    assert "wide.csv, row 2: 30,002 columns; the limit is 50 (setting max_sheet_columns)" in r.text


def test_given_sixty_uploads_at_once_when_the_quota_is_twenty_then_twenty_are_kept(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    token = csrf_of(c.get("/campaigns/new").text)
    body = ("手机号,姓名\n" + "13900000001,张三\n" * 20_000).encode()

    def one(i: int) -> int:
        with httpx.Client(base_url=web.base_url, cookies=c.cookies, timeout=60) as own:
            r = own.post("/uploads", data={"csrf": token}, files={"file": (f"l{i}.csv", body, CSV)})
            return r.status_code

    with concurrent.futures.ThreadPoolExecutor(60) as pool:
        codes = list(pool.map(one, range(60)))
    assert set(codes) <= {303, 400}, codes
    kept = [f for f in (tmp_path / "uploads").iterdir() if (f / ".owner").is_file()]
    assert 1 <= len(kept) <= 20, len(kept)
    assert all(any(not p.name.startswith(".") for p in f.iterdir()) for f in kept)


def test_given_a_proof_when_a_viewer_reads_its_campaign_then_no_rendered_text_and_a_sender_sees_it(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    path = tmp_path / "coupons.csv"
    path.write_text("手机号,姓名,券码\n13900000001,张三,COUPON-7Q4Z\n", encoding="utf-8")
    page = upload(c, path)
    form = {
        "csrf": csrf_of(c.get(page).text),
        "template": "{姓名}您好，券码{券码}，回T退订【测试】",
        "account": web.accounts["yunxin"],
        "proof_numbers": "13800138000",
    }
    sent = c.post(f"{page}/proof", data=form)
    assert sent.status_code == 200, sent.text
    with web.sessions() as session:
        proof = session.query(Campaign).filter(Campaign.proof.is_(True)).one()
    viewer = web.signed_in("viewer")
    for url in (
        f"/api/campaigns/{proof.id}",
        f"/api/campaigns/{proof.id}/progress",
        f"/campaigns/{proof.id}",
    ):
        r = viewer.get(url)
        assert r.status_code == 200, r.text
        assert "COUPON-7Q4Z" not in r.text and "张三" not in r.text and "13800138000" not in r.text, url
    assert viewer.get(f"/api/campaigns/{proof.id}").json()["template"] is None
    assert "COUPON-7Q4Z" in c.get(f"/api/campaigns/{proof.id}").json()["template"]
    assert "COUPON-7Q4Z" in c.get(f"/campaigns/{proof.id}").text


@pytest.mark.parametrize(
    ("name", "build", "expected"),
    [
        (
            "rows.ods",
            lambda p: crafted.ods(
                p,
                crafted.ods_row(crafted.ods_cell("手机号"))
                + crafted.ods_row(crafted.ods_cell("1"), 2_500_000),
            ),
            "sheet '名单' spans 2,500,001 rows × 1 columns",
        ),
        (
            "columns.ods",
            lambda p: crafted.ods(
                p, crafted.ods_row(crafted.ods_cell("手机号") + crafted.ods_cell("1", 16_000))
            ),
            "sheet '名单' spans 1 rows × 16,001 columns",
        ),
        (  # a table inside a cell must not reset the count of its sheet's rows
            "nested.ods",
            lambda p: crafted.ods(
                p,
                crafted.ods_row(
                    '<table:table-cell><table:table table:name="x">'
                    + crafted.ods_row(crafted.ods_cell("a"))
                    + "</table:table></table:table-cell>"
                )
                + crafted.ods_row(crafted.ods_cell("1"), 2_500_000),
            ),
            "sheet '名单' spans 2,500,0",
        ),
        (
            "rows.xlsb",
            lambda p: crafted.xlsb_records(p, [(0, [0]), (2_499_999, [0])]),
            "spans 2,500,000 rows × 1 columns",
        ),
        (
            "columns.xlsb",
            lambda p: crafted.xlsb_records(p, [(0, [0, 15_999])]),
            "spans 1 rows × 16,000 columns",
        ),
    ],
)
def test_given_an_ods_or_xlsb_claiming_millions_of_rows_or_columns_then_refused_before_loading(
    make_web: Callable[..., Web], tmp_path: Path, name: str, build: Callable[[Path], Path], expected: str
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    path = build(tmp_path / name)
    assert path.stat().st_size < 5000
    sandbox = web.app.state.ctx.sandbox
    r = c.get(upload(c, path))
    assert r.status_code == 400
    text = html.unescape(r.text)
    assert expected in text and "refused before reading it" in text, text[-3000:]
    assert "(settings max_sheet_rows, max_sheet_columns)" in text
    assert max(sandbox.peaks_kb) < 200 * 1024  # the child never loaded it
    still_up(web)


def test_given_a_genuine_ods_padded_to_its_last_row_then_it_reads(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    # LibreOffice pads a sheet with a repeat of empty rows and cells to its last row: not cells
    padding = crafted.ods_row('<table:table-cell table:number-columns-repeated="1024"/>', 1_048_570)
    rows = crafted.ods_row(crafted.ods_cell("手机号") + crafted.ods_cell("姓名"))
    rows += crafted.ods_row(crafted.ods_cell("13900000001") + crafted.ods_cell("张三"))
    path = crafted.ods(tmp_path / "名单.ods", rows + padding)
    r = _api_create(web := make_web(), path, TEMPLATE)
    assert r.status_code == 201, r.text
    assert r.json()["messages"] == 1
    assert campaigns(web) == 1


def test_given_a_list_of_bad_rows_when_created_through_the_api_then_the_answer_lists_a_bounded_few(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web()
    path = tmp_path / "bad.csv"
    path.write_text(
        "手机号,姓名\n13900000001,张三\n" + "".join(f"{i},x\n" for i in range(1500)), encoding="utf-8"
    )
    r = _api_create(web, path, TEMPLATE)
    assert r.status_code == 201, r.text
    found = r.json()
    assert (found["messages"], found["invalid"], found["rejected_total"]) == (1, 1500, 1500)
    assert len(found["rejected"]) == 1000 and found["rejected"][0]["row"] == 3
    with web.sessions() as session:  # every row is still kept
        assert session.query(Recipient).count() == 1501
