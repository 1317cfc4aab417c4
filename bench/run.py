"""Countersign's benchmarks: each figure a ratio of two things measured side by side.

    python -m bench.run            # everything, about 10-15 minutes on 2 cores
    python -m bench.run --quick    # smaller and shorter, about 4 minutes
    python -m bench.run --only signing,reads --postgresql none

What each ratio compares (DESIGN §11, issue 8) is described in BENCHMARKS.md,
where the figures of a run are written up by hand with the machine and date.
A run prints a summary and writes every raw figure to bench/results/.

Every server runs on 127.0.0.1 and every load generator only talks to it;
every load loop is bounded in time. PostgreSQL parts use a throwaway cluster
started here (as .ci/run does) when Debian's server binaries are installed.
"""

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from urllib.parse import urlencode

from bench import loadgen, synthetic
from bench.pgcluster import Cluster, server_binaries
from crypto.audit import verify_bundle
from crypto.tags import DEFAULT_ARGON2, person_tag
from signing import calibration, db, serving

SIGNING_CLI = [sys.executable, "-c", "from signing.cli import main; main()"]
TAG_ONLY_APP = "bench.tag_only_app:app"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SLUG = "bench"


class Plan:
    """Durations and sizes; --quick shrinks them."""

    def __init__(self, quick):
        self.quick = quick
        self.raw_seconds = 5 if quick else 10
        self.signing_seconds = 10 if quick else 25
        self.storm_seconds = 4 if quick else 8
        self.large = 100_000 if quick else 1_000_000
        self.small = 1_000
        self.latency_samples = 100 if quick else 300
        self.paper_rows = 400 if quick else 1500
        self.malloc_tags = 8 if quick else 20


def log(message):
    print(message, file=sys.stderr, flush=True)


def letters(number):
    """Digits as letters: names are made of letters."""
    return "".join(chr(97 + int(d)) for d in str(number))


# --- machine ----------------------------------------------------------------


def describe_machine():
    def run(*args):
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": run("nproc"),
        "cpu": model,
        "memory": run("free", "-h"),
        "python": platform.python_version(),
        "glibc": " ".join(platform.libc_ver()),
        "kernel": platform.release(),
        "loadavg_start": os.getloadavg(),
    }


# --- servers ----------------------------------------------------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Instance:
    """A Countersign instance folder with keys, schema and one no-email petition."""

    def __init__(self, root, database_url=None, **settings):
        self.path = Path(root)
        self.path.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "SIGNING_INSTANCE_PATH": str(self.path),
            "SIGNING_DEVELOPMENT": "true",
            # The load comes from one loopback address: per-address limits would refuse it.
            "SIGNING_RATE_LIMITS_ENABLED": "false",
        }
        if database_url:
            self.env["SIGNING_DATABASE_URL"] = database_url
        for name, value in settings.items():
            self.env[f"SIGNING_{name}"] = str(value)
        self.cli("init")
        self.cli("petition", "create", SLUG, "--no-email", "--title", "Benchmark petition", "--body", "Count us.")

    def cli(self, *args):
        result = subprocess.run([*SIGNING_CLI, *args], env=self.env, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"signing {' '.join(args)}: {result.stderr}")
        return result.stdout


