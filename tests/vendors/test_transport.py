"""The transport (httpx blocking, aiohttp on an event loop) against real loopback servers: answers, failures, failover, no leaked secrets."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs

import aiohttp
import httpx
import pytest
from aiohttp.client_reqrep import ConnectionKey

from dispatcher.errors import ConfigError, HTTPStatusError, NotSentError, OutcomeUnknownError, TransportError
from dispatcher.vendors import crypto, entinfo, trigger
from dispatcher.vendors.transport import Response, Transport, translate_aiohttp_error, translate_error
from dispatcher.vendors.wire import Credentials, Request
from tests.vendors.loopback import closed_port, gateway

PASSWORD = "pa55-SECRET-word"
TG = Credentials("acct", PASSWORD)
EN = Credentials("SDK-OFT-010-00001", PASSWORD)
MD5_PWD = crypto.entinfo_password(EN.user, PASSWORD)


def _send_request() -> Request:
    return trigger.build_send(TG, ["13912345678"], "您好【测试】", ref="chunk-1")


def _assert_no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc)):
        assert PASSWORD not in text
        assert MD5_PWD not in text


def test_given_a_gateway_when_sending_then_the_form_is_posted_utf8_with_no_query() -> None:
    with gateway() as gw, Transport([gw.url]) as transport:
        response = transport.send(_send_request())
    assert response.status_code == 200
    assert trigger.parse_send(response.text).value == "2200001476358475197"
    assert response.url_used == f"{gw.url}/winnerrxd/api/trigger/SendMsg"
    assert response.elapsed > 0
    (seen,) = gw.seen
    assert seen.method == "POST"
    assert seen.target == "/winnerrxd/api/trigger/SendMsg"  # no query string: the password stays out of URLs
    assert seen.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = parse_qs(seen.body.decode("ascii"), keep_blank_values=True, encoding="utf-8")
    assert form["userPass"] == [PASSWORD]
    assert form["Msg"] == ["您好【测试】"]
    assert form["customerUuid"] == ["chunk-1"]


def test_given_an_answer_without_charset_in_gbk_when_sending_then_the_text_is_decoded() -> None:
    answer = "13912345678|,|退订|,|2016/10/13 13:51:08".encode("gbk")
    with gateway(answer=answer, content_type="text/plain") as gw, Transport([gw.url]) as transport:
        assert "退订" in transport.send(_send_request()).text


def test_given_a_closed_port_when_sending_then_not_sent() -> None:
    with Transport([f"http://127.0.0.1:{closed_port()}"]) as transport, pytest.raises(NotSentError) as info:
        transport.send(_send_request())
    _assert_no_secret(info.value)


def test_given_a_gateway_that_resets_after_reading_when_sending_then_outcome_unknown() -> None:
    with gateway("reset") as gw, Transport([gw.url]) as transport, pytest.raises(OutcomeUnknownError) as info:
        transport.send(entinfo.build_send(EN, ["13912345678"], "您好【测试】", ref="42"))
    assert len(gw.seen) == 1  # the gateway did read it: that is why the outcome is unknown
    _assert_no_secret(info.value)


def test_given_a_gateway_that_stalls_when_sending_then_outcome_unknown_after_the_timeout() -> None:
    with (
        gateway("stall", delay=1.0) as gw,
        Transport([gw.url], timeout=0.3) as transport,
        pytest.raises(OutcomeUnknownError) as info,
    ):
        transport.send(_send_request())
    assert "ReadTimeout" in str(info.value)
    _assert_no_secret(info.value)


@pytest.mark.parametrize("status", [500, 503, 429, 404])
def test_given_an_http_error_status_when_sending_then_http_status_error(status: int) -> None:
    with (
        gateway("status", status=status, answer=b"busy") as gw,
        Transport([gw.url]) as transport,
        pytest.raises(HTTPStatusError) as info,
    ):
        transport.send(_send_request())
    assert info.value.status_code == status
    assert info.value.body == "busy"
    _assert_no_secret(info.value)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(None, None), ("7", 7.0), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_given_a_503_when_sending_then_the_error_carries_the_headers_and_retry_after(
    retry_after: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    with (
        gateway("status", status=503, answer=b"busy", headers=headers) as gw,
        Transport([gw.url]) as transport,
        pytest.raises(HTTPStatusError) as info,
    ):
        transport.send(_send_request())
    assert info.value.status_code == 503
    assert info.value.retry_after == expected  # an HTTP date in the past: now
    if retry_after is not None:
        assert info.value.headers["retry-after"] == retry_after


def test_given_a_dead_primary_when_sending_then_the_backup_answers_and_stays_in_use() -> None:
    port = closed_port()
    with gateway() as backup, Transport([f"http://127.0.0.1:{port}", backup.url]) as transport:
        first = transport.send(entinfo.build_send(EN, ["13912345678"], "a【签】", ref="1"))
        assert first.url_used.startswith(backup.url)
        # The primary comes back; the transport stays on the backup (sticky), never using both.
        with gateway(port=port) as primary:
            second = transport.send(entinfo.build_send(EN, ["13912345678"], "b【签】", ref="2"))
            assert second.url_used.startswith(backup.url)
            assert primary.seen == []
        assert transport.base_url == backup.url
    assert len(backup.seen) == 2


def test_given_a_stalling_primary_when_sending_then_unknown_is_not_resent_but_next_goes_to_backup() -> None:
    with gateway("stall", delay=1.0) as primary, gateway() as backup:
        with Transport([primary.url, backup.url], timeout=0.3) as transport:
            with pytest.raises(OutcomeUnknownError):
                transport.send(entinfo.build_send(EN, ["13912345678"], "a【签】", ref="1"))
            assert backup.seen == []  # never one request to both addresses
            transport.send(entinfo.build_send(EN, ["13912345678"], "b【签】", ref="2"))
        assert len(primary.seen) == 1
        assert len(backup.seen) == 1


def test_given_both_addresses_dead_when_sending_then_not_sent() -> None:
    urls = [f"http://127.0.0.1:{closed_port()}", f"http://127.0.0.1:{closed_port()}"]
    with Transport(urls) as transport, pytest.raises(NotSentError):
        transport.send(_send_request())


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ConnectError("refused"), NotSentError),
        (httpx.ConnectTimeout("slow connect"), NotSentError),
        (httpx.PoolTimeout("pool full"), NotSentError),
        (httpx.ReadTimeout("slow answer"), OutcomeUnknownError),
        (httpx.WriteTimeout("slow write"), OutcomeUnknownError),
        (httpx.ReadError("reset"), OutcomeUnknownError),
        (httpx.WriteError("broken pipe"), OutcomeUnknownError),
        (httpx.RemoteProtocolError("server disconnected"), OutcomeUnknownError),
        (httpx.UnsupportedProtocol("ftp"), ConfigError),
    ],
)
def test_given_each_httpx_failure_when_translated_then_the_dispatcher_error_says_if_it_was_sent(
    raised: httpx.HTTPError, expected: type[Exception]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raised.request = request
        raise raised

    with (
        Transport(["http://gw.test"], transport=httpx.MockTransport(handler)) as transport,
        pytest.raises(expected) as info,
    ):
        transport.send(_send_request())
    assert "http://gw.test/winnerrxd/api/trigger/SendMsg" in str(info.value)
    _assert_no_secret(info.value)
    assert isinstance(translate_error(raised, "http://gw.test/x"), expected)


def test_given_a_connect_timeout_on_the_primary_when_sending_then_the_backup_gets_it() -> None:
    # Given a primary that never accepts (connect timeout cannot be produced on loopback: mocked)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.host == "sdk.test":
            raise httpx.ConnectTimeout("timed out", request=request)
        return httpx.Response(200, text="<string>42</string>")

    urls = ["http://sdk.test:8061", "http://sdk2.test:8061"]
    with Transport(urls, transport=httpx.MockTransport(handler)) as transport:
        transport.send(entinfo.build_send(EN, ["13912345678"], "a【签】", ref="42"))
        transport.send(entinfo.build_send(EN, ["13912345678"], "a【签】", ref="43"))
    assert seen == ["sdk.test", "sdk2.test", "sdk2.test"]


def test_given_a_get_request_when_sending_then_refused() -> None:
    with Transport(["http://gw.test"]) as transport, pytest.raises(ValueError, match="POST"):
        transport.send(Request("/x", {"a": "b"}, method="GET"))


@pytest.mark.parametrize("url", ["http://u:pw@gw.test", "http://gw.test/?pwd=1", "ftp://gw.test", ""])
def test_given_a_bad_base_url_when_building_then_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        Transport([url])


def _asend(transport: Transport, *requests: Request) -> list[Response | Exception]:
    """``Transport.asend`` of ``requests`` at once on a fresh event loop: each answer, or its error."""

    async def run() -> list[Response | Exception]:
        try:
            return list(await asyncio.gather(*(transport.asend(r) for r in requests), return_exceptions=True))
        finally:
            await transport.aclose()

    return [r if isinstance(r, Response) else _error(r) for r in asyncio.run(run())]


def _error(exc: BaseException) -> Exception:
    assert isinstance(exc, Exception), exc
    return exc


def test_given_many_concurrent_requests_when_sending_async_then_all_answered_as_sync_sends() -> None:
    requests = [trigger.build_send(TG, [f"139123456{i:02d}"], "您好【签】") for i in range(20)]
    with gateway() as gw, Transport([gw.url]) as transport:
        answers = _asend(transport, *requests)
        transport.send(requests[0])
    assert all(isinstance(a, Response) and a.status_code == 200 for a in answers)
    assert len(gw.seen) == 21
    # The same request, posted alike by both paths: form, content type, no query string.
    by_async, by_sync = gw.seen[0], gw.seen[-1]
    assert by_async.target == by_sync.target == "/winnerrxd/api/trigger/SendMsg"
    assert by_async.headers["content-type"] == by_sync.headers["content-type"]
    forms = [parse_qs(seen.body.decode("ascii"), keep_blank_values=True) for seen in gw.seen]
    sent = {tuple(sorted((k, v) for k, (v,) in form.items())) for form in forms[:20]}
    assert sent == {tuple(sorted(r.form.items())) for r in requests}  # every form, whole, in UTF-8
    assert forms[0]["Msg"] == ["您好【签】"]


def test_given_an_answer_without_charset_in_gbk_when_sending_async_then_the_text_is_decoded() -> None:
    answer = "13912345678|,|退订|,|2016/10/13 13:51:08".encode("gbk")
    with gateway(answer=answer, content_type="text/plain") as gw, Transport([gw.url]) as transport:
        (response,) = _asend(transport, _send_request())
    assert isinstance(response, Response) and "退订" in response.text


def test_given_a_closed_port_when_sending_async_then_not_sent() -> None:
    with Transport([f"http://127.0.0.1:{closed_port()}"]) as transport:
        (error,) = _asend(transport, _send_request())
    assert isinstance(error, NotSentError)
    _assert_no_secret(error)


def test_given_a_gateway_that_resets_after_reading_when_sending_async_then_outcome_unknown() -> None:
    with gateway("reset") as gw, Transport([gw.url]) as transport:
        (error,) = _asend(transport, entinfo.build_send(EN, ["13912345678"], "您好【测试】", ref="42"))
    assert isinstance(error, OutcomeUnknownError)
    assert len(gw.seen) == 1  # the gateway read it: that is why the outcome is unknown
    _assert_no_secret(error)


def test_given_a_gateway_that_stalls_when_sending_async_then_outcome_unknown_after_the_timeout() -> None:
    with gateway("stall", delay=1.0) as gw, Transport([gw.url], timeout=0.3) as transport:
        (error,) = _asend(transport, _send_request())
    assert isinstance(error, OutcomeUnknownError)
    assert "Timeout" in str(error)
    assert len(gw.seen) == 1
    _assert_no_secret(error)


def test_given_a_full_pool_when_a_request_waits_past_the_connect_timeout_async_then_not_sent() -> None:
    # One connection allowed, held by a stalling request: the second waits for it, never written.
    limits = httpx.Limits(max_connections=1)
    with (
        gateway("stall", delay=1.0) as gw,
        Transport([gw.url], timeout=3.0, connect_timeout=0.3, limits=limits) as transport,
    ):
        first, second = _asend(transport, _send_request(), _send_request())
    assert isinstance(first, Response)  # answered after the stall
    assert isinstance(second, NotSentError)
    assert len(gw.seen) == 1  # the gateway never saw the second one


@pytest.mark.parametrize("status", [500, 503, 429, 404])
def test_given_an_http_error_status_when_sending_async_then_http_status_error(status: int) -> None:
    headers = {"Retry-After": "7"}
    with (
        gateway("status", status=status, answer=b"busy", headers=headers) as gw,
        Transport([gw.url]) as transport,
    ):
        (error,) = _asend(transport, _send_request())
    assert isinstance(error, HTTPStatusError)
    assert (error.status_code, error.body, error.retry_after) == (status, "busy", 7.0)
    assert len(gw.seen) == 1  # sent: a 5xx without Retry-After is unknown, decided by the worker
    _assert_no_secret(error)


def test_given_a_dead_primary_when_sending_async_then_the_backup_answers_and_stays_in_use() -> None:
    port = closed_port()
    with gateway() as backup, Transport([f"http://127.0.0.1:{port}", backup.url]) as transport:
        (first,) = _asend(transport, entinfo.build_send(EN, ["13912345678"], "a【签】", ref="1"))
        assert isinstance(first, Response) and first.url_used.startswith(backup.url)
        with gateway(port=port) as primary:
            (second,) = _asend(transport, entinfo.build_send(EN, ["13912345678"], "b【签】", ref="2"))
            assert isinstance(second, Response) and second.url_used.startswith(backup.url)
            assert primary.seen == []
        assert transport.base_url == backup.url
    assert len(backup.seen) == 2


def test_given_a_stalling_primary_when_sending_async_then_unknown_is_not_resent_but_next_goes_to_backup() -> (
    None
):
    with gateway("stall", delay=1.0) as primary, gateway() as backup:
        with Transport([primary.url, backup.url], timeout=0.3) as transport:
            (error,) = _asend(transport, entinfo.build_send(EN, ["13912345678"], "a【签】", ref="1"))
            assert isinstance(error, OutcomeUnknownError)
            assert backup.seen == []  # never one request to both addresses
            (answer,) = _asend(transport, entinfo.build_send(EN, ["13912345678"], "b【签】", ref="2"))
            assert isinstance(answer, Response)
        assert len(primary.seen) == 1
        assert len(backup.seen) == 1


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (
            aiohttp.ClientConnectorError(
                ConnectionKey("h", 1, False, None, None, None, None), OSError(111, "refused")
            ),
            NotSentError,
        ),
        (aiohttp.ConnectionTimeoutError("pool or connect"), NotSentError),
        (aiohttp.SocketTimeoutError("read"), OutcomeUnknownError),
        (aiohttp.ServerDisconnectedError(), OutcomeUnknownError),
        (aiohttp.ClientOSError(104, "reset"), OutcomeUnknownError),
        (aiohttp.ClientPayloadError("broken"), OutcomeUnknownError),
        (TimeoutError(), OutcomeUnknownError),
        (aiohttp.InvalidURL("x"), ConfigError),
    ],
)
def test_given_each_aiohttp_failure_when_translated_then_the_dispatcher_error_says_if_it_was_sent(
    raised: Exception, expected: type[Exception]
) -> None:
    assert isinstance(translate_aiohttp_error(raised, "http://gw.test/x"), expected)


def test_given_both_addresses_dead_when_sending_async_then_not_sent() -> None:
    urls = [f"http://127.0.0.1:{closed_port()}", f"http://127.0.0.1:{closed_port()}"]
    with Transport(urls) as transport:
        (error,) = _asend(transport, _send_request())
    assert isinstance(error, NotSentError)
    assert issubclass(NotSentError, TransportError)


@pytest.mark.parametrize("status", [307, 308, 302])
def test_given_a_redirect_when_sending_async_then_it_is_not_followed_as_the_sync_path_does(
    status: int,
) -> None:
    # A 307/308 would post the form (the password with it) again to wherever Location says; a 302
    # would turn it into a GET without the form. Neither path follows: the answer is the 3xx itself.
    with gateway() as elsewhere:
        location = {"Location": elsewhere.url + "/winnerrxd/api/trigger/SendMsg"}
        with (
            gateway("status", status=status, answer=b"moved", headers=location) as gw,
            Transport([gw.url]) as transport,
        ):
            (answer,) = _asend(transport, _send_request())
            synced = transport.send(_send_request())
        assert elsewhere.seen == []
    assert isinstance(answer, Response)
    assert (answer.status_code, answer.text) == (synced.status_code, synced.text) == (status, "moved")
    assert len(gw.seen) == 2


def test_given_a_gateway_trickling_its_answer_when_sending_async_then_unknown_within_the_timeouts() -> None:
    # One byte every 0.2 s never trips the per-read timeout (0.5 s): without a bound on the whole
    # exchange the request outlives any timeout, and a live sender its lease (dispatch.LEASE_SECONDS).
    with gateway("trickle", delay=0.2) as gw, Transport([gw.url], timeout=0.5) as transport:
        started = time.monotonic()
        (error,) = _asend(transport, _send_request())
        took = time.monotonic() - started
    assert isinstance(error, OutcomeUnknownError)  # the gateway read it
    assert took < 4.0, took  # connect + read timeouts and a second (2 s), not the 13 s of the answer
    assert len(gw.seen) == 1
