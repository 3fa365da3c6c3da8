"""ModelClient against the scripted OpenAI-compatible server, over real HTTP: odd answers
are retried as unreadable, refusals fail one request, other 4xx stop the run, and the
API key never leaks into an error."""

from __future__ import annotations

import asyncio
import json

import pytest

from openai_stub import Reply, ScriptedServer
from selfinstruct.endpoint.client import Completion, FatalAPIError, ModelClient, RequestFailed, Usage
from selfinstruct.endpoint.tokens import estimate_tokens

KEY = "secret-abc123-do-not-leak"  # not shaped like sk-..., so only the exact-key redaction can hide it
GOOD = "good answer"


@pytest.fixture
def server():
    with ScriptedServer(lambda request: GOOD) as srv:
        yield srv
    assert srv.errors == []


def run(server, *, api: str = "chat", max_retries: int = 2):
    """One complete() call; returns (the Completion or the exception raised, the client)."""
    holder = {}

    async def main():
        client = holder["client"] = ModelClient(base_url=server.base_url, api_key=KEY, model="m", api=api,
                                                timeout=5, max_retries=max_retries,
                                                retry_wait=0.001)
        try:
            return await client.complete("say something", max_tokens=16, temperature=0.7, top_p=1.0)
        except (RequestFailed, FatalAPIError) as exc:
            return exc
        finally:
            await client.close()

    result = asyncio.run(main())
    return result, holder["client"]


def choices_body(*choices, **extra) -> str:
    return json.dumps({"id": "x", "object": "chat.completion", "choices": list(choices), **extra})


INVALID_UTF8 = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "caf\xe9"}, "finish_reason": "stop"}]}'

UNREADABLE = {
    "message_null": ("chat", Reply(GOOD, null_message=True)),
    "content_int": ("chat", Reply(content=5)),
    "content_float": ("chat", Reply(content=1.5)),
    "content_bool": ("chat", Reply(content=True)),
    "content_list": ("chat", Reply(content=[])),
    "content_list_of_text": ("chat", Reply(content=["a", "b"])),
    "content_object": ("chat", Reply(content={})),
    "content_object_with_text": ("chat", Reply(content={"text": "hi"})),
    "text_int": ("completion", Reply(content=5)),
    "text_list": ("completion", Reply(content=["a"])),
    "text_object": ("completion", Reply(content={})),
    "message_is_a_string": ("chat", Reply(raw_body=choices_body({"message": "hi", "finish_reason": "stop"}))),
    "choice_is_a_number": ("chat", Reply(raw_body=choices_body(5))),
    "choice_is_a_string": ("chat", Reply(raw_body=choices_body("hi"))),
    "choice_is_null": ("chat", Reply(raw_body=choices_body(None))),
    "choice_is_a_list": ("chat", Reply(raw_body=choices_body([]))),
    "completion_choice_is_a_string": ("completion", Reply(raw_body=choices_body("hi"))),
    "invalid_utf8": ("chat", Reply(raw_body=INVALID_UTF8)),
    "invalid_utf8_completion": ("completion", Reply(raw_body=INVALID_UTF8)),
    "lone_high_surrogate": ("chat", Reply("abc\ud800")),
    "lone_low_surrogate": ("chat", Reply("\udc80 tail")),
    "lone_surrogate_completion": ("completion", Reply("abc\ud800")),
}


@pytest.mark.parametrize("api, bad", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_odd_answer_is_retried_then_fails_unreadable(server, api, bad):
    server.script(bad, bad, bad)
    failed, client = run(server, api=api, max_retries=2)
    assert type(failed) is RequestFailed
    assert (failed.reason, failed.refused) == ("unreadable_response", False)
    assert client.retries == {"unreadable_response": 2}
    assert server.count() == 3
    failed.detail.encode("utf-8")  # safe to journal


@pytest.mark.parametrize("api, bad", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_good_answer_after_one_odd_answer_is_returned(server, api, bad):
    server.script(bad)
    completion, client = run(server, api=api, max_retries=2)
    assert isinstance(completion, Completion) and completion.text == GOOD
    assert client.retries == {"unreadable_response": 1}
    assert server.count() == 2


@pytest.mark.parametrize("api", ["chat", "completion"])
@pytest.mark.parametrize("bad", [Reply(content=None), Reply(content="  \n")], ids=["null", "blank"])
def test_null_or_blank_content_is_empty_content_not_retried(server, api, bad):
    server.script(bad)
    failed, client = run(server, api=api)
    assert type(failed) is RequestFailed and (failed.reason, failed.refused) == ("empty_content", False)
    assert client.retries == {} and server.count() == 1


def test_completion_text_null_is_empty_content(server):
    server.script(Reply(GOOD, null_message=True))  # completion: "text": null is null content
    failed, client = run(server, api="completion")
    assert type(failed) is RequestFailed and failed.reason == "empty_content"
    assert client.retries == {} and server.count() == 1


def test_good_answer_and_usage(server):
    server.script(Reply("hello there", finish_reason="length", prompt_tokens=7, completion_tokens=3))
    completion, client = run(server)
    assert completion == Completion("hello there", "length", Usage(7, 3))
    assert client.retries == {}


def test_tokens_of_retried_and_failed_attempts_are_counted(server):
    server.script(Reply("bad \ud800 text", prompt_tokens=5, completion_tokens=2),  # unreadable, retried
                  Reply("hello there", prompt_tokens=7, completion_tokens=3))
    completion, _ = run(server)
    assert completion.usage == Usage(12, 5) and completion.retries == ["unreadable_response"]
    server.script(Reply("", prompt_tokens=6, completion_tokens=0))  # empty_content: fails, billed
    failed, _ = run(server)
    assert failed.reason == "empty_content" and failed.usage == Usage(6, 0)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(GOOD, missing_usage=True),
        Reply(raw_body=choices_body({"message": {"content": GOOD}, "finish_reason": "stop"}, usage=None)),
        Reply(raw_body=choices_body({"message": {"content": GOOD}, "finish_reason": "stop"}, usage="lots")),
        Reply(raw_body=choices_body({"message": {"content": GOOD}, "finish_reason": "stop"}, usage=[1, 2])),
        Reply(raw_body=choices_body({"message": {"content": GOOD}, "finish_reason": "stop"},
                                    usage={"prompt_tokens": "7", "completion_tokens": 2.5})),
        Reply(raw_body=choices_body({"message": {"content": GOOD}, "finish_reason": "stop"},
                                    usage={"prompt_tokens": -1, "completion_tokens": True})),
        Reply(raw_body=choices_body({"message": {"content": GOOD}, "finish_reason": "stop"},
                                    usage={"prompt_tokens": None, "completion_tokens": {"n": 1}})),
    ],
    ids=["missing", "null", "string", "list", "str_and_float", "negative_and_bool", "null_and_object"],
)
def test_odd_usage_is_estimated_from_the_text(server, reply):
    server.script(reply)
    completion, client = run(server)
    assert completion == Completion(GOOD, "stop", Usage(estimate_tokens("say something"), estimate_tokens(GOOD), True))
    assert client.retries == {} and server.count() == 1


