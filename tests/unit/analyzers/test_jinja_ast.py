"""Chat templates judged by Jinja2's syntax tree: escapes, concatenation, aliases, attribute filters."""

from __future__ import annotations

import io

import pytest

from mlsec_actions.analyzers import gguf, jinja_ast
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.findings import Severity
from tests.model_corpus_formats import CHATML_TEMPLATE, LLAMA3_TEMPLATE, gguf_llm

# Each hides a dunder from a text search; Jinja evaluates each to the same escape.
ESCAPES = {
    "N-escape": "{{ lipsum['\\N{LOW LINE}\\N{LOW LINE}globals\\N{LOW LINE}\\N{LOW LINE}'] }}",
    "concatenation": "{{ cycler['_' ~ '_init_' ~ '_'] }}",
    "repetition": "{{ joiner[('_' * 2) ~ 'globals' ~ ('_' * 2)] }}",
    "format-95": "{% set u = '%c'|format(95) %}{{ lipsum[u ~ u ~ 'globals' ~ u ~ u] }}",
    "alias": "{% set g = lipsum %}{{ g|attr('__glo' ~ 'bals__') }}",
    "alias-item": "{% set g = cycler %}{% set k = message_key %}{{ g[k] }}",
    "map-attribute": "{{ messages|map(attribute='__class__')|list }}",
    "selectattr": "{{ messages|selectattr('_TemplateReference__context')|list }}",
    "join": "{{ x[['_', '_class', '__']|join] }}",
    "replace": "{{ x['XXclassXX'|replace('X', '_')] }}",
    "private": "{{ self._TemplateReference__context }}",
    "attr-computed": "{{ x|attr(messages[0]['content']) }}",
}


@pytest.mark.parametrize("template", list(ESCAPES.values()), ids=list(ESCAPES))
def test_escapes_hidden_from_text_search_are_found(template: str) -> None:
    found = jinja_ast.issues(template + CHATML_TEMPLATE)
    assert found, template
    issues = gguf.template_issues(template + CHATML_TEMPLATE)
    assert max(i.severity for i in issues) is Severity.CRITICAL


@pytest.mark.parametrize("template", [
    CHATML_TEMPLATE, LLAMA3_TEMPLATE,
    "{% set ns = namespace(found=false) %}{% for m in messages %}{% set ns.found = true %}{% endfor %}{{ ns.found }}",
    "{% for m in messages %}{{ m['role'] ~ ': ' ~ m['content'] }}{% generation %}{{ m.content }}{% endgeneration %}"
    "{% endfor %}",
    "{{ messages|map(attribute='content')|join('\\n') }}{{ messages|selectattr('role', 'equalto', 'user')|list }}",
    "{{ '%s: %d'|format('a', 3) }}{{ range(3)|list }}{{ messages[loop_index]['content'] if messages else '' }}",
], ids=["chatml", "llama3", "namespace", "generation-tag", "map-content", "format"])
def test_real_templates_are_clean(template: str) -> None:
    assert jinja_ast.issues(template) == []
    assert gguf.template_issues(template) == []


def test_unparsable_template_is_reported_not_trusted() -> None:
    [(label, _, _)] = jinja_ast.issues("{% for x in %}") or []
    assert "cannot parse" in label


def test_huge_format_width_is_not_evaluated() -> None:
    assert jinja_ast.issues("{{ x['%999999999c'|format(95)] }}") == []  # not folded: no giant string built


def test_template_over_one_mebibyte_is_analysed_in_gguf() -> None:
    template = "{# " + "padding " * 200_000 + "#}" + ESCAPES["concatenation"] + CHATML_TEMPLATE
    assert len(template) > 1024 * 1024
    data = gguf_llm(template)
    findings = gguf.analyze(Blob("m.gguf", None, len(data), lambda: io.BytesIO(data)))
    assert [f.rule.id for f in findings] == ["gguf/chat-template-injection"]
    assert findings[0].severity is Severity.CRITICAL
