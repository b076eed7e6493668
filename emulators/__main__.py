"""``python -m emulators [--host 127.0.0.1] [--port 8100]``: serve all three platforms."""

import argparse
import logging
import os
import signal
import sys
import threading

from emulators.core import Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("EMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("EMULATOR_PORT", "8100")))
    parser.add_argument("--demo", action="store_true", help="load the demo's preview campaigns")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("EMULATOR_LOG_LEVEL", "INFO"),
        format="%(asctime)s emulators %(levelname)s %(message)s",
    )
    emulator = Emulator()
    server = emulator.make_server(args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.getLogger("emulators").info(
        "serving %s on http://%s:%s (time scale %s)",
        ", ".join(sorted(emulator.platforms)) or "no platforms",
        args.host,
        server.server_address[1],
        emulator.config.time_scale,
    )
    if args.demo:
        threading.Thread(target=_load_demo, args=(server,), daemon=True).start()
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


def _load_demo(server) -> None:
    from emulators.demo import load_demo

    host, port = server.server_address[:2]
    try:
        load_demo(f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}")
    except Exception:
        logging.getLogger("emulators").exception("loading the demo campaigns failed")


if __name__ == "__main__":
    raise SystemExit(main())
