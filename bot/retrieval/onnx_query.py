"""A fast query-side runtime for the rebuilt multilingual-e5-small: the same BERT, int8, in ONNX Runtime.

Documents are embedded once, at index time, by sentence-transformers in float32. Queries are embedded on every
message, and there float32 torch was the slowest part of a search (28-36 ms of a 43 ms median on 2 cores). The
query model is the rebuilt BERT exported to ONNX with eager attention (so ONNX Runtime's BERT optimiser can fuse
attention, layer norms and GELU) and quantised dynamically to int8 per channel. Measured against the float32
sentence-transformers model on the evaluation queries: cosine mean 0.997, minimum 0.995; retrieval on the dev split
unchanged (`bench/e5_fidelity.py`; tested in `tests/retrieval/test_e5_build.py`).

The output matches the sentence-transformers folder built by `bot models build`: the "query: " prompt, mean pooling
over every token (the prompt included), L2 normalisation.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

QUERY_MODEL_FILE = "onnx/query-int8.onnx"
# A query reads at most this many tokens (about 130-150 Japanese characters): e5's cost grows with every token and
# a long consultation's 177-token tail doubled the p95. Chosen on the dev split, where it changed no ranking; the
# whole message still reaches USE and BM25.
DEFAULT_QUERY_TOKENS = 96


def export_query_model(model_dir: Path, out_file: Path) -> None:
    """Export the BERT in ``model_dir`` to an optimised, int8-quantised ONNX file at ``out_file``."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from transformers import AutoTokenizer, BertModel

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    # Eager attention exports as plain MatMul/Softmax, the pattern ONNX Runtime fuses into one Attention op
    # (the SDPA export is not recognised and runs about 30% slower).
    bert = BertModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    sample = tokenizer(["query: 引き継ぎ"], return_tensors="pt")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_file.parent) as tmp:
        plain, fused = Path(tmp) / "plain.onnx", Path(tmp) / "fused.onnx"
        dynamic = {0: "batch", 1: "tokens"}
        # The TorchScript exporter (deprecated, still shipped): the torch.export one needs onnxscript, and its graph
        # is not one ONNX Runtime's BERT fusion recognises. Its tracer warnings are expected for this model.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(bert),
                (sample["input_ids"], sample["attention_mask"]),
                str(plain),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "last_hidden_state": dynamic},
                opset_version=17,
                dynamo=False,
            )
        optimised = optimizer.optimize_model(
            str(plain),
            model_type="bert",
            num_heads=int(config["num_attention_heads"]),
            hidden_size=int(config["hidden_size"]),
            opt_level=1,
        )
        optimised.save_model_to_file(str(fused))
        with _root_log_level(logging.ERROR):  # the quantiser logs a generic pre-processing hint on the root logger
            quantize_dynamic(
                str(fused),
                str(out_file),
                weight_type=QuantType.QInt8,
                per_channel=True,
                # 7-bit weights: x86 CPUs without VNNI (AVX2 only) saturate u8×s8 products with full-range weights,
                # which cost a cosine of 0.97 to the float model on some queries here; VNNI CPUs lose nearly nothing.
                reduce_range=True,
                # The fused ops are in Microsoft's domain, where shape inference cannot tell the tensor types.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    if not out_file.is_file():  # pragma: no cover - quantize_dynamic raises on failure
        raise RuntimeError(f"ONNX export wrote nothing at {out_file}")


@contextlib.contextmanager
def _root_log_level(level: int) -> Iterator[None]:
    root = logging.getLogger()
    saved = root.level
    root.setLevel(max(level, saved))
    try:
        yield
    finally:
        root.setLevel(saved)


class OnnxQueryEncoder:
    """Embeds queries with the int8 ONNX model; thread-safe (ONNX Runtime sessions are)."""

    def __init__(
        self, model_dir: Path, *, prefix: str, threads: int = 2, max_tokens: int = DEFAULT_QUERY_TOKENS
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        # Idle intra-op threads sleep instead of spinning: a query takes milliseconds, and on a small machine the
        # spinning took the CPU the event loop needs to acknowledge webhooks (bench/fault_harness.py, ack burst).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(model_dir / QUERY_MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max(8, max_tokens))
        self.prefix = prefix

    def embed(self, text: str) -> np.ndarray:
        encoding = self.tokenizer.encode(self.prefix + text)
        ids = np.asarray([encoding.ids], dtype=np.int64)
        mask = np.ones_like(ids)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0][0]
        vector = hidden.mean(axis=0)
        return (vector / (np.linalg.norm(vector) or 1.0)).astype(np.float32)


def has_query_model(model_dir: Path) -> bool:
    return (model_dir / QUERY_MODEL_FILE).is_file()
