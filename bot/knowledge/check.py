"""`bot knowledge check`: lint the whole library; every problem is one `file:line: message` line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bot.knowledge.ids import ID_PATTERN
from bot.knowledge.library import article_paths
from bot.knowledge.model import CANONICAL_ORDER, Article, ArticleFormatError, Role
from bot.knowledge.readers import read_article
from bot.knowledge.roles import is_promo_line
from bot.knowledge.taxonomy import load_topics

MIN_CHARS, MAX_CHARS = 2500, 5000
# よくある質問 is optional and not counted in the body length (reference answers, not the article's reading text).
OPTIONAL_ROLES = frozenset({Role.QA})
MAX_QA_ITEMS = 20  # the questions people actually ask (raised from 10, then 16: each blind set asked questions no item answered)
_QA_SECTION = re.compile(r"\n## よくある(?:ご)?質問\n.*?(?=\n## |\Z)", re.S)
MAX_PHRASING_CHARS = 200
REQUIRED_META = ("id", "topic", "title", "tags", "reviewed", "references")
# Statements of law or public rules; an article that makes them must cite a public source.
LEGAL_TERMS = re.compile(
    r"民法|労働基準法|労働契約法|36協定|３６協定|三六協定|有給休暇|年次有給|育児・?介護休業法|育児休業法|"
    r"労働施策総合推進法|パワハラ防止法|男女雇用機会均等法|高年齢者雇用安定法|労働安全衛生法|雇用保険法|"
    r"割増賃金|解雇予告|フリーランス(?:新法|・事業者間取引)"
)
PHONE = re.compile(r"(?<!\d)(?:0\d{1,4}[-‐－ー ]\d{1,4}[-‐－ー ]\d{3,4}|0120\d{6}|#\d{4})(?!\d)")
FOOTNOTE = re.compile(r"\[\^([A-Za-z0-9_-]+)\]")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.path}:{self.line}: {tag}{self.message}"


def body_length(text: str) -> int:
    """Characters a reader reads: front matter, markup and white space excluded."""
    if text.startswith("---"):
        parts = text.split("\n---", 1)
        text = parts[1] if len(parts) == 2 else text
    text = _QA_SECTION.sub("", FOOTNOTE.sub("", text))
    return len(re.sub(r"[#*>\-\[\]^`]|\s", "", text))


def _front_matter_lines(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    for number, line in enumerate(text.split("\n")[:80], start=1):
        match = re.match(r"^([A-Za-z_]+):", line)
        if match:
            lines.setdefault(match.group(1), number)
        if number > 1 and line.strip() == "---":
            break
    return lines


def check_article(path: Path, article: Article, text: str, topics: set[str]) -> list[Problem]:
    p = str(path)
    problems: list[Problem] = []
    meta_lines = _front_matter_lines(text)

    def err(line: int, message: str, severity: str = "error") -> None:
        problems.append(Problem(p, line, message, severity))

    for key in REQUIRED_META:
        if key not in meta_lines:
            err(1, f"front matter lacks `{key}`")
    if not ID_PATTERN.match(article.id):
        err(meta_lines.get("id", 1), f"id {article.id!r} must be lowercase ascii words joined by '-'")
    if article.id != path.stem:
        err(meta_lines.get("id", 1), f"id {article.id!r} must equal the file name {path.stem!r}")
    if not article.topic:
        err(meta_lines.get("topic", 1), "topic is empty")
    elif article.topic not in topics:
        err(meta_lines.get("topic", 1), f"unknown topic {article.topic!r} (not in topics.tsv)")
    if "tags" in meta_lines and not article.tags:
        err(meta_lines["tags"], "tags is empty: list the words workers use for this worry")
    if "reviewed" in meta_lines and article.reviewed is None:
        err(meta_lines["reviewed"], "reviewed needs a date")

    seen_phrasings: set[str] = set()
    phrasings_line = meta_lines.get("phrasings", 1)
    for phrasing in article.phrasings:
        if len(phrasing) > MAX_PHRASING_CHARS:
            err(
                phrasings_line,
                f"phrasing {phrasing[:20]!r}… is over {MAX_PHRASING_CHARS} characters: one worry, as typed",
            )
        if phrasing in seen_phrasings:
            err(phrasings_line, f"phrasing {phrasing!r} is listed twice")
        seen_phrasings.add(phrasing)

    roles = [s.role for s in article.sections]
    present = [r for r in roles if r in CANONICAL_ORDER]
    for role in CANONICAL_ORDER:
        if role not in roles and role not in OPTIONAL_ROLES:
            err(1, f"missing section: {role.value}")
    ordered = [r for r in CANONICAL_ORDER if r in present]
    if len(set(present)) == len(present) and present != ordered:
        err(
            article.sections[0].line if article.sections else 1,
            "sections are out of order: " + " → ".join(r.value for r in present),
        )
    for section in article.sections:
        if section.role == Role.OTHER:
            err(section.line, f"heading {section.heading!r} has no recognised role")
        if section.role in (Role.ANALYSIS, Role.STRATEGY) and not 2 <= len(section.items) <= 4:
            err(section.line, f"{section.role.value} needs 2–4 items, has {len(section.items)}")
        if section.role == Role.QA:
            if not 2 <= len(section.items) <= MAX_QA_ITEMS:
                err(section.line, f"qa needs 2–{MAX_QA_ITEMS} items, has {len(section.items)}")
            for item in section.items:
                if not item.title.endswith(("？", "?")):
                    err(item.line, f"qa item {item.title!r}: the label is the question, ending in ？")
        if section.role == Role.ACTION_PLAN:
            if not 3 <= len(section.steps) <= 5:
                err(section.line, f"action plan needs 3–5 sub-steps, has {len(section.steps)}")
            for step in section.steps:
                if len(step.items) < 2:
                    err(step.line, f"sub-step {step.heading!r} needs at least 2 items, has {len(step.items)}")
        for item in section.items + [i for s in section.steps for i in s.items]:
            if not item.title:
                err(item.line, "item needs a label: write `- **label**: detail`")
            elif len(item.detail) < 15:
                err(item.line, f"item {item.title!r} has too little detail")

    length = body_length(text)
    if not MIN_CHARS <= length <= MAX_CHARS:
        err(1, f"body is {length} characters; keep it between {MIN_CHARS} and {MAX_CHARS}")

    keys = {r.key for r in article.references}
    for ref in article.references:
        if not ref.title:
            err(meta_lines.get("references", 1), f"reference {ref.key!r} has no title")
        if not re.match(r"^https://[^\s/]+\.[^\s]+$", ref.url):
            err(meta_lines.get("references", 1), f"reference {ref.key!r} needs an https:// url, not {ref.url!r}")
    cited: set[str] = set()
    for number, line in enumerate(text.split("\n"), start=1):
        for key in FOOTNOTE.findall(line):
            cited.add(key)
            if key not in keys:
                err(number, f"[^{key}] cites a reference that the front matter does not list")
        if PHONE.search(line):
            err(number, "phone number in article text: help lines live in knowledge/helplines.yaml")
        if is_promo_line(line):
            err(number, "promotional text does not belong in an advice article")
        if not article.references and LEGAL_TERMS.search(line) and number > meta_lines.get("references", 0):
            err(number, f"states a legal fact ({LEGAL_TERMS.search(line).group(0)}) but lists no reference")  # type: ignore[union-attr]
    for ref in article.references:
        if ref.key not in cited:
            err(meta_lines.get("references", 1), f"reference {ref.key!r} is never cited with [^{ref.key}]", "warning")
    return problems


def check_library(knowledge_dir: Path, topics_path: Path | None = None) -> tuple[list[Problem], int]:
    """(problems, number of articles read)."""
    topics_path = topics_path or knowledge_dir / "topics.tsv"
    problems: list[Problem] = []
    if not topics_path.exists():
        return [Problem(str(topics_path), 0, "topic taxonomy not found")], 0
    topics = load_topics(topics_path)
    seen_ids: dict[str, str] = {}
    covered: set[str] = set()
    paths = article_paths(knowledge_dir)
    read: list[tuple[Path, Article]] = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        try:
            article = read_article(path)
        except ArticleFormatError as exc:
            problems.append(Problem(exc.path, exc.line, exc.message))
            continue
        read.append((path, article))
        problems += check_article(path, article, text, set(topics))
        if article.id in seen_ids:
            problems.append(Problem(str(path), 1, f"duplicate id {article.id!r} (also in {seen_ids[article.id]})"))
        seen_ids[article.id] = str(path)
        if article.topic:
            covered.add(article.topic)
    for slug, topic in topics.items():
        if slug not in covered:
            problems.append(Problem(str(topics_path), topic.line, f"topic {slug!r} has no article"))
    problems += case_term_problems(read)
    for path, article in read:
        problems += back_reference_problems(path, article)
    return problems, len(paths)


# An answer shows the items of 現状分析, アクションプラン and キャリア戦略 to other people with the same kind of worry, so
# they must not carry this article's own case (「入院中の前任者」「入札」「所長」): those words belong in 相談 and 成功事例.
# A case term is a noun of the article's 相談 that no other article uses (the library's own measure of "particular to
# this case") and that is not part of the article's title or tags. Warnings until the library is rewritten to the format (docs/article-format.md).
CASE_TERM_MAX_ARTICLES = 1
CASE_TERM_SEVERITY = "error"
# "Rare in the library" needs a library: with a handful of articles every word is rare.
CASE_TERM_MIN_ARTICLES = 10
_ITEM_ROLES = (Role.ANALYSIS, Role.ACTION_PLAN, Role.STRATEGY)


def without_examples(text: str) -> str:
    from bot.answer.examples import split_examples

    return split_examples(text)[0]


def case_term_problems(articles: list[tuple[Path, Article]]) -> list[Problem]:
    from bot.retrieval.tokenize_ja import get_tokenizer

    if len(articles) < CASE_TERM_MIN_ARTICLES:
        return []
    tokenizer = get_tokenizer()

    def words(text: str) -> set[str]:
        return {t for t in tokenizer.nouns(text) if len(t) >= 2 and not re.fullmatch(r"[ぁ-んー]+|[\W\d_]+", t)}

    body_words = {article.id: words(" ".join(section.text for section in article.sections)) for _, article in articles}
    df: dict[str, int] = {}
    for vocabulary in body_words.values():
        for word in vocabulary:
            df[word] = df.get(word, 0) + 1
    problems: list[Problem] = []
    for path, article in articles:
        consultation = article.section(Role.CONSULTATION)
        if consultation is None:
            continue
        naming = words(" ".join([article.title, *article.tags, *article.general_words]))
        case = {w for w in words(consultation.text) if df.get(w, 0) <= CASE_TERM_MAX_ARTICLES} - naming
        case -= set(article.general_words)  # as written, too: a word alone can be read as another part of speech
        for role in _ITEM_ROLES:
            section = article.section(role)
            if section is None:
                continue
            items = list(section.items) + [item for step in section.steps for item in step.items]
            for item in items:
                # A marked example sentence (「例：…」) may carry the case: it is shown only to someone who shares it.
                found = sorted(case & words(f"{item.title} {without_examples(item.detail)}"))
                if found:
                    terms = "、".join(f"「{w}」" for w in found[:4])
                    problems.append(
                        Problem(
                            str(path),
                            item.line,
                            f"case term {terms} in {role.value}: say what applies to anyone in this situation "
                            "(the case belongs in 相談 and 成功事例)",
                            CASE_TERM_SEVERITY,
                        )
                    )
    return problems


# The composer shows items one at a time and shortened, so an item must stand alone: 「このうち」「上記の表」「4つの箱の
# メモ」 point at another item's output the reader of this one never sees. 「先ほど」「上記」 inside 「…」 are what someone
# says to a listener who shares the moment (「先ほどの件ですが」) and are not read; a written thing the item itself makes
# (「ノートに書き出し、そのノートを…」) may be pointed back at, quoted or not.
BACK_REFERENCE_ROLES = (Role.ANALYSIS, Role.ACTION_PLAN, Role.STRATEGY, Role.QA)
_WRITTEN = r"(?:比較表|一覧表|計画表|表|メモ|リスト|一覧|ノート|箱|シート|記録|下書き|書き出し|図|チャート|見出し|欄|ファイル|紙)"
# Always a pointer outside the item: there is no 「上」 or 「先ほど」 in an item read alone.
_BACK_ALWAYS = re.compile(
    r"上記|前述|先述|先ほど|さきほど|上の(?=[^、。]{0,6}" + _WRITTEN + r")|前の(?:ステップ|手順|項目|段階)|"
    r"(?:ステップ|手順)[0-9０-９]+(?:で|の)|(?:今回|先に|前に|さっき)(?:作った|書いた|まとめた|書き出した)"
)
# A demonstrative and a written thing: fine when the item itself made something written before it.
_BACK_DEMONSTRATIVE = re.compile(r"(?:この|その|これらの|それらの)(?:[0-9０-９一二三四五六七八九十]+つの)?" + _WRITTEN)
_WRITTEN_OR_MADE = re.compile(_WRITTEN + r"|書き出|書き込|メモ|まとめ|記録|リスト|一覧|表に|表を")
# A pronoun for a set only the previous item named, where the item opens with it.
_BACK_OPENING = re.compile(r"^(?:このうち|そのうちの|これらを|これらの|これらは|それらを|それらの|以上の)")
# A counted set (「4つの箱」) or a named table (「比較表」) that an earlier item of the article made: that item's output.
_COUNTED = re.compile(
    r"(?<![0-9０-９])(?:[2-9２-９]|二|三|四|五|六|七|八|九)つの" + _WRITTEN + r"|比較表|一覧表|計画表|早見表"
)
_MAKES = re.compile(r"まとめ|作っ|作る|作り|書き出|書く|書き|並べ")
_QUOTED = re.compile(r"「[^」]*」|『[^』]*』")


def back_reference_phrases(title: str, detail: str, earlier_counted: set[str]) -> list[str]:
    """The back-references in one item (its label and detail; quoted speech not read), each as written."""
    title_text = _QUOTED.sub("　", title)
    detail_text = _QUOTED.sub("　", detail).strip()
    text = f"{title_text}：{detail_text}"
    found: list[str] = []
    found += [m.group(0) for m in _BACK_ALWAYS.finditer(text)]
    # Quoted or not: 「この紙の質問を読んで」 hands over a paper only another item made.
    whole = f"{title}：{detail}"
    for match in _BACK_DEMONSTRATIVE.finditer(whole):
        if not _WRITTEN_OR_MADE.search(whole[: match.start()]):
            found.append(match.group(0))
    opening = _BACK_OPENING.match(detail_text)
    if opening:
        found.append(opening.group(0))
    # ...unless this item says how to make it (「実績をまとめた一覧表」).
    found += [
        m.group(0)
        for m in _COUNTED.finditer(text)
        if m.group(0) in earlier_counted and not _MAKES.search(text[: m.start()])
    ]
    return list(dict.fromkeys(found))


def back_reference_problems(path: Path, article: Article) -> list[Problem]:
    problems: list[Problem] = []
    counted: set[str] = set()
    for role in BACK_REFERENCE_ROLES:
        section = article.section(role)
        if section is None:
            continue
        items = [("", item) for item in section.items] + [
            (f" › {step.heading}", item) for step in section.steps for item in step.items
        ]
        for where, item in items:
            for phrase in back_reference_phrases(item.title, item.detail, counted):
                problems.append(
                    Problem(
                        str(path),
                        item.line,
                        f"{article.id}: back-reference 「{phrase}」 in {role.value}{where} item 「{item.title}」: the "
                        "composer shows each item alone, so name the thing itself instead of pointing at another "
                        "item's output",
                    )
                )
            text = _QUOTED.sub("　", f"{item.title}：{item.detail}")
            counted |= {m.group(0) for m in _COUNTED.finditer(text)}
    return problems
