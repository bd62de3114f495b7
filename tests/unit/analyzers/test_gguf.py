"""GGUF metadata parsing and chat-template checks, on GGUF files built as bytes."""

from __future__ import annotations

import struct

import pytest

from mlsec_actions.analyzers import gguf
from mlsec_actions.findings import Finding, Severity
from tests.model_corpus_formats import (
    CHATML_TEMPLATE,
    LIPSUM_TEMPLATE,
    LLAMA3_TEMPLATE,
    OBFUSCATED_TEMPLATE,
    SSTI_TEMPLATE,
    assert_documented,
    blob,
    gguf_file,
    gguf_llm,
    mutations,
)


def _scan(data: bytes) -> list[Finding]:
    return gguf.analyze(blob(data, "model.gguf"))


@pytest.mark.parametrize("template", [CHATML_TEMPLATE, LLAMA3_TEMPLATE])
@pytest.mark.parametrize("version", [2, 3])
def test_plain_templates_pass(template: str, version: int) -> None:
    assert _scan(gguf_llm(template, version=version)) == []


def test_version_1_and_big_endian_parse() -> None:
    assert _scan(gguf_llm(CHATML_TEMPLATE, version=1)) == []
    assert _scan(gguf_llm(CHATML_TEMPLATE, order=">")) == []
    found = _scan(gguf_llm(SSTI_TEMPLATE, order=">"))
    assert [f.rule.id for f in found] == ["gguf/chat-template-injection"]


@pytest.mark.parametrize("template", [SSTI_TEMPLATE, LIPSUM_TEMPLATE, OBFUSCATED_TEMPLATE])
def test_sandbox_escapes_are_critical(template: str) -> None:
    found = _scan(gguf_llm(template))
    assert [f.rule.id for f in found] == ["gguf/chat-template-injection"]
    assert found[0].severity is Severity.CRITICAL
    assert found[0].location.logical == "tokenizer.chat_template"


def test_message_names_the_pattern() -> None:
    (finding,) = _scan(gguf_llm(SSTI_TEMPLATE))
    assert "dunder attribute access" in finding.message and "__subclasses__" in finding.message


def test_named_templates_and_template_arrays_are_checked() -> None:
    data = gguf_file([("tokenizer.chat_template", 8, CHATML_TEMPLATE),
                      ("tokenizer.chat_template.tool_use", 8, LIPSUM_TEMPLATE),
                      ("tokenizer.chat_templates", 9, (8, ["default", "tool_use"]))])
    found = _scan(data)
    assert [f.location.logical for f in found] == ["tokenizer.chat_template.tool_use"]


def test_templates_in_other_keys_are_ignored() -> None:
    # Only chat templates are rendered by servers; other strings may mention anything.
    assert _scan(gguf_file([("general.description", 8, "__class__ is a python dunder")])) == []


@pytest.mark.parametrize(("data", "needle"), [
    (b"", "truncated"),
    (b"GGML" + bytes(20), "magic"),
    (b"GGUF" + struct.pack("<I", 7) + bytes(16), "version"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**40), "metadata count"),
    (b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0), "tensor count"),
    (gguf_file([("k", 8, "v")], tail=b"")[:-1], "truncated"),
    (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**50) + b"k", "exceeds"),           # key length absurd
    (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<I", 99), "unknown value type"),
    (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<IIQ", 9, 4, 2**60), "array of"),
    (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<IIQ", 9, 77, 1) + bytes(8), "element type"),
], ids=["empty", "magic", "version", "kv-count", "tensor-count", "truncated", "key-length", "value-type",
        "array-count", "array-type"])
def test_malformed_headers_are_findings(data: bytes, needle: str) -> None:
    found = _scan(data)
    assert [f.rule.id for f in found] == ["gguf/malformed-header"]
    assert needle in found[0].message


def test_nested_arrays_are_bounded() -> None:
    value: tuple[int, list[object]] = (4, [1])
    for _ in range(gguf.MAX_DEPTH + 1):
        value = (9, [value])
    found = _scan(gguf_file([("deep", 9, value)]))
    assert [f.rule.id for f in found] == ["gguf/malformed-header"]
    assert "nested" in found[0].message


def test_escape_found_before_a_later_parse_error_is_kept() -> None:
    data = gguf_file([("tokenizer.chat_template", 8, SSTI_TEMPLATE)], tail=b"")
    data = data[:16] + struct.pack("<Q", 2) + data[24:]  # claim one more entry than present
    assert sorted(f.rule.id for f in _scan(data)) == ["gguf/chat-template-injection", "gguf/malformed-header"]


@pytest.mark.parametrize(("text", "label"), [
    ("{{ self._TemplateReference__context }}", "private attribute"),
    ("{{ request.application.__self__ }}", "Flask"),
    ("{{ config.from_object('os') }}", "Flask"),
    ("{{ joiner.__init__.__globals__ }}", "dunder"),
    ("{{ x.mro() }}", "Python internals"),
    ("{{ ''|attr('x') }}", "attr() filter"),
    ("{{ eval('1') }}", "eval/exec"),
    ("{{ os.popen('id') }}", "OS command"),
])
def test_template_patterns(text: str, label: str) -> None:
    assert any(label in issue.label for issue in gguf.template_issues(text))


@pytest.mark.parametrize("text", [CHATML_TEMPLATE, LLAMA3_TEMPLATE, "{% set ns = namespace(x=1) %}{{ ns.x }}",
                                  "{{ message['content'] | trim }}{{ raise_exception('bad role') }}",
                                  # tool-calling constructs of recent templates
                                  "{%- if builtin_tools is defined %}"
                                  "{{ builtin_tools | reject('equalto', 'x') | join(', ') }}{%- endif %}"
                                  "{{ '<|python_tag|>' + tool_call.name + '.call(' }}"
                                  "{%- for k, v in tool_call.arguments | items %}{{ k }}{%- endfor %}"
                                  "{{ t | tojson(indent=4) }}{%- if message.content is mapping %}{%- endif %}",
                                  "{%- set date_string = strftime_now('%d %b %Y') %}{{ messages[-1].content[:10] }}"])
def test_benign_template_constructs(text: str) -> None:
    assert gguf.template_issues(text) == []


def test_large_string_arrays_stay_in_sync() -> None:
    # Crosses the 1 MB read blocks used to skip token lists, including a string longer than a block.
    tokens = [f"token-{i}-" + "x" * (i % 50) for i in range(60_000)] + ["y" * (3 << 20)] + ["end"]
    data = gguf_file([("tokenizer.ggml.tokens", 9, (8, tokens)), ("tokenizer.chat_template", 8, LIPSUM_TEMPLATE),
                      ("general.name", 8, "after")], version=2)
    assert [f.rule.id for f in _scan(data)] == ["gguf/chat-template-injection"]
    truncated = gguf_file([("tokenizer.ggml.tokens", 9, (8, tokens))], tail=b"")[:-100]
    assert [f.rule.id for f in _scan(truncated)] == ["gguf/malformed-header"]


def test_rules_are_documented() -> None:
    assert_documented(gguf.RULES)


def test_damaged_files_never_raise() -> None:
    for data in mutations(gguf_llm(LLAMA3_TEMPLATE)):
        for finding in _scan(data):
            assert finding.rule in gguf.RULES


def test_oversized_template_is_refused_before_reading() -> None:
    data = gguf_file([("tokenizer.chat_template", 8, "x" * (gguf.KEPT_STRING + 1))])
    found = _scan(data)
    assert [f.rule.id for f in found] == ["gguf/malformed-header"] and "limit" in found[0].message
