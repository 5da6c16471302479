"""build_model and checkpoints: official key names for all eight models, strict safe loading,
clear errors for wrong files, and a full-model forward equal to the reference's."""

import pytest
import torch

from napari_sam2.errors import SAM2Error
from napari_sam2.model import CONFIGS, MODEL_NAMES, build_model
from napari_sam2.model.build import build_from_config

from reference import build_reference, perturb_


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_model_names_are_the_eight_official_models():
    assert set(MODEL_NAMES) == {
        f"{version}_hiera_{size}"
        for version in ("sam2", "sam2.1")
        for size in ("tiny", "small", "base_plus", "large")
    }


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_state_dict_keys_and_shapes_equal_the_reference(name):
    reference = build_reference(name, image_size=256)
    with torch.device("meta"):
        ours = build_from_config(CONFIGS[name].at_image_size(256))
    assert list(_shapes(ours)) == list(_shapes(reference))
    assert _shapes(ours) == _shapes(reference)


def _full_forward(model, image, points, labels):
    """Image features, then the SAM heads with a click, then a memory: our API."""
    features = model.encode_image(image)
    prediction = model.track_frame(features, None, points, labels)
    memory = model.encode_memory(
        features, prediction.high_res_masks, prediction.object_score_logits, from_clicks=True
    )
    return prediction, memory


def _reference_forward(reference, image, points, labels):
    backbone = reference.forward_image(image)
    _, feats, pos, sizes = reference._prepare_backbone_features(backbone)
    out = reference.track_step(
        frame_idx=0,
        is_init_cond_frame=True,
        current_vision_feats=feats,
        current_vision_pos_embeds=pos,
        feat_sizes=sizes,
        point_inputs={"point_coords": points, "point_labels": labels},
        mask_inputs=None,
        output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
        num_frames=1,
    )
    return out


@pytest.mark.parametrize(
    ("name", "image_size"),
    [("sam2.1_hiera_tiny", 256), ("sam2_hiera_small", 256), ("sam2.1_hiera_tiny", 1024)],
)
def test_checkpoint_round_trip_gives_the_reference_function(name, image_size, tmp_path):
    reference = perturb_(build_reference(name, image_size=image_size))
    reference.binarize_mask_from_pts_for_mem_enc = True  # the video predictor's setting
    path = tmp_path / "model.pt"
    torch.save({"model": reference.state_dict()}, path)
    ours = build_model(name, checkpoint=path, image_size=image_size)

    torch.manual_seed(1)
    image = torch.randn(1, 3, image_size, image_size)
    points = torch.tensor([[[0.3 * image_size, 0.6 * image_size]]])
    labels = torch.tensor([[1]], dtype=torch.int32)
    with torch.no_grad():
        prediction, memory = _full_forward(ours, image, points, labels)
        expected = _reference_forward(reference, image, points, labels)
    pairs = {
        "low-res mask": (prediction.low_res_masks, expected["pred_masks"]),
        "high-res mask": (prediction.high_res_masks, expected["pred_masks_high_res"]),
        "object pointer": (prediction.obj_ptr, expected["obj_ptr"]),
        "object score": (prediction.object_score_logits, expected["object_score_logits"]),
        "memory": (memory[0], expected["maskmem_features"]),
        "memory position": (memory[1], expected["maskmem_pos_enc"][-1]),
    }
    for what, (a, b) in pairs.items():
        diff = (a - b).abs().max().item()
        assert diff < 1e-4, f"{what}: max abs difference {diff}"


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(SAM2Error, match="sam2.1_hiera_tiny"):
        build_model("sam3_hiera_huge")


@pytest.mark.parametrize("written", ["sam2_hiera_small", "sam2_hiera_tiny"])
def test_mismatched_checkpoint_names_the_model_it_belongs_to(written, tmp_path):
    # another size, and the same size of the other version (2.0 lacks 2.1's embeddings)
    path = tmp_path / "other.pt"
    torch.save({"model": build_model(written, image_size=256).state_dict()}, path)
    with pytest.raises(SAM2Error, match=f"looks like a {written} checkpoint"):
        build_model("sam2.1_hiera_tiny", checkpoint=path, image_size=256)


