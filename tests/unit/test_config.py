import os
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
import yaml

from bot.config import (
    Away,
    BusinessHours,
    CompanyConfig,
    ConfigError,
    Reader,
    RepliesConfig,
    WeeklyReport,
    load_config,
    parse_config,
)
from bot.models import Person

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


def test_the_error_lists_each_problem_on_its_own_line_and_cuts_a_long_one_at_600_characters() -> None:
    err = ConfigError(["a: is required", "b" * 600, "c" * 601])
    assert err.problems == ["a: is required", "b" * 600, "c" * 599 + "…"]
    assert str(err) == f"config: 3 problem(s):\n  - a: is required\n  - {'b' * 600}\n  - {'c' * 599}…"
    assert str(ConfigError(["x: unknown key"], "/etc/bot.yaml")) == "/etc/bot.yaml: 1 problem(s):\n  - x: unknown key"


BASE = Path("/srv/bot")


def read(data: dict, path: str = "poll") -> Reader:
    return Reader(data, BASE, path)


@pytest.mark.parametrize(("value", "bounds", "integer", "problem"), [
    (5, (5, None), True, None),
    (4, (5, None), True, "expected a whole number in 5..inf, got 4"),
    (10, (None, 10), False, None),
    (10.5, (None, 10), False, "expected a number in -inf..10, got 10.5"),
    (0, (0, 1), False, None),
    (-0.01, (0, 1), False, "expected a number in 0..1, got -0.01"),
    (1.01, (0, 1), False, "expected a number in 0..1, got 1.01"),
    (5.0, (None, None), True, "expected a whole number, got 5.0"),
    (True, (None, None), False, "expected a number, got True"),
    ("5", (None, None), False, "expected a number, got '5'"),
    ([5], (None, None), True, "expected a whole number, got [5]"),
])
def test_a_number_outside_its_bounds_or_of_the_wrong_type_is_a_problem_and_the_edge_is_not(
        value: object, bounds: tuple, integer: bool, problem: str | None) -> None:
    r = read({"n": value})
    got = r.integer("n", 7, *bounds) if integer else r.number("n", 7.5, *bounds)
    assert r.problems == ([f"poll.n: {problem}"] if problem else [])
    if problem is None or "in" in problem.split(",")[0]:
        assert got == value  # a value out of bounds is still read (the error stops the start anyway)
    else:
        assert got == (7 if integer else 7.5)


def test_a_missing_value_takes_its_default_and_a_missing_required_one_is_named() -> None:
    r = read({"enabled": None})
    assert (r.number("n", 3), r.integer("i", 4), r.boolean("enabled", True), r.string("s", "x")) == (3.0, 4, True, "x")
    assert r.str_list("l", ["a"]) == ("a",) and r.problems == []
    assert r.string("name") == ""
    assert r.problems == ["poll.name: is required"]


@pytest.mark.parametrize(("value", "problem", "got"), [
    ("json", None, "json"),
    ("xml", "expected one of text, json, got 'xml'", "xml"),
    (5, "expected a string, got 5", "text"),
])
def test_a_string_must_be_text_and_one_of_its_choices(value: object, problem: str | None, got: str) -> None:
    r = read({"format": value})
    assert r.string("format", "text", choices=("text", "json")) == got
    assert r.problems == ([f"poll.format: {problem}"] if problem else [])
    r = read({"format": 5})
    assert r.string("format") == "" and r.problems == ["poll.format: expected a string, got 5"]
    r = read({"n": "many", "i": 2.5})
    assert (r.number("n"), r.integer("i")) == (0, 0)  # a required value of the wrong type reads as nothing
    assert r.problems == ["poll.n: expected a number, got 'many'", "poll.i: expected a whole number, got 2.5"]


@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_a_switch_must_be_true_or_false(value: object) -> None:
    r = read({"on": value})
    assert r.boolean("on", True) is True and read({"on": value}).boolean("on", False) is False
    assert r.problems == [f"poll.on: expected true or false, got {value!r}"]
    r = read({"on": value})
    assert r.boolean("on") is False and r.problems == [f"poll.on: expected true or false, got {value!r}"]
    r = read({"on": False})
    assert r.boolean("on", True) is False and r.problems == []


