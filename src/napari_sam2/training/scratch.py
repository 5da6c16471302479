"""A starting point for training a SAM 2 model from random weights.

Two changes to the random initialization, measured on the demo model: without them a random
model learns to ignore its prompts and predicts the same blob for every click.
"""

import torch

from ..model import SAM2


@torch.no_grad()
def init_from_scratch(model: SAM2, attention_scale: float = 3.0, present_logit: float = 2.0):
    """Prepare a randomly initialized model for training (in place).

    In the mask decoder's attentions each key projection starts equal to its query
    projection, scaled by `attention_scale`: queries and keys then compare position
    encodings from the first step, so a click's token attends to the image where it was
    clicked. The object-score head starts by saying "present" (`present_logit`), since
    masks of objects judged absent get no gradient.
    """
    for module in model.sam_mask_decoder.transformer.modules():
        q_proj, k_proj = getattr(module, "q_proj", None), getattr(module, "k_proj", None)
        if q_proj is not None and k_proj is not None and q_proj.weight.shape == k_proj.weight.shape:
            q_proj.weight.mul_(attention_scale)
            k_proj.weight.copy_(q_proj.weight)
    model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(present_logit)
    return model
