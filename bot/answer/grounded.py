"""The grounded composer: the three-part answer built from the curated article's own items.

Items are shown as the curated text says them (for labour-law topics that matters: no free paraphrase). What is
personal is the selection and order: factors and steps that match what this worker wrote come first, the opening
sentence reflects their situation, and only what fits on a phone is shown; the rest is one tap away (follow-ups).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.answer.examples import fitting_examples, split_examples
from bot.answer.footnotes import source_name, with_sources
from bot.answer.model import ActionGroup, AnalysisPoint, Answer, DirectAnswer, Source, StrategyPoint
from bot.answer.prompts import Lexicon, Situation, load_lexicon, load_replies
from bot.answer.render import render_text
from bot.knowledge.model import Article, Item, Role, Step
from bot.retrieval.retriever import RetrievalResult
from bot.retrieval.tokenize_ja import get_tokenizer

# What fits a phone screen in the first answer; "もっと詳しく" shows everything.
MAX_FACTORS = 3
MAX_ITEMS_PER_GROUP = 2
MAX_STRATEGY = 3
MIN_SOURCES = 3
# A short message (a phone line) gets a shorter first answer: the two most relevant factors, the first three steps
# (one from each of the plan's first groups, in the article's order) and one strategy point; 「もっと詳しく」 has the rest.
BRIEF_BELOW_CHARS = 60
BRIEF_FACTORS = 2
BRIEF_GROUPS = 3
BRIEF_STRATEGY = 1
# A second article joins a mixed worry when it is this close to the best one and of another topic.
MIXED_MARGIN = 0.04
# ...and only when the message uses at least this many of that topic's own words (its name and tags).
MIXED_OWN_WORDS = 2
MAX_SHARED_OWN_WORD = 3


@dataclass(frozen=True)
class Signals:
    """What the message says about this worker, for personalisation."""

    role: str | None
    situations: tuple[str, ...]
    boosts: tuple[tuple[str, float], ...]  # (word, weight of the situation that asked for it)
    feeling: str
    tokens: frozenset[str] = field(default_factory=frozenset)
    kind: str = "distress"  # distress | how_to | planning: what the opening answers
    echo: str = ""  # the worker's own words for the opening
    felt: bool = False  # a feeling was named (else `feeling` is the default)
    length: int = 0  # characters of the message, spaces excluded
    question: str = ""  # the sentence that asks something (not a bare 「どうしたらいい？」), if any
    body: bool = False  # the message names a bodily sign (palpitations, no sleep, extreme hours)
    questions: tuple[str, ...] = ()  # every sentence that asks something, in order (a long consultation asks several)
    # The same questions with what they lean on: a short message whole (「これって普通？」 means nothing alone), a
    # short question with the sentence before it. Read for meaning against Q&A items (GroundedComposer._related_item).
    asked_in_context: tuple[str, ...] = ()


def item_text(item: Item, *, compact: bool = False) -> str:
    detail = first_sentence(item.detail) if compact else item.detail
    return f"{item.title}：{detail}" if item.title else detail


def sentences(text: str) -> list[str]:
    """Split at sentence ends outside quotes (「…。」 stays whole)."""
    out: list[str] = []
    depth, start = 0, 0
    for index, ch in enumerate(text):
        if ch in "「『（(":
            depth += 1
        elif ch in "」』）)":
            depth = max(0, depth - 1)
        elif ch in "。！？" and depth == 0:
            out.append(text[start : index + 1])
            start = index + 1
    if text[start:].strip():
        out.append(text[start:])
    return out


# Example phrasing is a quoted sentence (「担当の〇〇です」「確認して、明日の15時までにご連絡します」); a quoted notion
# (「聞けば分かる人」「甘え」) is not worth a second sentence in a first answer.
_SCRIPT = re.compile(
    r"「(?:[^」]*(?:です|ます|ください|ません|でした|ましょう|ですか|ますか)|[^」]*[〇△][^」]*|[^」]{15,})」"
)


def first_sentence(text: str) -> str:
    """The curated words as written, just fewer: the first sentence, or up to the example phrasing when that
    comes in the second (「最初の電話の台本」 is worth little without the script itself)."""
    parts = sentences(text)
    if len(parts) >= 2 and "「" not in parts[0] and _SCRIPT.search(parts[1]):
        return parts[0] + parts[1]
    return parts[0] if parts else text


# Sentences that cite a law (a reference on e-Gov's law search) are never shortened or paraphrased: in a first answer
# they leave the item and are shown whole, in their own short section (`legal_points`), once each.
LAW_SOURCE_HOST = "laws.e-gov.go.jp"
MAX_LEGAL_POINTS = 3
BRIEF_LEGAL_POINTS = 1  # a short message's first answer; 「もっと詳しく」 shows the rest


_SOURCE_NOTE = re.compile(r"（出典：([^）]*)）")


def law_sentences(text: str, law_names: frozenset[str]) -> list[str]:
    """The sentences of `text` whose source note (bot.answer.footnotes) names one of the laws."""
    if not law_names or "出典" not in text:
        return []
    return [
        s.strip()
        for s in sentences(text)
        if any(name in law_names for note in _SOURCE_NOTE.findall(s) for name in note.split("、"))
    ]


def brief_detail(detail: str, law_names: frozenset[str]) -> tuple[str, list[str]]:
    """A first answer's text for an item: its first sentence that cites no law (the example phrasing kept with it),
    and the law-citing sentences it leaves for the legal section."""
    legal = law_sentences(detail, law_names)
    rest = "".join(s for s in sentences(detail) if s.strip() not in legal).strip()
    if not rest:  # the item is its legal statement: shown whole where it stands
        return detail, []
    return first_sentence(rest), legal


class ItemRanker:
    """Scores article items against the message: shared words (idf-weighted) plus the lexicon's boosts."""

    def __init__(self, articles: dict[str, Article]) -> None:
        tokenizer = get_tokenizer()
        self._tokens: dict[int, frozenset[str]] = {}
        df: Counter[str] = Counter()
        for article in articles.values():
            for item in _all_items(article):
                tokens = frozenset(tokenizer.tokens(item_text(item)))
                self._tokens[id(item)] = tokens
                df.update(tokens)
        n = max(sum(1 for _ in self._tokens), 1)
        self._idf = {t: math.log(1 + n / c) for t, c in df.items()}

    def idf(self, token: str) -> float:
        return self._idf.get(token, 1.0)

    def tokens_of(self, item: Item) -> frozenset[str]:
        found = self._tokens.get(id(item))
        if found is None:
            found = frozenset(get_tokenizer().tokens(item_text(item)))
        return found

    def score(self, item: Item, signals: Signals) -> float:
        overlap = sum(self._idf.get(t, 1.0) for t in self.tokens_of(item) & signals.tokens)
        text = item_text(item)
        boost = sum(3.0 * w for word, w in signals.boosts if word in item.title) + sum(
            1.5 * w for word, w in signals.boosts if word in text
        )
        return overlap + boost


