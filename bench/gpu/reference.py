#!/usr/bin/env python3
"""The same recognizer in PyTorch eager mode: the baseline asr_ddp's GPU speed
is compared against (bench/gpu/check.sh).

Architecture of configs/base.toml (waveform frontend: pooling, residual
strided conv blocks with group norm; pre-LN Transformer encoder; 4x1024
residual VQ with codebook and commitment losses; CTC head), bf16 autocast,
AdamW, trained on the very batches asr_ddp trained on: asr_ddp writes each
step's utterance indices when ASR_DUMP_BATCHES is set, and this script reads
the same HDF5 shards (manifest.json order) with h5py. Written the way a
PyTorch user would: padded batches, nn modules, F.scaled_dot_product_attention
with a key mask, F.ctc_loss.

  python3 bench/gpu/reference.py --data DIR --batches FILE --steps 100
prints one line: "reference: N audio-s/s over S steps (bf16, device)".
"""
import argparse
import json
import math
import os
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_split(data_dir, split="train"):
    """Every utterance of a split as (int16 audio, tokens), in manifest order."""
    manifest = json.load(open(os.path.join(data_dir, "manifest.json")))
    utterances = []
    for shard in manifest["splits"][split]["shards"]:
        with h5py.File(os.path.join(data_dir, shard["file"]), "r") as f:
            audio, offsets = f["audio"][:], f["offsets"][:]
            tokens, token_offsets = f["tokens"][:], f["token_offsets"][:]
            for i in range(len(offsets) - 1):
                utterances.append((audio[offsets[i]:offsets[i + 1]],
                                   tokens[token_offsets[i]:token_offsets[i + 1]]))
    return utterances, manifest["tokenizer"]["vocab_size"], manifest["sample_rate"]


class Block(nn.Module):
    def __init__(self, cin, hidden, kernel, stride, groups):
        super().__init__()
        self.left, self.right = (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2
        self.conv = nn.Conv1d(cin, hidden, kernel, bias=False)
        self.norm = nn.GroupNorm(groups, hidden)
        self.down = nn.Conv1d(hidden, hidden, kernel, stride=stride, padding=max(0, (kernel - stride) // 2))
        self.skip = nn.Conv1d(cin, hidden, 1, stride=stride)

    def forward(self, x):
        h = F.relu(self.norm(self.conv(F.pad(x, (self.left, self.right)))))
        y = self.down(h)
        return y + self.skip(x)[..., : y.shape[-1]]


class EncoderLayer(nn.Module):
    def __init__(self, d, heads, ff, dropout):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x, keep):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=self.dropout if self.training else 0.0)
        x = x + F.dropout(self.proj(a.transpose(1, 2).reshape(b, t, d)), self.dropout, self.training)
        h = self.ff2(F.dropout(F.relu(self.ff1(self.norm2(x))), self.dropout, self.training))
        return x + F.dropout(h, self.dropout, self.training)


class Recognizer(nn.Module):
    def __init__(self, vocab, d=256, layers=8, heads=4, ff_mult=4, hidden=64, pool=3, strides=(4, 4, 4, 4),
                 kernel=8, groups=8, books=4, codes=1024, dropout=0.1):
        super().__init__()
        self.pool, self.d, self.dropout = pool, d, dropout
        blocks, cin = [], 1
        for s in strides:
            blocks.append(Block(cin, hidden, kernel, s, groups))
            cin = hidden
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv1d(hidden, d, 1)
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ff_mult * d, dropout) for _ in range(layers))
        self.final = nn.LayerNorm(d)
        self.codebooks = nn.Parameter(torch.empty(books, codes, d).uniform_(-1 / codes, 1 / codes))
        self.head = nn.Linear(d, vocab)
        self.geometry = [(kernel, s, max(0, (kernel - s) // 2)) for s in strides]

    def frames(self, samples):
        n = samples // self.pool
        for kernel, stride, pad in self.geometry:
            n = torch.clamp((n + 2 * pad - kernel) // stride + 1, min=0)
        return n

    def positions(self, t, device):
        pos = torch.arange(t, device=device, dtype=torch.float32).unsqueeze(1)
        freq = torch.exp(torch.arange(0, self.d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / self.d))
        return torch.stack((torch.sin(pos * freq), torch.cos(pos * freq)), 2).reshape(t, -1)[:, : self.d]

    def quantize(self, z, valid):
        with torch.autocast("cuda", enabled=False):
            z = z.float()
            residual, total, loss = z.detach(), torch.zeros_like(z), z.new_zeros(())
            for book in self.codebooks:
                dist = (book.detach() ** 2).sum(1) - 2 * residual @ book.detach().t()
                q = book[dist.argmin(-1)]
                mask = valid.unsqueeze(-1).float()
                n = mask.sum().clamp_min(1) * z.shape[-1]
                loss = loss + 0.25 * ((((z - total) - q.detach()) ** 2) * mask).sum() / n
                loss = loss + (((q - (z - total).detach()) ** 2) * mask).sum() / n
                total, residual = total + q.detach(), residual - q.detach()
            return z + (total - z).detach(), loss

    def forward(self, wave, lengths):
        x = F.avg_pool1d(wave.unsqueeze(1), self.pool)
        for block in self.blocks:
            x = block(x)
        x = self.out(x).transpose(1, 2)
        frames = self.frames(lengths)
        t = x.shape[1]
        valid = torch.arange(t, device=x.device).unsqueeze(0) < frames.unsqueeze(1)
        h = F.dropout(x.float() + self.positions(t, x.device), self.dropout, self.training)
        keep = valid.view(-1, 1, 1, t)
        for layer in self.layers:
            h = layer(h, keep)
        q, vq_loss = self.quantize(self.final(h), valid)
        return F.log_softmax(self.head(q).float(), -1), frames, vq_loss


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--batches", required=True, help="the step batches asr_ddp wrote (ASR_DUMP_BATCHES)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--vq-weight", type=float, default=0.5)
    args = p.parse_args()
    torch.manual_seed(1)
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    utterances, vocab, rate = read_split(args.data)
    batches = [[int(i) for i in line.split()] for line in open(args.batches) if line.strip()]
    model = Recognizer(vocab).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)
    audio_seconds, start = 0.0, None
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            torch.cuda.synchronize()
            audio_seconds, start = 0.0, time.perf_counter()
        batch = batches[step % len(batches)]
        longest = max(len(utterances[i][0]) for i in batch)
        wave = np.zeros((len(batch), longest), np.float32)
        for row, i in enumerate(batch):
            wave[row, : len(utterances[i][0])] = utterances[i][0] / 32768.0
        lengths = torch.tensor([len(utterances[i][0]) for i in batch])
        targets = torch.from_numpy(np.concatenate([utterances[i][1] for i in batch]).astype(np.int64))
        target_lengths = torch.tensor([len(utterances[i][1]) for i in batch])
        wave_d = torch.from_numpy(wave).pin_memory().to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            log_probs, frames, vq_loss = model(wave_d, lengths.to(device))
        ctc = F.ctc_loss(log_probs.transpose(0, 1), targets.to(device), frames, target_lengths.to(device),
                         reduction="sum", zero_infinity=True) / target_lengths.sum()
        loss = ctc + args.vq_weight * vq_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        audio_seconds += float(lengths.sum()) / rate
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    print(f"reference: {audio_seconds / wall:.1f} audio-s/s over {args.steps} steps (bf16, {torch.cuda.get_device_name()}, "
          f"final loss {loss.item():.3f})")


if __name__ == "__main__":
    main()
