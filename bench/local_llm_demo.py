"""The demo inbox with a local OpenAI-compatible server (opt-in): what the bot processes, defers and sends to review
with the README's settings for local servers, and how long each `run.py --once` cycle takes.

    python bench/local_llm_demo.py --url http://127.0.0.1:8080/v1 [--model local] [--cycles 2]

Each run starts from a fresh copy of demo/inbox in a temporary folder, with the offline model the bot ships (trained
on the gold set at start-up). The settings are tests/integration/local_demo.py's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.local_demo import describe, run_demo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server's OpenAI base URL, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--model", default="local")
    parser.add_argument("--cycles", type=int, default=1, help="cycles to run (deferred mail is tried again)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(describe(run_demo(args.url, args.model, Path(tmp), args.cycles)))


if __name__ == "__main__":
    main()
