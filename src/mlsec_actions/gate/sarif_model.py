"""The SARIF fields the gate reads, as msgspec structs: decoding checks their types (an error names the JSON
path) and skips every other field unread. Field names are SARIF's own (camelCase)."""

from __future__ import annotations

from typing import Any

import msgspec


class Text(msgspec.Struct, gc=False):
    text: str | None = None
    markdown: str | None = None


class Artifact(msgspec.Struct, gc=False):
    uri: str = ""


class Region(msgspec.Struct, gc=False):
    startLine: int | None = None


class Physical(msgspec.Struct, gc=False):
    artifactLocation: Artifact | None = None
    region: Region | None = None


class Location(msgspec.Struct, gc=False):
    physicalLocation: Physical | None = None


class Props(msgspec.Struct, gc=False):
    """The two result/rule properties severity comes from; other properties are skipped unread."""

    severity_name: str | None = msgspec.field(default=None, name="mlsec-severity")
    score: str | float | None = msgspec.field(default=None, name="security-severity")


class Fingerprints(msgspec.Struct, gc=False):
    primaryLocationLineHash: str | None = None


class Result(msgspec.Struct, gc=False):
    ruleId: str | None = None
    ruleIndex: int = -1
    level: str | None = None
    kind: str | None = None
    message: Text | None = None
    locations: list[Location] | None = None
    partialFingerprints: Fingerprints | None = None
    properties: Props | None = None


class Config(msgspec.Struct, gc=False):
    level: str | None = None


class RuleDescriptor(msgspec.Struct, gc=False):
    id: str = ""
    defaultConfiguration: Config | None = None
    properties: Props | None = None


class Component(msgspec.Struct, gc=False):
    name: str = "unknown"
    version: str | None = None
    rules: list[RuleDescriptor] | None = None


class Tool(msgspec.Struct, gc=False):
    driver: Component


class Ref(msgspec.Struct, gc=False):
    id: str = ""


class Notification(msgspec.Struct, gc=False):
    level: str = "warning"
    message: Text | None = None
    descriptor: Ref | None = None


class Invocation(msgspec.Struct, gc=False):
    executionSuccessful: bool = True
    toolExecutionNotifications: list[Notification] | None = None
    properties: dict[str, Any] | None = None


class Automation(msgspec.Struct, gc=False):
    id: str = ""


class Run(msgspec.Struct, gc=False):
    tool: Tool
    results: list[Result] | None = None
    invocations: list[Invocation] | None = None
    automationDetails: Automation | None = None
    properties: dict[str, Any] | None = None


class Log(msgspec.Struct, gc=False):
    version: str
    runs: list[Run]


DECODER = msgspec.json.Decoder(Log)
