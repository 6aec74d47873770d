"""The province's YAML: the bundled Khánh Hòa files load; broken files name file, line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from referrals.config import ConfigError, Settings, load_province
from referrals.config.settings import BUNDLED_CONFIG

DESIGN_PARTNERS = {
    "legal-aid-centre",
    "saphira-legal",
    "hospital-social-work",
    "cdc-khanh-hoa",
    "phuong-son-health",
    "ninh-hiep-health",
    "police-nha-trang",
    "police-ninh-hoa",
    "van-ninh-vocational",
    "social-work-centre",
    "sao-bien-nha-trang",
    "sao-bien-ninh-hoa",
}
DESIGN_PATHWAYS = {
    "health_check",
    "id_papers",
    "tax_code",
    "legal_aid",
    "vocational_training",
    "psychosocial_support",
    "emergency_shelter",
    "emergency_aid",
}
REVEALING = ("mại dâm", "bán dâm", "bạo lực", "phụ khoa", "sex", "violence", "gynaec")


def test_bundled_province_has_the_design_keys() -> None:
    p = load_province(BUNDLED_CONFIG)
    slugs = {x.slug for x in p.partners}
    # The design's twelve (the police keys now name today's ward police), the city and town
    # police of the 2019 reports under their own keys, and the ten other units' police of 2025.
    assert slugs >= DESIGN_PARTNERS and {"police-tp-nha-trang", "police-tx-ninh-hoa"} <= slugs
    assert len(slugs) == 24 and len({s for s in slugs if s.startswith("police-")}) == 14
    assert {x.key for x in p.pathways} == DESIGN_PATHWAYS
    assert {"nha-trang", "ninh-hoa"} <= {a.key for a in p.province.areas}
    assert all(c.phone is None or c.phone.startswith("+84") for x in p.partners for c in x.contacts)


def test_partner_facing_service_names_reveal_nothing() -> None:
    for partner in load_province(BUNDLED_CONFIG).partners:
        for service in partner.services:
            text = f"{service.name} {service.name_en}".lower()
            assert not any(word in text for word in REVEALING), service


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    target = tmp_path / "province"
    shutil.copytree(BUNDLED_CONFIG, target)
    return target


def _break(path: Path, old: str, new: str) -> int:
    text = path.read_text(encoding="utf-8")
    assert old in text
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return line


def test_a_bad_phone_names_file_line_entry_and_field(config_copy: Path) -> None:
    line = _break(config_copy / "partners.yaml", "0905 000 101", "not-a-phone")
    with pytest.raises(ConfigError) as err:
        load_province(config_copy)
    message = str(err.value)
    assert f"partners.yaml:{line}" in message
    assert "contacts.0.phone" in message and "not a phone number" in message
    assert "entry partners[" in message


def test_an_unknown_pathway_in_a_service_is_refused(config_copy: Path) -> None:
    line = _break(config_copy / "partners.yaml", "pathway: id_papers", "pathway: id_paperz")
    with pytest.raises(ConfigError, match=rf"partners.yaml:{line}.*no pathway 'id_paperz'"):
        load_province(config_copy)


def test_a_bad_due_rule_is_refused(config_copy: Path) -> None:
    path = config_copy / "pathways.yaml"
    text = path.read_text(encoding="utf-8")
    old = next(
        line
        for line in text.splitlines()
        if "working_days:" in line and not line.lstrip().startswith("#")
    )
    line = _break(path, old, old.replace("working_days:", "weeks:"))
    with pytest.raises(ConfigError, match=rf"pathways.yaml:{line}.*weeks"):
        load_province(config_copy)


def test_missing_file_and_broken_yaml(config_copy: Path) -> None:
    (config_copy / "pathways.yaml").unlink()
    (config_copy / "province.yaml").write_text("key: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_province(config_copy)
    assert "pathways.yaml: file not found" in str(err.value)
    assert "province.yaml" in str(err.value) and "not valid YAML" in str(err.value)


def test_first_step_must_be_the_partners_acknowledgement(config_copy: Path) -> None:
    _break(config_copy / "pathways.yaml", "key: acknowledge", "key: hello")
    with pytest.raises(ConfigError, match="first step must be `acknowledge`"):
        load_province(config_copy)


@pytest.mark.parametrize("secret", ["changethis", "dev-secret-key", "short"])
def test_production_refuses_a_placeholder_secret(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERRALS_ENVIRONMENT", "production")
    monkeypatch.setenv("REFERRALS_SECRET_KEY", secret)
    with pytest.raises(ValueError, match="REFERRALS_SECRET_KEY"):
        Settings()


def test_development_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REFERRALS_DATABASE_URL", raising=False)
    monkeypatch.setenv("REFERRALS_DATA_DIR", str(tmp_path))
    s = Settings()
    assert s.database_url == f"sqlite:///{tmp_path / 'referrals.db'}"
    assert s.timezone == "Asia/Ho_Chi_Minh"
    with pytest.raises(ValueError, match="unknown time zone"):
        Settings(timezone="Mars/Olympus")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{after: {hours: 2}, to: partner_backup}", "{after: {hours: 2}, to: the_police}", "to"),
        ("{after: {hours: 4}, to: coordinator}", "{after: {hours: 1}, to: coordinator}", "grow"),
        (
            "{after: {hours: 4}, to: coordinator}",
            "{after: {days: 4}, to: coordinator}",
            "same unit",
        ),
    ],
)
def test_a_bad_escalation_ladder_is_refused_with_its_line(
    config_copy: Path, old: str, new: str, message: str
) -> None:
    line = _break(config_copy / "pathways.yaml", old, new)
    with pytest.raises(ConfigError, match=r"pathways\.yaml:\d+") as err:
        load_province(config_copy)
    text = str(err.value)
    assert message in text and "emergency_aid" in text
    reported = int(text.split("pathways.yaml:")[1].split()[0])
    assert line - 6 <= reported <= line  # at the ladder, or the rung itself


def test_a_contacts_channels_are_an_order_of_channels_it_can_be_reached_on(
    config_copy: Path,
) -> None:
    """partners.yaml `channels` (issue 24): each channel once, at least one with an address;
    the province's `delivery.order` likewise; `referrals init` stores each contact's order."""
    from referrals.config.fields import reachable

    path = config_copy / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    anchor = "        email: tiepnhan.police-nha-trang@example.vn\n"
    path.write_text(text.replace(anchor, anchor + "        channels: [zalo, sms, zalo]\n"))
    with pytest.raises(ConfigError, match="channels repeat one"):
        load_province(config_copy)
    path.write_text(text.replace(anchor, anchor + "        channels: [fax]\n"))
    with pytest.raises(ConfigError, match=r"channels\.0"):
        load_province(config_copy)
    path.write_text(text.replace(anchor, anchor + "        channels: [zalo, email]\n"))
    contact = next(
        c
        for p in load_province(config_copy).partners
        if p.slug == "police-nha-trang"
        for c in p.contacts
    )
    assert contact.channels == ["zalo", "email"]
    assert reachable(["zalo", "sms", "email"], phone=None, email="a@b.vn") == ["email"]
    province = config_copy / "province.yaml"
    text = province.read_text(encoding="utf-8")
    province.write_text(text.replace("order: [sms, email]", "order: [sms, sms]"))
    with pytest.raises(ConfigError, match="a channel repeats"):
        load_province(config_copy)
