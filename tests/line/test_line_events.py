"""Each kind of LINE event through the app, the real engine and store, and the fake LINE server."""

from __future__ import annotations

import json

import line_events as ev
from conftest import LineApp
from sqlalchemy import select

from bot.channels.line import postback
from bot.store.schema import inbox


def texts_of(delivery) -> str:
    return "\n".join(m.get("text", m.get("altText", "")) for m in delivery.messages)


def quick_labels(delivery) -> list[str]:
    return [i["action"]["label"] for i in delivery.messages[-1].get("quickReply", {}).get("items", [])]


def test_text_message_full_answer(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.say(user, "上司が退職して顧客を引き継いだけど、引き継ぎが2週間しかなくて不安です")
    (delivery,) = line_app.wait_for(user, 1)
    assert delivery.method == "reply"
    assert [m["type"] for m in delivery.messages] == ["text", "flex"]
    assert "もっと詳しく" in quick_labels(delivery)
    # The loading animation ran first, in the one-to-one chat, for a multiple of 5 seconds.
    assert line_app.fake.loadings == [{"chatId": user, "loadingSeconds": 20}]
    # The conversation is the user's own, keyed by their LINE id; the turn carries LINE's message id.
    turns = line_app.store.recent_turns(f"line:user:{user}", 10)
    assert [t.role for t in turns] == ["user", "bot"]
    assert turns[0].channel_message_id is not None


def test_one_users_messages_are_answered_in_order(line_app: LineApp) -> None:
    user = ev.user_id()
    texts = ["上司が退職して顧客を引き継いだけど不安です", "もっと詳しく", "次のステップは？", "成功事例を教えて"]
    # Two in one webhook, two in quick succession: all in order.
    first = [ev.text(user, t, reply_token=line_app.fake.issue_reply_token(user)) for t in texts[:2]]
    assert line_app.post(*first).json()["accepted"] == 2
    for text in texts[2:]:
        line_app.say(user, text)
    deliveries = line_app.wait_for(user, 4)
    turns = [t for t in line_app.store.recent_turns(f"line:user:{user}", 20) if t.role == "user"]
    assert [t.text for t in turns] == texts
    assert deliveries[1].messages[0]["text"].startswith(deliveries[1].messages[0]["text"][:5])
    assert "次に取り組む" in deliveries[2].messages[0]["text"]
    assert "乗り越えた" in deliveries[3].messages[0]["text"]


def test_different_users_are_answered_in_parallel(line_app: LineApp) -> None:
    users = [ev.user_id() for _ in range(6)]
    events = [ev.text(u, "残業が多くて毎日終電です", reply_token=line_app.fake.issue_reply_token(u)) for u in users]
    line_app.fake.fail("reply", None, delay=0.8, times=6)  # every reply is slow: they overlap only if in parallel
    assert line_app.post(*events).json()["accepted"] == 6
    for user in users:
        line_app.wait_for(user, 1)
    assert line_app.fake.max_in_flight("reply") >= 2


def test_follow_welcomes_and_says_what_the_bot_is(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.post(ev.follow(user, reply_token=line_app.fake.issue_reply_token(user)))
    (delivery,) = line_app.wait_for(user, 1)
    text = texts_of(delivery)
    assert "AI" in text and "専門家" in text and "データを削除" in text
    assert "転職すべきか迷っています" in [
        postback.decode(i["action"]["data"]).value for i in delivery.messages[-1]["quickReply"]["items"]
    ]


def test_block_deletes_data_and_unblock_welcomes_back(line_app: LineApp) -> None:
    user = ev.user_id()
    conversation = f"line:user:{user}"
    line_app.say(user, "上司とうまくいきません")
    line_app.wait_for(user, 1)
    line_app.wait_idle()
    assert line_app.store.conversation_exists(conversation)
    line_app.post(ev.unfollow(user))
    line_app.wait_idle()
    assert not line_app.store.conversation_exists(conversation)
    assert line_app.store.recent_turns(conversation, 10) == []
    with line_app.store.engine.connect() as conn:
        rows = conn.execute(select(inbox.c.pk).where(inbox.c.conversation_key.contains(user))).all()
    assert rows == [], "their inbox events are gone too"
    line_app.post(ev.follow(user, reply_token=line_app.fake.issue_reply_token(user), unblocked=True))
    deliveries = line_app.wait_for(user, 2)
    assert "おかえりなさい" in texts_of(deliveries[1])


def test_data_deletion_command(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.say(user, "上司とうまくいきません")
    line_app.wait_for(user, 1)
    # The request and a message sent right after it, in one webhook: the data goes, the next message is answered.
    events = [
        ev.text(user, t, reply_token=line_app.fake.issue_reply_token(user)) for t in ["データを削除", "こんにちは"]
    ]
    assert line_app.post(*events).json()["accepted"] == 2
    deliveries = line_app.wait_for(user, 3)
    assert "削除しました" in texts_of(deliveries[1])
    assert "こんにちは" in texts_of(deliveries[2])
    line_app.wait_idle()
    assert [t.text for t in line_app.store.recent_turns(f"line:user:{user}", 10) if t.role == "user"] == ["こんにちは"]


def test_postback_follow_ups_and_the_step_checklist(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.say(user, "上司が退職して顧客を引き継いだけど、引き継ぎが2週間しかなくて不安です")
    (advice,) = line_app.wait_for(user, 1)
    carousel = advice.messages[1]["contents"]["contents"]
    step_buttons = [c for c in json_walk(carousel) if c.get("type") == "button"]
    done_data = step_buttons[0]["action"]["data"]
    label = postback.decode(done_data).value

    # A Flex button: tick a step.
    line_app.post(ev.postback(user, done_data, reply_token=line_app.fake.issue_reply_token(user)))
    deliveries = line_app.wait_for(user, 2)
    assert f"「{label}」を完了にしました" in texts_of(deliveries[1])
    assert line_app.store.get_state(f"line:user:{user}").done_steps == [label]

    # A quick reply: 「もっと詳しく」 — the full answer, where the ticked step now shows as done.
    more = next(i for i in advice.messages[-1]["quickReply"]["items"] if i["action"]["label"] == "もっと詳しく")
    line_app.post(ev.postback(user, more["action"]["data"], reply_token=line_app.fake.issue_reply_token(user)))
    deliveries = line_app.wait_for(user, 3)
    rendered = json.dumps(deliveries[2].messages, ensure_ascii=False)
    assert "✅ 完了" in rendered
    assert done_data not in rendered, "a done step has no button any more"

    # Ticking it again says so; the other follow-ups work the same way.
    line_app.post(ev.postback(user, done_data, reply_token=line_app.fake.issue_reply_token(user)))
    assert "もう完了" in texts_of(line_app.wait_for(user, 4)[3])
    for text, expected in [
        ("成功事例を教えて", "乗り越えた"),
        ("専門家に相談したい", "外の力"),
        ("次のステップは？", "次に"),
    ]:
        count = len(line_app.fake.delivered_to(user))
        line_app.post(ev.postback(user, postback.encode_say(text), reply_token=line_app.fake.issue_reply_token(user)))
        assert expected in texts_of(line_app.wait_for(user, count + 1)[-1])
    count = len(line_app.fake.delivered_to(user))
    line_app.post(
        ev.postback(user, postback.encode_say("別の悩みを相談"), reply_token=line_app.fake.issue_reply_token(user))
    )
    assert "どんなことでお困りか" in texts_of(line_app.wait_for(user, count + 1)[-1])


def json_walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from json_walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from json_walk(value)


def test_foreign_postback_data_is_ignored(line_app: LineApp) -> None:
    user = ev.user_id()
    body = line_app.post(ev.postback(user, "storeId=12345", reply_token="t")).json()
    assert body["skipped"] == 1 and body["accepted"] == 0


def test_non_text_messages_get_a_friendly_request_for_text(line_app: LineApp) -> None:
    for make in (ev.sticker, ev.image):
        user = ev.user_id()
        line_app.post(make(user, reply_token=line_app.fake.issue_reply_token(user)))
        (delivery,) = line_app.wait_for(user, 1)
        assert "文字のメッセージ" in texts_of(delivery)
        assert line_app.store.recent_turns(f"line:user:{user}", 5) == []


def test_crisis_message_gets_help_lines_first(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.say(user, "もう消えてしまいたい。死にたいと思ってしまう")
    (delivery,) = line_app.wait_for(user, 1)
    assert [m["type"] for m in delivery.messages] == ["text"]
    assert "0120-783-556" in delivery.messages[0]["text"]
    assert any(i["action"].get("uri", "").startswith("tel:") for i in delivery.messages[-1]["quickReply"]["items"])


def test_group_answers_only_when_addressed_and_keeps_its_own_history(line_app: LineApp) -> None:
    group, user = ev.group_id(), ev.user_id()
    # The user's one-to-one history mentions a specific worry.
    line_app.say(user, "上司が退職して顧客を引き継いだけど、引き継ぎが2週間しかなくて不安です")
    line_app.wait_for(user, 1)
    line_app.wait_idle()

    chatter = ev.text(user, "今日のランチどうする？", reply_token="t1", group=group)
    other_mention = ev.text(user, "@Taro 明日よろしく", reply_token="t2", group=group)
    other_mention["message"]["mention"] = {
        "mentionees": [{"index": 0, "length": 5, "type": "user", "userId": ev.user_id(), "isSelf": False}]
    }
    sticker = ev.sticker(user, reply_token="t3")
    sticker["source"] = {"type": "group", "groupId": group, "userId": user}
    body = line_app.post(chatter, other_mention, sticker).json()
    assert body["skipped"] == 3 and body["accepted"] == 0, "group chatter is not even stored"

    # Mentioned: answered in the group, quoting the message, without the 1:1 history.
    mention = ev.text(
        user,
        "@キャリア相談 もっと詳しく",
        reply_token=line_app.fake.issue_reply_token(group),
        group=group,
        mention_self_at=(0, 7),
    )
    line_app.post(mention)
    (answer,) = line_app.wait_for(group, 1)
    assert answer.messages[0].get("quoteToken") == mention["message"]["quoteToken"]
    assert "まだ具体的なお話を伺っていない" in texts_of(answer), "the group knows nothing of the 1:1 topic"
    turns = line_app.store.recent_turns(f"line:group:{group}", 10)
    assert turns[0].text == "もっと詳しく", "the mention is not part of the text"
    # The keyword works too (rooms as well); no loading animation outside one-to-one chats.
    line_app.post(
        ev.text(user, "#相談 転職すべきか迷っています", reply_token=line_app.fake.issue_reply_token(group), group=group)
    )
    line_app.wait_for(group, 2)
    room = ev.room_id()
    line_app.post(
        ev.text(user, "#相談 残業が多くて疲れています", reply_token=line_app.fake.issue_reply_token(room), room=room)
    )
    line_app.wait_for(room, 1)
    assert all(loading["chatId"] == user for loading in line_app.fake.loadings)
    assert len(line_app.fake.loadings) == 1


def test_join_introduces_the_bot_and_leave_deletes_the_group_data(line_app: LineApp) -> None:
    group, user = ev.group_id(), ev.user_id()
    line_app.post(ev.join(group, reply_token=line_app.fake.issue_reply_token(group)))
    (intro,) = line_app.wait_for(group, 1)
    assert "メンション" in texts_of(intro) and "#相談" in texts_of(intro)
    line_app.post(
        ev.text(user, "#相談 上司とうまくいきません", reply_token=line_app.fake.issue_reply_token(group), group=group)
    )
    line_app.wait_for(group, 2)
    line_app.wait_idle()
    assert line_app.store.conversation_exists(f"line:group:{group}")
    line_app.post(ev.leave(group))
    line_app.wait_idle()
    assert not line_app.store.conversation_exists(f"line:group:{group}")


def test_unsend_drops_the_message_from_history(line_app: LineApp) -> None:
    user = ev.user_id()
    words = "上司が退職して顧客を引き継いだけど、引き継ぎが2週間しかなくて不安です"
    sent = line_app.say(user, words)
    line_app.say(user, "ありがとう")
    line_app.wait_for(user, 2)
    line_app.wait_idle()
    conversation = f"line:user:{user}"
    assert words in line_app.store.get_state(conversation).summary
    line_app.post(ev.unsend(user, sent["message"]["id"]))
    line_app.wait_idle()
    remaining = [t.text for t in line_app.store.recent_turns(conversation, 10) if t.role == "user"]
    assert remaining == ["ありがとう"]
    assert words not in line_app.store.get_state(conversation).summary


def test_footnotes_reach_line_as_sources_never_as_markers(line_app: LineApp) -> None:
    user = ev.user_id()
    texts = ["同僚に無視されて陰口を言われています。職場で孤立しています", "もっと詳しく", "専門家に相談したい"]
    for n, text in enumerate(texts, start=1):
        line_app.say(user, text)
        line_app.wait_for(user, n)
    deliveries = line_app.fake.delivered_to(user)
    shown = json.dumps([d.messages for d in deliveries], ensure_ascii=False)
    assert "[^" not in shown
    assert "（出典：あかるい職場応援団）" in shown
