"""Parity of our prompt encoder, two-way transformer and mask decoder with the reference SAM 2."""

import pytest
import torch

from napari_sam2.model.mask_decoder import MaskDecoder, stability_score
from napari_sam2.model.prompt_encoder import PromptEncoder
from napari_sam2.model.two_way_transformer import TwoWayTransformer

from reference import build_reference

TOLERANCE = 1e-4
NAMES = ["sam2.1_hiera_tiny", "sam2_hiera_tiny"]


def build_ours(reference) -> tuple[PromptEncoder, MaskDecoder]:
    """Our SAM heads with the official configs' settings, holding the reference's weights."""
    size = reference.image_size
    prompt_encoder = PromptEncoder(
        embed_dim=256,
        image_embedding_size=(size // 16, size // 16),
        input_image_size=(size, size),
        mask_in_chans=16,
    )
    mask_decoder = MaskDecoder(
        transformer_dim=256,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        num_multimask_outputs=3,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
        use_high_res_features=True,
        iou_prediction_use_sigmoid=True,
        pred_obj_scores=True,
        pred_obj_scores_mlp=True,
        use_multimask_token_for_obj_ptr=True,
        dynamic_multimask_via_stability=True,
        dynamic_multimask_stability_delta=0.05,
        dynamic_multimask_stability_thresh=0.98,
    )
    prompt_encoder.load_state_dict(reference.sam_prompt_encoder.state_dict(), strict=True)
    mask_decoder.load_state_dict(reference.sam_mask_decoder.state_dict(), strict=True)
    return prompt_encoder.eval(), mask_decoder.eval()


@pytest.fixture(scope="module", params=NAMES)
def models(request):
    reference = build_reference(request.param, image_size=256)
    return reference, *build_ours(reference)


def image_features(batch: int, size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random image embeddings (B, 256, s/16, s/16) and high-res features after conv_s0/s1."""
    g = torch.Generator().manual_seed(seed)
    h = size // 16
    return {
        "image_embeddings": torch.randn(batch, 256, h, h, generator=g),
        "high_res_features": [
            torch.randn(batch, 32, 4 * h, 4 * h, generator=g),
            torch.randn(batch, 64, 2 * h, 2 * h, generator=g),
        ],
    }


def random_prompts(
    batch: int, size: int, num_points: int, box: bool, mask: bool, seed: int = 1
) -> dict:
    g = torch.Generator().manual_seed(seed)
    points = None
    if num_points:
        coords = torch.rand(batch, num_points, 2, generator=g) * size
        labels = torch.randint(0, 2, (batch, num_points), generator=g, dtype=torch.int32)
        points = (coords, labels)
    boxes = None
    if box:
        corner = torch.rand(batch, 2, generator=g) * size / 2
        boxes = torch.cat([corner, corner + torch.rand(batch, 2, generator=g) * size / 2], dim=1)
    masks = torch.randn(batch, 1, size // 4, size // 4, generator=g) * 5 if mask else None
    return {"points": points, "boxes": boxes, "masks": masks}


def assert_close(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> float:
    assert ours.shape == theirs.shape, f"{what}: {tuple(ours.shape)} != {tuple(theirs.shape)}"
    diff = (ours - theirs).abs().max().item() if ours.numel() else 0.0
    assert diff < TOLERANCE, f"{what}: max abs difference {diff:.2e}"
    return diff


def decode(prompt_encoder, mask_decoder, prompts, features, multimask, repeat_image):
    sparse, dense = prompt_encoder(**prompts)
    return mask_decoder(
        image_embeddings=features["image_embeddings"],
        image_pe=prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask,
        repeat_image=repeat_image,
        high_res_features=features["high_res_features"],
    )


def compare_decoders(reference_heads, our_heads, prompts, features, multimask, repeat_image):
    with torch.no_grad():
        theirs = decode(*reference_heads, prompts, features, multimask, repeat_image)
        ours = decode(*our_heads, prompts, features, multimask, repeat_image)
    names = ("masks", "iou_pred", "sam_tokens_out", "object_score_logits")
    for name, a, b in zip(names, ours, theirs, strict=True):
        assert_close(a, b, name)
    return ours, theirs


def test_state_dict_keys_match(models):
    reference, prompt_encoder, mask_decoder = models
    assert list(prompt_encoder.state_dict()) == list(reference.sam_prompt_encoder.state_dict())
    assert list(mask_decoder.state_dict()) == list(reference.sam_mask_decoder.state_dict())


PROMPT_CASES = {
    "points": dict(num_points=3, box=False, mask=False),
    "box": dict(num_points=0, box=True, mask=False),
    "box_and_points": dict(num_points=2, box=True, mask=False),
    "points_and_mask": dict(num_points=1, box=False, mask=True),
    "mask_only": dict(num_points=0, box=False, mask=True),
    "nothing": dict(num_points=0, box=False, mask=False),
}


@pytest.mark.parametrize("case", PROMPT_CASES)
def test_prompt_encoder_matches_reference(models, case):
    reference, prompt_encoder, _ = models
    prompts = random_prompts(batch=2, size=256, **PROMPT_CASES[case])
    with torch.no_grad():
        sparse, dense = prompt_encoder(**prompts)
        ref_sparse, ref_dense = reference.sam_prompt_encoder(**prompts)
    assert_close(sparse, ref_sparse, "sparse")
    assert_close(dense, ref_dense, "dense")
    assert_close(prompt_encoder.get_dense_pe(), reference.sam_prompt_encoder.get_dense_pe(), "pe")


def test_padding_and_negative_points_are_distinguished(models):
    _, prompt_encoder, _ = models
    coords = torch.tensor([[[10.0, 20.0], [30.0, 40.0]]])
    with torch.no_grad():
        sparse, _ = prompt_encoder((coords, torch.tensor([[1, 0]])), None, None)
        padded, _ = prompt_encoder((coords, torch.tensor([[1, -1]])), None, None)
    assert sparse.shape == (1, 3, 256)
    padding = prompt_encoder.not_a_point_embed.weight[0]
    assert torch.equal(padded[0, 1], padding) and torch.equal(padded[0, 2], padding)
    assert not torch.allclose(sparse[0, 1], padding)


DECODER_CASES = {
    # (batch, prompts, multimask_output, repeat_image)
    "one_click_multimask": (1, dict(num_points=1, box=False, mask=False), True, False),
    "clicks_single_mask": (2, dict(num_points=3, box=False, mask=False), False, False),
    "box": (2, dict(num_points=0, box=True, mask=False), False, False),
    "box_and_points": (2, dict(num_points=2, box=True, mask=False), True, False),
    "mask_prompt": (2, dict(num_points=1, box=False, mask=True), False, False),
    "repeat_image": (3, dict(num_points=2, box=False, mask=False), True, True),
}


@pytest.mark.parametrize("case", DECODER_CASES)
def test_mask_decoder_matches_reference(models, case):
    reference, prompt_encoder, mask_decoder = models
    batch, prompt_kind, multimask, repeat_image = DECODER_CASES[case]
    prompts = random_prompts(batch=batch, size=256, **prompt_kind)
    features = image_features(1 if repeat_image else batch, 256)
    reference_heads = (reference.sam_prompt_encoder, reference.sam_mask_decoder)
    ours, _ = compare_decoders(
        reference_heads, (prompt_encoder, mask_decoder), prompts, features, multimask, repeat_image
    )
    masks, iou_pred, tokens, object_score_logits = ours
    outputs = 3 if multimask else 1
    assert masks.shape == (batch, outputs, 64, 64)
    assert iou_pred.shape == (batch, outputs)
    assert tokens.shape == (batch, outputs, 256)
    assert object_score_logits.shape == (batch, 1)


def test_dynamic_multimask_takes_both_branches(models):
    """With the official threshold, rows whose single mask is stable keep it; the others fall
    back to the candidate with the best predicted IoU."""
    reference, prompt_encoder, mask_decoder = models
    batch = 4
    prompts = random_prompts(batch=batch, size=256, num_points=3, box=False, mask=False)
    features = image_features(batch, 256)
    # large stride-4 features sharpen the logits, so few pixels sit near the threshold
    features["high_res_features"][0][::2] *= 10
    reference_heads = (reference.sam_prompt_encoder, reference.sam_mask_decoder)
    our_heads = (prompt_encoder, mask_decoder)
    (masks, iou_pred, _, _), _ = compare_decoders(
        reference_heads, our_heads, prompts, features, multimask=False, repeat_image=False
    )

    with torch.no_grad():
        sparse, dense = prompt_encoder(**prompts)
        all_masks, all_ious, _, _ = mask_decoder.predict_masks(
            features["image_embeddings"],
            prompt_encoder.get_dense_pe(),
            sparse,
            dense,
            repeat_image=False,
            high_res_features=features["high_res_features"],
        )
    stable = stability_score(all_masks[:, 0], 0.05) >= 0.98
    assert stable.tolist() == [True, False, True, False]
    best = all_ious[:, 1:].argmax(-1) + 1
    for row in range(batch):
        token = 0 if stable[row] else best[row].item()
        assert torch.equal(masks[row, 0], all_masks[row, token])
        assert iou_pred[row, 0] == all_ious[row, token]
        assert not torch.equal(all_masks[row, 0], all_masks[row, best[row]])


def test_training_mode_skips_dynamic_multimask(models):
    reference, prompt_encoder, mask_decoder = models
    prompts = random_prompts(batch=2, size=256, num_points=3, box=False, mask=False)
    features = image_features(2, 256)
    reference_heads = (reference.sam_prompt_encoder, reference.sam_mask_decoder)
    reference.sam_mask_decoder.train()
    mask_decoder.train()
    try:
        ours, _ = compare_decoders(
            reference_heads, (prompt_encoder, mask_decoder), prompts, features, False, False
        )
        with torch.no_grad():
            sparse, dense = prompt_encoder(**prompts)
            all_masks = mask_decoder.predict_masks(
                features["image_embeddings"],
                prompt_encoder.get_dense_pe(),
                sparse,
                dense,
                repeat_image=False,
                high_res_features=features["high_res_features"],
            )[0]
    finally:
        reference.sam_mask_decoder.eval()
        mask_decoder.eval()
    assert torch.equal(ours[0], all_masks[:, :1])


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(pred_obj_scores=True, iou_prediction_use_sigmoid=True),
        dict(pred_obj_scores=True, pred_obj_scores_mlp=True, use_multimask_token_for_obj_ptr=True),
    ],
    ids=["sam1_style", "linear_object_score", "mlp_object_score"],
)
@pytest.mark.parametrize("multimask", [True, False])
def test_decoder_options_match_reference(options, multimask):
    """Decoders without high-res features or with a linear object-score head (not in the
    official configs), at a small width."""
    reference_modules = pytest.importorskip("sam2.modeling.sam.mask_decoder")
    reference_transformer = pytest.importorskip("sam2.modeling.sam.transformer")
    dim = 64
    torch.manual_seed(0)
    theirs = reference_modules.MaskDecoder(
        transformer_dim=dim,
        transformer=reference_transformer.TwoWayTransformer(
            depth=2, embedding_dim=dim, num_heads=4, mlp_dim=128
        ),
        **options,
    ).eval()
    ours = MaskDecoder(
        transformer_dim=dim,
        transformer=TwoWayTransformer(depth=2, embedding_dim=dim, num_heads=4, mlp_dim=128),
        **options,
    ).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)

    g = torch.Generator().manual_seed(2)
    inputs = dict(
        image_embeddings=torch.randn(2, dim, 8, 8, generator=g),
        image_pe=torch.randn(1, dim, 8, 8, generator=g),
        sparse_prompt_embeddings=torch.randn(2, 3, dim, generator=g),
        dense_prompt_embeddings=torch.randn(2, dim, 8, 8, generator=g),
        multimask_output=multimask,
        repeat_image=False,
    )
    with torch.no_grad():
        expected = theirs(**inputs)
        actual = ours(**inputs)
    for name, a, b in zip(("masks", "iou", "tokens", "object"), actual, expected, strict=True):
        assert_close(a, b, name)


def test_full_size_tiny_matches_reference():
    reference = build_reference("sam2.1_hiera_tiny")
    assert reference.image_size == 1024
    prompt_encoder, mask_decoder = build_ours(reference)
    prompts = random_prompts(batch=2, size=1024, num_points=2, box=True, mask=False)
    features = image_features(2, 1024)
    reference_heads = (reference.sam_prompt_encoder, reference.sam_mask_decoder)
    ours, _ = compare_decoders(
        reference_heads, (prompt_encoder, mask_decoder), prompts, features, False, False
    )
    assert ours[0].shape == (2, 1, 256, 256)


def test_the_upscaling_activation_reuses_its_input_out_of_autograd_only():
    from napari_sam2.model.mask_decoder import activate_

    x = torch.randn(4, 64) * 4
    expected = torch.nn.functional.gelu(x)
    with torch.inference_mode():
        owned = x.clone()
        out = activate_(torch.nn.GELU(), owned)
    assert out.data_ptr() == owned.data_ptr()  # no new (page-faulting) buffer
    assert torch.equal(out, expected)
    tracked = x.clone().requires_grad_()
    out = activate_(torch.nn.GELU(), tracked)
    assert out.data_ptr() != tracked.data_ptr() and out.requires_grad
    assert torch.equal(out.detach(), expected)
    relu = activate_(torch.nn.ReLU(), x.clone())  # other activations as they are
    assert torch.equal(relu, torch.relu(x))