class Gunicorn:
    """gunicorn with signing/gunicorn_conf.py and the environment `signing serve` gives it."""

    def __init__(self, instance, wsgi_app=serving.WSGI_APP, workers=None, threads=None, **settings):
        self.port = free_port()
        argv = serving.gunicorn_argv(f"127.0.0.1:{self.port}")
        argv[-1] = wsgi_app
        env = dict(instance.env) | serving.workers_environment(workers)
        if threads:
            env["GUNICORN_CMD_ARGS"] = f"--threads {threads}"
        env.update(serving.malloc_environment(DEFAULT_ARGON2.memory_kib, env))
        for name, value in settings.items():
            env[f"SIGNING_{name}"] = str(value)
        self.log_file = open(instance.path / "gunicorn.log", "ab")  # noqa: SIM115 -- closed in stop()
        self.process = subprocess.Popen(argv, env=env, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.workers = workers or serving.default_workers()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("gunicorn exited; see " + str(instance.path / "gunicorn.log"))
            try:
                if len(self.worker_pids()) == self.workers and loadgen.fetch(self.port, loadgen.get("/")).status:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def worker_pids(self):
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def cpu_seconds(self):
        """User + system CPU of the workers so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / ticks

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log_file.close()


# --- load -------------------------------------------------------------------


def signing_requests(port, process_number, connections):
    """A make_request for signing: one session and CSRF token per connection, a new person per post."""
    sessions = [loadgen.session_and_token(port, f"/p/{SLUG}/sign") for _ in range(connections)]
    prefix = f"Bench {letters(process_number)}"

    def make_request(connection, sequence):
        cookie, token = sessions[connection]
        form = {
            "csrf_token": token,
            "name": f"{prefix} {letters(sequence)}",
            "postcode": "S1 2HE",
            "display_name": f"Supporter {sequence}" if sequence % 5 == 0 else "",
            "eligible": "y",
        }
        return loadgen.post_form(f"/p/{SLUG}/sign", urlencode(form).encode(), cookie)

    return make_request


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


# --- 1. signing over HTTP vs raw Argon2id ------------------------------------


def raw_argon2(params, threads, seconds):
    """Raw Argon2id: crypto.tags.compute_tag itself, one thread per core (signing.calibration)."""
    return calibration.throughput(params, threads, seconds)


def http_signing(instance, plan, workers=None, threads=None, wsgi_app=serving.WSGI_APP):
    """Signatures per second over HTTP through gunicorn, and the workers' CPU per signature."""
    server = Gunicorn(instance, wsgi_app=wsgi_app, workers=workers, threads=threads)
    try:
        connections = 4 * server.workers
        log(
            f"[signing] HTTP: {wsgi_app} on gunicorn {server.workers} workers x {threads or 'default'} threads, "
            f"{connections} connections, {plan.signing_seconds}s"
        )
        sequence = secrets.randbelow(10**6)  # fresh names for every run
        loadgen.run(server.port, signing_requests, [(server.port, sequence, connections)], connections, 0, 3.0)
        cpu_before = server.cpu_seconds()
        result = loadgen.run(
            server.port,
            signing_requests,
            [(server.port, sequence + 1, connections)],
            connections,
            0,
            plan.signing_seconds,
        )
        cpu_used = server.cpu_seconds() - cpu_before
    finally:
        server.stop()
    return {
        "wsgi_app": wsgi_app,
        "workers": server.workers,
        "threads": threads,
        "connections": connections,
        "signatures_per_s": result.per_second,
        "errors": result.errors,
        "latency_ms_p50": percentile(result.latencies_ms, 0.5),
        "latency_ms_p95": percentile(result.latencies_ms, 0.95),
        "worker_cpu_ms_per_signature": 1000 * cpu_used / max(1, result.completed),
    }


def overhead_per_signature(work, samples=300):
    """CPU milliseconds one signature costs the application apart from Argon2id.

    In-process (Flask test client), with Argon2id at its cheapest (t=1,
    8 KiB: microseconds), on a petition without email: form, CSRF, database,
    template. What HTTP signing adds to the tag is this plus gunicorn's share.
    """
    import re

    from signing import create_app, ledger, migrations
    from signing.keyring import create_missing

    root = work / "overhead"
    root.mkdir()
    create_missing(root / "master.key", root / "log.key")
    db.open_database(f"sqlite:///{root / 'countersign.db'}")
    migrations.migrate_to_latest()
    app = create_app(
        {
            "INSTANCE_PATH": str(root),
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_KIB": 8,
            "RATE_LIMITS_ENABLED": False,
            "DEVELOPMENT": True,
        }
    )
    with app.app_context(), db.database.connection_context():
        ledger.create_petition(
            app.extensions["countersign"], slug=SLUG, title="Overhead", body="x", require_email=False
        )
    client = app.test_client()
    page = client.get(f"/p/{SLUG}/sign").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)

    def sign(number):
        form = {"csrf_token": token, "name": f"Person {letters(number)}", "postcode": "S1 2HE", "eligible": "y"}
        assert client.post(f"/p/{SLUG}/sign", data=form).status_code == 303  # to the receipt page

    for number in range(30):
        sign(number)
    started = time.process_time()
    for number in range(30, 30 + samples):
        sign(number)
    return (time.process_time() - started) * 1000 / samples


