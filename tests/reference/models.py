#!/usr/bin/python3
"""PyTorch reference modules for ctrain, written from /work/shared/MODELS.md.

Every module reproduces the state_dict names and shapes listed there, so a
ctrain checkpoint or parity dump loads with load_state_dict(strict=True).
Constant buffers (causal masks, positional encodings) are non-persistent:
they are rebuilt here and never expected in a dump.

    build(name, **kw) -> nn.Module     name in NAMES
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def causal_mask(n):
    """(n, n) additive mask: 0 on and below the diagonal, -inf above."""
    return torch.full((n, n), float("-inf")).triu(1)


# ---------------------------------------------------------------- §1 attn_cnn
class CausalAttention(nn.Module):
    """Single-head attention, scores = Q K^T / sqrt(d) + causal mask (seed 000)."""

    def __init__(self, d, seq_len):
        super().__init__()
        self.d = d
        self.W_q = nn.Linear(d, d, bias=False)
        self.W_k = nn.Linear(d, d, bias=False)
        self.W_v = nn.Linear(d, d, bias=False)
        self.register_buffer("mask", causal_mask(seq_len), persistent=False)

    def forward(self, x):                                   # x (B, N, d)
        q, k, v = self.W_q(x), self.W_k(x), self.W_v(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d) + self.mask   # (B, N, N)
        return torch.softmax(scores, dim=-1) @ v            # (B, N, d)


class AttnCNN(nn.Module):
    def __init__(self, num_classes=10, d=64):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(3, 3, 5, padding=2), nn.BatchNorm2d(3),
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, d, 3, padding=1), nn.BatchNorm2d(d), nn.ReLU(), nn.MaxPool2d(2),
        )                                                   # (B, d, 8, 8)
        self.attn1 = CausalAttention(d, 64)
        self.attn2 = CausalAttention(d, 64)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.classifier = nn.Linear(d, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):                                   # x (B, 3, 32, 32)
        x = self.cnn(x)
        x = x.view(x.shape[0], x.shape[1], -1).transpose(1, 2)   # (B, 64 tokens, d)
        x = F.silu(self.norm1(x + self.attn1(x)))
        x = F.silu(self.norm2(x + self.attn2(x)))
        return self.classifier(x.mean(dim=1))               # (B, classes)


# ---------------------------------------------------------------- §2 ultimus
class UltimusBlock(nn.Module):
    def __init__(self, d=48, k=8):
        super().__init__()
        self.k = k
        self.K = nn.Linear(d, k, bias=False)
        self.Q = nn.Linear(d, k, bias=False)
        self.V = nn.Linear(d, k, bias=False)
        self.out = nn.Linear(k, d, bias=False)

    def forward(self, x):                                   # x (B, d)
        q, k, v = self.Q(x)[:, None], self.K(x)[:, None], self.V(x)[:, None]   # (B, 1, k)
        am = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(self.k), dim=1)   # (B, k, k), over q index
        return self.out((v @ am)[:, 0])                     # (B, d)


class Ultimus(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, bias=False)        # 32 -> 30
        self.conv2 = nn.Conv2d(16, 32, 3, bias=False)       # 30 -> 28
        self.conv3 = nn.Conv2d(32, 48, 3, bias=False)       # 28 -> 26
        self.u1, self.u2, self.u3, self.u4 = (UltimusBlock() for _ in range(4))
        self.fc = nn.Linear(48, num_classes, bias=False)

    def forward(self, x):
        x = self.conv3(self.conv2(self.conv1(x))).mean(dim=(2, 3))   # GAP -> (B, 48)
        o = self.u1(x)
        o = self.u2(x + o)
        o = self.u3(x + o)
        o = self.u4(x + o)
        return self.fc(o)


# ---------------------------------------------------------------- §3 seed 003
class ChannelAttention(nn.Module):
    """x + reshape(softmax(q k^T / sqrt(C)) v): attention over channels, (N, C, C)."""

    def __init__(self, c):
        super().__init__()
        self.conv_query = nn.Conv2d(c, c, 1)
        self.conv_key = nn.Conv2d(c, c, 1)
        self.conv_value = nn.Conv2d(c, c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        q = self.conv_query(x).reshape(n, c, h * w)
        k = self.conv_key(x).reshape(n, c, h * w)
        v = self.conv_value(x).reshape(n, c, h * w)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1)   # (N, C, C)
        return x + (a @ v).reshape(n, c, h, w)


def cnn_attn(early=False, late=False, num_classes=10):
    """The seed's nn.Sequential, so names are its indices (e.g. cnn_early: 0, 2, 4, 7)."""
    layers = [nn.Conv2d(3, 64, 3, padding=1), nn.ReLU()]
    if early:
        layers += [ChannelAttention(64), nn.ReLU()]
    layers += [nn.Conv2d(64, 32, 3, padding=1), nn.ReLU()]
    if late:
        layers += [ChannelAttention(32), nn.ReLU()]
    layers += [nn.Flatten(), nn.Linear(32 * 32 * 32, num_classes)]
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """The seed's block: conv1 k3 p2 (grows by 2), conv2 k3 p0 stride s; BN only if batchnorm."""

    def __init__(self, cin, cout, stride, batchnorm):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=2)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=stride)
        if batchnorm:
            self.bn1 = nn.BatchNorm2d(cout)
            self.bn2 = nn.BatchNorm2d(cout)
        self.batchnorm = batchnorm
        self.downsampler = None
        if stride != 1 or cin != cout:                      # its BatchNorm is always applied
            self.downsampler = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.conv1(x)
        y = F.relu(self.bn1(y) if self.batchnorm else y)
        y = self.conv2(y)
        y = F.relu(self.bn2(y) if self.batchnorm else y)
        r = x if self.downsampler is None else self.downsampler(x)
        return F.relu(r + y)