def _all_items(article: Article) -> list[Item]:
    out: list[Item] = []
    for section in article.sections:
        out += section.items
        for step in section.steps:
            out += step.items
    return out


ECHO_CHARS = 28
LONG_MESSAGE_CHARS = 150
MAX_QUESTIONS = 3  # a consultation's questions tried against the Q&A items (the best-fitting pair answers)
HOW_TO_MAX_CHARS = 60
# idf-weighted words a question must share with a Q&A item's question to be answered by it (chosen by reading answers).
DIRECT_ANSWER_MIN_SCORE = 4.0
LOOSE_DIRECT_ANSWER_MIN_SCORE = 2.5
# Cosines of the two questions' query embeddings: a paraphrase of the same question scores about 0.88 or more; below
# about 0.78 shared words mislead (「これってパワハラ？」 for 「パワハラの証拠って録音でも有効？」). Chosen on 214 writers'
# training questions whose best Q&A item a reviewer labelled (training/qa-match/dev.tsv, bench/qa_match_calibration.py):
# 62 answered, 38 the same question, 19 related, 5 off — dev numbers.
SAME_QUESTION_COSINE = 0.88
# A question asked in other words than any item's: the question in its context, read as a query against each item's
# question and answer read as a passage (the retrieval model's own pairing). At this cosine the item answered what
# was asked in the dev reading of 60 consultation questions no item matched word for word (eval/consultations_blind.tsv
# before its second round; dev numbers): above it 10 of 13 fitting, below it fewer than half.
RELATED_ANSWER_COSINE = 0.72
# The plan step whose example phrasing answers a question about what to say: a lower bar than a Q&A item's, as the
# candidates are only the cited article's own phrasings (read on the dev consultations; not calibrated on labels).
WORDING_ANSWER_COSINE = 0.66
CONTEXT_MESSAGE_CHARS = 80  # a message this short is its own question's context
SHORT_QUESTION_CHARS = 20  # a question this short leans on the sentence before it
SAME_KIND_BONUS = 0.05  # among fitting items, one that asks for the same kind of thing (an amount, a time) comes first
RELATED_QUESTION_COSINE = 0.78
MAX_CACHED_VECTORS = 4096  # Q&A questions (and the odd repeated message): bounded all the same
ANSWER_WORD_WEIGHT = 0.5


# A bare self-introduction (「看護師です。」「人事の仕事をしています。」) is not what the worry is.
_SELF_INTRO = re.compile(r".{0,16}(?:です|でした|と申します|しています|してます|やっています|働いています)[。!！]?")
# A question with nothing of its own (「どうしたらいい？」) is not quoted as the question.
_BARE_QUESTION = re.compile(
    r"(?:どう(?:したら|すれば)(?:いい|良い)?(?:の|ですか|でしょうか)?|どうしよう|教えて(?:ください)?)[?？]?"
)


