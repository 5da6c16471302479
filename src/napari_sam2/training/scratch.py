"""A starting point for training a SAM 2 model from random weights.

Changes to the random initialization, measured on the demo model: without them a random model
learns to ignore its prompts (it predicts the same blob for every click) and its memory.
"""

import torch

from ..model import SAM2


@torch.no_grad()
def init_prompt_attention(
    model: SAM2, attention_scale: float = 3.0, present_logit: float = 2.0
) -> SAM2:
    """In the mask decoder's attentions each key projection starts equal to its query
    projection, scaled by `attention_scale`: queries and keys then compare position
    encodings from the first step, so a click's token attends to the image where it was
    clicked. The object-score head starts at "present" (`present_logit`), since masks of
    objects judged absent get no gradient."""
    for module in model.sam_mask_decoder.transformer.modules():
        q_proj, k_proj = getattr(module, "q_proj", None), getattr(module, "k_proj", None)
        if q_proj is not None and k_proj is not None and q_proj.weight.shape == k_proj.weight.shape:
            q_proj.weight.mul_(attention_scale)
            k_proj.weight.copy_(q_proj.weight)
    model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(present_logit)
    return model


@torch.no_grad()
def init_memory_attention(model: SAM2, locality: float = 3.0) -> SAM2:
    """Queries and keys of the memory cross-attention start with a shared constant part:
    under the rotary position encoding it makes a frame attend first to the memories at the
    same place, where a slowly moving object was."""
    for layer in model.memory_attention.layers:
        attention = layer.cross_attn_image
        attention.q_proj.bias.fill_(locality)
        attention.k_proj.bias.fill_(locality)
    return model


def init_from_scratch(model: SAM2) -> SAM2:
    """Prepare a randomly initialized model for training (in place): both of the above."""
    return init_memory_attention(init_prompt_attention(model))
