"""The PyTorch reference of the training benchmark: a minimal nanoGPT-style decoder and its step.

What a researcher would otherwise write: pre-LN blocks with biases, learned positions, tied
embeddings, tanh-GELU MLP, `F.scaled_dot_product_attention(is_causal=True)` (flash attention
where the device has it), AdamW with weight decay on matrices, global-norm clipping, bfloat16
through `torch.autocast` over float32 parameters (the mixed precision of arithlab's
`model.dtype="bfloat16"`). Imported only when torch is installed (a benchmark-only dependency).
"""

from typing import Callable

import ml_collections
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):

  def __init__(self, d_model: int, heads: int, dropout: float, bias: bool):
    super().__init__()
    self.heads, self.dropout = heads, dropout
    self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
    self.out = nn.Linear(d_model, d_model, bias=bias)
    self.out_dropout = nn.Dropout(dropout)

  def forward(self, x_BxTxD: torch.Tensor) -> torch.Tensor:
    b, t, d = x_BxTxD.shape
    q, k, v = (y.view(b, t, self.heads, d // self.heads).transpose(1, 2)
               for y in self.qkv(x_BxTxD).split(d, dim=2))
    y_BxHxTxK = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                               is_causal=True)
    return self.out_dropout(self.out(y_BxHxTxK.transpose(1, 2).reshape(b, t, d)))


class Block(nn.Module):

  def __init__(self, cfg: ml_collections.ConfigDict):
    super().__init__()
    self.attn_norm = nn.LayerNorm(cfg.d_model, bias=cfg.use_bias)
    self.attn = SelfAttention(cfg.d_model, cfg.heads, cfg.dropout, cfg.use_bias)
    self.mlp_norm = nn.LayerNorm(cfg.d_model, bias=cfg.use_bias)
    self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.use_bias), nn.GELU(approximate="tanh"),
                             nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.use_bias), nn.Dropout(cfg.dropout))

  def forward(self, x_BxTxD: torch.Tensor) -> torch.Tensor:
    x_BxTxD = x_BxTxD + self.attn(self.attn_norm(x_BxTxD))
    return x_BxTxD + self.mlp(self.mlp_norm(x_BxTxD))


class GPT(nn.Module):
  """The decoder of an arithlab model config (layers, d_model, heads, d_ff, vocab_size, max_len,
  dropout, use_bias); learned positions and tied embeddings, as in nanoGPT."""

  def __init__(self, cfg: ml_collections.ConfigDict):
    super().__init__()
    self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
    self.positions = nn.Embedding(cfg.max_len, cfg.d_model)
    self.dropout = nn.Dropout(cfg.dropout)
    self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
    self.final_norm = nn.LayerNorm(cfg.d_model, bias=cfg.use_bias)
    self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
    self.unembed.weight = self.embed.weight
    for p in self.parameters():
      if p.dim() >= 2:
        nn.init.normal_(p, std=0.02)

  def forward(self, tokens_BxT: torch.Tensor) -> torch.Tensor:
    """int64 tokens [B, T] -> logits [B, T, V] (bfloat16 under autocast)."""
    positions_T = torch.arange(tokens_BxT.shape[1], device=tokens_BxT.device)
    x_BxTxD = self.dropout(self.embed(tokens_BxT) + self.positions(positions_T))
    for block in self.blocks:
      x_BxTxD = block(x_BxTxD)
    return self.unembed(self.final_norm(x_BxTxD))


def make_parts(cfg: ml_collections.ConfigDict, tokens_BxT: np.ndarray, *, device: str, compile_model: bool,
               lr: float = 1e-3, weight_decay: float = 0.1) -> tuple[dict[str, Callable[[], None]], int]:
  """Blocking closures on a fixed batch, and the model's parameter count. The closures: "step"
  (one AdamW update), and for profiling "forward" (the loss, no gradient) and "forward +
  backward" (the gradients, then dropped).

  cfg: an arithlab model config (cfg.dtype "bfloat16" -> autocast). tokens_BxT: int32 [B, T + 1];
  the model reads [:, :-1] and predicts [:, 1:]. device: "cuda" or "cpu" (the device JAX
  runs on). compile_model: wrap the model in torch.compile (compiled at the first call).
  """
  torch.manual_seed(0)
  torch.set_float32_matmul_precision("high")
  dev = torch.device(device)
  model = GPT(cfg).to(dev).train()
  n_params = sum(p.numel() for p in model.parameters())
  forward = torch.compile(model) if compile_model else model
  groups = [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
  optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99), fused=dev.type == "cuda")
  tokens = torch.as_tensor(tokens_BxT, dtype=torch.long, device=dev)
  inputs_BxT, labels_BxT = tokens[:, :-1], tokens[:, 1:]
  bf16 = cfg.dtype == "bfloat16"

  def loss() -> torch.Tensor:
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
      logits_BxTxV = forward(inputs_BxT)
    return F.cross_entropy(logits_BxTxV.float().flatten(0, 1), labels_BxT.flatten())

  def blocking(fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
      fn()
      if dev.type == "cuda":
        torch.cuda.synchronize()
    return run

  def no_grad_loss() -> None:
    with torch.no_grad():
      loss()

  def gradients() -> None:
    loss().backward()
    optimizer.zero_grad(set_to_none=True)

  def step() -> None:
    loss().backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)

  parts = {"step": step, "forward": no_grad_loss, "forward + backward": gradients}
  return {name: blocking(fn) for name, fn in parts.items()}, n_params
