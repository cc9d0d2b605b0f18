"""``dispatcher sample FILE``: where a newcomer's contacts.xlsx comes from."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_dispatcher


def test_given_sample_when_run_then_a_list_check_reads_is_written_and_never_overwritten(
    tmp_path: Path,
) -> None:
    path = tmp_path / "contacts.xlsx"
    done = run_dispatcher("sample", str(path), "--rows", "200")
    assert done.returncode == 0, done.stderr
    assert "200 contacts" in done.stdout and "--template" in done.stdout
    checked = run_dispatcher(
        "check",
        str(path),
        "--template",
        "{姓名}您好，会员日全场8折，回T退订【测试】",
        "--vendor",
        "yunxin",
        "--json",
    )
    assert checked.returncode == 0, checked.stderr
    data = json.loads(checked.stdout)
    assert (data["rows"], data["phone_column"]) == (200, "手机号码") and data["messages"] > 180
    # When run again on the same name, then it refuses and the list is left as it was
    before = path.read_bytes()
    again = run_dispatcher("sample", str(path))
    assert again.returncode == 2 and "exists" in again.stderr
    assert path.read_bytes() == before
    missing = run_dispatcher("sample", str(tmp_path / "no" / "such" / "dir.xlsx"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
