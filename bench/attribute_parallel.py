"""The attribute benchmark in N processes at once, with a deadline.

    python bench/attribute_parallel.py --parts 4 --deadline 3600 -- --references 24 ...

Everything after `--` goes to `python -m ostaf.world.attribute_bench` (give it a --cache);
each process takes `--part I/N`. On a GPU several processes share the card (the demo model
is far too small to fill it alone). At the deadline the processes still running are stopped:
what they finished is in the cache (every (reference, seed) whole, references in order), and
a later run with the same arguments resumes it. Exits 0 when every part finished, 1 when the
deadline stopped one, 2 when one failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--deadline", type=float, default=0, help="seconds; 0: none")
    parser.add_argument("bench", nargs=argparse.REMAINDER, help="-- then the benchmark's own")
    args = parser.parse_args(argv)
    passed = args.bench[1:] if args.bench[:1] == ["--"] else args.bench
    if args.parts < 1:
        parser.error("--parts must be at least 1")
    if "--cache" not in passed:
        parser.error("give the benchmark a --cache that every part shares")
    command = [sys.executable, "-m", "ostaf.world.attribute_bench", *passed]
    started = time.monotonic()
    children = [
        subprocess.Popen([*command, "--part", f"{part}/{args.parts}"]) for part in range(args.parts)
    ]
    stopped = False
    while any(child.poll() is None for child in children):
        if args.deadline and time.monotonic() - started > args.deadline:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
            stopped = True
            break
        time.sleep(2)
    seconds = time.monotonic() - started
    failed = [i for i, c in enumerate(children) if c.returncode not in (0, None) and not stopped]
    print(
        f"{args.parts} parts in {seconds:.0f} s"
        + (", stopped at the deadline" if stopped else "")
        + (f"; parts {failed} failed" if failed else ""),
        file=sys.stderr,
    )
    return 2 if failed else 1 if stopped else 0


if __name__ == "__main__":
    raise SystemExit(main())
