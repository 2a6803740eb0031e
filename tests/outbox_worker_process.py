"""An outbox worker as a process of its own, for the chaos tests (kill -9 it while it delivers).

    python tests/outbox_worker_process.py --database cases.db --endpoint http://127.0.0.1:8311/open311/v2 \
        --api-key KEY [--lease-s 2] [--reconcile-after-s 1.5] [--timeout-s 1.2] [--batch-size 1]

Runs `service.outbox.OutboxWorker.run_forever` with an Open311 adapter on a SQLite file (already migrated)
until it is killed. Prints ``ready`` once the worker runs.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from service.adapters import Open311Adapter, Open311Settings  # noqa: E402
from service.db import DatabaseSettings, make_engine, make_session_factory  # noqa: E402
from service.outbox import OutboxWorker  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--lease-s", type=float, default=2.0)
    parser.add_argument("--reconcile-after-s", type=float, default=1.5)
    parser.add_argument("--timeout-s", type=float, default=1.2)
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args(argv)
    engine = make_engine(DatabaseSettings(path=args.database))
    adapter = Open311Adapter(Open311Settings(endpoint=args.endpoint, api_key=args.api_key, timeout_s=args.timeout_s,
                                             service_codes={"0504": "street-vending"}))
    worker = OutboxWorker(make_session_factory(engine), [adapter], lease_s=args.lease_s, base_backoff_s=0.2,
                          max_backoff_s=1.0, reconcile_after_s=args.reconcile_after_s, batch_size=args.batch_size,
                          max_attempts=1000)
    print("ready", flush=True)
    worker.run_forever(threading.Event(), poll_s=0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
