"""Settings (dossiers/settings.py, pydantic-settings): every variable of the README's table with
its default, and a bad value of each kind refused with a SettingsError naming the variable; the
``exchange`` command turns it into one line on standard error and exit status 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dossiers.settings import Settings, SettingsError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_are_those_of_the_readme(tmp_path):
    s = Settings.from_env({"EXCHANGE_HOME": str(tmp_path)})
    assert s.home == tmp_path.resolve()
    assert s.database_url == f"sqlite:///{tmp_path / 'exchange.db'}"
    assert s.storage_url == f"file://{tmp_path / 'blobs'}"
    assert s.broker_url == f"filesystem://{tmp_path / 'broker'}"
    assert (s.public_url, s.token_audience, s.token_ttl_seconds) == ("http://127.0.0.1:8000", "exchange-api", 900)
    assert (s.max_deposit_bytes, s.retention_days) == (4294967296, 3650)
    assert s.webhook_allow_hosts == ()
    assert s.webhook_retry_schedule == (5, 60, 300, 1800, 7200, 21600, 43200, 86400, 86400)
    assert (s.webhook_lease_seconds, s.smtp_url, s.mail_from) == (60, None, "exchange@localhost")
    assert (s.overdue_days, s.outbox_republish_seconds, s.log_level) == (120, 300, "INFO")
    assert (s.token_limit_per_address, s.token_limit_per_client) == ("1200/minute", "300/minute")
    assert (s.signin_limit_per_address, s.signin_limit_per_account) == ("120/minute", "10/minute")
    assert s.rate_limit_storage_url is None and s.rate_limit_storage == "memory://"
    assert (s.header_timeout_seconds, s.body_idle_timeout_seconds, s.body_min_rate_bytes) == (20.0, 30.0, 500)
    assert s.ready_requires_worker is False and s.embedded


def test_every_setting_in_the_readme_is_read_from_its_variable():
    documented = set(re.findall(r"^\| `(EXCHANGE_[A-Z_]+)`", README.read_text(), re.M))
    # "EXCHANGE_TOKEN_LIMIT_PER_ADDRESS` / `_PER_CLIENT": the table writes the second one short.
    documented |= {"EXCHANGE_TOKEN_LIMIT_PER_CLIENT", "EXCHANGE_SIGNIN_LIMIT_PER_ACCOUNT"}
    read = {"EXCHANGE_" + name.upper() for name in Settings.model_fields}
    assert documented - {"EXCHANGE_LOG_FORMAT"} == read


def test_values_from_the_environment_and_overrides(tmp_path):
    env = {"EXCHANGE_HOME": str(tmp_path), "EXCHANGE_RETENTION_DAYS": "7",
           "EXCHANGE_WEBHOOK_ALLOW_HOSTS": " a, 10.0.0.0/8 ,",
           "EXCHANGE_WEBHOOK_RETRY_SCHEDULE": "1, 2.5,0", "EXCHANGE_READY_REQUIRES_WORKER": "yes",
           "EXCHANGE_BODY_MIN_RATE_BYTES": "-5", "EXCHANGE_HEADER_TIMEOUT_SECONDS": "1.5",
           "EXCHANGE_SMTP_URL": "", "EXCHANGE_SIGNIN_LIMIT_PER_ACCOUNT": "off",
           "EXCHANGE_BROKER_URL": "redis://r:6379/0"}
    s = Settings.from_env(env, public_url="https://x.example/", retention_days=9)
    assert s.retention_days == 9 and s.issuer == "https://x.example"
    assert s.webhook_allow_hosts == ("a", "10.0.0.0/8") and s.webhook_retry_schedule == (1, 2, 0)
    assert s.ready_requires_worker is True and s.body_min_rate_bytes == 0 and s.header_timeout_seconds == 1.5
    assert s.smtp_url is None and s.signin_limit_per_account == "off"
    assert s.rate_limit_storage == "redis://r:6379/0"
    # The home given as an override places the embedded parts under it.
    other = Settings.from_env({}, home=tmp_path / "h")
    assert other.database_url == f"sqlite:///{tmp_path / 'h' / 'exchange.db'}"
    # An explicit mapping is all that is read; None reads the process environment.
    os.environ["EXCHANGE_OVERDUE_DAYS"] = "44"
    try:
        assert Settings.from_env({}).overdue_days == 120 and Settings.from_env().overdue_days == 44
    finally:
        del os.environ["EXCHANGE_OVERDUE_DAYS"]


def test_settings_are_frozen_and_replace_validates(tmp_path):
    s = Settings.from_env({"EXCHANGE_HOME": str(tmp_path)})
    with pytest.raises(ValueError):
        s.retention_days = 1  # type: ignore[misc]
    assert s.replace(retention_days=1).retention_days == 1 and s.retention_days == 3650
    with pytest.raises(SettingsError, match=r"^EXCHANGE_RETENTION_DAYS must be a whole number, not 'x'$"):
        s.replace(retention_days="x")


BAD = [
    ("EXCHANGE_RETENTION_DAYS", "abc", "a whole number"),
    ("EXCHANGE_TOKEN_TTL_SECONDS", "1.5", "a whole number"),
    ("EXCHANGE_MAX_DEPOSIT_BYTES", "4GB", "a whole number"),
    ("EXCHANGE_HEADER_TIMEOUT_SECONDS", "0", "a positive number of seconds"),
    ("EXCHANGE_BODY_IDLE_TIMEOUT_SECONDS", "inf", "a positive number of seconds"),
    ("EXCHANGE_BODY_IDLE_TIMEOUT_SECONDS", "soon", "a positive number of seconds"),
    ("EXCHANGE_READY_REQUIRES_WORKER", "maybe", "true or false"),
    ("EXCHANGE_TOKEN_LIMIT_PER_CLIENT", "lots", "a rate such as 60/minute (or off)"),
    ("EXCHANGE_WEBHOOK_RETRY_SCHEDULE", "5,soon", "comma-separated seconds, at least one and none negative"),
    ("EXCHANGE_WEBHOOK_RETRY_SCHEDULE", "5,-1", "comma-separated seconds, at least one and none negative"),
    ("EXCHANGE_WEBHOOK_RETRY_SCHEDULE", ",", "comma-separated seconds, at least one and none negative"),
]


@pytest.mark.parametrize(("name", "value", "must"), BAD)
def test_a_bad_value_names_its_variable(tmp_path, name, value, must):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"EXCHANGE_HOME": str(tmp_path), name: value})
    assert str(caught.value) == f"{name} must be {must}, not {value!r}"


def test_the_command_refuses_a_bad_setting_in_one_line_with_status_2(tmp_path):
    env = dict(os.environ, EXCHANGE_HOME=str(tmp_path), EXCHANGE_RETENTION_DAYS="abc")
    done = subprocess.run([sys.executable, "-c", "from exchange.cli import main; main()", "serve", "--port", "1"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == "Error: EXCHANGE_RETENTION_DAYS must be a whole number, not 'abc'\n"
    assert done.stdout == ""
    assert not (tmp_path / "exchange.db").exists()
