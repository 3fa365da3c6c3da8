"""--structured: JSON answers that follow a schema per stage, read exactly, through the same pipeline.

Against the scripted server (FakeModel.structured answers JSON when a request carries response_format):
what each stage's request carries, that tasks are accepted and a resume replays them, that JSON which does
not fit is a counted rejection, and that an endpoint refusing response_format is one line and exit 3.
"""

from __future__ import annotations

import json

import pytest
from openai_stub import Reply
from helpers import assert_replays_without_requests, assert_well_formed_run, common, invoke, read_jsonl, run_config
from selfinstruct import Config, generate
from selfinstruct.config import ConfigError
from selfinstruct.generation.methods.registry import METHODS
from selfinstruct.generation.prompts import PromptSet
from selfinstruct.resources import default_prompts
from selfinstruct.store.rundir import RunDirError
from selfinstruct.endpoint.structured import FREE_TEXT, SCHEMAS, read, refuses_format, response_format

# The shape each stage's request asks for, by the prompt's template.
SHAPES = {"self-instruct": {"instructions", "classify", "instances", "instances_classification"},
          "alpaca": {"alpaca"}, "evol": {"evolve", "compare", "judge"}}


# -- reading answers --------------------------------------------------------------------------------

def test_an_answer_that_fits_is_read_exactly():
    text = '{"examples": [{"input": "", "output": "a\\nb"}, {"input": "x", "output": "y"}], "note": "extra keys pass"}'
    assert read("instances", text, "stop").value["examples"] == [{"input": "", "output": "a\nb"},
                                                                   {"input": "x", "output": "y"}]
    assert read("judge", '```json\n{"score": 4, "reason": "ok"}\n```', "stop").value == {"score": 4, "reason": "ok"}
    # llama.cpp's grammar lets a raw line break into a string
    assert read("evolve", '{"instruction": "two\nlines"}', "stop").value == {"instruction": "two\nlines"}


@pytest.mark.parametrize("shape, text, reason, where", [
    ("instructions", "Task 9: write a poem", "invalid_json", "line 1 column 1"),
    ("instructions", '{"instructions": ["a", 3]}', "schema_mismatch", "$.instructions[1]: expected a string"),
    ("instructions", '{"instructions": []}', "schema_mismatch", "$.instructions: an empty list"),
    ("instructions", '["a", "b"]', "schema_mismatch", "$: expected an object, got a list"),
    ("classify", '{"classification": "yes"}', "schema_mismatch", "expected a boolean, got a string"),
    ("judge", '{"score": 7, "reason": "great"}', "schema_mismatch", "7 is not one of [1, 2, 3, 4, 5]"),
    ("judge", '{"score": true, "reason": "great"}', "schema_mismatch", "expected an integer, got a boolean"),
    ("instances_classification", '{"examples": [{"input": "x", "output": "y"}]}', "schema_mismatch",
     "$.examples[0]: the key 'label' is missing"),
    ("compare", '{"adds_something": tr', "cut_off", "cut off at max_tokens"),
])
def test_an_answer_that_does_not_fit_is_a_reason_and_where(shape, text, reason, where):
    finish = "length" if reason == "cut_off" else "stop"
    reading = read(shape, text, finish)
    assert reading.value is None and reading.reason == reason and where in reading.detail


def test_a_list_cut_off_at_max_tokens_keeps_its_complete_items():
    reading = read("instructions", '{"instructions": ["one", "two" , "thr', "length")
    assert reading.value == {"instructions": ["one", "two"]} and reading.lost == "thr"
    reading = read("alpaca", '{"tasks": [{"instruction": "a", "input": "", "output": "b"}, {"instruction": "c', "length")
    assert reading.value["tasks"] == [{"instruction": "a", "input": "", "output": "b"}]
    assert reading.lost == '{"instruction": "c'
    assert read("instructions", '{"instructions": ["one"]', "length").lost is None  # only the end was lost
    assert read("instructions", '{"instructions": ["on', "length").reason == "cut_off"


# -- what is sent -----------------------------------------------------------------------------------

def test_schemas_are_strict_everywhere():
    """OpenAI's strict mode: every object names all its keys as required and allows no others."""
    def objects(schema):
        if schema["type"] == "object":
            yield schema
            for child in schema["properties"].values():
                yield from objects(child)
        elif schema["type"] == "array":
            yield from objects(schema["items"])

    for schema in SCHEMAS.values():
        for node in objects(schema):
            assert node["required"] == list(node["properties"]) and node["additionalProperties"] is False


