"""Time Argon2id tags in this process and count its page faults (for the glibc mmap trap).

Run as a subprocess, so each run starts with the MALLOC_* environment it is
given (glibc reads it once, at start-up)::

    python -m bench.argon2_probe MEMORY_KIB TAGS [TIME_COST]

Prints one JSON line: milliseconds per tag (wall and CPU) and minor page
faults per tag, after two warm-up tags.
"""

import json
import resource
import sys
import time

from crypto.tags import Argon2Params, compute_tag


def main():
    memory_kib, tags = int(sys.argv[1]), int(sys.argv[2])
    time_cost = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    params = Argon2Params(time_cost, memory_kib, 1)
    key, salt = bytes(32), bytes(16)
    for i in range(2):
        compute_tag(key, salt, params, "person", f"warm up {i}")
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(tags):
        compute_tag(key, salt, params, "person", f"probe {i}")
    result = {
        "memory_kib": memory_kib,
        "time_cost": time_cost,
        "ms_per_tag": (time.perf_counter() - wall) * 1000 / tags,
        "cpu_ms_per_tag": (time.process_time() - cpu) * 1000 / tags,
        "faults_per_tag": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / tags,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
