"""``signing calibrate``: measure Argon2id on this host and recommend a cost.

The cost of every identity tag is the deliberate price of a guess (DESIGN §6),
and also what bounds how many signatures per second this host can take
(§11). Memory is what makes a guess expensive on GPUs and ASICs, so the
recommendation keeps as much memory as allowed (OWASP's 19 MiB by default)
and fits the time with passes: the most passes whose tag still takes at most
the target; if even one pass is too slow, memory is cut in proportion until
it fits.

Timings use ``crypto.tags.compute_tag`` itself (HMAC, then Argon2id), one tag
at a time on one core; the throughput figure runs one thread per core at
once (argon2-cffi releases the GIL), so it includes whatever the cores lose
to sharing memory bandwidth.
"""

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from crypto.tags import ARGON2_MAX_TIME_COST, Argon2Params, compute_tag

from .serving import GLIBC_MMAP_THRESHOLD_MAX_BYTES, cpu_count

OWASP_MEMORY_KIB = 19456  # OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1
OWASP_MIN_MEMORY_KIB = 7168  # its smallest listed option (m=7 MiB, t=5)
MIN_MEMORY_KIB = 8  # Argon2's own floor for one lane
MAX_PASSES = 10

_KEY = bytes(32)
_SALT = bytes(16)


@dataclass(frozen=True)
class Calibration:
    params: Argon2Params
    ms_per_tag: float  # one tag, one core
    tags_per_second: float  # all cores busy
    cores: int
    target_ms: float
    tried: tuple  # ((Argon2Params, ms), ...) in the order measured

    @property
    def signatures_per_second_without_email(self):
        return self.tags_per_second  # one tag: name and postcode

    @property
    def signatures_per_second_with_email(self):
        return self.tags_per_second / 2  # two tags: person and email


def time_tag(params, samples=5):
    """Median milliseconds for one tag at ``params`` (after one warm-up tag)."""
    compute_tag(_KEY, _SALT, params, "person", "warm up")
    times = []
    for i in range(samples):
        started = time.perf_counter()
        compute_tag(_KEY, _SALT, params, "person", f"calibration {i}")
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def throughput(params, workers, seconds):
    """(tags per second, CPU milliseconds per tag) with ``workers`` threads hashing at once.

    argon2-cffi releases the GIL, so threads use every core. The CPU figure
    is this process's CPU time over the run: unlike the rate, it hardly
    moves when other programs share the cores.
    """
    deadline = time.perf_counter() + seconds

    def run(worker):
        done = 0
        while time.perf_counter() < deadline or done == 0:
            compute_tag(_KEY, _SALT, params, "person", f"throughput {worker} {done}")
            done += 1
        return done

    cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        total = sum(pool.map(run, range(workers)))
    return total / (time.perf_counter() - started), (time.process_time() - cpu) * 1000 / total


def recommend(target_ms, max_memory_kib=OWASP_MEMORY_KIB, measure=time_tag):
    """The costliest Argon2Params (p=1) whose tag takes at most ``target_ms``, and what was tried."""
    tried = []

    def fits(params):
        ms = measure(params)
        tried.append((params, ms))
        return ms <= target_ms

    memory = max_memory_kib
    while not fits(Argon2Params(1, memory, 1)) and memory > MIN_MEMORY_KIB:
        # Time grows about linearly with memory: aim 10 % under the target.
        scaled = int(memory * target_ms / tried[-1][1] * 0.9) // 8 * 8
        memory = max(MIN_MEMORY_KIB, min(scaled, memory - 8))
    passes = 1
    while passes < min(MAX_PASSES, ARGON2_MAX_TIME_COST) and fits(Argon2Params(passes + 1, memory, 1)):
        passes += 1
    return Argon2Params(passes, memory, 1), tuple(tried)


def calibrate(target_ms, max_memory_kib=OWASP_MEMORY_KIB, seconds=2.0, cores=None):
    cores = cores or cpu_count()
    params, tried = recommend(target_ms, max_memory_kib)
    ms = next(ms for p, ms in reversed(tried) if p == params)
    tags_per_second, _cpu_ms = throughput(params, cores, seconds)
    return Calibration(params, ms, tags_per_second, cores, target_ms, tried)


def describe(result):
    """The report ``signing calibrate`` prints."""
    p = result.params
    lines = [f"Argon2id on this host ({result.cores} cores), target {result.target_ms:g} ms per tag:"]
    for params, ms in result.tried:
        lines.append(f"  t={params.time_cost} m={params.memory_kib} KiB: {ms:.1f} ms")
    lines += [
        "Recommended for new petitions (existing ones keep their own cost):",
        f"  SIGNING_ARGON2_TIME_COST={p.time_cost} SIGNING_ARGON2_MEMORY_KIB={p.memory_kib} "
        f"SIGNING_ARGON2_PARALLELISM={p.parallelism}",
        f"  {result.ms_per_tag:.1f} ms per tag on one core; {result.tags_per_second:.0f} tags/s "
        f"with all {result.cores} cores busy",
        f"  = about {result.signatures_per_second_without_email:.0f} signatures/s on petitions without email "
        f"(1 tag each), {result.signatures_per_second_with_email:.0f}/s with email (2 tags each)",
    ]
    if p.memory_kib < OWASP_MIN_MEMORY_KIB:
        lines.append(
            f"  warning: {p.memory_kib} KiB is below OWASP's smallest Argon2id memory ({OWASP_MIN_MEMORY_KIB} KiB); "
            "a guess at a tag gets cheap. Raise the target if this host can afford it."
        )
    if p.memory_kib * 1024 > GLIBC_MMAP_THRESHOLD_MAX_BYTES and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        lines.append(
            "  note: above 32 MiB glibc maps and unmaps the memory on every tag; `signing serve` sets "
            "MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ to avoid it (see BENCHMARKS.md)."
        )
    return "\n".join(lines)
