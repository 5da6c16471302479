"""The SAM 2 network and its per-frame step: image features, memory conditioning, the SAM
heads (`sam_heads`), and encoding the prediction into a new memory.

`SAM2` owns the parts under the official checkpoint's names (`image_encoder`,
`sam_prompt_encoder`, `sam_mask_decoder`, `memory_attention`, `memory_encoder`, ...) and
exposes the steps the tracker composes. It holds no video state: which memories a frame sees
is decided by `memory_bank.select_memories` and passed in.
"""

from dataclasses import dataclass

import torch
from torch import nn

from .config import SAM2Config
from .image_encoder import ImageEncoder
from .kept_result import KeptResult
from .layers import MLP
from .mask_decoder import MaskDecoder
from .memory_attention import MemoryAttention
from .memory_bank import FrameMemory, MemoryInputs
from .memory_encoder import MemoryEncoder
from .prompt_encoder import PromptEncoder
from .sam_heads import MaskPrediction, SAMHeads
from .two_way_transformer import TwoWayTransformer


@dataclass
class FrameFeatures:
    """Image features of one frame, shared by every object tracked on it (batch 1).

    image_embed, image_pos: (1, C, S/16, S/16); high_res: the stride-4 and stride-8 maps
    already projected for the mask decoder, (1, C/8, S/4, S/4) and (1, C/4, S/8, S/8).
    """

    image_embed: torch.Tensor
    image_pos: torch.Tensor
    high_res: list[torch.Tensor]