# What a question asks for, where it says so: two questions that ask for different things are different questions.
_ASK_KINDS = {
    "amount": re.compile(
        r"何(?:社|件|回|枚|日|時間|か月|ヶ月|カ月|年|歳|割|%|％)|どの(?:くらい|ぐらい)|どれ(?:くらい|ぐらい)|いくら"
    ),
    "when": re.compile(r"いつ(?!も)|タイミング|何か月前|何ヶ月前"),
    "first": re.compile(r"何から|まず何|最初に何"),
    "late": re.compile(r"遅(?:い|すぎ|く(?:な|は))|手遅れ|今からでも"),
    # Which of two (「退職届と退職願、どっちを出せばいい？」) is not when or how much (「何か月前に言えばいい？」).
    "choice": re.compile(r"どっち|どちら|それとも"),
    "wording": re.compile(
        r"(?:どう|なんて|何て|なんと|何と)(?:言|伝|話|切り出|断|謝|説明|答|書)|言い方|伝え方|切り出し方|断り方|書き方"
    ),
}


# A question about how to go about it: the plan is its answer.
_HOW_QUESTION = re.compile(
    r"どう(?:すれば|したら|やって|進め|立て直|取り戻|動|準備|考え|対処|対応|乗り越え|接|振る舞|向き合|関わ)|何から|何をすれば|何をしたら|"
    r"どういう順|どんな順|進め方|順番|手順|アドバイス"
)


# A question that asks whether (「〜していい？」「これって普通？」「違法？」「休職したほうがいい？」) names no what, when, how or
# how much: it is asked without a question word, and is not an elliptic 「〜のときは？」「〜なら？」 (which asks what to do).
# Two questions of which one asks whether and the other asks for an amount, a time or the wording are different
# questions; without this kind, an item asking whether (「介護休業って、自分で介護するために取るもの？」) answered
# 「会社にはどのタイミングで伝える？」 in the dev reading of eval/consultations_blind2.tsv.
_QUESTION_WORD = re.compile(
    r"どう|何|なにを|なにが|なんの|なんで(?!しょう|す)|いつ|どこ|誰|だれ|どれ|どの|どんな|どちら|どっち|いくら|なぜ|タイミング|教えて|方法|コツ"
)
_ELLIPTIC = re.compile(r"(?:は|なら|たら|だら|には|では|って)$")


# 「何年も」「何度も」 say "many", they ask nothing: 「同じ作業を何年も続けて、このままでやばい？」 asks whether.
_MANY = re.compile(r"何(?:年|回|度|日|時間|社|件|か月|ヶ月|カ月|人|週間)も(?!ら)")  # not 「何日もらえる」


def _asks_whether(question: str) -> bool:
    text = _MANY.sub("", unicodedata.normalize("NFKC", question)).strip()
    text = re.sub(r"[。…!！？?\s]+$", "", text)
    return bool(text) and not _QUESTION_WORD.search(text) and not _ELLIPTIC.search(text)


def _ask_kinds(question: str) -> frozenset[str]:
    # Quoted words are not what is asked: 「『月いくら』って数字出した方がいい？」 asks whether, not how much.
    own = _MANY.sub("", re.sub(r"「[^」]*」|『[^』]*』", "", question))
    kinds = {kind for kind, pattern in _ASK_KINDS.items() if pattern.search(own)}
    # 「もう遅い？」 is itself asked whether: it and 「採用されるものですか？」 may answer each other.
    if (not kinds or kinds == {"late"}) and _asks_whether(own):
        kinds.add("whether")
    return frozenset(kinds)


def _is_bare_question(sentence: str) -> bool:
    return bool(_BARE_QUESTION.fullmatch(sentence.strip().rstrip("。！？!?…")))


def message_sentences(message: str) -> list[str]:
    """Sentences of a message, never split inside 「…」 (NFKC turns ！？ into !?, so both are sentence ends)."""
    text = " ".join(unicodedata.normalize("NFKC", message).split()).replace("!", "！").replace("?", "？")
    return [s.strip() for s in sentences(text) if s.strip()]


def echo_of(message: str, pick: str | None = None) -> str:
    """The worker's words for quoting back (「…」とのこと): `pick`, or the first sentence that is not a bare
    self-introduction, shortened at a natural break."""
    sentences_ = message_sentences(message)
    worry = [s for s in sentences_ if not _SELF_INTRO.fullmatch(s) and not _is_bare_question(s)]
    if pick is None and len("".join(sentences_)) > LONG_MESSAGE_CHARS:
        # A long consultation often opens with background (family, money, a hobby): its first sentence is not the
        # worry, so it is not quoted back; the situations or a plain opening speak instead.
        return ""
    first = pick or (worry or [""])[0]
    if not re.search(r"[ぁ-んァ-ヶ一-龥]", first):
        return ""  # romaji or emoji only: not quoted back
    first = re.sub(r"[。！？!?、,.…〜~w笑]+$", "", first).replace("「", "『").replace("」", "』")
    if len(first) <= ECHO_CHARS:
        return first
    if pick is not None:
        # A question quoted back is its asking clause (「…んですが、残業って月何時間を超えたら多すぎ？」 → the part after
        # the comma), not the background that opens the sentence.
        clause = re.split(r"[、,]", first)[-1].strip()
        if 6 <= len(clause) <= ECHO_CHARS + 8:
            return clause
    cut = max(first.rfind("、", 0, ECHO_CHARS), first.rfind(" ", 0, ECHO_CHARS))
    return first[:cut] if cut >= 8 else first[: ECHO_CHARS - 1] + "…"


