"""A1111 `parameters` text: quoting and parsing round trip."""

from __future__ import annotations

from ostaf.interop.pngmeta import a1111_parameters, parse_a1111, quote


def test_values_with_separators_are_json_quoted() -> None:
    assert quote("Euler") == "Euler"
    assert quote("a, b") == '"a, b"'
    assert quote("x: y") == '"x: y"'
    assert quote("two\nlines") == '"two\\nlines"'


def test_round_trip() -> None:
    text = a1111_parameters(
        "a cat,\nwearing a hat",
        "ugly, blurry",
        [
            ("Steps", 20),
            ("Sampler", "DPM++ 2M"),
            ("Seed", 5),
            ("Model", "my, model"),
            ("OSTAF attribute", 'fur "soft"'),
        ],
    )
    assert text.splitlines()[2] == "Negative prompt: ugly, blurry"
    parsed = parse_a1111(text)
    assert parsed["prompt"] == "a cat,\nwearing a hat"
    assert parsed["negative_prompt"] == "ugly, blurry"
    assert parsed["values"] == {
        "Steps": "20",
        "Sampler": "DPM++ 2M",
        "Seed": "5",
        "Model": "my, model",
        "OSTAF attribute": 'fur "soft"',
    }


def test_no_negative_prompt() -> None:
    parsed = parse_a1111(a1111_parameters("x", "", [("Steps", 1)]))
    assert parsed == {"prompt": "x", "negative_prompt": "", "values": {"Steps": "1"}}