def test_bare_state_dict_is_accepted(tmp_path):
    model = build_model("sam2.1_hiera_tiny", image_size=256)
    path = tmp_path / "bare.pt"
    torch.save(model.state_dict(), path)
    loaded = build_model("sam2.1_hiera_tiny", checkpoint=path, image_size=256)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save({"model": build_model("sam2.1_hiera_tiny", image_size=256).state_dict()}, path)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(SAM2Error, match="not found"):
        build_model("sam2.1_hiera_tiny", checkpoint=tmp_path / "nope.pt")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(SAM2Error, match="empty"):
        build_model("sam2.1_hiera_tiny", checkpoint=path)


def test_truncated_file(tmp_path, good_checkpoint):
    path = tmp_path / "cut.pt"
    path.write_bytes(good_checkpoint.read_bytes()[: good_checkpoint.stat().st_size // 2])
    with pytest.raises(SAM2Error, match="truncated or corrupt"):
        build_model("sam2.1_hiera_tiny", checkpoint=path)


def test_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")
    with pytest.raises(SAM2Error, match="not a PyTorch checkpoint"):
        build_model("sam2.1_hiera_tiny", checkpoint=path)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"x": _Payload()}}, path, pickle_protocol=2)
    with pytest.raises(SAM2Error, match="refused for safety"):
        build_model("sam2.1_hiera_tiny", checkpoint=path)
    assert "this must never run" not in capsys.readouterr().out


def test_checkpoint_without_weights(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": {"epoch": 3}}, path)
    with pytest.raises(SAM2Error, match="holds no model weights"):
        build_model("sam2.1_hiera_tiny", checkpoint=path)


def test_weights_do_not_depend_on_image_size(good_checkpoint):
    small = build_model("sam2.1_hiera_tiny", checkpoint=good_checkpoint, image_size=256)
    large = build_model("sam2.1_hiera_tiny", checkpoint=good_checkpoint, image_size=512)
    assert large.image_size == 512
    for key, value in small.state_dict().items():
        assert torch.equal(large.state_dict()[key], value)


def test_image_size_must_be_a_multiple_of_32():
    for size in (300, 0, -32, 10**6):
        with pytest.raises(SAM2Error, match="multiple of 32"):
            build_model("sam2.1_hiera_tiny", image_size=size)


def test_checkpoint_file_brings_its_model(tmp_path, good_checkpoint):
    """build_model_from_checkpoint: a stored configuration wins (at its own size unless asked),
    then a given name, the official file name, and the shapes."""
    from napari_sam2.model import build_model_from_checkpoint
    from napari_sam2.model.demo import DEMO_CONFIG
    from napari_sam2.training import save_model

    trained = save_model(build_model("demo"), tmp_path / "finetuned.pt")
    model = build_model_from_checkpoint(trained)
    assert model.config == DEMO_CONFIG and not model.training
    reference = build_model("demo")
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert build_model_from_checkpoint(trained, image_size=128).image_size == 128
    kept = build_model_from_checkpoint(trained, image_size=1024, keep_trained_size=True)
    assert kept.image_size == DEMO_CONFIG.image_size
    with pytest.raises(SAM2Error, match="holds a demo model, not sam2.1_hiera_small"):
        build_model_from_checkpoint(trained, name="sam2.1_hiera_small")

    # no stored configuration: the shapes of good_checkpoint ("tiny.pt") fit sam2.1 tiny
    assert build_model_from_checkpoint(good_checkpoint).config.name == "sam2.1_hiera_tiny"
    named = tmp_path / "sam2_hiera_tiny.pt"
    torch.save({"model": build_model("sam2_hiera_tiny", image_size=256).state_dict()}, named)
    assert build_model_from_checkpoint(named, image_size=256).config.name == "sam2_hiera_tiny"
    with pytest.raises(SAM2Error, match="looks like a sam2_hiera_tiny checkpoint"):
        build_model_from_checkpoint(named, name="sam2.1_hiera_tiny")
    stranger = tmp_path / "stranger.pt"
    torch.save({"model": {"weight": torch.zeros(3)}}, stranger)
    with pytest.raises(SAM2Error, match="fits no official SAM 2 model; name its model"):
        build_model_from_checkpoint(stranger)


def test_malformed_stored_configuration(tmp_path):
    from napari_sam2.model import build_model_from_checkpoint

    path = tmp_path / "odd.pt"
    torch.save({"model": build_model("demo").state_dict(), "config": {"name": "x"}}, path)
    with pytest.raises(SAM2Error, match="malformed model configuration"):
        build_model_from_checkpoint(path)