def sine_encoding_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0):
    """Transformer sine/cosine encoding of scalar positions, (N,) -> (N, dim)."""
    half = dim // 2
    index = torch.arange(half, dtype=torch.float32, device=positions.device)
    freqs = temperature ** (2 * (index // 2) / half)
    angles = positions[:, None] / freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class SAM2(SAMHeads, nn.Module):
    """SAM 2: a promptable image segmenter with a streaming memory for video."""

    def __init__(
        self,
        config: SAM2Config,
        image_encoder: ImageEncoder,
        memory_attention: MemoryAttention,
        memory_encoder: MemoryEncoder,
    ) -> None:
        super().__init__()
        self.config = config
        c, mem_dim = config.d_model, config.mem_dim
        self.image_size = config.image_size
        self.hidden_dim = c
        self.mem_dim = mem_dim
        self.num_maskmem = config.num_maskmem

        # registration order follows the official checkpoints' key order
        self.image_encoder = image_encoder
        # scales a binary mask prompt to logits at the low-res mask size (for object pointers)
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.memory_attention = memory_attention
        self._frame_tokens = KeptResult()  # see _kept_frame_tokens
        self.memory_encoder = memory_encoder
        # learned embeddings: temporal position of each memory slot, "no memory yet",
        # "object absent" pointer and, in 2.1, its spatial counterpart
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(config.num_maskmem, 1, 1, mem_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, c))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, c))
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, c))
        self.no_obj_embed_spatial = (
            nn.Parameter(torch.zeros(1, mem_dim)) if config.no_obj_embed_spatial else None
        )
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr):
            nn.init.trunc_normal_(p, std=0.02)
        if self.no_obj_embed_spatial is not None:
            nn.init.trunc_normal_(self.no_obj_embed_spatial, std=0.02)

        embed_size = config.image_embedding_size
        self.sam_prompt_encoder = PromptEncoder(
            embed_dim=c,
            image_embedding_size=(embed_size, embed_size),
            input_image_size=(config.image_size, config.image_size),
            mask_in_chans=16,
        )
        self.sam_mask_decoder = MaskDecoder(
            transformer_dim=c,
            transformer=TwoWayTransformer(
                depth=2,
                embedding_dim=c,
                mlp_dim=config.decoder_mlp_dim,
                num_heads=config.decoder_heads,
            ),
            num_multimask_outputs=3,
            iou_head_depth=3,
            iou_head_hidden_dim=config.iou_head_hidden_dim,
            use_high_res_features=True,
            iou_prediction_use_sigmoid=True,
            pred_obj_scores=True,
            pred_obj_scores_mlp=True,
            use_multimask_token_for_obj_ptr=True,
            dynamic_multimask_via_stability=config.dynamic_multimask_via_stability,
            dynamic_multimask_stability_delta=config.dynamic_multimask_stability_delta,
            dynamic_multimask_stability_thresh=config.dynamic_multimask_stability_thresh,
        )
        self.obj_ptr_proj = MLP(c, c, c, 3)
        self.obj_ptr_tpos_proj = (
            nn.Linear(c, mem_dim) if config.proj_tpos_enc_in_obj_ptrs else nn.Identity()
        )
        self._constants: dict[tuple, torch.Tensor] = {}
        self.compiled = False

    @property
    def device(self) -> torch.device:
        return self.no_mem_embed.device

    def compile_heavy_parts(self) -> "SAM2":
        """torch.compile, in place, the two parts that take most of a frame's time: the image
        encoder (one input size, static shapes) and the memory attention (dynamic shapes: the
        number of memories grows over the first frames). Parameters and state_dict keys stay
        as they are. The first calls pay for compiling (a minute or more)."""
        if not self.compiled:
            self.image_encoder.compile()
            self.memory_attention.compile(dynamic=True)
            self.compiled = True
        return self

    # -- image --------------------------------------------------------------------------

    def encode_image(self, images: torch.Tensor) -> FrameFeatures:
        """Features of (B, 3, S, S) normalized images."""
        levels, positions = self.image_encoder(images)
        high_res = [
            self.sam_mask_decoder.conv_s0(levels[0]),
            self.sam_mask_decoder.conv_s1(levels[1]),
        ]
        return FrameFeatures(levels[-1], self.shared_tensor(positions[-1]), high_res)

    # -- memory -------------------------------------------------------------------------

    def condition_on_memory(
        self,
        features: FrameFeatures,
        memory: MemoryInputs | list[MemoryInputs] | None,
        batch: int = 1,
    ) -> torch.Tensor:
        """Image features fused with the memory bank, (B, C, h, w).

        `memory` None marks a frame prompted before anything was tracked: the learned
        "no memory" embedding is added instead of attending. A list holds the memories of B
        objects, one batch: each must have as many memory frames and pointers as the others.
        """
        if memory is None:
            embed = features.image_embed.expand(batch, -1, -1, -1)
            return embed + self.no_mem_embed.view(1, -1, 1, 1)
        memories = memory if isinstance(memory, list) else [memory]
        parts = [self._memory_tokens(m) for m in memories]
        num_ptr_tokens = parts[0][2]
        if any(p[0].shape != parts[0][0].shape or p[2] != num_ptr_tokens for p in parts):
            raise ValueError("objects batched together need memories of the same layout")
        tokens = torch.cat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        token_pos = torch.cat([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        b = tokens.shape[0]
        embed = features.image_embed
        _, c, h, w = embed.shape
        # one frame's tokens for all B objects: memory attention shares what only they decide
        curr = embed.flatten(2).transpose(1, 2)
        curr_pos = features.image_pos.flatten(2).transpose(1, 2)
        fused = self.memory_attention(
            curr=curr,
            curr_pos=curr_pos,
            memory=tokens,
            memory_pos=token_pos,
            num_obj_ptr_tokens=num_ptr_tokens,
            frame_tokens=self._kept_frame_tokens(features, curr, curr_pos),
        )
        return fused.transpose(1, 2).reshape(b, c, h, w)

    def _kept_frame_tokens(
        self, features: FrameFeatures, curr: torch.Tensor, curr_pos: torch.Tensor
    ) -> torch.Tensor | None:
        """Memory attention's first self-attention of this frame, kept for the frame's next
        batch of objects (on a CPU each object is its own batch); None in training."""
        if self.training or torch.is_grad_enabled():
            return None
        device = curr.device.type
        autocast = torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device)
        return self._frame_tokens.get(
            (features.image_embed, features.image_pos),
            lambda: self.memory_attention.frame_tokens(curr, curr_pos),
            tag=autocast,
        )

    def _memory_tokens(self, memory: MemoryInputs) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The memory tokens one object attends to and their positions, each
        (B, M, mem_dim) with the B of its memories, and how many of them (at the end) are
        object-pointer tokens."""
        c = self.hidden_dim
        tokens, token_pos = [], []
        for slot, frame in memory.spatial:
            tokens.append(frame.features.float().flatten(2).transpose(1, 2))
            # a stored position encoding is one shared (1, ...) tensor for any batch
            pos = frame.pos_enc.flatten(2).transpose(1, 2).expand(tokens[-1].shape[0], -1, -1)
            token_pos.append(
                pos + self.maskmem_tpos_enc[self.num_maskmem - slot - 1].view(1, 1, -1)
            )
        num_ptr_tokens = 0
        if memory.pointers:
            distances, pointers = zip(*memory.pointers, strict=True)
            ptrs = torch.stack(pointers, dim=0)  # (P, B, C)
            num_ptrs, b = ptrs.shape[:2]
            if self.config.add_tpos_enc_to_obj_ptrs:
                dim = c if self.config.proj_tpos_enc_in_obj_ptrs else self.mem_dim
                rel = torch.tensor(distances, device=ptrs.device) / memory.max_pointer_distance
                ptr_pos = self.obj_ptr_tpos_proj(sine_encoding_1d(rel, dim))
                ptr_pos = ptr_pos[:, None].expand(num_ptrs, b, self.mem_dim)
            else:
                ptr_pos = ptrs.new_zeros(num_ptrs, b, self.mem_dim)
            split = c // self.mem_dim
            # each C-wide pointer becomes `split` memory tokens of width mem_dim
            ptr_tokens = ptrs.reshape(num_ptrs, b, split, self.mem_dim).permute(1, 0, 2, 3)
            tokens.append(ptr_tokens.reshape(b, num_ptrs * split, self.mem_dim))
            ptr_pos = ptr_pos.repeat_interleave(split, dim=0).transpose(0, 1)
            token_pos.append(ptr_pos)
            num_ptr_tokens = num_ptrs * split
        return torch.cat(tokens, dim=1), torch.cat(token_pos, dim=1), num_ptr_tokens

    def encode_memory(
        self,
        features: FrameFeatures,
        high_res_masks: torch.Tensor,
        object_score_logits: torch.Tensor,
        from_clicks: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory of a frame and its (B, 1, S, S) mask logits: features and position
        encoding, each (B, mem_dim, h, w). Masks from clicks are binarized first."""
        b = high_res_masks.shape[0]
        if from_clicks and self.config.binarize_mask_from_pts_for_mem_enc:
            mask = (high_res_masks > 0).float()
        else:
            mask = torch.sigmoid(high_res_masks)
        mask = mask * self.config.sigmoid_scale_for_mem_enc + self.config.sigmoid_bias_for_mem_enc
        pix_feat = features.image_embed.expand(b, -1, -1, -1)
        mem, mem_pos = self.memory_encoder(pix_feat, mask, skip_mask_sigmoid=True)
        if self.no_obj_embed_spatial is not None:
            absent = (object_score_logits <= 0).float()[..., None, None]
            mem = mem + absent * self.no_obj_embed_spatial[..., None, None]
        return mem, mem_pos

    def track_frame(
        self,
        features: FrameFeatures,
        memory: MemoryInputs | None,
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        prev_mask_logits: torch.Tensor | None = None,
        high_res_masks: bool = True,
        float32_heads: bool = False,
    ) -> MaskPrediction:
        """Segment one object on one frame from its prompts (if any) and its memory.

        A `mask` prompt (1, 1, S, S) is taken as the output directly. `prev_mask_logits`
        (1, 1, S/4, S/4), the object's earlier prediction on this frame, guides new clicks.
        float32_heads: the prompt encoder and mask decoder leave an enclosing autocast.
        """
        if mask is not None:
            head = self.mask_as_output
            return self._heads(float32_heads, head, features.image_embed, features.high_res, mask)
        pix_feat = self.condition_on_memory(features, memory)
        num_points = 0 if point_labels is None else point_labels.shape[1]
        return self._heads(
            float32_heads,
            self.predict_masks,
            pix_feat,
            features.high_res,
            point_coords,
            point_labels,
            mask_input=prev_mask_logits,
            multimask=self.use_multimask(num_points),
            high_res_masks=high_res_masks,
        )

    def track_frames(
        self, features: FrameFeatures, memories: list[MemoryInputs], float32_heads: bool = False
    ) -> MaskPrediction:
        """Track B objects without prompts on one frame, one batch through memory attention
        and the SAM heads; their memories must share a layout (`memory_layout`)."""
        pix_feat = self.condition_on_memory(features, memories)
        return self._heads(
            float32_heads,
            self.predict_masks,
            pix_feat,
            features.high_res,
            multimask=self.use_multimask(0),
        )

    def frame_memory(
        self,
        features: FrameFeatures,
        high_res_masks: torch.Tensor,
        object_score_logits: torch.Tensor,
        obj_ptr: torch.Tensor,
        from_clicks: bool = False,
    ) -> FrameMemory:
        """What the memory bank stores for a frame: features rounded to bfloat16 (as the
        reference stores them) and the position encoding, one tensor shared by all frames."""
        mem, mem_pos = self.encode_memory(
            features, high_res_masks, object_score_logits, from_clicks
        )
        return FrameMemory(mem.to(torch.bfloat16), self.shared_tensor(mem_pos[:1]), obj_ptr)

    def shared_tensor(self, value: torch.Tensor) -> torch.Tensor:
        """One stored copy of a constant tensor (position encodings depend only on their
        size), so that per-frame results do not each hold their own."""
        key = (tuple(value.shape), value.device, value.dtype)
        stored = self._constants.get(key)
        if stored is None:
            # a copy: a view would keep the whole batch it was cut from alive
            stored = self._constants.setdefault(key, value.clone())
        return stored
