# ruff: noqa: E501  (the table of mutations holds lines of code verbatim)
"""Mutation check of the paper-pinning tests: each change below must make them fail.

    .venv/bin/python benchmarks/mutation_check.py [NAME_SUBSTRING ...]

Each mutation (a plausible wrong reading of the paper, or a wrong default) is applied alone to a
copy of the committed tree (``git archive HEAD``, in a temporary folder: the working tree is never
touched), the paper tests run there, and the failing tests are printed. A mutation that fails no
test is a hole in the tests; a mutation whose text is no longer in the code is reported as stale
and must be rewritten for the code as it is. Exit status 1 if either happens.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (name, file, text in the code, its mutated replacement)
MUTATIONS = [
    ("sqrt(d) over the stream width", "model/tppa.py", "return normalise_relevance(column_relevance(q, k, mask), mask, self.norm)", "return normalise_relevance(column_relevance(q, k, mask) * math.sqrt(q.shape[-1] / x_query.shape[-1]), mask, self.norm)"),
    ("Eq. 13 target flipped", "model/losses.py", "per_video = F.binary_cross_entropy_with_logits(score, target, reduction=\"none\")", "per_video = F.binary_cross_entropy_with_logits(score, 1 - target, reduction=\"none\")"),
    ("a2v query/context swapped (wmmt.py)", "model/wmmt.py", "self.inter_a2v(f_v, f_a, mask)", "self.inter_a2v(f_a, f_v, mask)"),
    ("Q from context, K from query (tppa.py)", "model/tppa.py", "q = self.query(x_query)  # (B, T, A)\n        k = self.key(x_context)", "q = self.query(x_context)  # (B, T, A)\n        k = self.key(x_query)"),
    ("Eq. 10 V from the query stream", "model/tppa.py", "v = self.value(x_context)", "v = self.value(x_query)"),
    ("column sum over the key axis", "model/tppa.py", 'query_sum = (query * mask.unsqueeze(-1).to(query.dtype)).sum(dim=1)  # (B, A)\n    return torch.einsum("ba,bta->bt", query_sum, key) * scale',
     'key_sum = (key * mask.unsqueeze(-1).to(key.dtype)).sum(dim=1)  # (B, A)\n    return torch.einsum("ba,bta->bt", key_sum, query) * scale'),
    ("padded queries in the column sum", "model/tppa.py", "query_sum = (query * mask.unsqueeze(-1).to(query.dtype)).sum(dim=1)", "query_sum = query.sum(dim=1)"),
    ("sigma: sigmoid of the column sum (not mean)", "model/tppa.py", "weights = torch.sigmoid(relevance / n_valid)", "weights = torch.sigmoid(relevance)"),
    ("sigma default softmax (config)", "model/config.py", 'tppa_norm: str = "sigmoid"', 'tppa_norm: str = "softmax"'),
    ("no 1/sqrt(d)", "model/tppa.py", "scale = 1.0 / math.sqrt(query.shape[-1])", "scale = 1.0"),
    ("Eq. 7 without r_j scaling", "model/tppa.py", "weighted = weights.unsqueeze(-1) * v", "weighted = v"),
    ("residual default off (config)", "model/config.py", 'inter_skip: str = "residual"', 'inter_skip: str = "none"'),
    ("InterFE sequential (v2a reads F''_v)", "model/wmmt.py", "f_v, f_a = self.inter_a2v(f_v, f_a, mask), self.inter_v2a(f_a, f_v, mask)", "f_v = self.inter_a2v(f_v, f_a, mask)\n            f_a = self.inter_v2a(f_a, f_v, mask)"),
    ("F_m concatenated audio first", "model/wmmt.py", "f_m = torch.cat([f_v, f_a], dim=-1)  # F_m", "f_m = torch.cat([f_a, f_v], dim=-1)  # F_m"),
    ("embedding ReLU after LayerNorm", "model/wmmt.py", "self.layer_norm(F.relu(self.conv(x, mask)))", "F.relu(self.layer_norm(self.conv(x, mask)))"),
    ("visual reduction pairs c, c + D/2", "model/wmmt.py", "visual.reshape(b, t, d // 2, 2).mean(dim=-1)", "visual.reshape(b, t, 2, d // 2).mean(dim=-2)"),
    ("aggregation top-k ratio 0.3", "model/config.py", "    topk_ratio: float = 0.2", "    topk_ratio: float = 0.3"),
    ("Eq. 2 mean over padding too", "model/wmmt.py", "return torch.where(valid, fas, 0.0).sum(dim=1) / lengths.unsqueeze(-1).to(fas.dtype)", "return torch.where(valid, fas, 0.0).sum(dim=1) / fas.shape[1]"),
    ("expert of classes 2 and 3 swapped", "model/wmmt.py", "for cls, fas in ((VISUAL_ONLY_FAKE, outputs.fas_v), (AUDIO_ONLY_FAKE, outputs.fas_a)):", "for cls, fas in ((VISUAL_ONLY_FAKE, outputs.fas_a), (AUDIO_ONLY_FAKE, outputs.fas_v)):"),
    ("class 1 routed to h_v", "model/wmmt.py", "for cls, fas in ((VISUAL_ONLY_FAKE, outputs.fas_v), (AUDIO_ONLY_FAKE, outputs.fas_a)):", "for cls, fas in ((1, outputs.fas_v), (VISUAL_ONLY_FAKE, outputs.fas_v), (AUDIO_ONLY_FAKE, outputs.fas_a)):"),
    ("hard gate lets class 0 through", "model/proposals.py", 'if result.video_class == REAL and gate == "hard":', "if False:"),
    ("Eq. 3 targets swapped (multitask)", "model/losses.py", 'parts["loss_v"] = F.cross_entropy(outputs.video_v.float(), visual_target(labels))\n            parts["loss_a"] = F.cross_entropy(outputs.video_a.float(), audio_target(labels))',
     'parts["loss_v"] = F.cross_entropy(outputs.video_v.float(), audio_target(labels))\n            parts["loss_a"] = F.cross_entropy(outputs.video_a.float(), visual_target(labels))'),
    ("y_v wrong in visual_target (labels 1, 3)", "model/losses.py", "return ((labels == BOTH_FAKE) | (labels == VISUAL_ONLY_FAKE)).long()", "return ((labels == BOTH_FAKE) | (labels == AUDIO_ONLY_FAKE)).long()"),
    ("lambda_v on L_a and lambda_a on L_v", "model/losses.py", 'cfg.lambda_v * parts["loss_v"] + cfg.lambda_a * parts["loss_a"]', 'cfg.lambda_a * parts["loss_v"] + cfg.lambda_v * parts["loss_a"]'),
    ("phi on L_m, lambda_m on L_dp", "model/losses.py", 'total = total + cfg.lambda_m * parts["loss_m"]', 'total = total + cfg.phi * parts["loss_m"] + (cfg.lambda_m - cfg.phi) * deviation_perceiving_loss(outputs, labels, cfg) * cfg.use_dp'),
    ("psi(3) = 0", "model/losses.py", "return (labels != REAL).to(torch.float32)", "return ((labels == BOTH_FAKE) | (labels == VISUAL_ONLY_FAKE)).to(torch.float32)"),
    ("deviation over pairs (t, t + 2)", "model/losses.py", "a, b = x[:, :-1], x[:, 1:]", "a, b = x[:, :-1], torch.roll(x, -2, dims=1)[:, :-1]"),
    ("f = L1 for mse", "model/losses.py", "return ((a - b) ** 2).mean(dim=-1)", "return (a - b).abs().mean(dim=-1)"),
    ("E sums over features", "model/losses.py", "return ((a - b) ** 2).mean(dim=-1)", "return ((a - b) ** 2).sum(dim=-1)"),
    ("deviation top-k ratio 0.3", "model/config.py", "dp_topk_ratio: float = 0.2", "dp_topk_ratio: float = 0.3"),
    ("Eq. 11 reduction default sum", "model/config.py", 'dp_reduction: str = "topk"', 'dp_reduction: str = "sum"'),
    ("dp_target psi for the audio objective", "model/losses.py", 'if dp_target == "psi" or name == "f_m":', 'if dp_target == "psi" or name != "f_v":'),
]
TESTS = ["tests/test_paper_tppa.py", "tests/test_paper_network.py", "tests/test_paper_losses.py"]


def run(copy: Path, name: str, path: str, old: str, new: str) -> str:
    """'caught', 'missed' or 'stale' for one mutation, applied in ``copy`` and reverted after."""
    full = copy / path
    text = full.read_text()
    if text.count(old) != 1:
        print(f"## {name}: STALE ({path} holds the text {text.count(old)} times)")
        return "stale"
    full.write_text(text.replace(old, new))
    try:
        env = {**os.environ, "WMMT_TEST_WORKERS": "0"}
        done = subprocess.run([sys.executable, "-m", "pytest", *TESTS, "-q", "-rf", "-p", "no:cacheprovider"],
                              cwd=copy, capture_output=True, text=True, env=env)
    finally:
        full.write_text(text)
    failed = sorted({re.sub(r" - .*", "", line[len("FAILED "):]) for line in done.stdout.splitlines()
                     if line.startswith("FAILED ")})
    print(f"## {name}: {len(failed)} failed" + ("" if failed else "  <-- NOT CAUGHT"))
    for test in failed:
        print("   ", test)
    sys.stdout.flush()
    return "caught" if failed else "missed"


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        outcomes = [run(Path(tmp), *m) for m in MUTATIONS if not argv or any(a in m[0] for a in argv)]
    print(f"{outcomes.count('caught')} caught, {outcomes.count('missed')} missed, {outcomes.count('stale')} stale")
    return 0 if outcomes and all(o == "caught" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