def test_the_response_format_of_each_style():
    assert response_format("classify", "json_schema") == {
        "type": "json_schema", "json_schema": {"name": "classify", "schema": SCHEMAS["classify"], "strict": True}}
    assert response_format("classify", "json_object") == {"type": "json_object"}
    assert response_format("classify", "json_schema", llama_cpp_python=True) == {
        "type": "json_object", "schema": SCHEMAS["classify"]}


@pytest.mark.parametrize("status, message, refused", [
    (400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.", True),
    (422, "response_format.type: Input should be 'text' or 'json_object'", True),
    (500, "1 validation error: {'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text'\"}", True),
    (400, "max_tokens is too large: 99999", False),
    (500, "an internal error while handling response_format", False),  # a fault, retried
])
def test_a_refused_format_is_told_apart_from_other_errors(status, message, refused):
    assert refuses_format(status, message) is refused


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_template_has_a_structured_variant_with_the_same_placeholders(lang):
    every = {name: names for method in METHODS.values() for name, names in method.templates.items()}
    prompts = PromptSet.load(default_prompts(), lang, every, structured=True)
    for name in every:
        folder = "" if name in FREE_TEXT else "structured/"
        assert prompts.files[list(every).index(name)].as_posix().endswith(f"{lang}/{folder}{name}.txt")


# -- settings ---------------------------------------------------------------------------------------

def test_the_setting_from_the_api_toml_and_cli(tmp_path):
    assert Config(structured=True).structured == "json_schema" and Config(structured=False).structured is None
    assert Config(structured="json_object").structured == "json_object"
    path = tmp_path / "run.toml"
    path.write_text('structured = "json_object"\n')
    assert Config.from_toml(path).structured == "json_object"
    path.write_text("structured = true\n")
    assert Config.from_toml(path).structured == "json_schema"
    for value, needle in (("yaml", "unknown structured 'yaml'"), (3, "structured must be true or false, got 3")):
        with pytest.raises(ConfigError, match=needle):
            Config(structured=value)
    with pytest.raises(ConfigError, match="--structured needs the chat API"):
        Config(structured=True, api="completion")


def test_it_needs_the_chat_api_and_changes_the_signature(tmp_path):
    embedded = Config(structured=True, output=tmp_path / "a").resolve()
    assert (embedded.local, embedded.api, embedded.serves_llama_cpp_python()) == (True, "chat", True)
    served = Config(structured=True, base_url="http://127.0.0.1:8000/v1", model="gemma-3-270m-q4_k_m.gguf",
                    output=tmp_path / "b").resolve()
    assert served.api == "chat" and served.serves_llama_cpp_python()
    remote = Config(structured=True, api_key="sk-x", output=tmp_path / "c").resolve()
    assert remote.api == "chat" and not remote.serves_llama_cpp_python()
    assert "structured" not in Config(api_key="sk-x", output=tmp_path / "d").resolve().signature([])
    assert remote.signature([])["structured"] == "json_schema"


def test_the_cli_flags(server, tmp_path):
    result = invoke(*common(server, tmp_path / "run", "--lang", "en", "--json-mode", "--dry-run"))
    assert result.exit_code == 0, result.output
    assert "(chat API), structured (json_object)" in result.output
    assert result.output.count('response_format: {"type": "json_object"}') == 4


# -- runs against the scripted server -----------------------------------------------------------------

@pytest.mark.parametrize("mode", list(SHAPES))
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_structured_run_sends_each_stage_its_schema_and_accepts_tasks(server, tmp_path, mode, lang):
    config = run_config(server, tmp_path, lang=lang, mode=mode, structured=True, num_instructions=6,
                        judge=mode == "evol", min_score=1 if mode == "evol" else None)
    summary = generate(config)
    assert_well_formed_run(tmp_path / "run", config)
    assert summary["rejected_by_reason"] == {}
    sent = {r.body["response_format"]["json_schema"]["name"] for r in server.requests if "response_format" in r.body}
    assert sent == SHAPES[mode]
    for request in server.requests:
        assert request.endpoint == "chat" and "stop" not in request.body  # free-text stops would cut JSON short
        if "response_format" in request.body:
            schema = request.body["response_format"]["json_schema"]
            assert schema["strict"] is True and schema["schema"] == SCHEMAS[schema["name"]]
        else:  # only evol's response is free text
            assert mode == "evol" and request.prompt.startswith(("Respond to", "请认真"))
    assert all(r["text"].startswith("{") for r in read_jsonl(tmp_path / "run" / "responses.jsonl")
               if r["stage"] != "respond")
    assert_replays_without_requests(tmp_path / "run", tmp_path / "copy")


def test_json_mode_sends_json_object_and_the_prompts_say_the_shape(server, tmp_path):
    config = run_config(server, tmp_path, lang="en", structured="json_object", num_instructions=4)
    generate(config)
    assert {json.dumps(r.body["response_format"]) for r in server.requests} == {'{"type": "json_object"}'}
    tasks = read_jsonl(tmp_path / "run" / "tasks.jsonl")
    assert len(tasks) == 4 and any(t["is_classification"] for t in tasks)


def test_json_that_does_not_fit_is_a_counted_rejection(server, fake_model, tmp_path):
    answers = iter(['{"instructions": "not a list"}', "Sure! Here are some tasks:\n1. Write a poem."])

    def respond(request):
        if request.body["response_format"]["json_schema"]["name"] == "instructions":
            return next(answers, None) or fake_model(request)
        return fake_model(request)

    server.responder = respond
    config = run_config(server, tmp_path, lang="en", structured=True, num_instructions=6)
    summary = generate(config)
    assert summary["accepted"] == 6
    assert summary["rejected_by_reason"] == {"schema_mismatch": 1, "invalid_json": 1}
    rejected = {r["reason"]: r for r in read_jsonl(tmp_path / "run" / "rejected.jsonl")}
    assert rejected["schema_mismatch"]["detail"] == "$.instructions: expected a list, got a string"
    assert rejected["invalid_json"]["instruction"].startswith("Sure! Here are")


def test_a_cut_off_list_keeps_its_complete_items(server, fake_model, tmp_path):
    server.script(Reply(text='{"instructions": ["Describe the harbour at dawn in three sentences.", '
                             '"Plan a two-day trip to the mountains for a family of fo', finish_reason="length"))
    config = run_config(server, tmp_path, lang="en", structured=True, num_instructions=1, requests_per_round=1,
                        concurrency=1)
    generate(config)
    [task] = read_jsonl(tmp_path / "run" / "tasks.jsonl")
    assert task["instruction"] == "Describe the harbour at dawn in three sentences."
    [cut] = read_jsonl(tmp_path / "run" / "rejected.jsonl")
    assert (cut["reason"], cut["instruction"]) == ("cut_off", "Plan a two-day trip to the mountains for a family of fo")


def test_resuming_with_another_structured_setting_is_refused(server, tmp_path):
    config = run_config(server, tmp_path, lang="en", structured=True, num_instructions=2)
    generate(config)
    for other in (None, "json_object"):
        with pytest.raises(RunDirError, match="structured"):
            generate(run_config(server, tmp_path, lang="en", structured=other, num_instructions=3))


@pytest.mark.parametrize("status, message", [
    (400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model."),
    (500, "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
          "'msg': \"Input should be 'text' or 'json_object'\"}"),  # llama-cpp-python's server
])
def test_an_endpoint_refusing_response_format_is_one_line_and_exit_3(server, tmp_path, status, message):
    server.responder = lambda request: Reply(status=status, text=message)
    result = invoke(*common(server, tmp_path / "run", "--lang", "en", "--structured", "--concurrency", 1))
    assert result.exit_code == 3
    endpoint, line = result.output.strip().splitlines()  # the endpoint line every run starts with, then one line
    assert endpoint.startswith("endpoint: ")
    assert line.startswith(f"error: {status} from {server.base_url}: the endpoint refused response_format json_schema")
    assert line.endswith("leave --structured off, or try --json-mode (JSON mode: the shape asked for in words "
                         "only) if the endpoint has it")
    assert server.count() == 1  # told at once: not retried, not sent again


def test_other_refusals_of_a_structured_run_mention_it_too(server, tmp_path):
    server.responder = lambda request: Reply(status=400, text="this model is not available on your plan")
    result = invoke(*common(server, tmp_path / "run", "--lang", "en", "--json-mode"))
    assert result.exit_code == 3
    assert "refused the first 3 requests" in result.output
    assert "or leave --structured off if it does not take response_format" in result.output


def test_the_bundled_model_at_a_served_address_gets_llama_cpp_pythons_form(server, tmp_path):
    """`selfinstruct serve` runs llama-cpp-python's server, which refuses json_schema: the schema goes in
    json_object's "schema", which it turns into a grammar."""
    config = run_config(server, tmp_path, lang="zh", structured=True, model="gemma-3-270m-q4_k_m.gguf",
                        num_instructions=3)
    generate(config)
    sent = [r.body["response_format"] for r in server.requests]
    assert {f["type"] for f in sent} == {"json_object"} and all(f["schema"] in SCHEMAS.values() for f in sent)
    assert all(r.endpoint == "chat" for r in server.requests)
