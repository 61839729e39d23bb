from pathlib import Path

import pytest

from server.settings import Settings, SettingsError


def test_defaults_are_embedded_mode() -> None:
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("var/hub.sqlite3")
    assert settings.issuer == "http://127.0.0.1:8080"
    assert settings.trusted_proxies == ()


def test_environment_is_read_once_into_frozen_settings() -> None:
    settings = Settings.from_env(
        {
            "TELEPHARM_DATA_DIR": "/srv/hub",
            "TELEPHARM_DATABASE_URL": "postgresql+asyncpg://h/db",
            "TELEPHARM_ISSUER": "https://hub.example.org/",
            "TELEPHARM_TRUSTED_PROXIES": "10.0.0.1, 10.0.1.0/24",
            "TELEPHARM_LOG_LEVEL": "debug",
        }
    )
    assert settings.data_dir == Path("/srv/hub")
    assert settings.issuer == "https://hub.example.org"
    assert settings.trusted_proxies == ("10.0.0.1", "10.0.1.0/24")
    assert settings.log_level == "DEBUG"
    with pytest.raises(AttributeError):
        settings.issuer = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "issuer", ["http://hub.example.org", "ftp://127.0.0.1", "hub", "https://h/?a=1"]
)
def test_unsafe_or_malformed_issuers_are_refused(issuer: str) -> None:
    with pytest.raises(SettingsError):
        Settings(issuer=issuer)


def test_the_deadlines_are_whole_seconds_from_one() -> None:
    assert (Settings.from_env({}).body_timeout, Settings.from_env({}).store_timeout) == (30, 10)
    settings = Settings.from_env({"TELEPHARM_BODY_TIMEOUT": "5", "TELEPHARM_STORE_TIMEOUT": "3"})
    assert (settings.body_timeout, settings.store_timeout) == (5, 3)
    for name in ("TELEPHARM_BODY_TIMEOUT", "TELEPHARM_STORE_TIMEOUT"):
        with pytest.raises(SettingsError):
            Settings.from_env({name: "0"})
        with pytest.raises(SettingsError):
            Settings.from_env({name: "²"})  # a clear message, not a ValueError


def test_sweep_timing_is_read_from_the_environment() -> None:
    settings = Settings.from_env({"TELEPHARM_SWEEP_INTERVAL": "1.5", "TELEPHARM_STUCK_AFTER": "5"})
    assert (settings.sweep_interval, settings.stuck_after) == (1.5, 5.0)


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "1e9"])
def test_sweep_timing_must_be_positive_seconds(value: str) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({"TELEPHARM_SWEEP_INTERVAL": value})


def test_outbound_delivery_timing_is_read_from_the_environment() -> None:
    defaults = Settings()
    assert (
        defaults.outbox_timeout,
        defaults.outbox_retry_first,
        defaults.outbox_retry_max,
        defaults.outbox_dead_after,
    ) == (10.0, 2.0, 300.0, 86400.0)
    settings = Settings.from_env(
        {
            "TELEPHARM_OUTBOX_TIMEOUT": "5",
            "TELEPHARM_OUTBOX_RETRY_FIRST": "0.5",
            "TELEPHARM_OUTBOX_RETRY_MAX": "60",
            "TELEPHARM_OUTBOX_DEAD_AFTER": "259200",  # three days
        }
    )
    assert (
        settings.outbox_timeout,
        settings.outbox_retry_first,
        settings.outbox_retry_max,
        settings.outbox_dead_after,
    ) == (5.0, 0.5, 60.0, 259200.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OUTBOX_TIMEOUT", "0"),
        ("OUTBOX_TIMEOUT", "301"),
        ("OUTBOX_RETRY_MAX", "soon"),
        ("OUTBOX_DEAD_AFTER", "2592001"),  # over 30 days
    ],
)
def test_outbound_delivery_timing_must_be_sensible(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"TELEPHARM_{name}"):
        Settings.from_env({f"TELEPHARM_{name}": value})


def test_epcs_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    defaults = Settings(data_dir=tmp_path)
    assert defaults.archive_key_path == tmp_path / "keys" / "archive-signing.pem"
    assert (defaults.epcs_trust_roots, defaults.epcs_crls, defaults.crl_timeout) == ("", "", 10.0)
    settings = Settings.from_env(
        {
            "TELEPHARM_EPCS_TRUST_ROOTS": "/etc/telepharm/roots.pem",
            "TELEPHARM_EPCS_CRLS": "/etc/telepharm/crls",
            "TELEPHARM_CRL_TIMEOUT": "3",
            "TELEPHARM_ARCHIVE_KEY": "/etc/telepharm/archive.pem",
        }
    )
    assert settings.epcs_trust_roots == "/etc/telepharm/roots.pem"
    assert settings.epcs_crls == "/etc/telepharm/crls"
    assert settings.crl_timeout == 3.0
    assert settings.archive_key_path == Path("/etc/telepharm/archive.pem")
    with pytest.raises(SettingsError, match="TELEPHARM_CRL_TIMEOUT"):
        Settings.from_env({"TELEPHARM_CRL_TIMEOUT": "0"})


