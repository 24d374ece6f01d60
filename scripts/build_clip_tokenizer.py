"""Build the CLIP BPE tokenizer files (vocab.json, merges.txt) shipped with the model configs.

The source is `bpe_simple_vocab_16e6.txt.gz`, the BPE merge list OpenAI published with CLIP
(MIT licence), which the `open_clip_torch` wheel carries. Fetch the wheel without installing it
and point this script at it (or at the extracted .txt.gz):

    pip download --no-deps open_clip_torch -d /tmp/oc
    python scripts/build_clip_tokenizer.py /tmp/oc/open_clip_torch-*.whl

The output is deterministic: the same source gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ostaf.models.demo_model import _byte_vocab  # noqa: E402  (CLIP's byte-to-unicode table)

SOURCE_NAME = "bpe_simple_vocab_16e6.txt.gz"
DEFAULT_OUT = ROOT / "resources" / "model_configs" / "clip_tokenizer"
VOCAB_SIZE = 49408
# CLIP keeps the first 49152 - 256 - 2 merges so that bytes, merges and the two special
# tokens fill a 49408-entry vocabulary; line 0 of the file is a header.
MERGE_COUNT = 49152 - 256 - 2
START, END = "<|startoftext|>", "<|endoftext|>"


def read_source(path: Path) -> str:
    """The decompressed BPE merge file, from the .txt.gz itself or from a wheel holding it."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            members = [n for n in wheel.namelist() if n.endswith("/" + SOURCE_NAME)]
            if len(members) != 1:
                raise SystemExit(f"{path}: no single {SOURCE_NAME} inside")
            data = wheel.read(members[0])
    else:
        data = path.read_bytes()
    return gzip.decompress(data).decode("utf-8")


def build(text: str) -> tuple[dict[str, int], list[str]]:
    """vocab (token → id) and merge lines in CLIP's order."""
    merges = text.split("\n")[1 : MERGE_COUNT + 1]
    if len(merges) != MERGE_COUNT or any(len(m.split(" ")) != 2 for m in merges):
        raise SystemExit("the source does not hold the expected CLIP merge list")
    vocab = _byte_vocab()  # 256 byte characters, then the same with "</w>"
    for merge in merges:
        vocab[merge.replace(" ", "")] = len(vocab)
    vocab[START] = len(vocab)
    vocab[END] = len(vocab)
    if len(vocab) != VOCAB_SIZE:
        raise SystemExit(f"built {len(vocab)} tokens, expected {VOCAB_SIZE}")
    return vocab, merges


def write(out_dir: Path, vocab: dict[str, int], merges: list[str]) -> None:
    """Write vocab.json and merges.txt in the layout transformers' CLIPTokenizer reads."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(
        json.dumps(vocab, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    (out_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )


def check(out_dir: Path) -> None:
    """Tokenise a known prompt with the written files and compare to CLIP's ids."""
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(out_dir)
    ids = tokenizer("a photo of a cat")["input_ids"]
    expected = [49406, 320, 1125, 539, 320, 2368, 49407]
    if ids != expected:
        raise SystemExit(f"tokenizer check failed: {ids} != {expected}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help=f"open_clip_torch wheel or {SOURCE_NAME}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    vocab, merges = build(read_source(args.source))
    write(args.out, vocab, merges)
    check(args.out)
    sys.stdout.write(f"wrote {len(vocab)} tokens and {len(merges)} merges to {args.out}\n")


if __name__ == "__main__":
    main()
