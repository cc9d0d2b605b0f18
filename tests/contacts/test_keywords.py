"""The vendors' forbidden words: pulled from the simulator's yunxin ``GetKeyWords`` into the store by
``dispatcher keywords pull``, refreshed by the beat, and enforced by ``check`` and ``campaign create``
before anything is sent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import func, select
from typer.testing import CliRunner

from dispatcher import keywords, runtime
from dispatcher.cli import app
from dispatcher.config import Settings
from dispatcher.keys import rate_key
from dispatcher.runtime import Runtime
from dispatcher.simulator import Account, RunningSimulator, SimulatorConfig, run_simulator
from dispatcher.store import AuditEntry, Campaign, VendorKeyword, make_engine, session_factory, upgrade
from workers import tasks
from workers.app import make_celery

REDIS_URL = "redis://127.0.0.1:6379/0"
SIM_WORDS = ("代开发票", "六合彩", "赌博")  # the simulator's list, served by GetKeyWords
CONFIGURED = "内部价"  # a word in the account's own config


@dataclass
class Setup:
    sim: RunningSimulator
    db_url: str
    account: str  # the yunxin account
    trigger: str  # an account whose vendor has no keyword list
    tmp: Path

    def invoke(self, *args: str) -> Any:
        return CliRunner().invoke(app, list(args))

    def stored(self) -> list[str]:
        engine = make_engine(self.db_url)
        try:
            with session_factory(engine)() as session:
                return list(keywords.stored(session, self.account))
        finally:
            engine.dispose()


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    config = SimulatorConfig(report_delay=0.0, seed=1).with_accounts(
        Account("yunxin", "kw", "pw", keywords=("澳门首家",))
    )
    suffix = uuid.uuid4().hex[:8]
    account, trigger = f"yx-{suffix}", f"tg-{suffix}"
    with run_simulator(config) as sim:
        toml = (
            f'[accounts."{account}"]\nvendor = "yunxin"\nbase_url = "{sim.base_url}"\nuser = "kw"\n'
            f'password = "pw"\nchannel = "37"\nkeywords = ["{CONFIGURED}"]\n\n'
            f'[accounts."{trigger}"]\nvendor = "trigger"\nbase_url = "{sim.base_url}"\nuser = "demo"\n'
            'password = "demo"\n'
        )
        (tmp_path / "dispatcher.toml").write_text(toml, encoding="utf-8")
        db_url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
        upgrade(db_url)
        monkeypatch.setenv("DISPATCHER_CONFIG", str(tmp_path / "dispatcher.toml"))
        monkeypatch.setenv("DISPATCHER_DATABASE_URL", db_url)
        monkeypatch.setenv("DISPATCHER_REDIS_URL", REDIS_URL)
        runtime.reset()
        yield Setup(sim, db_url, account, trigger, tmp_path)
        runtime.reset()
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    redis.delete(rate_key(account), rate_key(trigger))
    redis.close()


def contacts(tmp: Path, *names: str) -> Path:
    path = tmp / "list.csv"
    rows = "".join(f"1390000000{i},{name}\n" for i, name in enumerate(names))
    path.write_text("手机号,姓名\n" + rows, encoding="utf-8")
    return path


def test_given_keywords_pull_then_the_vendors_list_is_stored_and_a_second_pull_replaces_it(
    setup: Setup,
) -> None:
    result = setup.invoke("keywords", "pull", setup.account)
    assert result.exit_code == 0, result.output
    assert "4 forbidden words stored" in result.output
    assert sorted(setup.stored()) == sorted((*SIM_WORDS, "澳门首家"))
    again = setup.invoke("keywords", "pull", setup.account)
    assert "(0 added, 0 removed)" in again.output
    listed = json.loads(setup.invoke("keywords", "list", setup.account, "--json").output)
    assert listed == {"configured": [CONFIGURED], "pulled": sorted((*SIM_WORDS, "澳门首家"))}
    engine = make_engine(setup.db_url)
    with session_factory(engine)() as session:
        actions = session.execute(select(AuditEntry.action)).scalars().all()
        assert actions.count("keywords.pull") == 2
    engine.dispose()


def test_given_a_vendor_without_a_keyword_list_or_a_refusal_then_keywords_pull_fails_naming_why(
    setup: Setup,
) -> None:
    result = setup.invoke("keywords", "pull", setup.trigger)
    assert result.exit_code != 0 and "trigger has no keyword list method" in result.output
    unknown = setup.invoke("keywords", "pull", "nobody")
    assert unknown.exit_code != 0 and "unknown account 'nobody'" in unknown.output


@pytest.mark.parametrize("word", ["六合彩", CONFIGURED])
def test_given_a_template_with_a_forbidden_word_then_check_and_campaign_create_refuse_it_naming_the_word(
    setup: Setup, word: str
) -> None:
    assert setup.invoke("keywords", "pull", setup.account).exit_code == 0
    path = contacts(setup.tmp, "张三", "李四")
    template = f"{{姓名}}您好，{word}火热开奖，回T退订【测试】"
    checked = setup.invoke("check", str(path), "--template", template, "--account", setup.account)
    assert checked.exit_code != 0
    assert f"forbidden keyword '{word}'" in checked.output
    created = setup.invoke(
        "campaign", "create", str(path), "--template", template, "--account", setup.account
    )
    assert created.exit_code != 0
    assert f"forbidden keyword '{word}'" in created.output
    engine = make_engine(setup.db_url)
    with session_factory(engine)() as session:
        assert session.execute(select(func.count()).select_from(Campaign)).scalar_one() == 0
    engine.dispose()
    assert setup.sim.ledger()["accepted"] == []  # nothing was sent


def test_given_a_value_that_renders_a_stored_word_then_only_its_row_is_rejected_naming_the_word(
    setup: Setup,
) -> None:
    assert setup.invoke("keywords", "pull", setup.account).exit_code == 0
    path = contacts(setup.tmp, "张三", "赌博王")
    template = "{姓名}您好，会员日全场8折，回T退订【测试】"
    checked = setup.invoke("check", str(path), "--template", template, "--account", setup.account, "--json")
    assert checked.exit_code == 0, checked.output
    data = json.loads(checked.stdout)
    assert data["messages"] == 1
    assert [(r["row"], r["reason"]) for r in data["rejected"]] == [(3, "forbidden keyword '赌博'")]


def test_given_no_pull_yet_then_check_knows_only_the_configured_words(setup: Setup) -> None:
    path = contacts(setup.tmp, "张三")
    ok = setup.invoke("check", str(path), "--template", "{姓名}六合彩【测试】", "--account", setup.account)
    assert ok.exit_code == 0, ok.output
    refused = setup.invoke(
        "check", str(path), "--template", f"{{姓名}}{CONFIGURED}【测试】", "--account", setup.account
    )
    assert refused.exit_code != 0 and CONFIGURED in refused.output


def test_given_the_beat_then_it_refreshes_the_keyword_lists_daily(setup: Setup) -> None:
    # The schedule entry, as the beat reads it ...
    celery = make_celery(REDIS_URL, redis_url=REDIS_URL)
    tasks.register(celery)
    entry = celery.conf.beat_schedule["keywords"]
    assert (entry["task"], entry["schedule"]) == (tasks.KEYWORDS, 24 * 3600.0)
    assert tasks.KEYWORDS in celery.tasks
    # ... and what the task does: every listing account pulled, the others left alone.
    live = Runtime.from_settings(Settings.load())
    try:
        outcome = keywords.refresh(live)
    finally:
        live.close()
    assert outcome == {setup.account: "4 words (+4, -0)"}
    engine = make_engine(setup.db_url)
    with session_factory(engine)() as session:
        assert session.execute(select(func.count()).select_from(VendorKeyword)).scalar_one() == 4
    engine.dispose()
