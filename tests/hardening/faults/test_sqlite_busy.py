"""Several ``engagehub import`` processes on one SQLite file at once: each waits for the write
lock instead of failing with "database is locked", and every row of every file lands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engagehub.consent import store
from engagehub.storage import open_database


def test_concurrent_cli_imports_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/busy.db"
    env = {**os.environ, "ENGAGEHUB_DATABASE_URL": url, "ENGAGEHUB_ADMIN_TOKEN": "x" * 20}
    subprocess.run(
        [sys.executable, "-m", "engagehub", "migrate"], env=env, check=True, capture_output=True
    )
    files = []
    for n in range(4):
        path = tmp_path / f"part{n}.csv"
        rows = [f"p{n}-{i}@example.com,subscribed" for i in range(300)]
        path.write_text("email,email_subscription_status\r\n" + "\r\n".join(rows) + "\r\n")
        files.append(path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "engagehub", "import", "subscriptions", str(p)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for p in files
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (out.decode()[-500:], err.decode()[-2000:])
        assert b"applied 300" in out, out.decode()[-500:]
    db = open_database(url)
    try:
        with db.session() as conn:
            subscribed = conn.scalar(
                "SELECT COUNT(*) FROM subscription_states WHERE channel = 'email' "
                "AND status = 'subscribed'"
            )
            assert store.status(conn, "p3-299@example.com", "email") == "subscribed"
    finally:
        db.close()
    assert subscribed == 1200