@pytest.mark.parametrize(("value", "problems", "got"), [
    (["a.example", "b.example"], [], ("a.example", "b.example")),
    ("a.example", ["poll.l: expected a list of strings, got 'a.example'"], ()),
    (["a.example", 5], ["poll.l: expected a list of strings, got ['a.example', 5]"], ()),
    (["a.example", "x", "b.example", "y z"], ["poll.l[1]: expected a domain, got 'x'",
                                              "poll.l[3]: expected a domain, got 'y z'"],
     ("a.example", "x", "b.example", "y z")),
])
def test_a_list_must_hold_strings_and_each_bad_one_is_named_by_its_index(
        value: object, problems: list[str], got: tuple) -> None:
    r = read({"l": value})
    assert r.str_list("l", [], re.compile(r"^\w+\.\w+$"), "a domain") == got
    assert r.problems == problems


def test_a_list_element_check_without_a_description_names_the_pattern() -> None:
    r = read({"l": ["ok", "NO"]})
    r.str_list("l", [], re.compile("^[a-z]+$"))
    assert r.problems == ["poll.l[1]: expected a value matching ^[a-z]+$, got 'NO'"]
    r = read({"l": None})
    assert r.str_list("l") == () and r.problems == ["poll.l: is required"]


def test_paths_are_read_relative_to_the_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/ops")
    r = read({"rel": "state/x.json", "abs": "/var/lib/bot", "home": "~/bot", "empty": "", "opt": "seed"})
    assert r.path_value("rel") == BASE / "state/x.json"
    assert r.path_value("abs") == Path("/var/lib/bot")
    assert r.path_value("home") == Path("/home/ops/bot")
    assert r.path_value("missing", "state") == BASE / "state"
    assert r.optional_path("empty") is None and r.optional_path("none") is None
    assert r.optional_path("opt") == BASE / "seed"
    r.check_unknown()
    assert r.problems == []