def test_archive_keys_load_with_the_earlier_ones(tmp_path: Path) -> None:
    from eprescribe.epcs import ArchiveKey
    from server.prescriptions.archive import load_archive_key

    made = load_archive_key(Settings(data_dir=tmp_path))  # the default one, made on first use
    assert (tmp_path / "keys" / "archive-signing.pem").stat().st_mode & 0o077 == 0
    assert load_archive_key(Settings(data_dir=tmp_path)).id == made.id
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "old.pem").write_bytes((tmp_path / "keys" / "archive-signing.pem").read_bytes())
    new = tmp_path / "new.pem"
    new.write_bytes(ArchiveKey.generate().private_pem())
    settings = Settings(
        data_dir=tmp_path, archive_key_file=str(new), archive_earlier_keys=str(earlier)
    )
    rotated = load_archive_key(settings)
    assert rotated.id != made.id
    with pytest.raises(SettingsError, match="TELEPHARM_ARCHIVE_KEY"):
        load_archive_key(Settings(data_dir=tmp_path, archive_key_file=str(tmp_path / "none.pem")))


def test_email_and_sms_are_off_by_default() -> None:
    settings = Settings.from_env({})
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == ("", 587, "starttls")
    assert (settings.sms_account_sid, settings.sms_api_url) == ("", "https://api.twilio.com")


def test_email_and_sms_settings_are_read_and_their_secrets_kept_out_of_the_repr() -> None:
    settings = Settings.from_env(
        {
            "TELEPHARM_SMTP_HOST": "smtp.example.org",
            "TELEPHARM_SMTP_PORT": "465",
            "TELEPHARM_SMTP_SECURITY": "TLS",
            "TELEPHARM_SMTP_USERNAME": "hub",
            "TELEPHARM_SMTP_PASSWORD": "smtp-secret",
            "TELEPHARM_MAIL_FROM": "Main St Pharmacy <notify@pharmacy.example.org>",
            "TELEPHARM_SMTP_TIMEOUT": "20",
            "TELEPHARM_SMS_ACCOUNT_SID": "AC0123",
            "TELEPHARM_SMS_AUTH_TOKEN": "sms-secret",
            "TELEPHARM_SMS_FROM": "+15005550006",
            "TELEPHARM_SMS_TIMEOUT": "5",
        }
    )
    assert (settings.smtp_port, settings.smtp_security, settings.smtp_timeout) == (465, "tls", 20)
    assert (settings.sms_from, settings.sms_timeout) == ("+15005550006", 5)
    assert "smtp-secret" not in repr(settings)
    assert "sms-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"TELEPHARM_SMTP_SECURITY": "ssl"},
            "TELEPHARM_SMTP_SECURITY must be starttls, tls or none",
        ),
        ({"TELEPHARM_SMTP_PORT": "70000"}, "TELEPHARM_SMTP_PORT must be from 1 to 65535"),
        ({"TELEPHARM_SMTP_PORT": "smtp"}, "TELEPHARM_SMTP_PORT must be a whole number"),
        ({"TELEPHARM_SMTP_TIMEOUT": "0"}, "TELEPHARM_SMTP_TIMEOUT must be a number of seconds"),
        ({"TELEPHARM_SMTP_HOST": "smtp.example.org"}, "TELEPHARM_MAIL_FROM must be an email"),
        (
            {
                "TELEPHARM_SMTP_HOST": "smtp.example.org",
                "TELEPHARM_SMTP_SECURITY": "none",
                "TELEPHARM_MAIL_FROM": "notify@pharmacy.example.org",
            },
            "TELEPHARM_SMTP_SECURITY=none is for an SMTP server on loopback only",
        ),
        (
            {
                "TELEPHARM_SMTP_HOST": "smtp.example.org",
                "TELEPHARM_MAIL_FROM": "notify@pharmacy.example.org",
                "TELEPHARM_SMTP_USERNAME": "hub",
            },
            "TELEPHARM_SMTP_USERNAME and TELEPHARM_SMTP_PASSWORD go together",
        ),
        ({"TELEPHARM_SMS_API_URL": "http://sms.example.org"}, "must use https unless"),
        ({"TELEPHARM_SMS_API_URL": "api.twilio.com"}, "must be an absolute URL"),
        ({"TELEPHARM_SMS_ACCOUNT_SID": "AC1"}, "SID and TELEPHARM_SMS_AUTH_TOKEN go together"),
        (
            {"TELEPHARM_SMS_ACCOUNT_SID": "AC/1", "TELEPHARM_SMS_AUTH_TOKEN": "t"},
            "letters and digits only",
        ),
        (
            {
                "TELEPHARM_SMS_ACCOUNT_SID": "AC1",
                "TELEPHARM_SMS_AUTH_TOKEN": "t",
                "TELEPHARM_SMS_FROM": "555-0100",
            },
            "TELEPHARM_SMS_FROM must be a number in E.164 form",
        ),
    ],
)
def test_email_and_sms_settings_are_refused_in_one_line(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as refused:
        Settings.from_env(environ)
    assert "\n" not in str(refused.value)


def test_smtp_in_clear_on_loopback_and_a_local_sms_api() -> None:
    settings = Settings.from_env(
        {
            "TELEPHARM_SMTP_HOST": "127.0.0.1",
            "TELEPHARM_SMTP_PORT": "1025",
            "TELEPHARM_SMTP_SECURITY": "none",
            "TELEPHARM_MAIL_FROM": "notify@pharmacy.example.org",
            "TELEPHARM_SMS_API_URL": "http://127.0.0.1:8181/",
        }
    )
    assert (settings.smtp_security, settings.sms_api_url) == ("none", "http://127.0.0.1:8181/")
