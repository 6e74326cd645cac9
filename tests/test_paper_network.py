"""The WMMT network of Fig. 2 and its inference rule, against hand computations and plain loops.

Rows of the equation table in docs/architecture.md pinned here: visual reduction, input
standardisation, input embedding (Conv1d k=3 -> ReLU -> LayerNorm), the whole forward pass
(IntraFE, InterFE, F_m, the heads h_v, h_a, h_m), Eq. 2 (as written, and the top-k default of
docs/decisions/model.md), and the modality-aware expert selection (Sec. III-C3, III-F).

Mutations of the code these tests were checked against (each made alone, the tests run, reverted),
and tests here that fail under it (among others):

* every TPPA mutation of test_paper_tppa.py (a2v's streams swapped, Q and K swapped, V from the
  query stream, the column sum's axis, sigma, sqrt(d), no r_j scaling, no residual, v2a reading
  F''_v) and F_m concatenated audio first: test_network_matches_the_paper_loop_by_loop;
* the aggregation's top-k ratio 0.2 -> 0.3: test_decision_eq2_is_a_top_k_mean_of_a_fifth_of_the_frames,
  test_network_matches_the_paper_loop_by_loop;
* Eq. 2's mean dividing by the padded length: test_eq2_mean_as_written;
* the experts of classes 2 and 3 swapped, or class 1 routed to h_v:
  test_expert_selection_routes_each_class_to_its_head;
* the hard gate letting a class-0 video's segments through: test_hard_gate_gives_a_genuine_video_no_segments;
* channels c and c + D/2 averaged instead of 2c and 2c + 1: test_visual_reduction_averages_adjacent_channel_pairs,
  test_network_matches_the_paper_loop_by_loop;
* the embedding's ReLU after its LayerNorm: test_input_embedding_conv_relu_layer_norm,
  test_network_matches_the_paper_loop_by_loop.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from model.config import WMMTConfig
from model.inference import VideoResult
from model.proposals import expert_proposals
from model.wmmt import WMMT, InputEmbedding, WMMTOutput, aggregate, select_expert
from tests.helpers import paper_reference as ref


def _randomise(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))


def test_visual_reduction_averages_adjacent_channel_pairs():
    # 2048 -> 1024 in the paper's setting; here 8 -> 4: channel c of the result is the mean of
    # input channels 2c and 2c + 1 (docs/decisions/model.md, "Input embedding and visual reduction").
    model = WMMT(WMMTConfig(visual_dim=8, audio_dim=2, hidden=2, attn_dim=2))
    x = torch.tensor([[[1.0, 3.0, 10.0, 20.0, -4.0, 0.0, 7.0, 8.0]]])
    torch.testing.assert_close(model.reduce(x), torch.tensor([[[2.0, 15.0, -2.0, 7.5]]]))
    assert WMMTConfig().reduce_visual and WMMTConfig().visual_dim == 2048


def test_input_embedding_conv_relu_layer_norm():
    # F = LayerNorm(ReLU(Conv1d(k=3, padding 1)(x))): each row reads its two neighbours, and a padded
    # row (the last) reads as zero and comes out zero.
    embed = InputEmbedding(3, 4)
    _randomise(embed, seed=1)
    x = torch.randn(1, 6, 3, generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([[True] * 5 + [False]])
    expected = ref.input_embedding(embed, ref.rows(x[0]), mask[0].tolist())
    torch.testing.assert_close(embed(x, mask)[0], torch.tensor(expected, dtype=torch.float32), atol=1e-5, rtol=1e-5)
    assert embed.conv.kernel_size == (3,)


def _network(**changes) -> WMMT:
    cfg = WMMTConfig(visual_dim=8, audio_dim=6, hidden=4, attn_dim=5, **changes)
    model = WMMT(cfg)
    _randomise(model, seed=3)
    g = torch.Generator().manual_seed(4)
    model.set_input_stats(torch.randn(8, generator=g), 0.5 + torch.rand(8, generator=g),
                          torch.randn(6, generator=g), 0.5 + torch.rand(6, generator=g))
    return model.eval()


def test_network_matches_the_paper_loop_by_loop():
    """The whole forward pass of Fig. 2 recomputed in loops from the module's weights (the default
    config: sigmoid, residual, top-k 0.2), on a batch of a 10-frame and a padded 7-frame video:
    standardisation, reduction, F_v and F_a, F'_v and F'_a (IntraFE), F''_v and F''_a (InterFE,
    each from the IntraFE outputs), F_m = concat(F''_v, F''_a), the FAS of h_v, h_a, h_m and the
    video logits of Eq. 2."""
    model = _network()
    g = torch.Generator().manual_seed(5)
    visual, audio = torch.randn(2, 10, 8, generator=g), torch.randn(2, 10, 6, generator=g)
    mask = torch.arange(10).unsqueeze(0) < torch.tensor([[10], [7]])
    with torch.no_grad():
        out = model(visual, audio, mask)
    for i in range(2):
        expected = ref.wmmt_forward(model, ref.rows(visual[i]), ref.rows(audio[i]), mask[i].tolist())
        for name in ("f_v_embed", "f_a_embed", "f_v", "f_a", "f_m"):
            torch.testing.assert_close(out.features[name][i], torch.tensor(expected[name], dtype=torch.float32),
                                       atol=1e-4, rtol=1e-4, msg=f"{name} of video {i}")
        for name in ("fas_v", "fas_a", "fas_m", "video_v", "video_a", "video_m"):
            torch.testing.assert_close(getattr(out, name)[i], torch.tensor(expected[name], dtype=torch.float32),
                                       atol=1e-4, rtol=1e-4, msg=f"{name} of video {i}")


FAS = torch.tensor([[[1.0, -2.0], [4.0, 0.0], [-1.0, 6.0], [2.0, 3.0], [0.0, 5.0],
                     [3.0, 1.0], [-3.0, 2.0], [5.0, -1.0], [6.0, 0.0], [2.0, 4.0],
                     [50.0, 50.0]]])  # (1, 11, 2): 10 frames and a padded one


def test_eq2_mean_as_written():
    # Eq. 2 (before sigma): the mean over the T = 10 real frames of the per-frame logits.
    mask = torch.tensor([[True] * 10 + [False]])
    class_0 = (1 + 4 - 1 + 2 + 0 + 3 - 3 + 5 + 6 + 2) / 10
    class_1 = (-2 + 0 + 6 + 3 + 5 + 1 + 2 - 1 + 0 + 4) / 10
    torch.testing.assert_close(aggregate(FAS, mask, "mean", 0.2), torch.tensor([[class_0, class_1]]))


def test_decision_eq2_is_a_top_k_mean_of_a_fifth_of_the_frames():
    """docs/decisions/model.md, "Temporal aggregation (Eq. 2)": the default replaces Eq. 2's mean
    with, per class, the mean of the k = max(1, floor(0.2 T)) largest frame logits: k = 2 of the 10
    real frames here (class 0: 6 and 5; class 1: 6 and 5), k = 1 for an 8-frame video."""
    cfg = WMMTConfig()
    assert (cfg.aggregation, cfg.topk_ratio) == ("topk", 0.2)
    mask = torch.tensor([[True] * 10 + [False]])
    torch.testing.assert_close(aggregate(FAS, mask, cfg.aggregation, cfg.topk_ratio), torch.tensor([[5.5, 5.5]]))
    short = torch.tensor([[True] * 8 + [False] * 3])  # frame 8 (class 0: 6) is now padding
    torch.testing.assert_close(aggregate(FAS, short, cfg.aggregation, cfg.topk_ratio), torch.tensor([[5.0, 6.0]]))


def _routed_outputs() -> WMMTOutput:
    """Four videos whose c_m says 0, 1, 2 and 3; three frames each, the last of video 3 padded.
    Each head's FAS differs from the others', so the chosen head shows in the score."""
    video_m = torch.full((4, 4), -3.0)
    for video, cls in enumerate(range(4)):
        video_m[video, cls] = 3.0
    fas_m = torch.tensor([[0.0, 1.0, 0.0, 0.0], [2.0, 0.0, 1.0, 0.5], [-1.0, 0.0, 0.0, 2.0]]).expand(4, 3, 4)
    fas_v = torch.tensor([[0.0, 2.0], [1.0, -1.0], [0.0, 0.0]]).expand(4, 3, 2)
    fas_a = torch.tensor([[3.0, 0.0], [0.0, 1.0], [-2.0, 1.0]]).expand(4, 3, 2)
    mask = torch.tensor([[True, True, True]] * 3 + [[True, True, False]])
    return WMMTOutput(fas_v, fas_a, fas_m, torch.zeros(4, 2), torch.zeros(4, 2), video_m, mask)


def test_expert_selection_routes_each_class_to_its_head():
    # Sec. III-C3: the argmax of c_m picks the expert. 1 (both forged) -> h_m on F_m, whose frame
    # score is 1 - P_m(real); 2 (visual only) -> h_v on F''_v; 3 (audio only) -> h_a on F''_a;
    # 0 keeps h_m's score (docs/decisions/model.md, "Expert selection"; the gate then drops it).
    out = _routed_outputs()
    video_class, score, probs = select_expert(out)
    assert video_class.tolist() == [0, 1, 2, 3]

    def fake_prob(logits):  # 1 - softmax(logits)[0], by hand
        exps = [math.exp(v) for v in logits]
        return 1 - exps[0] / sum(exps)

    head = {0: out.fas_m, 1: out.fas_m, 2: out.fas_v, 3: out.fas_a}
    for video in range(4):
        expected = [fake_prob(row) if ok else 0.0 for row, ok in
                    zip(head[video][video].tolist(), out.mask[video].tolist(), strict=True)]
        torch.testing.assert_close(score[video], torch.tensor(expected), msg=f"class {video}")
    exps = [math.exp(3.0)] + [math.exp(-3.0)] * 3
    torch.testing.assert_close(probs[0], torch.tensor([e / sum(exps) for e in exps]))


def test_hard_gate_gives_a_genuine_video_no_segments():
    # Sec. III-F / Eq. 1: z = {y, [(s_k, e_k)]}. A video classed genuine has no forged segments (the
    # default, hard gate); under a fake class the same frame scores give the run of frames 1-2 above
    # 0.5, at 25 fps [1/25 s, 3/25 s), scored by its mean fake score 0.9.
    settings = {"method": "runs", "threshold": 0.5, "nms_iou": 0.5, "max_proposals": 100}
    score = np.array([0.1, 0.9, 0.9, 0.1])
    for video_class in range(4):
        result = VideoResult("v.mp4", 25.0, video_class, np.full(4, 0.25), score, {}, {})
        expected = [] if video_class == 0 else [[0.9, 1 / 25, 3 / 25]]
        proposals = expert_proposals(result, settings)
        assert len(proposals) == len(expected) and np.allclose(proposals, expected), video_class
