"""`python -m sandbox`: both emulators in one process, until stopped."""

from __future__ import annotations

import argparse
import json
import signal
import threading
import urllib.request

from sandbox import cin7, marketplacer
from sandbox.server import start_server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Cin7 Core and Marketplacer emulators")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--cin7-port", type=int, default=8101)
    parser.add_argument("--marketplacer-port", type=int, default=8102)
    parser.add_argument("--cin7-rate-limit", type=int, default=60, help="calls per minute (Cin7's documented limit is 60)")
    parser.add_argument("--seed", choices=["none", "demo"], default="none")
    parser.add_argument("--order-every", type=float, default=20.0, help="seconds between demo orders")
    args = parser.parse_args()

    cin7_app = cin7.create_app(rate_limit_per_minute=args.cin7_rate_limit)
    mkp_app = marketplacer.create_app()
    servers = [start_server(cin7_app, args.host, args.cin7_port), start_server(mkp_app, args.host, args.marketplacer_port)]
    print(f"Cin7 Core emulator:    http://{args.host}:{args.cin7_port}/ExternalApi/v2", flush=True)
    print(f"Marketplacer emulator: http://{args.host}:{args.marketplacer_port}/graphql", flush=True)

    stop_orders = None
    if args.seed == "demo":
        from sandbox.demo_seed import CIN7_SEED, DEMO_ADVERTS, start_order_trickle

        req = urllib.request.Request(
            f"http://127.0.0.1:{args.cin7_port}/_sandbox/seed", data=json.dumps(CIN7_SEED).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        urllib.request.urlopen(req, timeout=10).read()
        for advert in DEMO_ADVERTS:
            mkp_app.state.data.add_advert(advert)
        stop_orders = start_order_trickle(mkp_app.state.data, every_seconds=args.order_every)
        print(f"demo data seeded; a new Marketplacer order every {args.order_every:g} s", flush=True)

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    if stop_orders is not None:
        stop_orders.set()
    for server in servers:
        server.stop()


if __name__ == "__main__":
    main()
