import logging
import logging.config

from dispatcher.cli.web import RedactQuerySecrets, access_log_config


def test_given_a_push_url_in_the_access_log_then_its_token_is_masked() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", "/push/yx/reports?token=s3cret&x=1", "1.1", 200), None,
    )  # fmt: skip
    assert RedactQuerySecrets().filter(record)
    assert "s3cret" not in record.getMessage()
    assert "token=***" in record.getMessage()


def test_given_the_web_logging_config_then_the_access_handler_redacts() -> None:
    config = access_log_config()
    assert config["handlers"]["access"]["filters"] == ["redact"]
    logging.config.dictConfig(config)  # loads, and the filter class resolves