def bench_signing(plan, work, report):
    cores = serving.cpu_count()
    instance = Instance(work / "signing")
    log(f"[signing] raw Argon2id, {cores} threads, t={DEFAULT_ARGON2.time_cost} m={DEFAULT_ARGON2.memory_kib} KiB")
    raw_before, cpu_before = raw_argon2(DEFAULT_ARGON2, cores, plan.raw_seconds)
    runs = [http_signing(instance, plan)]
    if not plan.quick:
        # The alternative the configuration rejects: exactly one worker and thread per core.
        runs.append(http_signing(instance, plan, workers=cores, threads=1))
    # The same server and layout with nothing in the signing POST but its tag:
    # what ratio 1 could reach here, and so how much of the rest is the application's.
    floor = http_signing(instance, plan, wsgi_app=TAG_ONLY_APP)
    raw_after, cpu_after = raw_argon2(DEFAULT_ARGON2, cores, plan.raw_seconds)
    raw, raw_cpu_ms = (raw_before + raw_after) / 2, (cpu_before + cpu_after) / 2
    overhead_ms = overhead_per_signature(work)
    tags_per_signature = 1  # a petition without email: one tag (name and postcode) per signature
    tags = runs[0]["signatures_per_s"] * tags_per_signature
    report["signing"] = {
        "argon2": DEFAULT_ARGON2.to_dict(),
        "cores": cores,
        "raw_tags_per_s_before": raw_before,
        "raw_tags_per_s_after": raw_after,
        "raw_cpu_ms_per_tag": raw_cpu_ms,
        "tags_per_signature": tags_per_signature,
        "http_tags_per_s": tags,
        "app_cpu_ms_per_signature_without_argon2": overhead_ms,
        "runs": runs,
        "ratio": tags / raw,
        "ratio_variants": [run["signatures_per_s"] * tags_per_signature / raw for run in runs],
        # The same question asked of CPU time: the cores' work per tag over HTTP
        # (gunicorn workers) against raw Argon2id's. Robust to other load.
        "cpu_ratio": raw_cpu_ms * tags_per_signature / runs[0]["worker_cpu_ms_per_signature"],
        "floor": floor,
        "floor_cpu_ratio": raw_cpu_ms / floor["worker_cpu_ms_per_signature"],
        "app_cpu_ms_beyond_floor": runs[0]["worker_cpu_ms_per_signature"] - floor["worker_cpu_ms_per_signature"],
    }
    log(
        f"[signing] raw {raw:.1f} tags/s ({raw_cpu_ms:.1f} CPU ms/tag), HTTP {tags:.1f} tags/s "
        f"({runs[0]['worker_cpu_ms_per_signature']:.1f} worker CPU ms/signature), "
        f"app alone {overhead_ms:.1f} CPU ms/signature; tag-only floor "
        f"{floor['worker_cpu_ms_per_signature']:.1f} worker CPU ms/signature"
    )
    # The page storm below reads this petition, so give it a count and names.
    instance.cli("publish", "--now", SLUG)
    return instance


# --- 2. petition page vs bare Flask under a read storm -----------------------


def storm(port, path, plan, processes=2, connections=32):
    result = loadgen.run(
        port,
        loadgen.fixed_request,
        [(loadgen.get(path),)] * processes,
        connections,
        1.0,
        plan.storm_seconds,
    )
    return result


def bench_reads(plan, work, report, instance=None):
    instance = instance or Instance(work / "reads")
    figures = {}
    server = Gunicorn(instance, wsgi_app="bench.bare_app:app")
    try:
        rounds = []
        for _ in range(1 if plan.quick else 2):
            bare = storm(server.port, "/bare/", plan)
            page = storm(server.port, f"/p/{SLUG}", plan)
            log(f"[reads] bare {bare.per_second:.0f}/s, page {page.per_second:.0f}/s")
            rounds.append((bare, page))
        figures["bare_per_s"] = statistics.mean(b.per_second for b, _ in rounds)
        figures["page_per_s"] = statistics.mean(p.per_second for _, p in rounds)
        figures["bare_p50_ms"] = percentile(rounds[-1][0].latencies_ms, 0.5)
        figures["page_p50_ms"] = percentile(rounds[-1][1].latencies_ms, 0.5)
        figures["errors"] = sum(b.errors + p.errors for b, p in rounds)
    finally:
        server.stop()
    figures["ratio"] = figures["page_per_s"] / figures["bare_per_s"]
    if not plan.quick:
        # The same page with the page cache off: what each render costs.
        uncached = Gunicorn(instance, wsgi_app="bench.bare_app:app", PAGE_CACHE_SECONDS=0)
        try:
            figures["page_uncached_per_s"] = storm(uncached.port, f"/p/{SLUG}", plan).per_second
        finally:
            uncached.stop()
    report["reads"] = figures


