"""`signing calibrate`: measures Argon2id here and recommends a cost for a target time."""

import re

from click.testing import CliRunner

from crypto.tags import Argon2Params
from signing import calibration
from signing.cli import main


def linear_cost(params):
    """A fake host: 1 ms per pass per MB of memory."""
    return params.time_cost * params.memory_kib / 1000


def test_keeps_memory_and_adds_passes_while_they_fit():
    assert calibration.recommend(20, 19456, linear_cost)[0] == Argon2Params(1, 19456, 1)
    assert calibration.recommend(40, 19456, linear_cost)[0] == Argon2Params(2, 19456, 1)
    assert calibration.recommend(100, 19456, linear_cost)[0] == Argon2Params(5, 19456, 1)


def test_cuts_memory_when_one_pass_is_too_slow():
    params, tried = calibration.recommend(5, 19456, linear_cost)
    assert params.time_cost == 1
    assert 4000 < params.memory_kib <= 5000
    assert linear_cost(params) <= 5
    assert tried[0][0] == Argon2Params(1, 19456, 1)


def test_calibrate_command_with_a_tiny_target():
    result = CliRunner().invoke(
        main, ["calibrate", "--target-ms", "0.2", "--max-memory-kib", "512", "--seconds", "0.2"]
    )
    assert result.exit_code == 0, result.output
    match = re.search(
        r"SIGNING_ARGON2_TIME_COST=(\d+) SIGNING_ARGON2_MEMORY_KIB=(\d+) SIGNING_ARGON2_PARALLELISM=1", result.output
    )
    assert match, result.output
    time_cost, memory_kib = int(match.group(1)), int(match.group(2))
    assert time_cost >= 1 and 8 <= memory_kib <= 512
    per_second = re.search(r"about (\d+) signatures/s on petitions without email", result.output)
    assert per_second and int(per_second.group(1)) > 0
    assert "below OWASP" in result.output