class ResNet10(nn.Module):
    def __init__(self, num_classes=10, batchnorm=False, attention=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        if batchnorm:
            self.bn1 = nn.BatchNorm2d(64)
        self.batchnorm = batchnorm
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(ResBlock(64, 64, 1, batchnorm))
        self.layer2 = nn.Sequential(ResBlock(64, 128, 1, batchnorm))
        self.attention = ChannelAttention(128) if attention else None
        self.layer3 = nn.Sequential(ResBlock(128, 256, 1, batchnorm))
        self.layer4 = nn.Sequential(ResBlock(256, 512, 2, batchnorm))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        x = self.maxpool(F.relu(self.bn1(x) if self.batchnorm else x))
        x = self.layer2(self.layer1(x))
        if self.attention is not None:
            x = self.attention(x)
        x = self.layer4(self.layer3(x))
        return self.fc(x.mean(dim=(2, 3)))


# ---------------------------------------------------------------- §4/§5 transformers
class PositionalEncoding(nn.Module):
    """x + P then dropout; P as kernels/ops_shared.h ops_posenc (double, rounded once)."""

    def __init__(self, d, dropout, max_len=5000):
        super().__init__()
        i = torch.arange(max_len, dtype=torch.float64)[:, None]
        j = torch.arange(d)
        angle = i * torch.exp(-(j - j % 2).double() / d * math.log(10000.0))
        pe = torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle)).float()
        self.register_buffer("pe", pe[None], persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):                                   # x (N, S, d)
        return self.dropout(x + self.pe[:, : x.shape[1]])