def test_a_secret_is_read_from_its_environment_variable_or_its_file(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token.txt").write_text("  file-secret\n", encoding="utf-8")
    monkeypatch.setenv("BOT_TEST_TOKEN", "env-secret")
    monkeypatch.delenv("BOT_TEST_UNSET", raising=False)
    cases = [({"token_env": "BOT_TEST_TOKEN", "token_file": "token.txt"}, "env-secret", []),
             ({"token_env": "BOT_TEST_UNSET", "token_file": "token.txt"}, "file-secret", []),
             ({"token_file": str(tmp_path / "token.txt")}, "file-secret", []),
             ({"token_env": "BOT_TEST_UNSET"}, None, []),
             ({}, None, []),
             ({"token_file": "missing.txt"}, None,
              [f"crm.token_file: cannot read {tmp_path / 'missing.txt'}: No such file or directory"]),
             ({"token": "inline", "token_env": "BOT_TEST_TOKEN"}, "env-secret",
              ["crm.token: secrets are not read from the YAML: use token_env or token_file"])]
    for data, secret, problems in cases:
        r = Reader(data, tmp_path, "crm")
        assert r.secret("token") == secret, data
        r.check_unknown()
        assert r.problems == problems, data


def test_unknown_keys_are_named_with_their_path() -> None:
    r = Reader({"known": 1, "typo": 2, 7: 3, "k" * 121: 4}, BASE, "notify.slack")
    r.integer("known")
    r.check_unknown()
    assert r.problems == ["notify.slack.typo: unknown key", "notify.slack.7: unknown key",
                          f"notify.slack.'{'k' * 57}...{'k' * 58}': unknown key"]


def test_a_section_that_is_not_a_mapping_is_named_and_read_as_empty() -> None:
    top = Reader({"mail": {"gmail": ["oops"]}, "poll": None}, BASE)
    gmail = top.section("mail").section("gmail")
    assert gmail.path == "mail.gmail" and gmail.integer("batch_size", 50) == 50
    assert top.section("poll").integer("interval_seconds", 60) == 60
    assert top.problems == ["mail.gmail: expected a mapping, got list"]
    assert Reader("text", BASE).problems == ["(top level): expected a mapping, got str"]
    nested = Reader({}, BASE, "", top.problems)
    nested.problem("", "label names must be distinct")
    nested.section("a").problem("b", "is odd")
    assert top.problems[-2:] == ["(top level): label names must be distinct", "a.b: is odd"]


def test_a_document_that_is_not_a_mapping_is_named_as_the_top_level() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(["company"], ROOT / "config.yaml")
    assert err.value.problems[0] == "(top level): expected a mapping, got list"
    assert str(err.value).startswith(f"{ROOT / 'config.yaml'}: {len(err.value.problems)} problem(s):\n  - (top")


def problems_with(**changes: object) -> list[str]:
    """The problems of the shipped config with `changes` set ("routing.pools.dach.cc" = value; None deletes)."""
    data = shipped()
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = data
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is None:
            del node[key]
        else:
            node[key] = value
    try:
        parse_config(data, ROOT / "config.yaml")
    except ConfigError as err:
        return err.problems
    return []


POOL = "routing.pools.dach"
MEMBER = f"{POOL}.members[0]"


@pytest.mark.parametrize(("changes", "problems"), [
    ({"routing__pools__dach__members": "dieter@acme-pumps.example"},
     [f"{POOL}.members: expected a non-empty list of {{name, email}}"]),
    ({"routing__pools__dach__members": []}, [f"{POOL}.members: expected a non-empty list of {{name, email}}"]),
    ({"routing__pools__dach__members": [{"name": "Dieter Braun", "email": "dieter@acme-pumps.example"},
                                        {"name": "D. Braun", "email": "Dieter@ACME-pumps.example"}]},
     [f"{POOL}.members: the same person is listed twice"]),
    ({"routing__pools__dach__cc": ["frank"]}, [f"{POOL}.cc[0]: expected an email address, got 'frank'"]),
    ({"routing__pools__dach__members__0__email": "dieter"},
     [f"{MEMBER}.email: expected an email address, got 'dieter'"]),
    ({"routing__pools__dach__members__0__name": None}, [f"{MEMBER}.name: is required"]),
    ({"routing__pools__dach__members__0__phone": "+49"}, [f"{MEMBER}.phone: unknown key"]),
    ({"routing__pools__dach__members__0__away": "2026-12-24"},
     [f"{MEMBER}.away: expected a list of {{from: DATE, to: DATE}}"]),
    ({"routing__pools__dach__members__0__away": [{"from": "2026-12-24", "to": "someday"}]},
     [f"{MEMBER}.away[0].to: expected a date like 2026-12-24, got 'someday'"]),
    ({"routing__pools__dach__members__0__away": [{"from": 20261224, "to": "2026-12-24"}]},
     [f"{MEMBER}.away[0].from: expected a date like 2026-12-24, got 20261224"]),
    ({"routing__pools__dach__members__0__away": [{"from": "2026-12-24", "to": "2026-12-23", "why": "x"}]},
     [f"{MEMBER}.away[0].to: is before from", f"{MEMBER}.away[0].why: unknown key"]),
    ({"routing__pools": {}}, ["routing.pools: define at least one pool"] + [
        f"routing.{key}: names pool '{pool}', which is not defined under routing.pools" for key, pool in [
            ("default_pool", "inside_sales"), ("rfq_pool", "technical"), ("language_pools.de", "dach"),
            ("language_pools.fr", "france")]]),
    ({"routing__default_pool": None}, ["routing.default_pool: is required"]),
    ({"routing__rfq_pool": "rfq"}, ["routing.rfq_pool: names pool 'rfq', which is not defined under routing.pools"]),
    ({"routing__language_pools": ["de"]}, ["routing.language_pools: expected a mapping of language code -> pool name"]),
    ({"routing__language_pools": {"deu": "dach", "FR": "france"}},
     ["routing.language_pools.deu: expected an ISO 639-1 code as key",
      "routing.language_pools.FR: expected an ISO 639-1 code as key"]),
    ({"routing__colleagues": ["agency"]}, ["routing.colleagues[0]: expected an address, got 'agency'"]),
    ({"routing__sticky_days": -1}, ["routing.sticky_days: expected a whole number in 0..3650, got -1"]),
    ({"routing__sticky_days": 3651}, ["routing.sticky_days: expected a whole number in 0..3650, got 3651"]),
    ({"routing__language_pools": None, "routing__rfq_pool": None, "routing__colleagues": None,
      "routing__sticky_days": None, "routing__pools__dach__cc": None}, []),  # all optional
    ({"routing__sticky_days": 0}, []),
    ({"routing__sticky_days": 3650}, []),
], ids=lambda v: "" if isinstance(v, list) else "-".join(k.split("__")[-1] for k in v))
def test_routing_problems_are_named_by_their_yaml_path(changes: dict, problems: list[str]) -> None:
    assert problems_with(**changes) == problems


def test_pools_and_members_are_read_as_written() -> None:
    data = shipped()
    routing = data["routing"]
    routing.update(colleagues=["Agency@Partner.example"], sticky_days=30, language_pools={"de": "dach"})
    del routing["rfq_pool"]
    routing["pools"]["dach"]["cc"] = ["Frank.Field@ACME-pumps.example"]
    routing["pools"]["dach"]["members"] = [
        {"name": "Dieter Braun", "email": "Dieter@ACME-pumps.example", "slack_id": "U01", "crm_owner_id": 4711,
         "away": [{"from": "2026-12-24", "to": "2026-12-24"}, {"from": date(2027, 1, 2), "to": "2027-01-06"}]},
        {"name": "Eva Schulz", "email": "eva@acme-pumps.example"}]
    cfg = parse_config(data, ROOT / "config.yaml").routing
    assert (cfg.default_pool, cfg.rfq_pool, cfg.language_pools) == ("inside_sales", None, {"de": "dach"})
    assert (cfg.colleagues, cfg.sticky_days) == (("agency@partner.example",), 30)
    dach = cfg.pools["dach"]
    assert dach.name == "dach" and dach.cc == ("frank.field@acme-pumps.example",)
    assert [m.person for m in dach.members] == [
        Person("dieter@acme-pumps.example", "Dieter Braun", "U01", "4711"),
        Person("eva@acme-pumps.example", "Eva Schulz", None, None)]
    assert dach.members[0].away == (Away(date(2026, 12, 24), date(2026, 12, 24)),
                                    Away(date(2027, 1, 2), date(2027, 1, 6)))
    assert dach.members[1].away == ()
    assert list(cfg.pools) == ["inside_sales", "dach", "france", "technical"]
    data = shipped()
    del data["routing"]["sticky_days"]
    cfg = parse_config(data, ROOT / "config.yaml").routing
    assert (cfg.sticky_days, cfg.rfq_pool, cfg.default_pool) == (90, "technical", "inside_sales")


@pytest.mark.parametrize(("changes", "problems"), [
    ({"followup__business_hours__start": "9:05", "followup__business_hours__end": "23:59"}, []),
    ({"followup__business_hours__start": 480, "followup__business_hours__end": 1439}, []),  # unquoted 08:00, 23:59
    ({"followup__business_hours__start": 0}, []),  # unquoted 00:00
    ({"followup__business_hours__end": 1440},
     ["followup.business_hours.end: expected a time of day like \"09:00\", got 1440"]),
    ({"followup__business_hours__start": -1},
     ["followup.business_hours.start: expected a time of day like \"09:00\", got -1"]),
    ({"followup__business_hours__start": True},
     ["followup.business_hours.start: expected a time of day like \"09:00\", got True"]),
    ({"followup__business_hours__end": "24:00"},
     ["followup.business_hours.end: expected a time of day like \"09:00\", got '24:00'"]),
    ({"followup__business_hours__end": "12:60"},
     ["followup.business_hours.end: expected a time of day like \"09:00\", got '12:60'"]),
    ({"followup__business_hours__start": "17:00"}, ["followup.business_hours.end: is not after start (17:00)"]),
    ({"followup__business_hours__days": ["Monday", " TUE ", "sunday"]}, []),
    ({"followup__business_hours__days": ["mon", "mo", 1]},
     ["followup.business_hours.days[1]: expected a day of the week like mon, got 'mo'",
      "followup.business_hours.days[2]: expected a day of the week like mon, got 1"]),
    ({"followup__business_hours__timezone": "America/New_York"}, []),
    ({"followup__business_hours__timezone": "Europe/Nowhere"},
     ["followup.business_hours.timezone: unknown time zone 'Europe/Nowhere' (an IANA name like Europe/Berlin)"]),
    ({"followup__business_hours__timezone": "../etc/passwd"},
     ["followup.business_hours.timezone: unknown time zone '../etc/passwd' (an IANA name like Europe/Berlin)"]),
    ({"followup__business_hours__holidays": ["2026-12-24", "someday"]},
     ["followup.business_hours.holidays[1]: expected a date like 2026-12-24, got 'someday'"]),
    ({"report__weekly": {"day": "fri", "time": "17:30", "at": 1}}, ["report.weekly.at: unknown key"]),
    ({"report__weekly": {"day": "fr", "time": "7"}},
     ["report.weekly.day: expected a day of the week like mon, got 'fr'",
      "report.weekly.time: expected a time of day like \"09:00\", got '7'"]),
], ids=lambda v: "" if isinstance(v, list) else "-".join(f"{k.split('__')[-1]}={v[k]}" for k in v))
def test_times_days_and_zones_are_checked_and_named_by_their_yaml_path(changes: dict, problems: list[str]) -> None:
    assert problems_with(**changes) == problems


def test_times_days_and_zones_are_read_as_written() -> None:
    data = shipped()
    data["followup"]["business_hours"].update(timezone="America/New_York", days=["Friday", "mon", "SUN", "mon"],
                                              start=600, end="17:45", holidays=["2026-12-24", date(2026, 12, 31)])
    data["report"]["weekly"] = {"day": "Sunday", "time": "23:05"}
    cfg = parse_config(data, ROOT / "config.yaml")
    hours = cfg.followup.business_hours
    assert (hours.timezone, hours.days, hours.start, hours.end) == ("America/New_York", (0, 4, 6), time(10, 0),
                                                                    time(17, 45))
    assert hours.holidays == (date(2026, 12, 24), date(2026, 12, 31))
    assert hours.zone.utcoffset(datetime(2026, 7, 1)) == timedelta(hours=-4)
    assert cfg.report.weekly == WeeklyReport(6, time(23, 5))
    data["followup"]["business_hours"].update(start="25:00", end="bad")
    data["report"]["weekly"] = {"day": 3, "time": "noon"}
    with pytest.raises(ConfigError):
        parse_config(data, ROOT / "config.yaml")
    data["report"]["weekly"] = {}
    data["followup"]["business_hours"] = {}
    cfg = parse_config(data, ROOT / "config.yaml")
    assert cfg.report.weekly == WeeklyReport(0, time(8, 0))
    assert cfg.followup.business_hours == BusinessHours("UTC", (0, 1, 2, 3, 4), time(9), time(17))


def test_optional_top_level_settings_take_their_defaults_and_check_their_choices() -> None:
    data = shipped()
    for key in ("state_dir", "log_level", "log_format"):
        del data[key]
    del data["replies"]
    cfg = parse_config(data, ROOT / "config.yaml")
    assert (cfg.state_dir, cfg.log_level, cfg.log_format) == (ROOT / "state", "INFO", "text")
    assert cfg.replies == RepliesConfig(ROOT / "bot" / "templates", "")
    assert cfg.source == ROOT / "config.yaml"
    assert cfg.company == CompanyConfig("Acme Pumps GmbH", ("acme-pumps.example",), "sales@acme-pumps.example")
    for level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        assert problems_with(log_level=level, log_format="json") == []
    assert problems_with(log_level="debug", log_format="JSON") == [
        "log_level: expected one of DEBUG, INFO, WARNING, ERROR, got 'debug'",
        "log_format: expected one of text, json, got 'JSON'"]
    assert problems_with(replies__from_name="Sales", replies__templates_dir="/opt/templates", state_dir="/var/bot",
                         replies__signature="x") == ["replies.signature: unknown key"]


class LookupLog(dict):
    """An environment that records the lookups of the variables a secret could come from (the one named, a default
    name, no name at all); what other code reads from the environment is none of this test's business."""

    WATCHED = frozenset({"HUBSPOT_TOKEN", "", "5", "None"})

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.looked_up: list[str] = []

    def get(self, key: str, default: object = None) -> object:
        if str(key) in self.WATCHED:
            self.looked_up.append(key)
        return super().get(key, default)


@pytest.mark.parametrize(("data", "looked_up"), [
    ({}, []), ({"token_env": ""}, []), ({"token_env": 5}, []), ({"token_env": "HUBSPOT_TOKEN"}, ["HUBSPOT_TOKEN"])])
def test_a_secret_is_looked_up_only_in_the_variable_the_config_names(monkeypatch: pytest.MonkeyPatch, data: dict,
                                                                     looked_up: list[str]) -> None:
    env = LookupLog({**os.environ, "HUBSPOT_TOKEN": "pat-1"})
    monkeypatch.setattr(os, "environ", env)
    r = Reader(data, BASE, "crm.hubspot")
    assert r.secret("token") == ("pat-1" if looked_up else None)
    assert env.looked_up == looked_up


def test_a_member_with_an_empty_email_or_name_is_a_problem_not_a_silent_omission() -> None:
    problems = problems_with(routing__pools__dach__members__0__email="",
                             routing__pools__dach__members__1__name="")
    assert any(p.startswith(f"{MEMBER}.email: ") for p in problems)
    assert any(p.startswith(f"{POOL}.members[1].name: ") for p in problems)
    assert any(p.startswith(f"{MEMBER}.email: ") for p in problems_with(routing__pools__dach__members__0__email=None))
    # each empty member is named once, and no further problem is made up about members that are not there
    assert problems_with(routing__pools__dach__members__0__email="", routing__pools__dach__members__1__email="") == [
        f"{MEMBER}.email: must not be empty: a member without it cannot be assigned a lead",
        f"{POOL}.members[1].email: must not be empty: a member without it cannot be assigned a lead"]
