"""Prompt following of a model at several render guidances, with one of the app's samplers.

    python -m bench.guidance --model demo-xl --guidance 5,7.5 [--sampler dpmpp2m --schedule karras]

The same 200 prompts and seeds at each guidance (`measure_prompt_following`), read by the
oracle: which CFG a family's models should start at (BaseModel.guidance).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="demo, demo-xl or a model path")
    parser.add_argument("--guidance", default="5,7.5", help="comma-separated CFG scales")
    parser.add_argument("--sampler", default="dpmpp2m", choices=("ddim", "euler", "dpmpp2m"))
    parser.add_argument("--schedule", default="karras", choices=("karras", "simple", "model"))
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    scales = [float(g) for g in args.guidance.split(",") if g]

    import torch

    from ostaf.models.base_model import load_base_model
    from ostaf.render.rendering import pipeline_for
    from ostaf.world.prompt_following import measure_prompt_following

    torch.set_num_threads(args.threads)
    model = load_base_model(args.model, device="cpu")
    pipe = pipeline_for(model, args.sampler, args.schedule)
    for scale in scales:
        score, _ = measure_prompt_following(pipe, args.prompts, guidance=scale)
        print(f"{model.name} {args.sampler} {args.schedule} CFG {scale:g}: {score.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
