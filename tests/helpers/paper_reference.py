"""The paper's equations written out in plain Python loops, for the tests that pin the paper.

Nothing here calls ``model/``'s helpers: every function takes plain lists of floats (or reads a
module's weights into lists) and computes with ``math`` and explicit loops, so a test compares
the code against an independent reading of Sec. III. Rows are time steps; ``valid`` holds one
bool per row (False for padding). Where a default departs from the paper, the reference computes
the default named in docs/decisions/model.md, and the constant says so:

* ``TPPA_NORM``: sigma of Eq. 6 / Eq. 9 is the sigmoid of the column MEAN (sum / valid queries);
* TPPA adds the query stream back, then an output Linear and LayerNorm (``intra_skip`` / ``inter_skip``);
* ``TOPK_RATIO`` / ``DP_TOPK_RATIO``: Eq. 2's mean and Eq. 11's sum are top-k means of the
  k = max(1, floor(0.2 n)) largest terms.
"""

from __future__ import annotations

import math

TOPK_RATIO = 0.2  # docs/decisions/model.md, "Temporal aggregation (Eq. 2)"
DP_TOPK_RATIO = 0.2  # docs/decisions/model.md, "Deviation perceiving loss"
TPPA_NORM = "sigmoid"  # docs/decisions/model.md, "sigma (normalisation)"
LN_EPS = 1e-5  # torch.nn.LayerNorm's default


def rows(tensor) -> list:
    """A tensor as nested Python floats (float64), detached."""
    return tensor.detach().double().tolist()


def dot(a: list, b: list) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def linear(layer, x: list) -> list:
    """y = W x + b of an nn.Linear, row by row of W."""
    weight = rows(layer.weight)
    bias = rows(layer.bias) if layer.bias is not None else [0.0] * len(weight)
    return [dot(w_row, x) + b for w_row, b in zip(weight, bias, strict=True)]


def layer_norm(layer, x: list) -> list:
    mean = sum(x) / len(x)
    var = sum((v - mean) ** 2 for v in x) / len(x)
    gamma, beta = rows(layer.weight), rows(layer.bias)
    return [(v - mean) / math.sqrt(var + LN_EPS) * g + b for v, g, b in zip(x, gamma, beta, strict=True)]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def softmax(x: list) -> list:
    top = max(x)
    exps = [math.exp(v - top) for v in x]
    return [e / sum(exps) for e in exps]


def relu(x: list) -> list:
    return [max(v, 0.0) for v in x]


def conv1d(conv, x: list, valid: list) -> list:
    """A Conv1d over time (kernel k, padding k // 2): out[t][o] = b[o] + sum_s sum_c W[o][c][s] x[t + s - k//2][c].

    Rows outside the video and padded rows read as zeros; padded output rows are zeros.
    """
    weight = rows(conv.weight)  # (out, in, k)
    bias = rows(conv.bias) if conv.bias is not None else [0.0] * len(weight)
    k = len(weight[0][0])
    out = []
    for t in range(len(x)):
        if not valid[t]:
            out.append([0.0] * len(weight))
            continue
        row = []
        for o, w_o in enumerate(weight):
            total = bias[o]
            for s in range(k):
                src = t + s - k // 2
                if 0 <= src < len(x) and valid[src]:
                    total += sum(w_o[c][s] * x[src][c] for c in range(len(x[src])))
            row.append(total)
        out.append(row)
    return out


def input_embedding(embed, x: list, valid: list) -> list:
    """F = LayerNorm(ReLU(Conv1d_k3(x))) per row; padded rows zero."""
    conv = conv1d(embed.conv, x, valid)
    return [layer_norm(embed.layer_norm, relu(c)) if ok else [0.0] * len(c) for c, ok in zip(conv, valid, strict=True)]


