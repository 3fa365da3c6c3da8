"""The stub server speaks well enough for the real openai SDK, and each scripted
fault reaches the caller as the exception pinned here (retry logic relies on it)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request

import openai
import pytest

from openai_stub import MODEL, Reply, ScriptedServer, serve_in_thread

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say hi"}]


@pytest.fixture
def server():
    with ScriptedServer(lambda request: "default answer") as srv:
        yield srv
    assert srv.errors == []


@pytest.fixture
def client(server):
    """No SDK retries, so one scripted fault is one exception."""
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=5) as c:
        yield c


def chat(client, **kw):
    return client.chat.completions.create(model="gpt-test", messages=MESSAGES, **kw)


def raises(client, reply: Reply, server) -> Exception:
    server.script(reply)
    with pytest.raises(Exception) as info:
        chat(client)
    return info.value


# happy paths ---------------------------------------------------------------


def test_chat_completion_is_parsed(server, client):
    server.script(Reply(text="hello there", prompt_tokens=7, completion_tokens=3))
    out = chat(client)
    assert out.object == "chat.completion" and out.model == "gpt-test" and out.id
    choice = out.choices[0]
    assert (choice.index, choice.message.role, choice.message.content) == (0, "assistant", "hello there")
    assert choice.finish_reason == "stop"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (7, 3, 10)


def test_text_completion_is_parsed_with_default_usage(server, client):
    server.responder = lambda request: "one two three"
    out = client.completions.create(model="davinci-test", prompt="a b c d")
    assert out.object == "text_completion"
    assert (out.choices[0].text, out.choices[0].finish_reason, out.choices[0].logprobs) == ("one two three", "stop", None)
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (4, 3, 7)


def test_n_choices_repeat_text_or_follow_a_list(server, client):
    out = chat(client, n=3)
    assert [c.message.content for c in out.choices] == ["default answer"] * 3
    assert [c.index for c in out.choices] == [0, 1, 2]
    server.script(["a", Reply("b", finish_reason="length")])
    out = client.completions.create(model="m", prompt="p", n=2)
    assert [(c.text, c.finish_reason) for c in out.choices] == [("a", "stop"), ("b", "length")]


def test_finish_reasons_and_empty_choices_pass_through(server, client):
    server.script(Reply("", finish_reason="content_filter"), Reply("cut", finish_reason="length"), Reply(no_choices=True))
    assert chat(client).choices[0].finish_reason == "content_filter"
    assert chat(client).choices[0].finish_reason == "length"
    assert chat(client).choices == []


def test_models_list(client):
    assert [m.id for m in client.models.list()] == [MODEL]


# scripting and recording ---------------------------------------------------


def test_script_queue_is_fifo_then_responder(server, client):
    server.responder = lambda request: f"echo: {request.prompt}"
    server.script("first", Reply("second"))
    server.script("third")
    got = [chat(client).choices[0].message.content for _ in range(4)]
    assert got == ["first", "second", "third", "echo: be brief\nsay hi"]


def test_requests_are_recorded(server, client):
    chat(client)
    chat(client)
    client.completions.create(model="m", prompt="complete me")
    first, second, third = server.requests
    assert (first.endpoint, first.prompt, first.body["model"]) == ("chat", "be brief\nsay hi", "gpt-test")
    assert first.body["messages"] == MESSAGES
    assert (third.endpoint, third.prompt) == ("completion", "complete me")
    assert first.key == second.key != third.key  # same body -> same key
    assert server.count() == 3 and server.count(lambda r: r.endpoint == "chat") == 2


def test_api_key_is_sent_but_not_in_repr(server, client):
    chat(client)
    request = server.requests[0]
    assert request.headers["authorization"] == "Bearer sk-test"
    assert "sk-test" not in repr(request)


def test_responder_exception_becomes_500(server, client):
    def broken(request):
        raise KeyError("oops")

    server.responder = broken
    with pytest.raises(openai.InternalServerError, match="responder raised KeyError"):
        chat(client)
    assert [type(e) for e in server.errors] == [KeyError]
    server.errors.clear()  # seen; don't fail the fixture


# faults -> exact SDK exceptions ------------------------------------------


@pytest.mark.parametrize(
    "status, exc",
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (408, openai.APIStatusError),  # no dedicated class
        (409, openai.ConflictError),
        (422, openai.UnprocessableEntityError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (502, openai.InternalServerError),
        (503, openai.InternalServerError),
        (504, openai.InternalServerError),
    ],
)
def test_status_maps_to_exception(server, client, status, exc):
    err = raises(client, Reply("went wrong", status=status), server)
    assert type(err) is exc
    assert err.status_code == status
    assert err.body["message"] == "went wrong"  # SDK unwraps {"error": {...}}
    assert str(err) == f"Error code: {status} - went wrong"


def test_rate_limit_exposes_retry_after(server, client):
    err = raises(client, Reply(status=429, headers={"Retry-After": "1"}), server)
    assert type(err) is openai.RateLimitError
    assert err.response.headers["retry-after"] == "1"
    assert err.body["code"] == "rate_limit_exceeded"


@pytest.mark.slow
def test_delay_beyond_client_timeout_is_api_timeout_error(server):
    server.script(Reply("late", delay=2))
    c = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError) as info:
        chat(c)
    assert time.monotonic() - start < 1.5
    assert isinstance(info.value, openai.APIConnectionError)  # note: timeout IS-A connection error


@pytest.mark.parametrize("status", [200, 500])
def test_drop_mid_body_is_api_connection_error(server, client, status):
    err = raises(client, Reply("x" * 100, status=status, drop=True), server)
    assert type(err) is openai.APIConnectionError  # even for a 500: the body never arrived
    assert type(err.__cause__).__name__ == "RemoteProtocolError"


def test_non_json_body_declared_json_raises_plain_json_error(server, client):
    err = raises(client, Reply(raw_body="<html>oops</html>"), server)
    assert type(err) is json.JSONDecodeError
    assert not isinstance(err, openai.OpenAIError)  # escapes `except openai.OpenAIError`


def test_non_json_body_with_non_json_content_type_returns_str(server, client):
    server.script(Reply(raw_body="<html>oops</html>", headers={"Content-Type": "text/html"}))
    assert chat(client) == "<html>oops</html>"  # the SDK hands back the text, no exception


def test_json_without_choices_is_not_validated(server, client):
    server.script(Reply(raw_body="{}"), Reply(raw_body="null"))
    assert chat(client).choices is None
    assert chat(client) is None


def test_gateway_html_error_keeps_text_body(server, client):
    reply = Reply(status=502, raw_body="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"})
    err = raises(client, reply, server)
    assert type(err) is openai.InternalServerError
    assert err.body == "<html>Bad Gateway</html>" and str(err) == "Error code: 502"


def test_sdk_retries_resend_the_same_body(server):
    server.script(Reply(status=429, headers={"retry-after-ms": "10"}), Reply(status=503, headers={"retry-after-ms": "10"}))
    c = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=2, timeout=5)
    assert chat(c).choices[0].message.content == "default answer"
    sent = server.requests
    assert len({r.key for r in sent}) == 1
    assert [r.headers["x-stainless-retry-count"] for r in sent] == ["0", "1", "2"]


# malformed 200 answers ---------------------------------------------------------


def post_raw(server, reply: Reply, endpoint: str = "chat") -> bytes:
    """Script one reply and POST to it with urllib: the exact bytes on the wire."""
    server.script(reply)
    path = "/chat/completions" if endpoint == "chat" else "/completions"
    body = {"model": "m", "messages": MESSAGES} if endpoint == "chat" else {"model": "m", "prompt": "p"}
    request = urllib.request.Request(server.base_url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()


def test_null_message_chat_and_null_text_completion(server, client):
    server.script(Reply("ignored", null_message=True), Reply("ignored", null_message=True))
    assert chat(client).choices[0].message is None
    assert client.completions.create(model="m", prompt="p").choices[0].text is None
    assert json.loads(post_raw(server, Reply(null_message=True)))["choices"][0]["message"] is None
    assert json.loads(post_raw(server, Reply(null_message=True), "completion"))["choices"][0]["text"] is None


@pytest.mark.parametrize("value", [5, 1.5, [], ["a"], {}, {"a": 1}, None, True, "given"])
def test_content_puts_any_json_value_in_place_of_the_text(server, client, value):
    chat_body = json.loads(post_raw(server, Reply("ignored", content=value)))
    assert chat_body["choices"][0]["message"] == {"role": "assistant", "content": value}
    completion_body = json.loads(post_raw(server, Reply("ignored", content=value), "completion"))
    assert completion_body["choices"][0]["text"] == value
    server.script(Reply("ignored", content=value))
    assert chat(client).choices[0].message.content == value  # the SDK does not validate the type


def test_content_default_uses_text(server):
    assert repr(Reply().content) == "UNSET"
    assert json.loads(post_raw(server, Reply("words")))["choices"][0]["message"]["content"] == "words"


def test_raw_body_bytes_go_out_verbatim(server, client):
    body = b'{"choices": [{"message": {"content": "caf\xe9 \xff"}}]}'
    assert post_raw(server, Reply(raw_body=body)) == body
    err = raises(client, Reply(raw_body=body), server)
    assert type(err) is UnicodeDecodeError  # invalid UTF-8 in a 200 JSON body escapes the SDK as-is
    assert not isinstance(err, openai.OpenAIError)


def test_lone_surrogate_goes_out_as_a_json_escape(server, client):
    wire = post_raw(server, Reply("abc\ud800"))
    wire.decode("utf-8")  # valid UTF-8 on the wire
    assert b'"content": "abc\\ud800"' in wire
    server.script(Reply("abc\ud800"))
    assert chat(client).choices[0].message.content == "abc\ud800"  # decoded back to a lone surrogate


def test_missing_usage_drops_the_key(server, client):
    assert "usage" not in json.loads(post_raw(server, Reply("hi", missing_usage=True)))
    server.script(Reply("hi", missing_usage=True))
    out = chat(client)
    assert out.usage is None and out.choices[0].message.content == "hi"


# server plumbing -------------------------------------------------------------


def test_unknown_path_and_bad_json_get_openai_errors(server):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.base_url + "/nope", timeout=5)
    assert info.value.code == 404 and "Unknown path" in json.load(info.value)["error"]["message"]
    bad = urllib.request.Request(server.base_url + "/completions", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(bad, timeout=5)
    assert info.value.code == 400 and json.load(info.value)["error"]["type"] == "invalid_request_error"


@pytest.mark.slow
def test_client_hanging_up_is_silent(server, capsys):
    server.script(Reply("late", delay=0.4))
    c = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=0.1)
    with pytest.raises(openai.APITimeoutError):
        chat(c)
    time.sleep(0.6)  # the handler wakes and writes into the closed socket
    assert capsys.readouterr().err == ""


def test_stop_is_prompt_while_a_reply_is_sleeping():
    srv = serve_in_thread(lambda request: Reply("never", delay=30))
    c = openai.OpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0, timeout=10)
    errors = []
    caller = threading.Thread(target=lambda: errors.append(pytest.raises(Exception, chat, c).value))
    caller.start()
    while srv.count() == 0:
        time.sleep(0.01)
    start = time.monotonic()
    srv.stop()
    caller.join(timeout=5)
    assert time.monotonic() - start < 1
    assert [type(e) for e in errors] == [openai.APIConnectionError]  # hung up without a response
    srv.stop()  # idempotent


def test_async_client_concurrent_requests(server):
    server.responder = lambda request: Reply(request.prompt.upper(), delay=0.3)

    async def main():
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as c:
            calls = [
                c.chat.completions.create(model="m", messages=[{"role": "user", "content": f"item {i}"}])
                for i in range(8)
            ]
            return await asyncio.gather(*calls)

    start = time.monotonic()
    results = asyncio.run(main())
    assert time.monotonic() - start < 1.0  # served in parallel, not 8 x 0.3 s
    assert [r.choices[0].message.content for r in results] == [f"ITEM {i}" for i in range(8)]
    assert server.count(lambda r: r.endpoint == "chat") == 8
