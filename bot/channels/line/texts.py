"""What the bot says on LINE outside the dialogue engine: welcome, group introduction, non-text messages, the checklist.

Kept short on purpose: these are read on a phone, often in a notification.
"""

from __future__ import annotations

WELCOME = (
    "友だち追加ありがとうございます。キャリア相談パートナーです。\n\n"
    "仕事の悩みを、ひとことでも長文でも送ってください。キャリア記事をもとに\n"
    "①現状分析 ②アクションプラン ③キャリア戦略\n"
    "の3つに整理してお返しします。\n\n"
    "※わたしはAIで、医師・弁護士などの専門家ではありません。命や健康にかかわるときは、公的な相談窓口をご案内します。\n"
    "※会話の記録は「データを削除」と送ればいつでも消せます。ブロックしたときも自動で削除します。"
)

WELCOME_BACK = (
    "おかえりなさい。またお話しできてうれしいです。\n"
    "以前の会話の記録は削除してありますので、いま気になっていることを、あらためて聞かせてください。\n\n"
    "※わたしはAIで、専門家ではありません。記録は「データを削除」でいつでも消せます。"
)

GROUP_JOIN = (
    "グループに招待いただきありがとうございます。キャリア相談パートナー（AI）です。\n"
    "相談するときは、わたしを@メンションするか、メッセージに「{keyword}」を入れて送ってください。\n"
    "グループでは、個別のトークの内容は使いません。個人的な悩みは1対1のトークでどうぞ。"
)
GROUP_JOIN_MENTION_ONLY = (
    "グループに招待いただきありがとうございます。キャリア相談パートナー（AI）です。\n"
    "相談するときは、わたしを@メンションして送ってください。\n"
    "グループでは、個別のトークの内容は使いません。個人的な悩みは1対1のトークでどうぞ。"
)

NOT_TEXT = {
    "sticker": "スタンプありがとうございます。",
    "image": "画像ありがとうございます。",
    "video": "動画ありがとうございます。",
    "audio": "音声ありがとうございます。",
    "file": "ファイルありがとうございます。",
    "location": "位置情報ありがとうございます。",
}
NOT_TEXT_DEFAULT = "メッセージありがとうございます。"
ASK_FOR_TEXT = (
    "ごめんなさい、いまは文字のメッセージにだけお答えできます。お悩みを文章で送ってください。ひとことでも大丈夫です。"
)

STEP_DONE = "「{step}」を完了にしました ✅\nこれまでに完了したステップ：{count}件\n\nひとつずつ進めていけば大丈夫です。"
STEP_ALREADY_DONE = "「{step}」はもう完了になっています ✅\nこれまでに完了したステップ：{count}件"

# Starter worries offered as quick replies after the welcome: sent back as if the user had typed them.
STARTERS = (
    "残業が多くて疲れています",
    "上司とうまくいきません",
    "転職すべきか迷っています",
    "仕事を引き継いだけど不安です",
)

SWIPE_HINT = "横にスワイプして続きを見る ▶"
DISCLAIMER = "AIが記事をもとに整理した内容です。専門家の助言の代わりにはなりません。"
DONE_BUTTON = "✓ できた"
DONE_MARK = "✅ 完了"

HEADINGS_ALT = "キャリア相談の回答（現状分析・アクションプラン・キャリア戦略）"

# Sent once when an answer could not be made or delivered for several minutes (an outage): the user is not left
# waiting in silence, and knows that sending the message again is what to do.
APOLOGY = (
    "申し訳ありません。ただいまシステムの不具合で、いただいたメッセージにお返事できませんでした。"
    "お手数ですが、少し時間をおいてからもう一度送ってください。"
)

# The job search's cards (bot.channels.line.jobs); what each card says about a job comes from the posting itself.
JOB_LABELS = {
    "alt": "求人のご紹介",
    "place": "勤務地",
    "salary": "給与",
    "employment": "雇用形態",
    "salary_unknown": "掲載元で確認",
    "link": "詳しく見る",
    "sample": "サンプル求人（架空）",
}
