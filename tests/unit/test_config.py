import os
from pathlib import Path

import pytest
import yaml

from bot.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def shipped() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))


def test_shipped_config_is_valid_and_offline() -> None:
    cfg = load_config(ROOT / "config.yaml")
    assert cfg.mail.provider == "maildir"
    assert not (cfg.classify.llm.enabled or cfg.audit.sheets.enabled or cfg.notify.slack.enabled
                or cfg.crm.hubspot.enabled)
    assert cfg.state_dir == ROOT / "state"


def test_every_problem_is_listed_with_its_yaml_path() -> None:
    data = shipped()
    data["poll"]["interval_seconds"] = "soon"
    data["classify"]["threshold"] = 1.5
    data["routing"]["language_pools"]["fr"] = "nowhere"
    data["routing"]["pools"]["dach"]["members"][0]["email"] = "not-an-address"
    data["actions"]["support"]["trash_after_hours"] = 5
    data["mail"]["provider"] = "imap"
    data["labels"]["processd"] = "typo"
    with pytest.raises(ConfigError) as err:
        parse_config(data, ROOT / "config.yaml")
    problems = err.value.problems
    expected = ["poll.interval_seconds", "classify.threshold", "routing.language_pools.fr",
                "routing.pools.dach.members[0].email", "actions.support.trash_after_hours", "mail.provider",
                "labels.processd"]
    for path in expected:
        assert any(p.startswith(path + ":") for p in problems), (path, problems)
    assert len(problems) == len(expected)
    assert "7 problem(s)" in str(err.value)


def test_llm_time_limits_are_a_range() -> None:
    data = shipped()
    data["classify"]["llm"].update(timeout_seconds=60, max_timeout_seconds=30)
    with pytest.raises(ConfigError) as err:
        parse_config(data, ROOT / "config.yaml")
    assert err.value.problems == ["classify.llm.max_timeout_seconds: must be at least timeout_seconds (60)"]


def test_secrets_come_from_the_environment_never_the_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    data = shipped()
    data["notify"]["slack"]["enabled"] = True
    with pytest.raises(ConfigError, match=r"notify.slack.token_env: slack is enabled but no token"):
        parse_config(data, ROOT / "config.yaml")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    assert parse_config(data, ROOT / "config.yaml").notify.slack.token == "xoxb-from-env"
    data["notify"]["slack"]["token"] = "xoxb-inline"
    with pytest.raises(ConfigError, match=r"notify.slack.token: secrets are not read from the YAML"):
        parse_config(data, ROOT / "config.yaml")


def test_away_dates_are_validated() -> None:
    data = shipped()
    data["routing"]["pools"]["france"]["members"][0]["away"] = [{"from": "2026-12-24", "to": "2026-12-01"},
                                                                {"from": "someday", "to": "2026-12-01"}]
    with pytest.raises(ConfigError) as err:
        parse_config(data, ROOT / "config.yaml")
    assert any("members[0].away[0].to: is before from" in p for p in err.value.problems)
    assert any("members[0].away[1].from: expected a date" in p for p in err.value.problems)


def test_a_bad_list_element_is_named_by_its_index() -> None:
    data = shipped()
    data["prefilter"]["block_senders"] = ["@spam.example", "not an address", "ok@fine.example", "also bad"]
    with pytest.raises(ConfigError) as err:
        parse_config(data, ROOT / "config.yaml")
    assert [p.split(":")[0] for p in err.value.problems] == ["prefilter.block_senders[1]",
                                                             "prefilter.block_senders[3]"]
    assert "'not an address'" in err.value.problems[0]


def test_unreadable_or_invalid_yaml_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("company: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    assert os.path.exists(bad)
