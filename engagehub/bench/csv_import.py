"""``engagehub bench csv-import``: subscription CSV rows/s and peak RSS, next to a raw parse.

The file is realistic (identifiers, three channel statuses, a group, traits; a share of bad rows:
invalid emails and phones, unknown statuses, rows without an identifier). The import runs in its
own process (``engagehub import subscriptions``, which runs the processors in a second process
alongside) so its peak RSS and CPU time are measured alone. Baselines of the same run:
``csv.reader`` over the same file, and a raw ``executemany`` of the resulting state rows into an
empty copy of ``subscription_states`` (the floor of writing that state at all).
"""

from __future__ import annotations

import csv
import os
import random
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_STATUSES = ("subscribed", "unsubscribed", "did-not-subscribe", "")
_BAD = (
    ("email", "not-an-email"),
    ("phone", "12"),
    ("email_subscription_status", "maybe"),
    ("user_id", None),
)
HEADER = (
    "user_id",
    "email",
    "phone",
    "email_subscription_status",
    "sms_subscription_status",
    "whatsapp_subscription_status",
    "email_group:newsletter",
    "first_name",
    "plan",
    "city",
)


def write_file(path: Path, rows: int, bad_share: float, seed: int = 7) -> int:
    """Write ``rows`` rows (``bad_share`` of them invalid); returns how many are bad."""
    rnd = random.Random(seed)
    bad = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        # Plain joins: generated cells hold no commas or quotes (and csv.writer is reserved
        # for engagehub.csvsafe, which would quote the phone numbers' leading "+").
        fh.write(",".join(HEADER) + "\n")
        for i in range(rows):
            row: dict[str, Any] = {
                "user_id": f"user-{i:08d}",
                "email": f"person.{i}@example{i % 97}.com",
                "phone": f"+1415{i % 10_000_000:07d}",
                "email_subscription_status": rnd.choice(_STATUSES),
                "sms_subscription_status": rnd.choice(_STATUSES),
                "whatsapp_subscription_status": rnd.choice(_STATUSES),
                "email_group:newsletter": rnd.choice(_STATUSES),
                "first_name": rnd.choice(("Ada", "Grace", "Linus", "Ken", "Barbara")),
                "plan": rnd.choice(("free", "pro", "team")),
                "city": rnd.choice(("Berlin", "Lagos", "Lima", "Osaka", "Austin")),
            }
            if rnd.random() < bad_share:
                column, value = rnd.choice(_BAD)
                row[column] = value
                if column == "user_id":
                    row["email"] = row["phone"] = ""
                bad += 1
            fh.write(",".join(row[h] or "" for h in HEADER) + "\n")
    return bad


def baseline_parse(path: Path) -> float:
    """Rows/s of csv.reader alone over the file (the floor any CSV import pays)."""
    start = time.perf_counter()
    with path.open(newline="", encoding="utf-8") as fh:
        count = sum(1 for _ in csv.reader(fh)) - 1
    return count / (time.perf_counter() - start)