class MultiHeadAttention(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.h = heads
        self.key = nn.Linear(d, d)
        self.query = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.proj = nn.Linear(d, d)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, query, key, value, attn_mask=None):   # (N, S, d), (N, T, d), (N, T, d)
        n, s, d = query.shape
        t, h = key.shape[1], self.h
        q = self.query(query).view(n, s, h, d // h).transpose(1, 2)      # (N, H, S, d/H)
        k = self.key(key).view(n, t, h, d // h).transpose(1, 2)
        v = self.value(value).view(n, t, h, d // h).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // h)              # (N, H, S, T)
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask == 0, float("-inf"))
        y = self.attn_drop(torch.softmax(scores, dim=-1)) @ v             # (N, H, S, d/H)
        return self.proj(y.transpose(1, 2).reshape(n, s, d))


class FeedForward(nn.Module):
    def __init__(self, d, f, dropout):
        super().__init__()
        self.fc1 = nn.Linear(d, f)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(f, d)

    def forward(self, x):
        return self.fc2(self.dropout(F.gelu(self.fc1(x))))


class EncoderLayer(nn.Module):
    """Post-norm: x = norm(x + dropout(sub(x)))."""

    def __init__(self, d, heads, f, dropout):
        super().__init__()
        self.self_attn = MultiHeadAttention(d, heads, dropout)
        self.ffn = FeedForward(d, f, dropout)
        self.norm_self = nn.LayerNorm(d)
        self.norm_ffn = nn.LayerNorm(d)
        self.dropout_self = nn.Dropout(dropout)
        self.dropout_ffn = nn.Dropout(dropout)

    def forward(self, x, mask=None):
        x = self.norm_self(x + self.dropout_self(self.self_attn(x, x, x, mask)))
        return self.norm_ffn(x + self.dropout_ffn(self.ffn(x)))


class DecoderLayer(nn.Module):
    def __init__(self, d, heads, f, dropout):
        super().__init__()
        self.self_attn = MultiHeadAttention(d, heads, dropout)
        self.cross_attn = MultiHeadAttention(d, heads, dropout)
        self.ffn = FeedForward(d, f, dropout)
        self.norm_self = nn.LayerNorm(d)
        self.norm_cross = nn.LayerNorm(d)
        self.norm_ffn = nn.LayerNorm(d)
        self.dropout_self = nn.Dropout(dropout)
        self.dropout_cross = nn.Dropout(dropout)
        self.dropout_ffn = nn.Dropout(dropout)

    def forward(self, x, memory, mask):
        x = self.norm_self(x + self.dropout_self(self.self_attn(x, x, x, mask)))
        x = self.norm_cross(x + self.dropout_cross(self.cross_attn(x, memory, memory)))
        return self.norm_ffn(x + self.dropout_ffn(self.ffn(x)))


class Stack(nn.Module):
    """Holds `layers` so names read transformer.layers.{i}.*."""

    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)


def init_normal_002(model):
    """N(0, 0.02) for Linear and Embedding weights, bias 0 (LayerNorm keeps 1/0)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


class PatchEmbedding(nn.Module):
    def __init__(self, patch, d, channels=3):
        super().__init__()
        self.p = patch
        self.proj = nn.Linear(channels * patch * patch, d)

    def forward(self, x):                                   # (N, C, H, W)
        n, c, hh, ww = x.shape
        p = self.p
        x = x.reshape(n, c, hh // p, p, ww // p, p).permute(0, 2, 4, 1, 3, 5)   # (N, gh, gw, C, P, P)
        return self.proj(x.reshape(n, (hh // p) * (ww // p), c * p * p))


class ViT(nn.Module):
    def __init__(self, num_classes=10, patch=8, d=128, layers=6, heads=4, ffn=256, dropout=0.1):
        super().__init__()
        self.patch_embed = PatchEmbedding(patch, d)
        self.positional_encoding = PositionalEncoding(d, dropout)
        self.transformer = Stack([EncoderLayer(d, heads, ffn, dropout) for _ in range(layers)])
        self.head = nn.Linear(d, num_classes)
        init_normal_002(self)

    def forward(self, x):
        x = self.positional_encoding(self.patch_embed(x))  # (N, 16, d)
        for layer in self.transformer.layers:
            x = layer(x)
        return self.head(x.mean(dim=1))


class ConvBN(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class ConvStage(nn.Module):
    """conv-BN-ReLU, maxpool 2, then x + res(x) with two conv-BN-ReLU when res."""

    def __init__(self, cin, cout, res):
        super().__init__()
        self.conv = ConvBN(cin, cout)
        self.res = nn.Sequential(ConvBN(cout, cout), ConvBN(cout, cout)) if res else None

    def forward(self, x):
        x = F.max_pool2d(self.conv(x), 2)
        return x if self.res is None else x + self.res(x)


class ConvViT(nn.Module):
    """ctrain's own recipe model (src/models/conv_vit.c): a ResNet-9-style
    tokenizer to 4x4 = 16 tokens of width d, then the ViT's encoder."""

    def __init__(self, num_classes=10, d=128, layers=1, heads=4, ffn=256, dropout=0.1):
        super().__init__()
        self.prep = ConvBN(3, d // 8)
        self.layer1 = ConvStage(d // 8, d // 4, True)
        self.layer2 = ConvStage(d // 4, d // 2, False)
        self.layer3 = ConvStage(d // 2, d, True)
        self.positional_encoding = PositionalEncoding(d, dropout)
        self.transformer = Stack([EncoderLayer(d, heads, ffn, dropout) for _ in range(layers)])
        self.head = nn.Linear(d, num_classes)
        init_normal_002(self)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))       # (N, d, 4, 4)
        x = self.positional_encoding(x.flatten(2).transpose(1, 2))     # (N, 16, d)
        for layer in self.transformer.layers:
            x = layer(x)
        return self.head(x.mean(dim=1))


class CaptionTransformer(nn.Module):
    NULL, START, END = 0, 1, 2

    def __init__(self, vocab=1004, input_dim=512, wordvec_dim=256, heads=4, layers=2,
                 ffn=2048, dropout=0.1, max_length=50):
        super().__init__()
        self.visual_projection = nn.Linear(input_dim, wordvec_dim)
        self.embedding = nn.Embedding(vocab, wordvec_dim)
        self.positional_encoding = PositionalEncoding(wordvec_dim, dropout, max_length)
        self.transformer = Stack([DecoderLayer(wordvec_dim, heads, ffn, dropout) for _ in range(layers)])
        self.output = nn.Linear(wordvec_dim, vocab)
        init_normal_002(self)

    def forward(self, features, captions):                 # (N, input_dim), (N, T) -> (N, T, V)
        memory = self.visual_projection(features)[:, None]  # ONE memory token (N, 1, W)
        x = self.positional_encoding(self.embedding(captions))
        t = captions.shape[1]
        mask = torch.ones(t, t, device=captions.device).tril()
        for layer in self.transformer.layers:
            x = layer(x, memory, mask)
        return self.output(x)

    def loss(self, features, captions):
        """Token cross-entropy masked at <NULL> targets, divided by N*T (the seed's solver)."""
        cin, cout = captions[:, :-1], captions[:, 1:]
        scores = self(features, cin)
        ce = F.cross_entropy(scores.flatten(0, 1), cout.flatten().long(), reduction="none")
        return (ce * (cout.flatten() != self.NULL)).sum() / cout.numel()

    @torch.no_grad()
    def sample(self, features, max_length=30):
        """Greedy decoding from <START>; tokens after a caption's <END> are <NULL>."""
        n = features.shape[0]
        seq = torch.full((n, 1), self.START, dtype=torch.long)
        done = torch.zeros(n, dtype=torch.bool)
        out = torch.full((n, max_length), self.NULL, dtype=torch.long)
        for t in range(max_length):
            word = self(features, seq)[:, -1].argmax(dim=-1)
            out[:, t] = torch.where(done, torch.full_like(word, self.NULL), word)
            done |= word == self.END
            seq = torch.cat([seq, word[:, None]], dim=1)
        return out


_BUILDERS = {
    "attn_cnn": AttnCNN,
    "ultimus": Ultimus,
    "cnn_vanilla": lambda **kw: cnn_attn(**kw),
    "cnn_early": lambda **kw: cnn_attn(early=True, **kw),
    "cnn_late": lambda **kw: cnn_attn(late=True, **kw),
    "cnn_double": lambda **kw: cnn_attn(early=True, late=True, **kw),
    "resnet10": ResNet10,
    "resnet10_attn": lambda **kw: ResNet10(attention=True, **kw),
    "vit": ViT,
    "conv_vit": ConvViT,
    "caption_transformer": CaptionTransformer,
}
NAMES = tuple(_BUILDERS)


def build(name, **kw):
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(NAMES)}")
    return _BUILDERS[name](**kw)