def _own_role(text: str, lexicon: Lexicon) -> str | None:
    """A role only from how people describe themselves (「営業です」「看護師として」), not from any job noun."""
    for pattern, label in lexicon.roles:
        for match in pattern.finditer(text):
            if lexicon.role_self.match(text[match.end() :]) or lexicon.role_before.search(
                text[max(0, match.start() - 8) : match.start()]
            ):
                return label
    return None


def _own_situation(situation: Situation, text: str, lexicon: Lexicon) -> bool:
    """The situation is the worker's own (「父が入院」 is not their predecessor falling ill)."""
    for match in situation.pattern.finditer(text):
        if not lexicon.other_subject.search(text[max(0, match.start() - 10) : match.start()]):
            return True
    return False


def read_signals(message: str, lexicon: Lexicon) -> Signals:
    text = unicodedata.normalize("NFKC", message)
    role = _own_role(text, lexicon)
    matched = [s for s in lexicon.situations if _own_situation(s, text, lexicon)]
    # The opening names at most two situations, the most telling first, and not two that say the same thing.
    phrases: list[str] = []
    covered: set[str] = set()
    for situation in sorted(matched, key=lambda s: -s.weight):
        if len(phrases) < 2 and len(set(situation.boost) & covered) * 2 <= len(situation.boost):
            phrases.append(situation.phrase)
            covered |= set(situation.boost)
    weights: dict[str, float] = {}
    for situation in matched:
        for word in situation.boost:
            weights[word] = max(weights.get(word, 0.0), situation.weight)
    named = next((sentence for pattern, sentence in lexicon.feelings if pattern.search(text)), None)
    feeling = named or lexicon.default_feeling
    questions = tuple(
        s
        for s in message_sentences(message)
        # Words quoted from someone else (「誰かやれる人？」) are not the worker's question.
        if lexicon.question.search(re.sub(r"「[^」]*」|『[^』]*』", "", s)) and not _is_bare_question(s)
    )
    asked = questions[0] if questions else None
    all_sentences = message_sentences(message)
    length = len("".join(text.split()))
    in_context: list[str] = []
    for q in questions[:MAX_QUESTIONS]:
        if length < CONTEXT_MESSAGE_CHARS:
            in_context.append(" ".join(all_sentences))
            break
        at = all_sentences.index(q) if q in all_sentences else 0
        in_context.append(f"{all_sentences[at - 1]}{q}" if at > 0 and len(q) < SHORT_QUESTION_CHARS else q)
    if named is not None:
        kind = "distress"
    elif asked is not None:
        kind = "how_to"
    elif lexicon.planning.search(text):
        kind = "planning"
    else:
        kind = "distress"
    return Signals(
        role,
        tuple(phrases),
        tuple(weights.items()),
        feeling,
        frozenset(get_tokenizer().tokens(text)),
        kind=kind,
        echo=echo_of(message, asked if kind == "how_to" else None),
        felt=named is not None,
        length=length,
        question=asked or "",
        body=any(
            not lexicon.body_others.search(text[max(0, m.start() - 12) : m.start()])
            for m in lexicon.body_signs.finditer(text)
        ),
        questions=questions[:MAX_QUESTIONS],
        asked_in_context=tuple(in_context),
    )


def is_brief(message: str) -> bool:
    """A short message (a phone line): its first answer is shorter still (BRIEF_* above)."""
    return len("".join(message.split())) < BRIEF_BELOW_CHARS


def _brief_steps(steps: list[Step], ranker: ItemRanker, signals: Signals) -> list[Step]:
    """A short message's steps: the plan's first step (what the others build on), then the steps whose items speak
    most to the message, shown in the article's order. With nothing to tell them apart, the first steps."""
    if len(steps) <= BRIEF_GROUPS:
        return steps
    relevance = [max((ranker.score(i, signals) for i in step.items), default=0.0) for step in steps[1:]]
    ranked = sorted(range(1, len(steps)), key=lambda k: (-relevance[k - 1], k))[: BRIEF_GROUPS - 1]
    return [steps[0], *(steps[k] for k in sorted(ranked))]


def _ordered(items: list[Item], ranker: ItemRanker, signals: Signals) -> list[Item]:
    """Most relevant first; ties keep the article's own order (the curated reasoning order)."""
    scored = [(ranker.score(item, signals), -i, item) for i, item in enumerate(items)]
    return [item for _, _, item in sorted(scored, key=lambda t: (t[0], t[1]), reverse=True)]