def baseline_executemany(db_path: Path) -> tuple[int, float]:
    """(state rows, rows/s) of one raw executemany of the import's state rows into an empty
    table of the same shape, in one transaction (no validation, no history, no log)."""
    source = sqlite3.connect(db_path)
    rows = source.execute(
        "SELECT contact, channel, group_name, status, event_time, seq, source, reason, "
        "own_action, updated_at FROM subscription_states"
    ).fetchall()
    source.close()
    target = sqlite3.connect(db_path.with_name("baseline.db"))
    target.execute(
        "CREATE TABLE subscription_states (contact TEXT NOT NULL, channel TEXT NOT NULL, "
        "group_name TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, event_time INTEGER NOT NULL, "
        "seq INTEGER NOT NULL, source TEXT NOT NULL, reason TEXT, own_action INTEGER NOT NULL, "
        "updated_at INTEGER NOT NULL, PRIMARY KEY (contact, channel, group_name))"
    )
    start = time.perf_counter()
    with target:
        target.executemany(
            "INSERT INTO subscription_states VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
    elapsed = time.perf_counter() - start
    target.close()
    return len(rows), len(rows) / max(elapsed, 1e-9)


def run(rows: int, bad_share: float, keep: Path | None = None) -> dict[str, Any]:
    """Generate, import in a child process, and return the figures."""
    with tempfile.TemporaryDirectory(prefix="engagehub-bench-csv-") as tmp:
        folder = keep or Path(tmp)
        path = folder / "subscriptions.csv"
        bad = write_file(path, rows, bad_share)
        size = path.stat().st_size
        parse_rate = baseline_parse(path)
        env = {
            **os.environ,
            "ENGAGEHUB_DATABASE_URL": f"sqlite:///{folder}/bench.db",
            "ENGAGEHUB_ADMIN_TOKEN": "bench-admin-token",
        }
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "engagehub", "import", "subscriptions", str(path)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kb = usage.ru_maxrss
        follower = re.search(
            r"processors ran alongside \(peak RSS ([\d + ]+) MB; importer (\d+) MB\)", done.stdout
        )
        followers_mb = [int(x) for x in follower.group(1).split("+")] if follower else []
        timing = re.search(
            r"stored in ([\d.]+) s, applied in ([\d.]+) s \(CPU: importer ([\d.]+) s, "
            r"processors ([\d. +]+) s\)",
            done.stdout,
        )
        stored_s, applied_s, importer_cpu = (
            (float(timing.group(1)), float(timing.group(2)), float(timing.group(3)))
            if timing
            else (elapsed, elapsed, 0.0)
        )
        processors_cpu = sum(float(x) for x in timing.group(4).split("+")) if timing else 0.0
        by_name = re.search(r"processors' CPU by processor: (.*)", done.stdout)
        pairs = re.findall(r"(\S+) ([\d.]+) s", by_name.group(1) if by_name else "")
        named = {name: round(float(seconds) / rows * 1e6, 1) for name, seconds in pairs}
        importer_mb = int(follower.group(2)) if follower else round(peak_kb / 1024)
        states, executemany_rate = baseline_executemany(folder / "bench.db")
        errors_path = path.with_name(path.stem + ".errors.csv")
        reported = 0
        if errors_path.exists():
            with errors_path.open(newline="", encoding="utf-8") as fh:
                reported = len({r[0] for r in csv.reader(fh)} - {"row_number"})
        return {
            "rows": rows,
            "file_mb": round(size / 1e6, 1),
            "bad_rows_written": bad,
            "rows_rejected_reported": reported,
            "import_s": round(elapsed, 2),
            "import_rows_per_s": round(rows / elapsed),
            # Inside the command (after start-up): every chunk stored (acknowledged), and every
            # processor caught up with them (consent states, profiles: applied).
            "stored_s": stored_s,
            "stored_rows_per_s": round(rows / max(stored_s, 1e-9)),
            "applied_s": applied_s,
            "applied_rows_per_s": round(rows / max(applied_s, 1e-9)),
            "importer_cpu_s": importer_cpu,
            "processors_cpu_s": round(processors_cpu, 2),
            "importer_us_per_row": round(importer_cpu / rows * 1e6, 1),
            "processors_us_per_row": round(processors_cpu / rows * 1e6, 1),
            # Thread CPU of each processor and of the rounds' own statements (commits, cursors).
            "processor_us_per_row_by_name": named,
            # Two processes: the importer and the one running the processors alongside
            # (RUSAGE_CHILDREN's peak is the larger one's); each is reported, and their sum.
            "import_peak_rss_mb": round(peak_kb / 1024, 1),
            "importer_peak_rss_mb": importer_mb,
            "processors_peak_rss_mb": followers_mb,
            "peak_rss_sum_mb": importer_mb + sum(followers_mb),
            # CPU time: on a shared machine wall time mostly measures the neighbours.
            "import_user_cpu_s": round(usage.ru_utime, 2),
            "import_sys_cpu_s": round(usage.ru_stime, 2),
            "import_rows_per_cpu_s": round(rows / max(usage.ru_utime + usage.ru_stime, 1e-9)),
            "baseline_csv_reader_rows_per_s": round(parse_rate),
            "ratio_import_vs_csv_reader": round(rows / elapsed / parse_rate, 3),
            "state_rows": states,
            "baseline_executemany_state_rows_per_s": round(executemany_rate),
            "baseline_executemany_as_csv_rows_per_s": round(
                executemany_rate * rows / max(states, 1)
            ),
            "ratio_import_vs_executemany": round(
                (rows / elapsed) / (executemany_rate * rows / max(states, 1)), 3
            ),
        }