def test_missing_or_odd_finish_reason_is_none(server):
    server.script(Reply(raw_body=choices_body({"message": {"content": GOOD}})),
                  Reply(raw_body=choices_body({"message": {"content": GOOD}, "finish_reason": ["stop"]})))
    for _ in range(2):
        completion = run(server)[0]
        assert (completion.text, completion.finish_reason) == (GOOD, None)


def test_content_filter_and_no_choices_are_not_retried(server):
    server.script(Reply("", finish_reason="content_filter"), Reply(no_choices=True))
    assert run(server)[0].reason == "content_filter"
    assert run(server)[0].reason == "no_choices"
    assert server.count() == 2


# status codes ---------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 413, 422])
def test_refused_request_fails_at_once_and_the_run_goes_on(server, status):
    server.script(Reply(f"the prompt is too long ({status})", status=status))
    failed, client = run(server)
    assert type(failed) is RequestFailed
    assert (failed.reason, failed.refused) == (f"http_{status}", True)
    assert failed.detail == f"the prompt is too long ({status})"
    assert client.retries == {} and server.count() == 1


def test_transient_failure_out_of_retries_is_not_refused(server):
    server.script(*[Reply("busy", status=503)] * 3)
    failed, client = run(server, max_retries=2)
    assert type(failed) is RequestFailed
    assert (failed.reason, failed.detail, failed.refused) == ("http_503", "busy", False)
    assert client.retries == {"http_503": 2} and server.count() == 3


@pytest.mark.parametrize(
    "status, hint",
    [
        (401, "API key was refused"),
        (402, "no credit or balance"),
        (403, "no access"),
        (404, "not found"),
        (405, "rejected the request"),
        (418, "rejected the request"),
    ],
)
def test_other_4xx_stop_the_run_with_a_hint(server, status, hint):
    server.script(Reply("provider says no", status=status))
    fatal, client = run(server)
    assert type(fatal) is FatalAPIError
    message = str(fatal)
    assert message.startswith(f"{status} from {server.base_url}") and hint in message
    assert "provider says no" in message
    assert client.retries == {} and server.count() == 1


# the API key never leaks -------------------------------------------------------


def test_key_echoed_in_a_400_message_is_redacted(server):
    server.script(Reply(f"Incorrect API key provided: {KEY}. Also sk-proj-abcdef123 is wrong.", status=400))
    failed, _ = run(server)
    assert type(failed) is RequestFailed and failed.refused
    assert KEY not in failed.detail and KEY not in str(failed)
    assert "sk-proj-abcdef123" not in failed.detail
    assert failed.detail == "Incorrect API key provided: [redacted]. Also [redacted] is wrong."


@pytest.mark.parametrize("status", [401, 402, 503])
def test_key_echoed_in_other_errors_is_redacted(server, status):
    server.script(*[Reply(f"bad key {KEY}", status=status)] * 3)
    error, _ = run(server)
    assert isinstance(error, (RequestFailed, FatalAPIError))
    assert KEY not in str(error) and KEY not in getattr(error, "detail", "")
    assert "[redacted]" in str(error)


def test_error_message_with_a_lone_surrogate_is_safe_to_write(server):
    server.script(Reply("bad \ud800 input", status=400))
    failed, _ = run(server)
    assert failed.reason == "http_400" and failed.detail == "bad \\ud800 input"
    failed.detail.encode("utf-8")