# --- 3. latency at 1,000,000 vs 1,000 signatures; database size -------------


LATENCY_ROUNDS = 10


def latency_requests(client, petition):
    """The three requests whose latency must not grow with the petition: name -> callable."""
    codes = list(petition.receipts.items())
    slug = synthetic.SLUG

    def page():
        return client.get(f"/p/{slug}")

    def receipt():
        return client.post(f"/p/{slug}/receipt", data={"receipt": secrets.choice(codes)[1]})

    def proof():
        index = secrets.choice(codes)[0]
        return client.get(f"/p/{slug}/audit/proof/inclusion?index={index}&size={petition.size}")

    return {"page": page, "receipt": receipt, "proof": proof}


def measure_latencies(petitions, samples):
    """Median and 95th percentile of each request on each petition, measured in
    alternating rounds (small, large, small, ...) so that load from anything
    else on the machine falls on both sizes alike. In-process (Flask test
    client, no network): the figure is the application and database work."""
    apps, databases = {}, {}
    for label, petition in petitions.items():
        apps[label] = synthetic.app_for(petition.instance, petition.database_url)
        databases[label] = db.database.obj
    times = {label: {} for label in petitions}
    for _ in range(LATENCY_ROUNDS):
        for label, petition in petitions.items():
            db.database.initialize(databases[label])
            client = apps[label].test_client()
            for name, request in latency_requests(client, petition).items():
                for _ in range(5):
                    request()  # warm: connection, statement caches
                for _ in range(max(1, samples // LATENCY_ROUNDS)):
                    started = time.perf_counter()
                    response = request()
                    times[label].setdefault(name, []).append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        raise RuntimeError(f"{name}: HTTP {response.status_code}")
            if not db.database.is_closed():
                db.database.close()
    for database in databases.values():
        if hasattr(database, "close_all"):
            database.close_all()
    return {
        label: {name: {"p50_ms": statistics.median(t), "p95_ms": percentile(t, 0.95)} for name, t in by_name.items()}
        for label, by_name in times.items()
    }


def bench_scale(plan, work, report, cluster=None):
    engines = [("sqlite", None)] + ([("postgresql", cluster)] if cluster else [])
    report["scale"] = {}
    bundle_path = None
    for engine, pg in engines:
        petitions, sizes = {}, {}
        for label, size in (("small", plan.small), ("large", plan.large)):
            root = work / f"scale-{engine}-{label}"
            root.mkdir(parents=True)
            url = pg.create_database(f"bench_{label}") if pg else f"sqlite:///{root / 'countersign.db'}"
            want_bundle = engine == "sqlite" and label == "large"
            started = time.perf_counter()
            petitions[label] = synthetic.build(
                str(root), url, size, sample=300, bundle_path=str(work / "bundle.jsonl") if want_bundle else None
            )
            log(f"[scale] {engine}: {size:,} signatures built in {time.perf_counter() - started:.0f}s")
            if want_bundle:
                bundle_path = petitions[label].bundle_path
            db.open_database(url)
            sizes[label] = synthetic.database_bytes()
            db.database.close()
        figures = measure_latencies(petitions, plan.latency_samples)
        ratios = {
            name: figures["large"][name]["p50_ms"] / figures["small"][name]["p50_ms"] for name in figures["large"]
        }
        for name, ratio in ratios.items():
            log(
                f"[scale] {engine} {name}: {figures['small'][name]['p50_ms']:.2f} ms at {plan.small:,}, "
                f"{figures['large'][name]['p50_ms']:.2f} ms at {plan.large:,} (x{ratio:.2f})"
            )
        report["scale"][engine] = {
            "sizes": {"small": plan.small, "large": plan.large},
            "latency": figures,
            "ratio_p50": ratios,
            "database_bytes": sizes,
            "bytes_per_signature": (sizes["large"] - sizes["small"]) / (plan.large - plan.small),
        }
    return bundle_path


# --- 4. offline audit vs bare SHA-256 ----------------------------------------


def hash_only(path):
    """The hashing any verifier must do, in the tightest Python: every leaf hash and every node hash."""
    edge = []
    index = 0
    with open(path, "rb", buffering=1 << 20) as lines:
        for line in lines:
            if line.startswith(b'{"head"') or line.startswith(b'{"format"'):
                continue
            node = sha256(b"\x00" + line[:-1]).digest()
            i = index
            while i & 1:
                node = sha256(b"\x01" + edge.pop() + node).digest()
                i >>= 1
            edge.append(node)
            index += 1
    return index


def bench_audit(plan, work, report, bundle_path):
    if bundle_path is None:
        root = work / "audit"
        root.mkdir()
        bundle_path = synthetic.build(
            str(root), f"sqlite:///{root / 'countersign.db'}", plan.large, bundle_path=str(work / "bundle.jsonl")
        ).bundle_path
    runs = {"verify": [], "sha256": []}
    for _ in range(2):
        started = time.perf_counter()
        leaves = hash_only(bundle_path)
        runs["sha256"].append(time.perf_counter() - started)
        started = time.perf_counter()
        with open(bundle_path, "rb", buffering=1 << 20) as lines:
            result = verify_bundle(lines)
        runs["verify"].append(time.perf_counter() - started)
        log(f"[audit] verify {runs['verify'][-1]:.2f}s, SHA-256 alone {runs['sha256'][-1]:.2f}s")
    assert result.size == leaves == plan.large
    verify, baseline = min(runs["verify"]), min(runs["sha256"])
    report["audit"] = {
        "leaves": leaves,
        "heads": result.heads,
        "bundle_bytes": os.path.getsize(bundle_path),
        "verify_s": verify,
        "sha256_s": baseline,
        "hashes": 2 * leaves - 1,
        "ratio": verify / baseline,
    }


# --- 5. paper import vs raw Argon2id -----------------------------------------


def bench_paper(plan, work, report):
    cores = serving.cpu_count()
    params = DEFAULT_ARGON2
    rows = plan.paper_rows
    names = [f"Paper {letters(i)} Signer" for i in range(rows)]
    raw_before, cpu_before = raw_argon2(params, cores, plan.raw_seconds)

    # The way the import computes tags: person_tag over a thread pool, one
    # thread per core (argon2-cffi releases the GIL).
    key, salt = secrets.token_bytes(32), secrets.token_bytes(16)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=cores) as pool:
        list(pool.map(lambda name: person_tag(key, salt, params, name.casefold(), "S12HE"), names))
    pool_rate = rows / (time.perf_counter() - started)

    # The import itself, end to end: CSV parsed, tags, duplicates checked, rows
    # inserted, batch published.
    import_rate = import_cpu_ms = None
    root = work / "paper"
    Instance(root)  # keys, schema and the petition, as `signing init` and `petition create` make them
    csv_data = ("name,postcode\n" + "".join(f"{name},S1 2HE\n" for name in names)).encode()
    try:
        from signing import create_app, ledger, paper_csv

        app = create_app({"INSTANCE_PATH": str(root), "PUBLISH_INTERVAL_SECONDS": 0, "RATE_LIMITS_ENABLED": False})
        with app.app_context():
            services = app.extensions["countersign"]
            target = ledger.petition_by_slug(SLUG)
            started, cpu = time.perf_counter(), time.process_time()
            identities = paper_csv.parse_paper_csv(services, target, csv_data)
            result = ledger.add_paper_signatures(services, target, identities)
            import_rate = rows / (time.perf_counter() - started)
            import_cpu_ms = (time.process_time() - cpu) * 1000 / rows
            assert result.received == rows, result
    except (ImportError, AttributeError) as error:
        log(f"[paper] the import itself is not available here ({error}); thread pool only")
    raw_after, cpu_after = raw_argon2(params, cores, plan.raw_seconds)
    raw, raw_cpu_ms = (raw_before + raw_after) / 2, (cpu_before + cpu_after) / 2
    report["paper"] = {
        "rows": rows,
        "cores": cores,
        "raw_tags_per_s": raw,
        "raw_cpu_ms_per_tag": raw_cpu_ms,
        "thread_pool_tags_per_s": pool_rate,
        "import_tags_per_s": import_rate,
        "import_cpu_ms_per_tag": import_cpu_ms,
        "ratio_thread_pool": pool_rate / raw,
        "ratio": (import_rate or pool_rate) / raw,
        "cpu_ratio": raw_cpu_ms / import_cpu_ms if import_cpu_ms else None,
    }
    log(f"[paper] raw {raw:.0f}/s, pool {pool_rate:.0f}/s, import {import_rate or 0:.0f}/s")


# --- the glibc mmap threshold ------------------------------------------------


def bench_malloc(plan, work, report):
    figures = []
    for memory_kib in (DEFAULT_ARGON2.memory_kib, 40 * 1024, 64 * 1024):
        tags = max(4, plan.malloc_tags * 19456 // memory_kib)
        row = {"memory_kib": memory_kib}
        for label, extra in (
            ("default", {}),
            ("serve", serving.malloc_environment(memory_kib, environ={})),
        ):
            env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
            env.update(extra)
            probe = subprocess.run(
                [sys.executable, "-m", "bench.argon2_probe", str(memory_kib), str(tags)],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
            row[label] = json.loads(probe.stdout)
        row["slowdown_without"] = row["default"]["cpu_ms_per_tag"] / row["serve"]["cpu_ms_per_tag"]
        log(
            f"[malloc] m={memory_kib} KiB: default {row['default']['ms_per_tag']:.1f} ms "
            f"({row['default']['faults_per_tag']:.0f} faults/tag), with serve's MALLOC_* "
            f"{row['serve']['ms_per_tag']:.1f} ms ({row['serve']['faults_per_tag']:.0f} faults/tag)"
        )
        figures.append(row)
    report["malloc"] = figures


# --- main --------------------------------------------------------------------

ALL = ("signing", "reads", "scale", "audit", "paper", "malloc")


def summary(report):
    lines = ["", "ratio                                              figure     aim"]

    def add(name, value, aim):
        if value is not None:
            lines.append(f"{name:<50} {value:>7.3f}   {aim}")

    s = report.get("signing")
    if s:
        add("1 HTTP signing tags/s ÷ raw Argon2id tags/s", s["ratio"], ">= 0.85")
        add("  (the same in CPU time: raw CPU/tag ÷ worker CPU/tag)", s["cpu_ratio"], ">= 0.90")
        add("  (its floor: a tag-only POST on the same server)", s["floor_cpu_ratio"], "")
    r = report.get("reads")
    if r:
        add("2 petition page ÷ bare Flask, read storm", r["ratio"], ">= 0.5")
    for engine, figures in report.get("scale", {}).items():
        for name, value in figures["ratio_p50"].items():
            add(f"3 {name} latency {figures['sizes']['large']:,} ÷ 1,000 ({engine})", value, "<= 1.5")
    a = report.get("audit")
    if a:
        add(f"4 signing-audit verify ÷ SHA-256 ({a['leaves']:,} leaves)", a["ratio"], "<= 3")
    p = report.get("paper")
    if p:
        add("5 paper import tags/s ÷ raw Argon2id tags/s", p["ratio"], ">= 0.9")
        add("  (the same in CPU time)", p["cpu_ratio"], "")
    for engine, figures in report.get("scale", {}).items():
        lines.append(f"database bytes per signature ({engine}): {figures['bytes_per_signature']:.0f}")
    for row in report.get("malloc", []):
        lines.append(
            f"Argon2id m={row['memory_kib']} KiB without MALLOC_* ÷ with: {row['slowdown_without']:.2f}× "
            f"({row['default']['faults_per_tag']:.0f} vs {row['serve']['faults_per_tag']:.0f} page faults/tag)"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument(
        "--postgresql", choices=("auto", "none"), default="auto", help="throwaway cluster for the scale benchmark"
    )
    args = parser.parse_args(argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(selected) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    plan = Plan(args.quick)
    report = {"machine": describe_machine(), "quick": args.quick}
    work = Path(tempfile.mkdtemp(prefix="countersign-bench."))
    cluster = None
    started = time.perf_counter()
    try:
        if "scale" in selected and args.postgresql == "auto" and server_binaries():
            cluster = Cluster().start()
        instance = bench_signing(plan, work, report) if "signing" in selected else None
        if "reads" in selected:
            bench_reads(plan, work, report, instance)
        bundle = bench_scale(plan, work, report, cluster) if "scale" in selected else None
        if "audit" in selected:
            bench_audit(plan, work, report, bundle)
        if "paper" in selected:
            bench_paper(plan, work, report)
        if "malloc" in selected:
            bench_malloc(plan, work, report)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["seconds"] = time.perf_counter() - started
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(report, indent=1, default=str))
    print(summary(report))
    print(f"\nall figures: {out} ({report['seconds']:.0f}s)")


if __name__ == "__main__":
    main()
