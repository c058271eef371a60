"""`python -m sandbox`: the emulators (Cin7 Core, Marketplacer, Mirakl, commercetools, SFCC, Centra) in one process, until stopped."""

from __future__ import annotations

import argparse
import json
import signal
import threading
import urllib.request

from sandbox import centra, cin7, commercetools, marketplacer, mirakl, sfcc
from sandbox.server import start_server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Cin7 Core, Marketplacer, Mirakl (John Lewis), commercetools, Salesforce Commerce Cloud and Centra emulators")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--cin7-port", type=int, default=8101)
    parser.add_argument("--marketplacer-port", type=int, default=8102)
    parser.add_argument("--mirakl-port", type=int, default=8103)
    parser.add_argument("--commercetools-port", type=int, default=8104, help="the API and its auth host (/oauth/token) on one port")
    parser.add_argument("--sfcc-port", type=int, default=8105, help="SCAPI, OCI and the Account Manager token on one port")
    parser.add_argument("--centra-port", type=int, default=8106)
    parser.add_argument("--mirakl-api-key", default="demo-mirakl-key")
    parser.add_argument("--mirakl-shop-id", type=int, default=2001)
    parser.add_argument("--cin7-rate-limit", type=int, default=60, help="calls per minute (Cin7's documented limit is 60)")
    parser.add_argument("--only", default="cin7,marketplacer,mirakl,commercetools,sfcc,centra", help="which emulators to start (benchmarks run each in its own process)")
    parser.add_argument("--seed", choices=["none", "demo"], default="none")
    parser.add_argument("--order-every", type=float, default=20.0, help="seconds between demo orders")
    args = parser.parse_args()

    cin7_app = cin7.create_app(rate_limit_per_minute=args.cin7_rate_limit)
    mkp_app = marketplacer.create_app()
    jl_app = mirakl.create_app(api_key=args.mirakl_api_key, shop_id=args.mirakl_shop_id)
    ct_app = commercetools.create_app(project_key="demo-shop", client_id="demo-client", client_secret="demo-secret")
    centra_app = centra.create_app()
    sfcc_app = sfcc.create_app()
    only = set(args.only.split(","))
    servers = []
    if "cin7" in only:
        servers.append(start_server(cin7_app, args.host, args.cin7_port))
        print(f"Cin7 Core emulator:    http://{args.host}:{args.cin7_port}/ExternalApi/v2", flush=True)
    if "marketplacer" in only:
        servers.append(start_server(mkp_app, args.host, args.marketplacer_port))
        print(f"Marketplacer emulator: http://{args.host}:{args.marketplacer_port}/graphql", flush=True)
    if "mirakl" in only:
        servers.append(start_server(jl_app, args.host, args.mirakl_port))
        print(f"Mirakl emulator:       http://{args.host}:{args.mirakl_port}/api (shop {args.mirakl_shop_id})", flush=True)
    if "commercetools" in only:
        servers.append(start_server(ct_app, args.host, args.commercetools_port))
        print(f"commercetools emulator: http://{args.host}:{args.commercetools_port}/demo-shop (auth: /oauth/token on the same port)", flush=True)
    if "centra" in only:
        servers.append(start_server(centra_app, args.host, args.centra_port))
        print(f"Centra emulator:       http://{args.host}:{args.centra_port}/graphql (Order API at /order-api)", flush=True)
    if "sfcc" in only:
        servers.append(start_server(sfcc_app, args.host, args.sfcc_port))
        print(f"SFCC emulator:         http://{args.host}:{args.sfcc_port} (SCAPI, OCI; token at /dwsso/oauth2/access_token)", flush=True)

    stop_orders = stop_jl_orders = stop_ct_orders = stop_sfcc_orders = None
    if args.seed == "demo":
        from sandbox.demo_seed import CIN7_SEED, DEMO_ADVERTS, start_order_trickle

        req = urllib.request.Request(
            f"http://127.0.0.1:{args.cin7_port}/_sandbox/seed", data=json.dumps(CIN7_SEED).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        urllib.request.urlopen(req, timeout=10).read()
        for advert in DEMO_ADVERTS:
            mkp_app.state.data.add_advert(advert)
        from sandbox.demo_seed import MARKETPLACER_TAXONOMY

        for taxon in MARKETPLACER_TAXONOMY:
            mkp_app.state.data.add_taxon(taxon)
        stop_orders = start_order_trickle(mkp_app.state.data, every_seconds=args.order_every)
        from sandbox import mirakl_demo

        mirakl_demo.seed(jl_app.state.data)
        from sandbox.demo_seed import CENTRA_SEED

        centra_app.state.data.seed(CENTRA_SEED)
        stop_jl_orders = mirakl_demo.start_order_trickle(jl_app.state.data, every_seconds=args.order_every * 1.5)
        from sandbox import commercetools_demo

        commercetools_demo.seed(ct_app.state.data)
        stop_ct_orders = commercetools_demo.start_order_trickle(ct_app.state.data, every_seconds=args.order_every * 2)
        from sandbox import sfcc_demo

        sfcc_demo.seed(sfcc_app.state.data)
        stop_sfcc_orders = sfcc_demo.start_order_trickle(sfcc_app.state.data, every_seconds=args.order_every * 2)
        print(f"demo data seeded; a new Marketplacer order every {args.order_every:g} s, a John Lewis one every {args.order_every * 1.5:g} s, "
              f"a commercetools and an SFCC (UK) one every {args.order_every * 2:g} s", flush=True)

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    for stop in (stop_orders, stop_jl_orders, stop_ct_orders, stop_sfcc_orders):
        if stop is not None:
            stop.set()
    for server in servers:
        server.stop()


if __name__ == "__main__":
    main()
