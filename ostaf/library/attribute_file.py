"""One attribute = one `.safetensors` file: low-rank factors per target layer + metadata.

Tensors: `<module path>.A` (out, r) and `<module path>.B` (r, in), fp32, ΔW = A·B / r; when
the placeholder word was learned (format version 2), `placeholder.<encoder>.<token id>` (D,),
its shift, and `placeholder_base.<encoder>.<token id>` (D,), the tuning model's own
embedding of that token (for exports).
Metadata: one `ostaf` key (see attribute_meta). Writes are atomic; reads validate the header,
every shape and every value before anything is applied.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ostaf.errors import AttributeFileError, IncompatibleModelError
from ostaf.library.atomic import atomic_write_bytes
from ostaf.library.attribute_meta import METADATA_KEY, AttributeMeta, read_meta
from ostaf.method.offsets import Factors
from ostaf.method.shift_keys import split_shift_key
from ostaf.models.base_model import BaseModel
from ostaf.models.families import family_of_attribute


@dataclass
class Attribute:
    """A learned attribute in memory."""

    meta: AttributeMeta
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    # The placeholder's learned embedding shifts, "<encoder>.<token id>" -> (D,); listed in
    # meta.shifts (none in files tuned without them).
    shifts: dict[str, torch.Tensor] = field(default_factory=dict)
    # The tuning model's own embedding of each shifted token (same keys): with the shift,
    # the learned word as other tools take it (a textual-inversion embedding).
    shift_bases: dict[str, torch.Tensor] = field(default_factory=dict)
    # The file it was read from (not part of its content): a library file's name is its id.
    source: Path | None = field(default=None, compare=False)

    def content_hash(self) -> str:
        """Hash of the factors (and shifts): equal hashes, the same attribute."""
        digest = hashlib.sha256()
        for path in sorted(self.factors):
            a, b = self.factors[path]
            digest.update(path.encode())
            digest.update(a.detach().cpu().contiguous().numpy().tobytes())
            digest.update(b.detach().cpu().contiguous().numpy().tobytes())
        for key in sorted(self.shifts):
            digest.update(key.encode())
            digest.update(self.shifts[key].detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def to_bytes(self) -> bytes:
        tensors: dict[str, torch.Tensor] = {}
        for path, (a, b) in self.factors.items():
            tensors[f"{path}.A"] = a.detach().to("cpu", torch.float32).contiguous()
            tensors[f"{path}.B"] = b.detach().to("cpu", torch.float32).contiguous()
        for key, vector in self.shifts.items():
            tensors[SHIFT_PREFIX + key] = vector.detach().to("cpu", torch.float32).contiguous()
        for key, vector in self.shift_bases.items():
            tensors[BASE_PREFIX + key] = vector.detach().to("cpu", torch.float32).contiguous()
        return save(tensors, metadata={METADATA_KEY: self.meta.to_json()})


SHIFT_PREFIX = "placeholder."  # tensor name of a shift: "placeholder.text_encoder.644"
BASE_PREFIX = "placeholder_base."  # and of the model's own embedding of that token


def save_attribute(path: Path | str, attribute: Attribute) -> Path:
    """Write `attribute` to `path` atomically (old file or new file, never a torn one)."""
    path = Path(path)
    _validate_factors(attribute.meta, attribute.factors, path)
    _validate_shifts(attribute, path)
    atomic_write_bytes(path, attribute.to_bytes())
    return path


def load_attribute(path: Path | str) -> Attribute:
    """Read and validate an attribute file; raise AttributeFileError naming the file."""
    path = Path(path)
    meta = read_meta(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise AttributeFileError(
            f"{path}: cannot read the tensors ({exc}); the file is damaged"
        ) from exc
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    expected = set()
    for target in meta.targets:
        expected |= {f"{target}.A", f"{target}.B"}
        if f"{target}.A" not in tensors or f"{target}.B" not in tensors:
            raise AttributeFileError(
                f"{path}: factors for {target} are missing; the file is damaged"
            )
        factors[target] = (tensors[f"{target}.A"], tensors[f"{target}.B"])
    shifts: dict[str, torch.Tensor] = {}
    bases: dict[str, torch.Tensor] = {}
    for key in meta.shifts:
        for prefix, found in ((SHIFT_PREFIX, shifts), (BASE_PREFIX, bases)):
            expected.add(prefix + key)
            if prefix + key not in tensors:
                raise AttributeFileError(
                    f"{path}: the placeholder embedding {key} is missing; the file is damaged"
                )
            found[key] = tensors[prefix + key]
    extra = sorted(set(tensors) - expected)
    if extra:
        raise AttributeFileError(
            f"{path}: unexpected tensor {extra[0]}; not an OSTAF attribute file"
        )
    _validate_factors(meta, factors, path)
    attribute = Attribute(meta, factors, shifts, bases, source=path)
    _validate_shifts(attribute, path)
    return attribute


def _validate_factors(meta: AttributeMeta, factors: Factors, source: Path) -> None:
    if sorted(factors) != sorted(meta.targets):
        raise AttributeFileError(f"{source}: the factors do not match the listed target layers")
    for target, (a, b) in factors.items():
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != meta.rank or b.shape[0] != meta.rank:
            raise AttributeFileError(
                f"{source}: factors of {target} have shapes {tuple(a.shape)}, {tuple(b.shape)}, "
                f"not (out, {meta.rank}) and ({meta.rank}, in); the file is damaged"
            )
        if not a.is_floating_point() or not b.is_floating_point():
            raise AttributeFileError(f"{source}: factors of {target} are not floating point")
        if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
            raise AttributeFileError(f"{source}: factors of {target} hold NaN or infinite values")


def _validate_shifts(attribute: Attribute, source: Path) -> None:
    listed = sorted(attribute.meta.shifts)
    if sorted(attribute.shifts) != listed or sorted(attribute.shift_bases) != listed:
        raise AttributeFileError(
            f"{source}: the placeholder embeddings do not match the listed ones"
        )
    for key, vector in [*attribute.shifts.items(), *attribute.shift_bases.items()]:
        if vector.ndim != 1 or not vector.is_floating_point():
            raise AttributeFileError(
                f"{source}: the placeholder embedding {key} is not a vector of floats; "
                "the file is damaged"
            )
        if not torch.isfinite(vector).all():
            raise AttributeFileError(
                f"{source}: the placeholder embedding {key} holds NaN or infinite values"
            )
        if vector.shape != attribute.shifts[key].shape:
            raise AttributeFileError(
                f"{source}: the placeholder embedding {key} has two sizes; the file is damaged"
            )


def check_compatible(attribute: Attribute, model: BaseModel) -> list[str]:
    """Refuse an attribute tuned on another architecture; return warnings for softer mismatches."""
    meta = attribute.meta
    name = meta.name or "attribute"
    tuned_on = family_of_attribute(meta.tuning, attribute.factors)
    if tuned_on is not None and tuned_on is not model.family:
        raise IncompatibleModelError(
            f"'{name}' was tuned on a {tuned_on.label} model ({meta.base_model.name}) but "
            f"{model.name} is a {model.family.label} model; load a {tuned_on.label} model or "
            "tune the attribute again on this one"
        )
    if meta.base_model.architecture != model.architecture:
        raise IncompatibleModelError(
            f"'{name}' was tuned on {meta.base_model.name or 'another model'} whose U-Net has "
            f"other layers than {model.name}; load that base model or tune again on this one"
        )
    for target, (a, b) in attribute.factors.items():
        try:
            layer = model.unet.get_submodule(target)
        except AttributeError as exc:
            raise IncompatibleModelError(
                f"'{name}': layer {target} is not in {model.name}"
            ) from exc
        weight = getattr(layer, "weight", None)
        if weight is None or tuple(weight.shape) != (a.shape[0], b.shape[1]):
            raise IncompatibleModelError(
                f"'{name}': layer {target} has another shape in {model.name}"
            )
    for key, vector in attribute.shifts.items():
        encoder, token_id = split_shift_key(key)
        layer = model.merger.embeddings.get(encoder)
        if layer is None or token_id >= layer.num_embeddings or layer.embedding_dim != len(vector):
            raise IncompatibleModelError(
                f"'{name}': its placeholder embedding {key} does not fit {model.name}'s text "
                "encoders; load the model it was tuned on or tune again on this one"
            )
    if meta.base_model.fingerprint != model.fingerprint:
        return [base_model_warning(name, meta.base_model.name, model.name)]
    return []


def base_model_warning(attribute: str, tuned_on: str, loaded: str) -> str:
    """What differs when an attribute meets a base model with the same layers but other
    weights: the model's name, or (same name) its weights only."""
    if tuned_on == loaded:
        return (
            f"'{attribute}' was tuned on another version of '{loaded}' (same name and layers, "
            "other weights): results may differ"
        )
    return (
        f"'{attribute}' was tuned on '{tuned_on or 'an unnamed model'}', this is '{loaded}' "
        "(same layers, other weights): results may differ"
    )
