"""`signing serve`'s settings: workers, allocator, logging without addresses."""

import logging
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from gunicorn.config import Config as GunicornConfig
from gunicorn.glogging import Logger as GunicornLogger

from signing import keyring, logging_setup, serving
from signing.cli import main

MIB = 1024 * 1024


def test_workers_follow_cores_not_two_per_core():
    assert serving.default_workers(cores=2) == 3
    assert serving.default_workers(cores=16) == 17


def test_malloc_thresholds_cover_the_argon2_buffer():
    default = serving.malloc_environment(19456, environ={})
    assert default == {
        "MALLOC_ARENA_MAX": "2",
        "MALLOC_MMAP_THRESHOLD_": str(32 * MIB),
        "MALLOC_TRIM_THRESHOLD_": str(64 * MIB),
    }
    large = serving.malloc_environment(64 * 1024, environ={})
    assert int(large["MALLOC_MMAP_THRESHOLD_"]) > 64 * MIB
    assert int(large["MALLOC_TRIM_THRESHOLD_"]) == 2 * int(large["MALLOC_MMAP_THRESHOLD_"])
    # The operator's own settings win.
    assert "MALLOC_ARENA_MAX" not in serving.malloc_environment(19456, environ={"MALLOC_ARENA_MAX": "4"})


def test_gunicorn_command_uses_the_packaged_config():
    argv = serving.gunicorn_argv("127.0.0.1:9000")
    assert argv[1:5] == ["-m", "gunicorn", "--config", "python:signing.gunicorn_conf"]
    assert argv[-1] == "signing.wsgi:app"


def test_the_worker_count_comes_from_web_concurrency(load_gunicorn_conf):
    assert load_gunicorn_conf(WEB_CONCURRENCY="5").workers == 5
    assert load_gunicorn_conf().workers == serving.default_workers()


def test_each_server_bounds_its_tags_in_a_folder_of_its_own(load_gunicorn_conf, tmp_path):
    conf = load_gunicorn_conf()
    made = Path(os.environ["SIGNING_TAG_SLOTS_DIR"])
    assert made.is_dir() and made.name.startswith(serving.TAG_SLOTS_PREFIX)
    assert made.stat().st_mode & 0o077 == 0  # no other user can hold or block the slots
    conf.on_exit(None)  # gunicorn exits: the folder it made goes
    assert not made.exists()

    own = tmp_path / "operator-slots"
    own.mkdir()
    conf = load_gunicorn_conf(SIGNING_TAG_SLOTS_DIR=str(own))  # the operator's own folder wins
    assert os.environ["SIGNING_TAG_SLOTS_DIR"] == str(own)
    conf.on_exit(None)
    assert own.is_dir()  # and is left where it was


def test_a_new_server_clears_the_tag_slots_of_servers_that_died_without_cleaning_up(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{serving.TAG_SLOTS_PREFIX}{int(finished.stdout)}-abc123"  # its server was SIGKILLed
    alive = tmp_path / f"{serving.TAG_SLOTS_PREFIX}{os.getppid()}-def456"  # another server still running
    unnamed = tmp_path / f"{serving.TAG_SLOTS_PREFIX}ghi789"  # not one we can tell the owner of
    others = tmp_path / "someone-elses-99999999-folder"
    for folder in (dead, alive, unnamed, others):
        folder.mkdir()
        (folder / "slot-0").touch()
    made = Path(serving.new_tag_slots_dir(parent=tmp_path))
    assert made.name.startswith(f"{serving.TAG_SLOTS_PREFIX}{os.getpid()}-")
    assert not dead.exists()
    assert alive.is_dir() and unnamed.is_dir() and others.is_dir()


def test_serve_passes_its_worker_count_where_the_config_reads_it(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    keyring.create_missing(instance / "master.key", instance / "log.key")
    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("SIGNING_DATABASE_URL", f"sqlite:///{instance / 'countersign.db'}")  # its own, on any engine
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    started = []
    monkeypatch.setattr(serving, "exec_gunicorn", lambda argv, environment: started.append((argv, environment)))
    result = CliRunner().invoke(main, ["serve", "--workers", "5"])
    assert result.exit_code == 0, result.output
    ((argv, environment),) = started
    assert environment["WEB_CONCURRENCY"] == "5" and "MALLOC_MMAP_THRESHOLD_" in environment
    assert argv == serving.gunicorn_argv()


def access_lines_built(logger_class, conf):
    settings = GunicornConfig()
    settings.set("logconfig_dict", conf.logconfig_dict)
    logger = logger_class.__new__(logger_class)  # without setup(), which would configure this process's logging
    logger.cfg = settings
    return logger.access_log_enabled


def test_gunicorn_config_has_no_access_log_and_no_addresses(load_gunicorn_conf):
    conf = load_gunicorn_conf()
    assert conf.accesslog is None
    assert not access_lines_built(conf.logger_class, conf)  # not even built to be thrown away
    assert access_lines_built(GunicornLogger, conf)  # as gunicorn's own logger would, with our log settings
    for field in ("%(h)s", "%(a)s", "%(f)s", "%(U)s", "%(q)s", "%(r)s", "%(t)s"):
        assert field not in conf.access_log_format
    assert conf.workers == serving.default_workers()
    assert conf.timeout > 0 and conf.graceful_timeout > 0
    assert conf.logconfig_dict["handlers"]["stderr"]["filters"] == ["redact"]
    assert conf.logconfig_dict["formatters"]["plain"]["format"] == logging_setup.LOG_FORMAT


def test_log_records_lose_addresses():
    record = logging.LogRecord(
        "gunicorn.error", logging.DEBUG, __file__, 1, "Invalid request from ip=%s: %s", ("203.0.113.9", "bad"), None
    )
    logging_setup.RedactAddresses().filter(record)
    assert record.getMessage() == "Invalid request from ip=[address]: bad"
    for text in ("2001:db8::7 said", "::ffff:198.51.100.4", "[fe80::1]:443"):
        assert "[address]" in logging_setup.redact(text)
        assert not any(part in logging_setup.redact(text) for part in ("db8", "198.51", "fe80"))
    assert logging_setup.redact("GET /p/demo 200 in 3ms") == "GET /p/demo 200 in 3ms"


def test_serve_refuses_a_database_without_schema(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    keyring.create_missing(instance / "master.key", instance / "log.key")
    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("SIGNING_DATABASE_URL", f"sqlite:///{instance / 'empty.db'}")
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1
    assert "signing init" in result.output