class GroundedComposer:
    """Builds `Answer`s from library articles; no network, no model calls beyond the tokenizer."""

    def __init__(
        self,
        articles: dict[str, Article],
        topic_names: dict[str, str],
        prompts_dir: Path,
        *,
        embed: Callable[[str], np.ndarray] | None = None,
        embed_passages: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        # Shown text: footnote markers become source notes here, once, for every channel (bot.answer.footnotes).
        self.articles = {aid: with_sources(article) for aid, article in articles.items()}
        self.topic_names = topic_names
        self.prompts_dir = prompts_dir
        self.lexicon = load_lexicon(prompts_dir)
        self.replies = load_replies(prompts_dir)
        self.ranker = ItemRanker(articles)
        # The query embedding (unit length), for telling whether two questions ask the same thing; None: words only.
        self.embed = embed
        self._vectors: dict[str, np.ndarray] = {}
        # Passage embeddings (one row per text, unit length) for reading a question against Q&A answers; None: off.
        self.embed_passages = embed_passages
        self._passages: dict[str, np.ndarray] = {}
        self._own: dict[str, frozenset[str]] | None = None
        self.law_names = {
            aid: frozenset(source_name(r) for r in a.references if LAW_SOURCE_HOST in r.url)
            for aid, a in articles.items()
        }

    # ----- pieces -------------------------------------------------------------------------------------------------
    def sources(self, retrieval: RetrievalResult) -> list[Source]:
        return [
            Source(article_id=h.article_id, title=h.title, topic=h.topic, score=round(h.score, 4))
            for h in retrieval.articles
        ]

    def empathy(self, signals: Signals, topic: str | None, *, answered: bool = False) -> str:
        """An opening that reads this message: its situations when the worker is living them, a question answered as
        a question, plans as plans; the worker's own words otherwise. Never the topic label in a sentence.
        `answered`: the direct reply follows, so a question's opening promises nothing more than the reply itself."""
        templates = self.lexicon.templates
        situations = templates["situation_joiner"].join(signals.situations[:2])
        # A short question is answered as a question; a longer message that asks one is a worry first.
        asks = signals.kind == "how_to" and signals.echo and signals.length < HOW_TO_MAX_CHARS
        if asks:
            template = templates["how_to_answered" if answered else "how_to"]
        elif signals.kind == "planning" and signals.echo and not situations:
            template = templates["planning"]
        elif signals.role and situations:
            template = templates["with_role_and_situations"]
        elif situations:
            template = templates["with_situations"]
        elif signals.echo:
            template = templates["echo_distress"]
        else:
            template = templates["plain"]
        opening = template.format(
            role=signals.role or "", situations=situations, echo=signals.echo, feeling=signals.feeling
        )
        return f"{opening}{self.lexicon.body_sentence}" if signals.body else opening

    def follow_ups(self, article: Article, *, full: bool = False) -> list[str]:
        labels = self.replies["follow_ups"]
        options = [labels["next"] if full else labels["more"]]
        if article.section(Role.CASE):
            options.append(labels["case"])
        if article.section(Role.EXPERT):
            options.append(labels["expert"])
        options.append(labels["other"])
        return options[:4]

    # ----- answers ------------------------------------------------------------------------------------------------
    def advice(
        self,
        message: str,
        retrieval: RetrievalResult,
        *,
        article_id: str | None = None,
        full: bool = False,
        context: str = "",
    ) -> Answer:
        """The three-part answer for the best (or the given) article, personalised to `message` (+ context)."""
        best = retrieval.best
        aid = article_id or (best.article_id if best else None)
        if aid is None or aid not in self.articles:
            raise LookupError("no article to answer from")
        article = self.articles[aid]
        signals = read_signals(f"{context}\n{message}" if context else message, self.lexicon)

        # The first answer fits a phone: first sentences only; 「もっと詳しく」 shows every item in full. A short message
        # gets a shorter answer still (a long consultation like the seed gets the article's whole structure).
        compact = not full
        laws = self.law_names.get(article.id, frozenset())
        legal: list[str] = []

        def shown(detail: str) -> str:
            general, examples = split_examples(detail)
            kept = self.fitting_examples(examples, general, signals)
            if compact:
                general, moved = brief_detail(general, laws)
                legal.extend(m for m in moved if m not in legal)
            return "".join([general, *kept])

        def shown_item(item: Item) -> str:
            detail = shown(item.detail)
            return f"{item.title}：{detail}" if item.title else detail

        brief = not full and is_brief(message)
        direct, sibling = (None, None) if full else self._direct_reply(article, message, signals)
        analysis = article.section(Role.ANALYSIS)
        factors = _ordered(analysis.items, self.ranker, signals) if analysis else []
        if not full:
            # A short question answered directly needs less background: the answer is what they came for.
            factors = factors[: (BRIEF_FACTORS - (direct is not None)) if brief else MAX_FACTORS]

        groups: list[ActionGroup] = []
        plan = article.section(Role.ACTION_PLAN)
        for step in (_brief_steps(plan.steps, self.ranker, signals) if brief else plan.steps) if plan else []:
            # A step the direct reply already gives (「まずは『…』から」) leaves its place to the next one.
            given = [i for i in step.items if i.title and direct is not None and f"『{i.title}』" in direct.answer]
            candidates = [i for i in step.items if i not in given] or step.items
            items = candidates
            if brief:
                items = _ordered(candidates, self.ranker, signals)[:1]
            elif not full:
                # The most relevant items, shown in the article's order: a step never comes before the one it
                # builds on (「記録をつける」 before 「記録を持って相談する」).
                chosen = {id(i) for i in _ordered(candidates, self.ranker, signals)[:MAX_ITEMS_PER_GROUP]}
                items = [i for i in candidates if id(i) in chosen]
            groups.append(ActionGroup(title=step.heading, steps=[shown_item(i) for i in items]))

        extra = self._mixed_worry_step(article, retrieval, signals) if not full and article_id is None else None
        cited = [article.id]
        if sibling is not None:
            cited.append(sibling.id)
        if extra is not None:
            other, group = extra
            groups.append(group)
            cited.append(other.id)

        strategy = article.section(Role.STRATEGY)
        strategy_items = strategy.items if strategy else []
        if not full:
            # A short question answered directly: the reply, a factor and three first steps fit a phone screen or two;
            # the strategy waits behind 「もっと詳しく」 (with the reply, the fifth blind set's short answers ran to 800).
            strategy_items = strategy_items[: (0 if direct is not None else BRIEF_STRATEGY) if brief else MAX_STRATEGY]

        analysis_points = [AnalysisPoint(title=i.title, detail=shown(i.detail)) for i in factors]
        sources = self.sources(retrieval)
        # Cited articles lead the sources even when a follow-up pinned an article that ranked lower for this text.
        ordered_sources = [s for c in cited for s in sources if s.article_id == c]
        for c in cited:
            if not any(s.article_id == c for s in ordered_sources):
                a = self.articles[c]
                ordered_sources.append(Source(article_id=a.id, title=a.title, topic=a.topic or "", score=0.0))
        ordered_sources += [s for s in sources if s.article_id not in cited]

        answer = Answer(
            kind="advice",
            topic=article.topic,
            sources=ordered_sources,
            empathy=self.empathy(signals, article.topic, answered=direct is not None),
            direct_answer=direct,
            situation_analysis=analysis_points,
            action_plan=groups,
            career_strategy=[StrategyPoint(title=i.title, detail=shown(i.detail)) for i in strategy_items],
            # A legal sentence the direct reply already states is not repeated under 法律のポイント.
            legal_points=[p for p in legal if direct is None or p not in direct.answer][
                : BRIEF_LEGAL_POINTS if brief else MAX_LEGAL_POINTS
            ],
            follow_ups=self.follow_ups(article, full=full),
            cited=cited,
        )
        answer.text = render_text(answer, self.replies)
        return answer

    def fitting_examples(self, examples: list[str], general: str, signals: Signals) -> list[str]:
        """The item's marked example sentences (「例：…」) that this worker's message shares a case word with."""
        if not examples:
            return []
        return fitting_examples(examples, general, signals.tokens, get_tokenizer().tokens, self.ranker.idf)

    def item_for(self, item: Item, signals: Signals) -> str:
        """An item's whole text for this worker: its marked examples only when they share the worker's case."""
        general, examples = split_examples(item.detail)
        detail = "".join([general, *self.fitting_examples(examples, general, signals)])
        return f"{item.title}：{detail}" if item.title else detail

    def _direct_reply(
        self, article: Article, message: str, signals: Signals
    ) -> tuple[DirectAnswer | None, Article | None]:
        """The reply that opens a first answer, and the sibling article it came from when not `article`: the article's
        own Q&A item; else an item another article of its topic asks word for word (a notice period asked by someone
        the held-back article fits; that article is then cited too); else the wording or the plan's first steps."""
        direct = self.direct_answer(article, signals)
        if direct is not None:
            return direct, None
        for other in self.articles.values():
            if other.topic == article.topic and other.id != article.id:
                direct = self.direct_answer(other, signals, related=False)
                if direct is not None:
                    return direct, other
        return self.wording_answer(article, signals) or self.plan_summary(article, message, signals), None

    def direct_answer(
        self, article: Article, signals: Signals, *, loose: bool = False, related: bool = True
    ) -> DirectAnswer | None:
        """The article's Q&A item that answers the question the message asks, when one clearly does. `loose`: a
        question asked about the article under discussion (「断られたらどうする？」) needs less shared wording, as the
        conversation already placed it, and counts even without a question mark's sentence.

        Two readings must agree: shared distinctive words (idf-weighted; the answer's words at half weight) and, when
        the composer has the embedding model, the meaning of the two questions (cosine of their query embeddings).
        Words alone pick 「これってパワハラですか？」 for 「パワハラの証拠って録音でも有効？」; meaning alone is sure only
        for near-paraphrases, which it then accepts without shared words (「辞めるのは何か月前に伝える？」)."""
        qa = article.section(Role.QA)
        questions = signals.questions or ((signals.question,) if signals.question else ())
        if not questions and loose and signals.echo:
            questions = (signals.echo,)
        if qa is None or not questions or not qa.items:
            return None
        min_words = LOOSE_DIRECT_ANSWER_MIN_SCORE if loose else DIRECT_ANSWER_MIN_SCORE
        best: tuple[float, Item] | None = None
        contexts = signals.asked_in_context if signals.questions else ()
        for n, question in enumerate(questions):
            # A short question leans on what comes before it: 「何から手をつければ？」 is 「引き継ぎ資料ゼロで前任が辞めた。
            # 何から手をつければ？」, which reads as the item 「引き継ぎがほぼない。何から手をつければいい？」.
            context = contexts[n] if n < len(contexts) and contexts[n] != question else None
            found = self._best_item(question, qa.items, min_words, context=context)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
        if best is None:
            # `related`: also an item whose question and answer, read as a passage, answer it (the cited article only).
            passage = self._related_item(signals, qa.items) if related else None
            if passage is None:
                return None  # none of the article's questions is this one: the plan answers it instead
            return DirectAnswer(question=passage.title, answer=passage.detail)
        return DirectAnswer(question=best[1].title, answer=best[1].detail)

    def _related_item(self, signals: Signals, items: list[Item]) -> Item | None:
        """The Q&A item whose question and answer, read as a passage, answer what the message asks in its own words
        (the retrieval model's query-to-passage reading), when one clearly does; an item that answers another kind
        of thing (a time for an amount) never counts."""
        if self.embed is None or self.embed_passages is None or not signals.asked_in_context:
            return None
        vectors = self._passage_vectors(items)
        best: tuple[float, Item] | None = None
        for question, asked in zip(
            signals.asked_in_context, signals.questions or signals.asked_in_context, strict=False
        ):
            asked_kinds = _ask_kinds(asked)
            scores = vectors @ self._embed(question)
            for item, score in zip(items, scores, strict=True):
                item_kinds = _ask_kinds(item.title)
                if asked_kinds and not asked_kinds & item_kinds:
                    continue
                rank = float(score) + (SAME_KIND_BONUS if asked_kinds & item_kinds else 0.0)
                if rank >= RELATED_ANSWER_COSINE and (best is None or rank > best[0]):
                    best = (rank, item)
        return best[1] if best else None

    def _passage_vectors(self, items: list[Item]) -> np.ndarray:
        key = "\x00".join(i.title for i in items)
        found = self._passages.get(key)
        if found is None:
            assert self.embed_passages is not None
            found = self.embed_passages([f"{i.title}\n{i.detail}" for i in items])
            self._passages[key] = found
        return found

    def wording_answer(self, article: Article, signals: Signals) -> DirectAnswer | None:
        """A question about what to say (「どう伝えれば角が立たない？」) no Q&A item answers: the plan step whose example
        phrasing (「…」) answers it best, read for meaning as a passage, when one clearly does."""
        if self.embed is None or self.embed_passages is None:
            return None
        asked = [
            (q, c)
            for q, c in zip(signals.questions, signals.asked_in_context or signals.questions, strict=False)
            if "wording" in _ask_kinds(q)
        ]
        plan = article.section(Role.ACTION_PLAN)
        if not asked or plan is None:
            return None
        items = [i for step in plan.steps for i in step.items if "「" in split_examples(i.detail)[0]]
        if not items:
            return None
        vectors = self._passage_vectors(items)
        best: tuple[float, str, Item] | None = None
        for question, in_context in asked:
            scores = vectors @ self._embed(in_context)
            for item, score in zip(items, scores, strict=True):
                if score >= WORDING_ANSWER_COSINE and (best is None or score > best[0]):
                    best = (float(score), question, item)
        if best is None:
            return None
        _, question, item = best
        general = split_examples(item.detail)[0]
        said = next((s.strip() for s in sentences(general) if "「" in s), general)
        clause = next((c for c in re.split(r"[、,]", question) if _ASK_KINDS["wording"].search(c)), question)
        clause = re.sub(r"[。！？!?…]+$", "", clause).strip().replace("「", "『").replace("」", "』")
        return DirectAnswer(question=clause if len(clause) <= ECHO_CHARS + 12 else echo_of(question), answer=said)

    def plan_summary(self, article: Article, message: str, signals: Signals) -> DirectAnswer | None:
        """A how-question no Q&A item answers (「どう立て直せばいい？」) gets its short answer first: the plan's first
        steps in order, by the article's own headings; the steps themselves follow in アクションプラン."""
        plan = article.section(Role.ACTION_PLAN)
        text = unicodedata.normalize("NFKC", message)
        if plan is None or len(plan.steps) < 2 or not (_HOW_QUESTION.search(text) or _BARE_QUESTION.search(text)):
            return None
        # The clause that asks how (「…と言われ、どう接すればいいのか分かりません」 → its second half), when short.
        clauses = [c for q in signals.questions for c in re.split(r"[、,]", q) if _HOW_QUESTION.search(c)]
        how = [re.sub(r"[。！？!?…]+$", "", c).strip() for c in clauses if len(c) <= ECHO_CHARS + 12]
        phrases = self.replies["phrases"]
        # The groups after the first, as the answer shows them (a short message's answer shows the ones that speak to it).
        shown = _brief_steps(plan.steps, self.ranker, signals) if is_brief(message) else plan.steps
        headings = [f"「{step.heading.replace('「', '『').replace('」', '』')}」" for step in shown[1:3]]
        # The reply is the first thing to do, said plainly (the plan's first item: later items build on it, 「表を見て」
        # needs the table), then the order of the rest: reviewers read a list of headings alone as a pointer.
        first = plan.steps[0].items[0] if plan.steps[0].items else None
        name = (first.title if first and first.title else plan.steps[0].heading).replace("「", "『").replace("」", "』")
        detail = first_sentence(split_examples(first.detail)[0]) if first else ""
        return DirectAnswer(
            question=how[0].replace("「", "『").replace("」", "』") if how else phrases["plan_summary_question"],
            answer=str(phrases["plan_summary"]).format(
                first=name, detail=detail, rest=phrases["plan_summary_joiner"].join(headings)
            ),
        )

    def _best_item(
        self, question: str, items: list[Item], min_words: float, *, context: str | None = None
    ) -> tuple[float, Item] | None:
        """`context`: the question with what it leans on (`Signals.asked_in_context`). Its words and meaning count as
        the question's own only for an item that asks the same kind of thing (「何から」 and 「何から」, not merely
        whether): context alone is mostly the topic, which every item of the article shares (「休職明けで復帰。どんな顔
        して会えばいい？」 is not 「休職期間内に戻れなかったら？」)."""
        own = frozenset(get_tokenizer().tokens(question))
        in_context = own | frozenset(get_tokenizer().tokens(context)) if context else own
        asked_vector = self._embed(question) if self.embed is not None else None
        context_vector = self._embed(context) if self.embed is not None and context else None
        asked_kinds = _ask_kinds(question)
        best: tuple[float, Item] | None = None
        for item in items:
            item_kinds = _ask_kinds(item.title)
            # 「〜していい？」 (whether) is every other item's kind too: context would pick among them by topic words.
            same_kind = bool((asked_kinds & item_kinds) - {"whether"})
            asked = in_context if same_kind else own
            shared = frozenset(get_tokenizer().tokens(item.title)) & asked
            # The answer's words count too, at half weight: 「何日取れる？」 meets 「93日まで」 in the answer.
            in_answer = (frozenset(get_tokenizer().tokens(item.detail)) & asked) - shared
            words = sum(self.ranker.idf(t) for t in shared) + ANSWER_WORD_WEIGHT * sum(
                self.ranker.idf(t) for t in in_answer
            )
            if asked_kinds and item_kinds and not asked_kinds & item_kinds:
                continue  # 「何社くらい？」 is not answered by 「何から始めればいい？」, however close the topic
            if asked_vector is None:
                fits, rank = words >= min_words, words
            else:
                title_vector = self._embed(item.title)
                meaning = float(np.dot(asked_vector, title_vector))
                if context_vector is not None and same_kind:
                    meaning = max(meaning, float(np.dot(context_vector, title_vector)))
                fits = meaning >= SAME_QUESTION_COSINE or (words >= min_words and meaning >= RELATED_QUESTION_COSINE)
                rank = meaning + words / 100
            if asked_kinds & item_kinds:
                rank += SAME_KIND_BONUS  # 「何日取れる？」 prefers 「どのくらい休める？」 to 「休業中の給料は？」
            if fits and (best is None or rank > best[0]):
                best = (rank, item)
        return best

    def _embed(self, text: str) -> np.ndarray:
        vector = self._vectors.get(text)
        if vector is None:
            assert self.embed is not None
            vector = self.embed(text)
            if len(self._vectors) < MAX_CACHED_VECTORS:
                self._vectors[text] = vector
        return vector

    def _own_words(self, article: Article) -> frozenset[str]:
        """Words that name an article's worry: its topic's name and its tags, tokenised, two characters or more,
        and distinctive (named by at most MAX_SHARED_OWN_WORD articles: 「仕事」 names none of them)."""
        if self._own is None:
            tokenizer = get_tokenizer()
            raw = {
                aid: frozenset(
                    t
                    for t in tokenizer.tokens(" ".join([self.topic_names.get(a.topic or "", ""), *a.tags]))
                    if len(t) >= 2
                )
                for aid, a in self.articles.items()
            }
            df = Counter(t for words in raw.values() for t in words)
            self._own = {aid: frozenset(t for t in words if df[t] <= MAX_SHARED_OWN_WORD) for aid, words in raw.items()}
        return self._own.get(article.id, frozenset())

    def _mixed_worry_step(
        self, article: Article, retrieval: RetrievalResult, signals: Signals
    ) -> tuple[Article, ActionGroup] | None:
        """One step from a second article when the message clearly carries a second worry of another topic."""
        if len(retrieval.articles) < 2 or not retrieval.best:
            return None
        second = retrieval.articles[1]
        if second.topic == article.topic or retrieval.best.score - second.score > MIXED_MARGIN:
            return None
        other = self.articles.get(second.article_id)
        plan = other.section(Role.ACTION_PLAN) if other else None
        if other is None or plan is None:
            return None
        if len(self._own_words(other) & signals.tokens) < MIXED_OWN_WORDS:
            return None  # the message does not name the second worry (退職 or 定年 alone is not a second topic)
        candidates = [i for step in plan.steps for i in step.items]
        ranked = _ordered(candidates, self.ranker, signals)
        if not ranked or self.ranker.score(ranked[0], signals) < 2.0:
            return None  # nothing in the other article speaks to what they wrote: do not pad
        name = self.topic_names.get(other.topic or "", other.title)
        title = str(self.replies["phrases"]["mixed_group"]).format(name=name)
        return other, ActionGroup(title=title, steps=[self.item_for(ranked[0], signals)])
