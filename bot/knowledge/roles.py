"""Recognise what a heading means (its role) and which blocks are advertising.

Operators' articles use many heading words for the same idea: 「なぜこうなったのか」 is an analysis,
「今すぐできること」 an action plan, 「これからのキャリアを考える」 a strategy. We score a heading against
weighted patterns per role instead of matching fixed words, so unseen phrasings still land.
"""

from __future__ import annotations

import re
import unicodedata

from bot.knowledge.model import Role

# (pattern, weight); the role with the highest total wins, ties go to the earlier role in this dict.
_ROLE_PATTERNS: dict[Role, list[tuple[str, float]]] = {
    Role.QA: [
        (r"よくある(?:ご)?質問|Q\s*[&＆]\s*A|FAQ|ＦＡＱ", 8),
    ],
    Role.SUMMARY: [
        (r"まとめ", 5),
        (r"最後に|おわりに|終わりに|結び", 4),
        (r"結論|総括|要点|振り返り", 3),
    ],
    Role.CASE: [
        (r"成功事例|事例|体験談|実例|ケーススタディ", 5),
        (r"ケース", 3),
        (r"乗り越えた|乗り切った", 2),
        (r"[A-ZＡ-Ｚ]さん|先輩の話|ストーリー", 3),
    ],
    Role.EXPERT: [
        (r"専門家|プロ(?:から|の視点|に)", 5),
        (r"相談先|相談窓口|窓口|支援機関|公的(?:な)?(?:支援|サービス)", 4),
        (r"頼れる(?:場所|先)|助けを求め|外部の力", 3),
        (r"アドバイス", 1),
    ],
    Role.STRATEGY: [
        (r"キャリア戦略|キャリアプラン|キャリア設計|キャリアの(?:描き方|作り方)", 6),
        (r"長期的|中長期|将来|これから(?:の)?キャリア|今後の(?:キャリア|働き方)|キャリアを考え", 4),
        (r"キャリアアップ|キャリア形成|未来|(?:\d+|数)年後", 3),
        (r"ピンチをチャンス|成長の機会", 1),
    ],
    Role.ACTION_PLAN: [
        (r"アクションプラン|行動計画|アクション", 6),
        (r"今すぐ|明日から|今日から|まずやる|できること|やるべきこと|やること", 4),
        (r"対策|対処|解決策|打開|具体的|ステップ|手順|進め方|動き方|乗り切り方|方法", 3),
    ],
    Role.ANALYSIS: [
        (r"現状分析|状況分析|原因分析", 6),
        (r"なぜ|どうして|原因|要因|理由|背景|陥った|起きている", 4),
        (r"分析|問題点|課題の整理|何が問題|現状", 3),
    ],
    Role.CONSULTATION: [
        (r"^(?:ご)?相談(?:内容|者|の内容|文)?$", 6),
        (r"お悩み|悩み相談|寄せられた|質問内容|相談者", 4),
        (r"^質問$|^Q[.:：]?$", 4),
    ],
}

_NUMBERING = re.compile(r"^\s*(?:第?\d+(?:[-‐－ー.．]\d+)*[.．、)）章]?|[①-⑳]|[(（]\d+[)）]|[■◆●▼▶◇□【]+)\s*")


def normalise(text: str) -> str:
    """NFKC-fold full-width digits and punctuation so 「２－１．」 reads like 「2-1.」."""
    return unicodedata.normalize("NFKC", text).strip()


def strip_numbering(heading: str) -> str:
    text = normalise(heading)
    text = _NUMBERING.sub("", text)
    return text.strip(" 】[]:：")


def classify_heading(heading: str) -> Role:
    """The role a heading's meaning points to; `other` when nothing fits."""
    text = strip_numbering(heading)
    # The part before a colon is what the section is ("現状分析: なぜ…"); the rest is flavour.
    head = re.split(r"[:：|｜]", text, maxsplit=1)[0]
    best_role, best_score = Role.OTHER, 0.0
    for role, patterns in _ROLE_PATTERNS.items():
        score = 0.0
        for pattern, weight in patterns:
            if re.search(pattern, head):
                score += weight * 1.5
            elif re.search(pattern, text):
                score += weight
        if score > best_score:
            best_role, best_score = role, score
    return best_role if best_score >= 2 else Role.OTHER


# Advertising: chatbot adverts, 【PR】 boxes, "LINEで相談" banners, sign-up calls to action.
_PROMO_STRONG = re.compile(
    r"【\s*(?:PR|ＰＲ|広告|AD|Sponsored|スポンサー)\s*】|^\s*(?:PR|ＰＲ|広告)\s*[:：|｜]|"
    r"LINE\s*(?:で|から|にて)\s*(?:無料)?(?:相談|登録|友だち|友達|質問)|友だち追加|友達追加|"
    r"無理な勧誘|勧誘は一切|今すぐ(?:登録|無料|ダウンロード|チェック|相談)|無料(?:で)?(?:登録|会員登録|ダウンロード)|"
    r"(?:AI|ＡＩ)キャリアパートナー|キャンペーン実施中|(?:こちら|下記)(?:から|より)(?:登録|申し込|お申込|ダウンロード)|"
    r"(?:詳しくは|詳細は)(?:こちら|コチラ)|求人(?:探し|紹介)まで(?:サポート|お手伝い)",
    re.IGNORECASE,
)
_PROMO_WEAK = re.compile(
    r"チャットボット|リアルタイムに|登録(?:は)?無料|無料|今なら|限定|クリック|タップ|友だち|公式アカウント|"
    r"アプリ|ダウンロード|サービス|キャリアパートナー|求人",
)
_PROMO_HEADING = re.compile(r"あなたへ$|方へ$|お知らせ|PR|ＰＲ|広告|おすすめサービス|無料相談")


def is_promo_line(text: str) -> bool:
    t = normalise(text)
    return bool(_PROMO_STRONG.search(t))


def promo_score(lines: list[str]) -> float:
    """Share of lines that read as advertising (strong markers count double)."""
    if not lines:
        return 0.0
    score = 0.0
    for line in lines:
        t = normalise(line)
        if _PROMO_STRONG.search(t):
            score += 2
        elif len(_PROMO_WEAK.findall(t)) >= 2:
            score += 1
    return score / len(lines)


def is_promo_heading(text: str) -> bool:
    return bool(_PROMO_HEADING.search(normalise(text))) or is_promo_line(text)
