"""Crafted workbooks through the upload pages and the API: a clear refusal, and the server stays up.

The web app runs in this very process (uvicorn in a thread): had it parsed one of these files itself,
calamine's failed allocation would have aborted the test run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.contacts import crafted
from tests.helpers import basic
from tests.web.conftest import Web, campaigns, csrf_of, still_up, upload, write_contacts

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ONE_GB_KB = 1 << 20
SIZE = "1,048,576 rows × 16,384 columns"


def test_given_the_far_corner_file_when_uploaded_then_its_page_refuses_it_every_time_and_the_server_lives(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    page = upload(c, crafted.far_corner(tmp_path / "会员名单.xlsx"))
    for _ in range(2):  # the upload stays on disk: opening it again must not hurt either
        r = c.get(page)
        assert r.status_code == 400
        assert "会员名单.xlsx: sheet &#39;名单&#39; spans at least" in r.text and SIZE in r.text
        still_up(web)
    assert web.app.state.ctx.sandbox.peaks_kb[-1] < ONE_GB_KB  # the refusal's peak memory
    token = csrf_of(c.get("/campaigns/new").text)
    form = {
        "csrf": token,
        "template": "您好，回T退订【测试】",
        "account": web.accounts["yunxin"],
        "sheet": "",
    }
    r = c.post(f"{page}/preview", data=form)
    assert r.status_code == 400 and SIZE in r.text
    r = c.post(f"{page}/create", data=form)
    assert r.status_code == 400 and SIZE in r.text
    assert campaigns(web) == 0
    still_up(web)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (crafted.far_corner, SIZE),
        (crafted.huge_shared_strings, "uniqueCount='4000000000'"),
        (crafted.billion_laughs, "declares a DTD"),
        (crafted.zip_bomb, "zip bomb"),
        (crafted.lying_size, "more than the 100 bytes it declares"),
        (crafted.far_corner_xls, "spans 60,001 rows × 65,536 columns"),
    ],
    ids=["far-corner", "shared-strings", "billion-laughs", "zip-bomb", "lying-size", "far-corner-xls"],
)
def test_given_a_hostile_file_when_posted_to_the_api_then_400_naming_it_and_nothing_created(
    make_web: Callable[..., Web], tmp_path: Path, build: Callable[[Path], Path], expected: str
) -> None:
    web = make_web()
    path = build(tmp_path / ("list.xls" if build is crafted.far_corner_xls else "list.xlsx"))
    c = web.client()
    form = {"template": "您好，回T退订【测试】", "account": web.accounts["yunxin"]}
    for url in ("/api/campaigns/preview", "/api/campaigns"):
        files = {"file": (path.name, path.read_bytes(), XLSX)}
        r = c.post(url, data=form, files=files, headers=basic("sender"))
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert detail.startswith(f"{path.name}: ") and expected in detail
        still_up(web)
    assert campaigns(web) == 0


def test_given_a_file_the_guard_lets_through_when_it_exhausts_the_reader_then_the_sandbox_contains_it(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    # Limits raised far enough for the guard to accept the far-corner file: calamine then asks for
    # 549 GB and aborts - in the sandbox's child, not in the web process.
    web = make_web(settings_toml="max_sheet_columns = 20000\nparse_memory_mb = 600")
    c = web.signed_in("sender")
    page = upload(c, crafted.far_corner(tmp_path / "bomb.xlsx"))
    r = c.get(page)
    assert r.status_code == 400
    assert "bomb.xlsx: reading the file was stopped: it needed more than the 600 MB allowed" in r.text
    still_up(web)
    r = web.client().post(
        "/api/campaigns",
        data={"template": "您好，回T退订【测试】", "account": web.accounts["yunxin"]},
        files={"file": ("bomb.xlsx", (tmp_path / "bomb.xlsx").read_bytes(), XLSX)},
        headers=basic("sender"),
    )
    assert r.status_code == 400 and "600 MB" in r.json()["detail"]
    assert campaigns(web) == 0
    still_up(web)


def test_given_a_genuine_list_when_previewed_and_created_then_each_is_read_in_the_sandbox_only(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    path = write_contacts(tmp_path / "名单.xlsx", [(f"1390000{i:04d}", f"客户{i}") for i in range(3)])
    page = upload(c, path)
    sandbox = web.app.state.ctx.sandbox
    form = {
        "csrf": csrf_of(c.get(page).text),
        "template": "{姓名}您好，回T退订【测试】",
        "account": web.accounts["yunxin"],
        "sheet": "客户",
    }
    assert c.post(f"{page}/preview", data=form).status_code == 200
    runs = len(sandbox.peaks_kb)
    r = c.post(f"{page}/create", data=form)
    assert r.status_code == 303, r.text
    assert len(sandbox.peaks_kb) == runs + 1  # made by a child too: the web process never reads it
    assert campaigns(web) == 1


def test_given_a_csv_beyond_the_sheet_limits_when_uploaded_then_refused_naming_its_size(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    # The limits held for workbooks only: a CSV header of millions of columns took minutes of CPU to
    # read (in the child, then again in the web process when creating), and rows had no bound at all.
    web = make_web(settings_toml="max_sheet_rows = 1000")
    c = web.signed_in("sender")
    wide = tmp_path / "wide.csv"
    wide.write_text(
        "手机号," + ",".join(f"列{i}" for i in range(100_000)) + "\n13900000001\n", encoding="utf-8"
    )
    padded = tmp_path / "padded.csv"  # empty fields after the last value do not count, as in a sheet
    padded.write_text("手机号,姓名" + "," * 200 + "\n13900000001,张三" + "," * 200 + "\n", encoding="utf-8")
    long = tmp_path / "long.csv"
    long.write_text("手机号\n" + "".join(f"139{i:08d}\n" for i in range(1000)), encoding="utf-8")
    r = c.get(upload(c, wide))
    assert r.status_code == 400
    assert "wide.csv, row 1: 100,001 columns; the limit is 50 (setting max_sheet_columns)" in r.text
    assert c.get(upload(c, padded)).status_code == 200
    page = upload(c, long)
    form = {
        "csrf": csrf_of(c.get(page).text),
        "template": "您好，回T退订【测试】",
        "account": web.accounts["yunxin"],
    }
    r = c.post(f"{page}/preview", data=form)
    assert r.status_code == 400
    assert "long.csv: more than 1,000 rows; the limit is 1,000 (setting max_sheet_rows)" in r.text
    files = {"file": ("wide.csv", wide.read_bytes(), "text/csv")}
    r = web.client().post("/api/campaigns", data=form, files=files, headers=basic("sender"))
    assert r.status_code == 400 and "100,001 columns" in r.json()["detail"]
    assert campaigns(web) == 0