def reduce_visual(x: list) -> list:
    """2048 -> 1024: channel 2c and 2c + 1 averaged into channel c."""
    return [[(row[2 * c] + row[2 * c + 1]) / 2 for c in range(len(row) // 2)] for row in x]


def tppa(block, x_query: list, x_context: list, valid: list, norm: str = TPPA_NORM, skip: str = "residual") -> dict:
    """Algorithm 1 / Eq. 5-10 for one video.

    Q from the stream being enhanced (x_query), K and V from x_context (the same stream in
    IntraFE, the other modality in InterFE). R_ij = q_i . k_j / sqrt(d), d the width of Q and K;
    r_j = sum over the valid queries i of R_ij (the column sum S); w_j = sigma(r_j); output row
    j = LayerNorm(W_o (w_j v_j) + b_o [+ x_query row j]) (skip "residual" adds it, "none" not), or
    with skip "concat" LayerNorm(W_o [w_j v_j ; x_query row j] + b_o). Returns the intermediates too.
    """
    q = [linear(block.query, x) for x in x_query]
    k = [linear(block.key, x) for x in x_context]
    v = [linear(block.value, x) for x in x_context]
    d = len(q[0])
    n_valid = sum(valid)
    relevance = [[dot(q[i], k[j]) / math.sqrt(d) for j in range(len(k))] for i in range(len(q))]  # R (T x T)
    column_sums = [sum(relevance[i][j] for i in range(len(q)) if valid[i]) for j in range(len(k))]
    if norm == "sigmoid":
        weights = [sigmoid(s / n_valid) for s in column_sums]
    elif norm == "none":
        weights = list(column_sums)
    else:
        raise ValueError(f"the reference knows sigmoid and none, not {norm!r}")
    weights = [w if ok else 0.0 for w, ok in zip(weights, valid, strict=True)]
    out = []
    for j in range(len(v)):
        if not valid[j]:
            out.append([0.0] * len(x_query[j]))
            continue
        attended = [weights[j] * value for value in v[j]]
        projected = linear(block.output, attended + list(x_query[j]) if skip == "concat" else attended)
        if skip == "residual":
            projected = [p + x for p, x in zip(projected, x_query[j], strict=True)]
        out.append(layer_norm(block.layer_norm, projected))
    return {"q": q, "k": k, "v": v, "column_sums": column_sums, "weights": weights, "out": out}


def localization_head(head, x: list, valid: list) -> list:
    """h: Conv1d_k3 -> ReLU -> (dropout: identity in eval) -> Conv1d_k1 without bias: per-frame logits."""
    hidden = [relu(r) for r in conv1d(head.conv, x, valid)]
    return conv1d(head.classifier, hidden, valid)


def topk_mean(values: list, ratio: float) -> float:
    """Mean of the k = max(1, floor(ratio * n)) largest values."""
    k = max(1, math.floor(ratio * len(values)))
    return sum(sorted(values, reverse=True)[:k]) / k


def aggregate_topk(fas: list, valid: list, ratio: float = TOPK_RATIO) -> list:
    """Eq. 2 as the default computes it: per class, the top-k mean over the valid frames."""
    frames = [r for r, ok in zip(fas, valid, strict=True) if ok]
    return [topk_mean([r[c] for r in frames], ratio) for c in range(len(fas[0]))]


def wmmt_forward(model, visual: list, audio: list, valid: list) -> dict:
    """The full WMMT of Fig. 2 for one video (eval mode, default config), from the module's weights."""
    mean_v, std_v = rows(model.visual_mean), rows(model.visual_std)
    mean_a, std_a = rows(model.audio_mean), rows(model.audio_std)
    visual = [[(x - m) / s for x, m, s in zip(r, mean_v, std_v, strict=True)] for r in visual]
    audio = [[(x - m) / s for x, m, s in zip(r, mean_a, std_a, strict=True)] for r in audio]
    f_v_embed = input_embedding(model.embed_v, reduce_visual(visual), valid)  # F_v
    f_a_embed = input_embedding(model.embed_a, audio, valid)  # F_a
    f_v1 = tppa(model.intra_v, f_v_embed, f_v_embed, valid)["out"]  # F'_v (Eq. 5-7)
    f_a1 = tppa(model.intra_a, f_a_embed, f_a_embed, valid)["out"]  # F'_a
    f_v2 = tppa(model.inter_a2v, f_v1, f_a1, valid)["out"]  # F''_v: Q_v from F'_v, K_a and V_a from F'_a (Eq. 8-10)
    f_a2 = tppa(model.inter_v2a, f_a1, f_v1, valid)["out"]  # F''_a: the direction reversed
    f_m = [rv + ra for rv, ra in zip(f_v2, f_a2, strict=True)]  # F_m = concat(F''_v, F''_a)
    out = {"f_v_embed": f_v_embed, "f_a_embed": f_a_embed, "f_v": f_v2, "f_a": f_a2, "f_m": f_m}
    for name, head, x in (("v", model.head_v, f_v2), ("a", model.head_a, f_a2), ("m", model.head_m, f_m)):
        out[f"fas_{name}"] = localization_head(head, x, valid)
        out[f"video_{name}"] = aggregate_topk(out[f"fas_{name}"], valid)
    return out


def bce(p: float, y: int) -> float:
    """Binary cross-entropy of one probability (Eq. 3, Eq. 13)."""
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))
