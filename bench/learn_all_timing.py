"""Learn all three against three ordinary runs, timed in the same process, interleaved:
the one pass with its kinds sharing samples, the one pass with samples of their own ("split"),
and the three runs; the ratios to the three runs are what to read (absolute times on a shared
machine are noisy). Not a test.

    python -m bench.learn_all_timing [--rounds 3] [--model demo] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

WAYS = ("three runs", "one pass, shared samples", "one pass, split samples")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from ostaf.models.offline import quiet_libraries

    quiet_libraries()
    import torch

    from ostaf.decompose_request import DecomposeSettings
    from ostaf.images import load_reference
    from ostaf.method.decompose import learn_all
    from ostaf.models.base_model import load_base_model
    from ostaf.world.attribute_cases import references
    from ostaf.world.decomposition_bench import STYLE, WORDS, described, joint_caption

    torch.set_num_threads(args.threads)
    model = load_base_model(args.model, device="cpu", precision="fp32")
    scene = references(STYLE, 1, "unseen")[0]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "reference.png"
        scene.render(64).save(path)
        reference = load_reference(path, model.resolution)
    base = DecomposeSettings.create(WORDS, joint_caption(scene), described(scene), seed=0)
    settings = {
        WAYS[0]: replace(base, one_pass=False),
        WAYS[1]: replace(base, samples="shared"),
        WAYS[2]: replace(base, samples="split"),
    }
    seconds: dict[str, list[float]] = {way: [] for way in WAYS}
    for _ in range(args.rounds):
        for way in WAYS:
            started = time.perf_counter()
            learn_all(model, reference, settings[way])
            seconds[way].append(time.perf_counter() - started)
            print(f"{way}: {seconds[way][-1]:.1f} s", file=sys.stderr, flush=True)
    three = statistics.median(seconds[WAYS[0]])
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "model": model.name,
        "threads": args.threads,
        "seconds": seconds,
        "ratio_to_three_runs": {
            way: round(statistics.median(seconds[way]) / three, 3) for way in WAYS
        },
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
