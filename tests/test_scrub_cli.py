"""``exchange scrub`` tells by its exit status whether all is well: 0 when every document checked
is intact, 1 (and a line on standard error saying what) when one is corrupt or missing, on
both stacks, through click and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dossiers.storage import blob_key
from exchange.cli import main
from tests.test_scrub import CLAIMS, FILES, SR, deposit_dossier, flipped, lose, overwrite

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(stack, tmp_path) -> dict:
    return {"EXCHANGE_DATABASE_URL": stack.settings.database_url, "EXCHANGE_STORAGE_URL": stack.settings.storage_url,
            "EXCHANGE_HOME": str(tmp_path / "home")}


def scrub_cli(env: dict, *args: str):
    return CliRunner().invoke(main, ["scrub", *args], env=env, catch_exceptions=False)


def test_a_clean_store_exits_zero_and_says_nothing_is_wrong(stack, env):
    deposit_dossier(stack, stack.office("SG"))
    r = scrub_cli(env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["scrub"] | {"retention_repaired": 0} == {
        "checked": 2, "ok": 2, "corrupt": 0, "missing": 0, "retention_repaired": 0, "errors": []}
    assert "FAILED" not in r.stderr


def test_a_corrupt_document_exits_one_and_says_so(stack, env):
    deposit_dossier(stack, stack.office("SG"))
    overwrite(stack, blob_key(SR), flipped(FILES["sr-1"]))
    r = scrub_cli(env)
    assert r.exit_code == 1
    assert json.loads(r.stdout)["scrub"]["corrupt"] == 1  # the counts are still printed
    assert "integrity check FAILED: 1 corrupt and 0 missing of 2 documents checked" in r.stderr

    # Found again by the next run (already reported, still not well): still 1.
    assert scrub_cli(env).exit_code == 1


def test_a_missing_document_exits_one_and_says_so(stack, env):
    deposit_dossier(stack, stack.office("SG"))
    lose(stack, blob_key(CLAIMS))
    r = scrub_cli(env)
    assert r.exit_code == 1
    assert json.loads(r.stdout)["scrub"]["missing"] == 1
    assert "integrity check FAILED: 0 corrupt and 1 missing of 2 documents checked" in r.stderr


def test_the_exit_status_reaches_the_shell(stack, env):
    """As a cron job or a monitoring probe sees it: a process of its own."""
    deposit_dossier(stack, stack.office("SG"))
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    run_env.update(env, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))

    def run():
        return subprocess.run([sys.executable, "-m", "exchange.cli", "scrub"], env=run_env, capture_output=True,
                              text=True, timeout=120)

    ok = run()
    assert ok.returncode == 0, ok.stderr
    overwrite(stack, blob_key(SR), b"short")
    bad = run()
    assert bad.returncode == 1
    assert "integrity check FAILED: 1 corrupt" in bad.stderr and "Traceback" not in bad.stderr
