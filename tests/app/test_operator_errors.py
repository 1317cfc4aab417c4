"""Operator mistakes: every one ends with a non-zero exit and one line on stderr, never a traceback.

Each case runs the real `signing` command in its own process, as an operator
would, against an instance made by `signing init` in a temporary folder.
"""

import os
import subprocess
import sys

import pytest
from helpers import free_port

from crypto import keys

SIGNING = [sys.executable, "-c", "from signing.cli import main; main()"]


def run(instance, *args, **settings):
    env = {name: value for name, value in os.environ.items() if not name.startswith("SIGNING_")}
    env.update(
        SIGNING_INSTANCE_PATH=str(instance),
        SIGNING_PUBLIC_URL="https://petitions.example.org",
        SIGNING_ARGON2_TIME_COST="1",
        SIGNING_ARGON2_MEMORY_KIB="8",
    )
    env.update({f"SIGNING_{name}": value for name, value in settings.items()})
    return subprocess.run([*SIGNING, *args], env=env, capture_output=True, text=True, timeout=60)


def assert_one_line_refusal(result, *words):
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("signing: ")
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    path = tmp_path_factory.mktemp("operator") / "instance"
    assert run(path, "init").returncode == 0
    created = run(path, "petition", "create", "ours", "--title", "Ours", "--body", "Count us.")
    assert created.returncode == 0, created.stderr
    return path


@pytest.fixture
def config_file(instance):
    path = instance / "config.py"
    yield path
    path.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("MAIL_PORT = (\n", ["config.py, line 1", "syntax"]),
        ('MAIL_PORT = "587"\n', ["config.py", "MAIL_PORT", "whole number"]),
        ('DEVELOPMENT = "yes"\n', ["DEVELOPMENT", "true or false"]),
        ("PAGE_CACHE_SECONDS = None\n", ["PAGE_CACHE_SECONDS"]),
        ("import countersign_no_such_module\n", ["config.py", "ModuleNotFoundError"]),
        ("TAG_CONCURRENCY = 1 / 0\n", ["config.py", "ZeroDivisionError"]),
    ],
)
def test_bad_instance_config_file(instance, config_file, text, words):
    config_file.write_text(text)
    for command in (["publish"], ["init"]):
        assert_one_line_refusal(run(instance, *command), *words)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"MAIL_PORT": "five-eight-seven"}, ["SIGNING_MAIL_PORT", "whole number"]),
        ({"ARGON2_TIME_COST": "two"}, ["SIGNING_ARGON2_TIME_COST", "whole number"]),
        ({"DEVELOPMENT": "maybe"}, ["SIGNING_DEVELOPMENT", "true or false"]),
        ({"DATABASE_URL": "mysql://countersign@localhost/countersign"}, ["DATABASE_URL", "sqlite:///"]),
        ({"DATABASE_URL": "countersign.db"}, ["DATABASE_URL"]),
        ({"DATABASE_URL": "postgresql://countersign@localhost:port/countersign"}, ["DATABASE_URL", "port"]),
    ],
)
def test_bad_setting_in_the_environment(instance, settings, words):
    for command in (["serve"], ["init"]):
        assert_one_line_refusal(run(instance, *command, **settings), *words)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"RATE_LIMIT_SIGN": "ten a minute"}, ["RATE_LIMIT_SIGN"]),
        ({"MAIL_SECURITY": "ssl"}, ["MAIL_SECURITY"]),
        ({"TAG_CONCURRENCY": "-1"}, ["TAG_CONCURRENCY"]),
        ({"ARGON2_TIME_COST": "0"}, ["time_cost"]),
    ],
)
def test_setting_the_app_cannot_work_with(instance, settings, words):
    assert_one_line_refusal(run(instance, "serve", **settings), *words)


def test_database_without_tables(instance, tmp_path):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    for command in (["serve"], ["petition", "open", "ours"], ["organiser", "totp-reset", "a@b.example"]):
        assert_one_line_refusal(run(instance, *command, DATABASE_URL=empty), "no tables", "signing init")


def test_database_that_cannot_be_opened(instance, tmp_path):
    missing_folder = f"sqlite:///{tmp_path / 'no-such-folder' / 'countersign.db'}"
    assert_one_line_refusal(run(instance, "publish", DATABASE_URL=missing_folder), "database")


def test_init_against_an_unreachable_database_creates_no_keys(tmp_path):
    fresh = tmp_path / "fresh"
    unreachable = f"postgresql://countersign@127.0.0.1:{free_port()}/countersign"
    assert_one_line_refusal(run(fresh, "init", DATABASE_URL=unreachable), "database", "127.0.0.1")
    assert not (fresh / "master.key").exists()
    assert not (fresh / "log.key").exists()


def test_another_instances_master_key_is_refused_before_serving(instance, tmp_path):
    foreign = tmp_path / "foreign-master.key"
    keys.create_master_key_file(foreign)
    for command in (["serve"], ["init"]):
        assert_one_line_refusal(run(instance, *command, MASTER_KEY_FILE=str(foreign)), "master key", "ours")


def test_instance_folder_that_cannot_be_made(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert_one_line_refusal(run(blocked / "instance", "init"), str(blocked))
