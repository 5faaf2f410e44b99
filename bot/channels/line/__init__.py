"""The LINE channel: webhook intake into a durable inbox, a worker that answers in order, Flex rendering, sending.

- `webhook`: signature, body shape, per-event parsing with the SDK, routing, inbox acceptance.
- `worker`: claims inbox events, one conversation in order, many in parallel; retries; shutdown.
- `handlers`: what each event does (engine, checklist, welcome, deletion, unsend) and exactly-once delivery.
- `render`: an Answer as Flex carousel / text / quick replies, every LINE limit enforced; `limits`, `postback`.
- `sender`: the SDK's AsyncMessagingApi with timeouts, bounded backoff and retry keys.
- `channel`: wires them together for the FastAPI lifespan.
"""

from bot.channels.line.channel import LineChannel

__all__ = ["LineChannel"]
