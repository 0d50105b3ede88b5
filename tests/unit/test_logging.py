import logging

from bot.cli import SecretFilter


def test_secrets_are_masked_in_messages_and_tracebacks() -> None:
    secret = "sk-live-0123456789abcdef"
    record = logging.LogRecord("bot", logging.ERROR, __file__, 1, "call failed with key %s", (secret,), None)
    try:
        raise RuntimeError(f"server said: bad key {secret}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert SecretFilter([secret]).filter(record)
    text = logging.Formatter().format(record)
    assert secret not in text
    assert "call failed with key [secret]" in text and "server said: bad key [secret]" in text
